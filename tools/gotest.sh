#!/usr/bin/env bash
# Runs go test (or vet, build) with the cgo flags of third_party/libtorch.mk:
#   tools/gotest.sh test -count=1 ./torch/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
eval "$(sed -n 's/^export \(CGO_[A-Z]*\) := \(.*\)/export \1="\2"/p' "$root/third_party/libtorch.mk")"
cmd=$1; shift
cd "$root" && exec go "$cmd" -tags tcmalloc "$@"
