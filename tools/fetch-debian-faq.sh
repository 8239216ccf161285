#!/usr/bin/env bash
# Fetches Debian's plain-text FAQ (package debian-faq) into
# third_party/debian-faq by unpacking the .deb with dpkg -x; nothing is
# installed system-wide. The dataset tests check the FAQ importer against it
# and testdata/data/debian-faq.jsonl, which was made from version 11.1, so that
# version is asked for. Running it again is a no-op once the file is there.
set -euo pipefail

VERSION=${DEBIAN_FAQ_VERSION:-11.1}

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/debian-faq"
want="$dest/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"

if [ -f "$want" ]; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# apt-get update is slow and the package lists are usually there already:
# run it only when the download fails.
if ! apt-get download "debian-faq=$VERSION" >"$tmp/log" 2>&1; then
  echo "fetch-debian-faq: download failed, running apt-get update" >&2
  apt-get update -qq >&2
  apt-get download "debian-faq=$VERSION" >&2
fi
deb=$(ls "$tmp"/debian-faq_*.deb | head -n1)
dpkg -x "$deb" "$tmp/x"
test -f "$tmp/x/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp/x" "$dest"
echo "fetch-debian-faq: $(basename "$deb") unpacked into $dest" >&2
