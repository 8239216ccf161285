#!/usr/bin/env bash
# Fetches the gloo headers (Debian package libgloo-dev) into third_party/gloo
# with apt-get download + dpkg -x; nothing is installed system-wide.
# torch/distributed.cpp includes c10d's ProcessGroupGloo.hpp, which includes
# <gloo/...>, and the torch wheel ships no gloo headers. Only the headers are
# used: the gloo code itself is the one compiled into libtorch_cpu.so.
# Running it again is a no-op.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/gloo"

if [ -f "$dest/include/gloo/algorithm.h" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download libgloo-dev >"$tmp/log" 2>&1; then
  echo "fetch-gloo: download failed, running apt-get update" >&2
  apt-get update -qq >&2 || true
  apt-get download libgloo-dev >&2
fi
dpkg -x "$(ls "$tmp"/libgloo-dev_*.deb | head -n1)" "$tmp/x"
test -f "$tmp/x/usr/include/gloo/algorithm.h"
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/include"
cp -r "$tmp/x/usr/include/gloo" "$dest.tmp/include/"
cp "$tmp/x/usr/share/doc/libgloo-dev/copyright" "$dest.tmp/" 2>/dev/null || true
ls "$tmp"/libgloo-dev_*.deb | xargs -n1 basename > "$dest.tmp/VERSION"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "fetch-gloo: gloo headers unpacked into $dest/include" >&2
