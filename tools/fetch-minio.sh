#!/usr/bin/env bash
# Builds the MinIO server from the Go module proxy into third_party/bin/minio,
# for the S3 tests of sagemaker/ (make deps-aws). Running it again is a no-op
# once the pinned version is there. The build takes about 4 minutes on 2 cores.
# The tests run it on 127.0.0.1 only.
set -euo pipefail

MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
GO=${GO:-go}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/third_party/bin"
target="$bin/minio"

# The binary records the module version it was built from.
if [ -x "$target" ] && "$GO" version -m "$target" 2>/dev/null |
  awk '$1 == "mod" && $2 == "github.com/minio/minio" { print $3 }' | grep -qx -- "$MINIO_VERSION"; then
  exit 0
fi

mkdir -p "$bin"
# Build into a scratch GOBIN and move the result, so that an interrupted build
# never leaves a half-written binary where the tests look.
tmp=$(mktemp -d "$root/third_party/.minio.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-minio: building github.com/minio/minio@$MINIO_VERSION (a few minutes)" >&2
CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-buildvcs=false "$GO" install "github.com/minio/minio@$MINIO_VERSION"
mv -f "$tmp/minio" "$target"
echo "fetch-minio: $target" >&2
