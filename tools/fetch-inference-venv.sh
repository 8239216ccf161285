#!/usr/bin/env bash
# Builds third_party/inference-venv, the Python that sagemaker's
# TestInferenceScriptWithPeers runs code/inference.py in: torch 2.11.0 and
# tokenizers, as the AWS PyTorch inference containers provide them. torch is
# installed --no-deps from the PyPI wheel that tools/fetch-libtorch.sh keeps in
# third_party/dl (downloaded here when it is not there); the rest comes from
# PyPI as tools/inference-venv/requirements.txt pins it. Running it again is a
# no-op once the venv matches the requirements.
set -euo pipefail

TORCH_VERSION=${TORCH_VERSION:-2.11.0}

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/third_party/inference-venv"
req="$root/tools/inference-venv/requirements.txt"
stamp="$venv/.embtune-version"
want="torch-$TORCH_VERSION $(sha256sum < "$req" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

py=${PYTHON:-python3}
dl="$root/third_party/dl"
mkdir -p "$dl"
# The stamp is written last: a venv without it (an interrupted run) is rebuilt.
rm -rf "$venv"
"$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
tag=$("$venv/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
if ! ls "$dl"/torch-"$TORCH_VERSION"-"$tag"-*manylinux*x86_64.whl >/dev/null 2>&1; then
  echo "fetch-inference-venv: downloading torch==$TORCH_VERSION for $tag into $dl" >&2
  "${pip[@]}" download --no-deps --only-binary=:all: "torch==$TORCH_VERSION" -d "$dl"
fi
echo "fetch-inference-venv: installing torch $TORCH_VERSION and tokenizers into $venv" >&2
# The requirements first: torch's own list would pull triton and the rest of
# the CUDA toolkit, so it goes in last, without it.
"${pip[@]}" install -r "$req"
"${pip[@]}" install --no-deps --no-index --find-links "$dl" "torch==$TORCH_VERSION"
"$venv/bin/python" -c 'import torch, tokenizers; torch.zeros(1)' >&2
echo "$want" > "$stamp"
echo "fetch-inference-venv: $venv is ready" >&2
