#!/usr/bin/env bash
# make image-test: build the real Dockerfile's image with buildah and run the
# SageMaker entry points inside it.
#
# No Docker engine runs here and no image registry is reachable, so:
#   - the base image (BASE_IMAGE) is a Debian bookworm root filesystem made by
#     mmdebstrap from Debian's packages (cached in third_party/image/);
#   - the artifacts (ARTIFACTS=prebuilt) are the binary built on the host with
#     /opt/embtune/libtorch/lib in its rpath, libtorch's lib/ and the model,
#     staged as the build stage would leave them;
#   - buildah runs with --storage-driver vfs and --isolation chroot, its
#     storage under third_party/image/ (removed at the end unless KEEP=1).
# Inside the image it runs `embtune train` against an /opt/ml tree
# relocated with SAGEMAKER_BASE_DIR (a folder mounted from the host), then
# `embtune serve` on that model, and checks /ping and /invocations.
# Needs root, buildah and mmdebstrap (apt-get install buildah mmdebstrap).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
say() { echo "image-test [$(( $(date +%s) - start ))s]: $*" >&2; }

for tool in buildah mmdebstrap curl; do
  command -v "$tool" >/dev/null || { echo "image-test: $tool is missing (apt-get install buildah mmdebstrap curl)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "image-test: run as root (buildah's chroot isolation)" >&2; exit 1; }

work="$root/third_party/image"
store="$work/storage"
mkdir -p "$work"
bah=(buildah --root "$store" --runroot "$work/run" --storage-driver vfs)
ctx=$(mktemp -d "$work/ctx.XXXXXX")
ml=$(mktemp -d "$work/opt-ml.XXXXXX")
bctx=$(mktemp -d "$work/bctx.XXXXXX")
ctr=""
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ]; then kill -- "-$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; fi
  [ -n "$ctr" ] && "${bah[@]}" rm "$ctr" >/dev/null 2>&1
  rm -rf "$ctx" "$ml" "$bctx"
  if [ "${KEEP:-}" != 1 ]; then "${bah[@]}" rmi -a -f >/dev/null 2>&1 || true; rm -rf "$store" "$work/run"; fi
}
trap cleanup EXIT

# 1. The base: bookworm, minbase variant (like debian:bookworm-slim: apt, no
# recommends), cached as a tarball.
rootfs="$work/bookworm-minbase.tar"
if [ ! -s "$rootfs" ]; then
  say "mmdebstrap bookworm"
  mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates bookworm "$rootfs.tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  mv "$rootfs.tmp" "$rootfs"
fi
base=localhost/embtune-base:bookworm
ln "$rootfs" "$bctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$bctx/rootfs.tar"
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["/bin/bash"]\n' > "$bctx/Containerfile"
say "import the base image"
"${bah[@]}" bud --quiet --isolation chroot -f "$bctx/Containerfile" -t "$base" "$bctx" >/dev/null

# 2. The artifacts, as the build stage lays them out under /out.
say "build bin/embtune with /opt/embtune/libtorch/lib in its rpath"
eval "$(sed -n 's/^export \(CGO_[A-Z]*\) := \(.*\)/export \1="\2"/p' third_party/libtorch.mk)"
export CGO_LDFLAGS="$CGO_LDFLAGS -Wl,-rpath,/opt/embtune/libtorch/lib"
${GO:-go} build -tags "$(sed -n 's/^GO_TAGS := //p' third_party/libtorch.mk)" -o "$ctx/embtune" ./cmd/embtune
out="$ctx/image-root"
mkdir -p "$out/opt/embtune/libtorch" "$out/opt/embtune/models" "$out/usr/local/bin"
mv "$ctx/embtune" "$out/usr/local/bin/embtune"
lib=$(sed -n 's/^LIBTORCH_LIB_DIR := //p' third_party/libtorch.mk)
cp -rL "$lib" "$out/opt/embtune/libtorch/lib"
cp -rL third_party/models/all-MiniLM-L6-v2 "$out/opt/embtune/models/all-MiniLM-L6-v2"

# 3. The real Dockerfile.
image=localhost/embtune:image-test
say "buildah bud Dockerfile (BASE_IMAGE=$base, ARTIFACTS=prebuilt)"
"${bah[@]}" bud --quiet --isolation chroot --layers=false -f "$root/Dockerfile" \
  --build-arg BASE_IMAGE="$base" --build-arg ARTIFACTS=prebuilt -t "$image" "$ctx" >/dev/null
"${bah[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$image" >&2

# 4. The training container: /opt/ml relocated to a host folder mounted in
# the container at /opt/ml-relocated.
mkdir -p "$ml/input/config" "$ml/input/data/training"
cp testdata/image-test/train.jsonl "$ml/input/data/training/train.jsonl"
cp testdata/image-test/hyperparameters.json "$ml/input/config/hyperparameters.json"
ctr=$("${bah[@]}" from --quiet "$image")
run() { "${bah[@]}" run --isolation chroot --volume "$ml:/opt/ml-relocated" --env SAGEMAKER_BASE_DIR=/opt/ml-relocated "$@"; }
say "embtune train (the training container's command)"
if ! run "$ctr" -- /usr/local/bin/embtune train; then
  echo "image-test: train failed; /opt/ml/output/failure:" >&2
  cat "$ml/output/failure" >&2 2>/dev/null || true
  exit 1
fi
for f in model.safetensors model.pt config.json tokenizer.json eval.json; do
  [ -s "$ml/model/$f" ] || { echo "image-test: train left no model/$f" >&2; exit 1; }
done

# 5. The inference container on the trained model.
port=$(( 20000 + RANDOM % 20000 ))
say "embtune serve on port $port"
# Its own process group, so that the cleanup stops buildah's chroot
# runtime and the server with it.
setsid "${bah[@]}" run --isolation chroot --volume "$ml:/opt/ml-relocated" --env SAGEMAKER_BASE_DIR=/opt/ml-relocated \
  --env SAGEMAKER_BIND_TO_PORT="$port" "$ctr" -- /usr/local/bin/embtune serve >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/ping" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; echo "image-test: serve exited" >&2; exit 1; }
  sleep 0.5
done
ping=$(curl -fsS "http://127.0.0.1:$port/ping")
say "/ping: $ping"
resp=$(curl -fsS -H 'Content-Type: application/json' -d '{"inputs":["How do I upgrade Debian?","What is a package?"]}' \
  "http://127.0.0.1:$port/invocations")
python3 - "$resp" <<'PY'
import json, math, sys
v = json.loads(sys.argv[1])["embeddings"]
assert len(v) == 2 and all(len(x) == 384 for x in v), [len(x) for x in v]
for x in v:
    n = math.sqrt(sum(a * a for a in x))
    assert abs(n - 1) < 1e-4, n
print("image-test: /invocations: 2 vectors of 384, unit norm", file=sys.stderr)
PY
kill -- "-$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""
say "passed"
