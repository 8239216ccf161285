#!/usr/bin/env bash
# Fetches Debian's plain-text FAQ (package debian-faq) into
# third_party/debian-faq by unpacking the .deb with dpkg -x: nothing is
# installed system-wide, so no root is needed beyond apt's own cache.
# The dataset package tests compare its FAQ importer against this file.
# Running it again is a no-op once the file is there.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/debian-faq"
want="$dest/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"

if [ -f "$want" ]; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# apt-get download needs a package list; refresh it only when it is missing
# or stale, since update is slow and needs the network.
if ! apt-get download debian-faq >/dev/null 2>"$tmp/err"; then
  echo "fetch-debian-faq: download failed, running apt-get update" >&2
  apt-get update -qq >&2
  apt-get download debian-faq
fi
deb=$(ls "$tmp"/debian-faq_*.deb | head -n1)
mkdir -p "$dest"
dpkg -x "$deb" "$tmp/x"
rm -rf "$dest"
mv "$tmp/x" "$dest"
test -f "$want"
echo "fetch-debian-faq: $(basename "$deb") unpacked into $dest" >&2
