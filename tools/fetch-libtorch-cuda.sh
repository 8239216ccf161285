#!/usr/bin/env bash
# Fetches what `go build -tags cuda` needs to compile and link on a machine
# without a GPU, into third_party/libtorch-cuda:
#
#   lib/      libtorch_cuda.so, libc10_cuda.so and libtorch_nvshmem.so from the
#             same PyPI torch wheel tools/fetch-libtorch.sh uses (so this
#             downloads nothing more when that wheel is in third_party/dl);
#   include/  the CUDA runtime headers (cuda_runtime_api.h …) from the
#             nvidia-cuda-runtime wheel fetch-libtorch.sh already downloads,
#             and their crt/ headers (nvidia-cuda-crt, 134 kB), for
#             torch/cuda.cpp;
#   stubs/    empty shared objects named after the NVIDIA libraries those
#             three link (cuBLAS, cuDNN, NCCL, cuFFT, …: about 2.5 GB of wheels
#             that only a GPU machine needs). They satisfy the linker's search
#             for DT_NEEDED entries (-rpath-link, never -rpath); the symbols
#             stay unresolved (--allow-shlib-undefined) and are bound at run
#             time by libtorch_cuda's own RPATH
#             ($ORIGIN/../../nvidia/*/lib), i.e. by the nvidia-* wheels
#             installed next to the GPU machine's torch.
#
# tools/libtorch-env.sh reads this folder when EMBTUNE_CUDA=1. The binary
# built this way runs only where a CUDA torch 2.11 is installed (see
# tools/gpu/embtune.sh). Requires third_party/libtorch (make libtorch).
# Running it again is a no-op.
set -euo pipefail

TORCH_VERSION=${TORCH_VERSION:-2.11.0}
CUDART_VERSION=${CUDART_VERSION:-13.0.96}
CRT_VERSION=${CRT_VERSION:-13.0.88}

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/libtorch-cuda"
stamp="$dest/.embtune-version"
want="torch-$TORCH_VERSION cudart-$CUDART_VERSION crt-$CRT_VERSION stubs-1"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

dl="$root/third_party/dl"
mkdir -p "$dl"
py=${PYTHON:-python3}
if ! ls "$dl"/torch-"$TORCH_VERSION"-*.whl >/dev/null 2>&1; then
  echo "fetch-libtorch-cuda: downloading torch==$TORCH_VERSION into $dl" >&2
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 "torch==$TORCH_VERSION" -d "$dl"
fi
if ! ls "$dl"/nvidia_cuda_runtime-"$CUDART_VERSION"-*.whl >/dev/null 2>&1; then
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "nvidia-cuda-runtime==$CUDART_VERSION" -d "$dl"
fi

if ! ls "$dl"/nvidia_cuda_crt-"$CRT_VERSION"-*.whl >/dev/null 2>&1; then
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "nvidia-cuda-crt==$CRT_VERSION" -d "$dl"
fi

tmp=$(mktemp -d "$root/third_party/.libtorch-cuda.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
wheel=$(ls "$dl"/torch-"$TORCH_VERSION"-*.whl | head -n1)
mkdir -p "$tmp/out/lib" "$tmp/out/include" "$tmp/out/stubs"
unzip -q -j "$wheel" 'torch/lib/libtorch_cuda.so' 'torch/lib/libc10_cuda.so' \
  'torch/lib/libtorch_nvshmem.so' -d "$tmp/out/lib"
unzip -q "$(ls "$dl"/nvidia_cuda_runtime-"$CUDART_VERSION"-*.whl | head -n1)" 'nvidia/cu13/include/*' -d "$tmp/w"
unzip -q "$(ls "$dl"/nvidia_cuda_crt-"$CRT_VERSION"-*.whl | head -n1)" 'nvidia/cu13/include/*' -d "$tmp/w"
cp -r "$tmp/w/nvidia/cu13/include"/. "$tmp/out/include/"

# One stub per NVIDIA library the CUDA libraries need that neither libtorch
# folder provides; system libraries (libc, libstdc++, …) are left alone.
cc=${CC:-cc}
have() { [ -e "$root/third_party/libtorch/lib/$1" ] || [ -e "$tmp/out/lib/$1" ]; }
for so in "$tmp"/out/lib/*.so; do
  readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
done | sort -u | while read -r need; do
  case "$need" in
    libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|libgcc_s.so.*|libstdc++.so.*|ld-linux*) continue ;;
  esac
  have "$need" && continue
  "$cc" -shared -nostdlib -Wl,-soname,"$need" -o "$tmp/out/stubs/$need" -x c /dev/null
done
echo "$want" > "$tmp/out/.embtune-version"
rm -rf "$dest"
mv "$tmp/out" "$dest"
echo "fetch-libtorch-cuda: CUDA libtorch $TORCH_VERSION (link-time stubs: $(ls "$dest/stubs" | tr '\n' ' ')) is in $dest" >&2
