#!/usr/bin/env bash
# Fetches gperftools' tcmalloc (Debian package libtcmalloc-minimal4) into
# third_party/tcmalloc with apt-get download + dpkg -x; nothing is installed
# system-wide. libtorch-env.sh links it when it is there: glibc malloc's
# churn on the large activations of a training step costs libtorch about 9%
# of its training throughput on this machine type (measured; the steering
# notes measured 15-30% on 1.13). Skipped when the system already has the
# library, or with EMBTUNE_TCMALLOC=0. A failed download is not an error,
# except under CI=true. Running it again is a no-op.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/tcmalloc"
lib=libtcmalloc_minimal.so.4

if [ "${EMBTUNE_TCMALLOC:-1}" = "0" ] || [ -f "$dest/lib/$lib" ] || ldconfig -p 2>/dev/null | grep -q "$lib"; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download libtcmalloc-minimal4 >"$tmp/log" 2>&1; then
  echo "fetch-tcmalloc: download failed, running apt-get update" >&2
  apt-get update -qq >&2 || true
  if ! apt-get download libtcmalloc-minimal4 >&2; then
    # Optional: without it everything works, only training is slower. Not
    # in CI (CI=true), where the build is expected to have it and a test
    # (serve's TestIdleServerReturnsFreeMemory) needs it: there it fails,
    # unless EMBTUNE_TCMALLOC=0 asks for a build without it.
    if [ "${CI:-}" = "true" ]; then
      echo "fetch-tcmalloc: libtcmalloc-minimal4 unavailable (CI=true: failing; EMBTUNE_TCMALLOC=0 builds without it)" >&2
      exit 1
    fi
    echo "fetch-tcmalloc: libtcmalloc-minimal4 unavailable; building without tcmalloc" >&2
    exit 0
  fi
fi
dpkg -x "$(ls "$tmp"/libtcmalloc-minimal4_*.deb | head -n1)" "$tmp/x"
so=$(find "$tmp/x" -name "$lib" | head -n1)
test -n "$so"
rm -rf "$dest"
mkdir -p "$dest/lib"
cp -L "$so" "$dest/lib/$lib"
cp "$tmp/x/usr/share/doc/libtcmalloc-minimal4/copyright" "$dest/" 2>/dev/null || true
echo "fetch-tcmalloc: $lib unpacked into $dest/lib" >&2
