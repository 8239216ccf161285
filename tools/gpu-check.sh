#!/usr/bin/env bash
# The GPU check (docs/gpu.md): embtune's CUDA path against
# sentence-transformers on the same GPU, eight checks, a JSON report and a
# table in $OUT (gpu-check.json, gpu-check.txt, gpu-check.log).
#
# On the GPU machine, from the folder `make gpu-stage` wrote (it carries this
# script as gpu-check.sh):
#     gpu-stage/gpu-check.sh [--only 2,3]
# uses python3 (torch+CUDA, sentence-transformers) and the staged CUDA binary.
#
# Here, without a GPU:
#     tools/gpu-check.sh --dry-run
# runs the same steps on the CPU with the golden venv's Python standing in
# for the GPU machine's and bin/embtune (the CPU build) standing in for the
# CUDA binary, with smaller speed runs. It proves the script and the stage,
# not the GPU. Needs make gpu-stage first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dry=0
rest=()
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    *) rest+=("$a") ;;
  esac
done
if [ -f "$here/data/weights.sha256" ]; then
  stage=$here
  root=$(cd "$here/.." && pwd)
else
  root=$(cd "$here/.." && pwd)
  stage=${GPU_STAGE:-$root/gpu-stage}
fi
if [ ! -f "$stage/gpu/check.py" ]; then
  echo "gpu-check: no stage in $stage; run 'make gpu-stage' first" >&2
  exit 1
fi
out=${OUT:-$PWD/gpu-check-out}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ "$dry" = 1 ]; then
  py=${PYTHON:-$root/third_party/golden-venv/bin/python}
  bin=${EMBTUNE_BIN:-$root/bin/embtune}
  device=cpu
  flags=(--dry-run)
  limit=${GPU_CHECK_TIMEOUT:-1800}
else
  py=${PYTHON:-python3}
  bin=$stage/embtune
  device=${DEVICE:-cuda}
  flags=()
  limit=${GPU_CHECK_TIMEOUT:-540}
  # Ask Python once where its torch lives; the wrapper reads it from here on.
  EMBTUNE_TORCH_LIB=$("$py" -I -c 'import os, torch; print(os.path.join(torch.__path__[0], "lib"))')
  export EMBTUNE_TORCH_LIB
  { nvidia-smi || true; ldd --version | head -n1 || true; ldd "$stage/bin/embtune" || true; } >"$out/gpu-env.txt" 2>&1
fi
if [ ! -x "$bin" ]; then
  echo "gpu-check: no embtune binary at $bin" >&2
  exit 1
fi
# The device runner allows 10 minutes a command; stop before that so the
# report of the checks that finished still comes back.
exec timeout --kill-after=10 "$limit" "$py" "$stage/gpu/check.py" \
  --stage "$stage" --embtune "$bin" --out "$out" --device "$device" ${flags[@]+"${flags[@]}"} ${rest[@]+"${rest[@]}"}
