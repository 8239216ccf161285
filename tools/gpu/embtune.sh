#!/usr/bin/env bash
# The staged CUDA embtune, run against the GPU machine's own torch 2.11: the
# binary was linked here against the PyPI wheel's libtorch_cuda with the
# NVIDIA libraries left to run time. This points the loader at python3's
# torch/lib (libtorch_cpu, libtorch_cuda, libc10_cuda) and the nvidia-* wheels
# beside it (libcudart, which the binary links itself; the rest libtorch_cuda
# finds through its own RPATH). EMBTUNE_TORCH_LIB skips asking Python.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${EMBTUNE_TORCH_LIB:-}" ]; then
  if ! EMBTUNE_TORCH_LIB=$("${PYTHON:-python3}" -I -c 'import os, torch; print(os.path.join(torch.__path__[0], "lib"))'); then
    echo "embtune: no Python torch found (${PYTHON:-python3}); set EMBTUNE_TORCH_LIB to a CUDA torch 2.11's lib folder" >&2
    exit 1
  fi
fi
site=$(dirname "$(dirname "$EMBTUNE_TORCH_LIB")")
export LD_LIBRARY_PATH="$EMBTUNE_TORCH_LIB:$site/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/embtune" "$@"
