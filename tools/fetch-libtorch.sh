#!/usr/bin/env bash
# Fetches libtorch from the PyPI torch wheel into third_party/libtorch.
#
# The x86_64 wheel on PyPI is the CUDA build. We keep its CPU libraries
# (libtorch_cpu, libc10, the bundled libgomp), headers and cmake files, and
# leave out libtorch_cuda*. libtorch_cpu itself links libcudart and libcupti
# (for the profiler), so those two small libraries come from their own PyPI
# wheels. Nothing is installed system-wide. Running it again is a no-op.
set -euo pipefail

TORCH_VERSION=${TORCH_VERSION:-2.11.0}
CUDART_VERSION=${CUDART_VERSION:-13.0.96}
CUPTI_VERSION=${CUPTI_VERSION:-13.0.85}

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/libtorch"
stamp="$dest/.embtune-version"
want="torch-$TORCH_VERSION cudart-$CUDART_VERSION cupti-$CUPTI_VERSION"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

dl="$root/third_party/dl"
mkdir -p "$dl"
py=${PYTHON:-python3}
echo "fetch-libtorch: downloading torch==$TORCH_VERSION (CPU parts are kept) into $dl" >&2
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_28_x86_64 \
  "torch==$TORCH_VERSION" -d "$dl"
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  "nvidia-cuda-runtime==$CUDART_VERSION" "nvidia-cuda-cupti==$CUPTI_VERSION" -d "$dl"

tmp=$(mktemp -d "$root/third_party/.libtorch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
wheel=$(ls "$dl"/torch-"$TORCH_VERSION"-*.whl | head -n1)
unzip -q "$wheel" 'torch/lib/*' 'torch/include/*' 'torch/share/*' 'torch/version.py' \
  -x 'torch/lib/libtorch_cuda*' 'torch/lib/libtorch_nvshmem.so' -d "$tmp/w"
unzip -q -j "$(ls "$dl"/nvidia_cuda_runtime-"$CUDART_VERSION"-*.whl | head -n1)" \
  'nvidia/cu13/lib/libcudart.so.13' -d "$tmp/w/torch/lib"
unzip -q -j "$(ls "$dl"/nvidia_cuda_cupti-"$CUPTI_VERSION"-*.whl | head -n1)" \
  'nvidia/cu13/lib/libcupti.so.13' -d "$tmp/w/torch/lib"
echo "$want" > "$tmp/w/torch/.embtune-version"
rm -rf "$dest"
mv "$tmp/w/torch" "$dest"
echo "fetch-libtorch: libtorch $TORCH_VERSION is in $dest" >&2
