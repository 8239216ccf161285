#!/usr/bin/env bash
# Fetches the headers that torch/distributed_nccl.cpp needs to compile with
# `-tags cuda` into third_party/nccl/include: nccl.h from the nvidia-nccl-cu13
# wheel that the torch 2.11.0 wheel requires (2.28.9), and the CUDA headers
# that c10d's ProcessGroupNCCL.hpp pulls in (cuda_runtime, cublas, cusparse,
# cusolver, crt) from the wheels of cuda-toolkit 13.0.2, the version torch
# 2.11.0 pins. Only headers are kept; a GPU box links the libraries of its
# own CUDA libtorch. Not part of `make deps` (a CPU build never needs it):
# `make nccl-headers`. Running it again is a no-op.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/nccl"
PIP=${PIP:-pip3}

if [ -f "$dest/include/nccl.h" ] && [ -f "$dest/include/cublas_v2.h" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wheels=(
  nvidia-nccl-cu13==2.28.9
  "nvidia-cuda-runtime==13.0.96.*"
  "nvidia-cuda-crt==13.0.88.*"
  "nvidia-cuda-cccl==13.0.85.*"
  "nvidia-cublas==13.1.0.3.*"
  "nvidia-cusparse==12.6.3.3.*"
  "nvidia-cusolver==12.0.4.66.*"
)
"$PIP" download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_18_x86_64 \
  --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --python-version 3.11 -d "$tmp/whl" "${wheels[@]}" >&2
mkdir -p "$tmp/inc"
for w in "$tmp"/whl/*.whl; do
  python3 - "$w" "$tmp/inc" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        parts = n.split("/")
        if "include" in parts and not n.endswith("/"):
            rel = "/".join(parts[parts.index("include") + 1:])
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with z.open(n) as src, open(path, "wb") as dst:
                dst.write(src.read())
PY
done
test -f "$tmp/inc/nccl.h"
rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/inc" "$dest/include"
(cd "$tmp/whl" && ls *.whl) > "$dest/WHEELS"
echo "fetch-nccl: NCCL and CUDA headers unpacked into $dest/include" >&2
