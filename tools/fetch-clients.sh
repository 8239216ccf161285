#!/usr/bin/env bash
# Installs the third-party clients of docs/serving.md (openai, LangChain,
# LlamaIndex, huggingface_hub, the SageMaker SDK 2.x, boto3), pinned in
# tools/clients/requirements.txt, into third_party/clients-venv for serve's
# client test (make deps-clients). Running it again is a no-op once the pinned
# set is installed; a run that failed half way is completed by the next one.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/third_party/clients-venv"
req="$root/tools/clients/requirements.txt"
py=${PYTHON:-python3}

[ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/.requirements" && exit 0

mkdir -p "$root/third_party"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
echo "fetch-clients: installing the clients of docs/serving.md into $venv" >&2
rm -f "$venv/.requirements"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c 'import openai, huggingface_hub, sagemaker.local, langchain_openai, llama_index.embeddings.openai, llama_index.embeddings.text_embeddings_inference, boto3' ||
  { echo "fetch-clients: the clients do not import after pip install" >&2; exit 1; }
cp "$req" "$venv/.requirements"
echo "fetch-clients: $venv" >&2
