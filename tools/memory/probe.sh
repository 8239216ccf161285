#!/usr/bin/env bash
# One embtune training step of N pairs under a hard memory limit: does it fit?
# (docs/training.md, "The largest batch in 8 GiB").
#
#   tools/memory/probe.sh N [LIMIT_GIB [extra train flags…]]
#
# The step runs in its own memory cgroup (v1 or v2, whichever the machine
# mounts; needs write access to /sys/fs/cgroup) limited to LIMIT_GIB (8): past
# the limit the kernel kills it, so "fits" is the kernel's answer, not an
# extrapolation. Prints one line: N, the flags, fits or killed, the cgroup's
# peak usage, the process's peak RSS (/usr/bin/time) and the wall time.
# EMBTUNE=PATH runs that build instead of bin/embtune; THREADS=N (1) its threads.
#
# The N pairs are the Debian FAQ's 120, the Bedrock FAQ's 85, then both again
# with " (again K)" appended, as many times as needed (--no-duplicates false,
# so every pair stays in the one batch), max_seq_length 128. PAIRS=short
# makes them "question K" / "answer K" instead (a few tokens each): the
# loss over a large cached batch, which dominates its peak, does not depend
# on the texts' length, and the first pass over them is many times faster.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${1:?usage: probe.sh N [LIMIT_GIB [train flags…]]}
limit=${2:-8}
shift $(($# >= 2 ? 2 : 1))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$n" "${PAIRS:-faq}" >"$tmp/pairs.jsonl" <<'EOF'
import json, sys
n = int(sys.argv[1])
if sys.argv[2] == "short":
    for k in range(n):
        print(json.dumps({"anchor": f"question {k}", "positive": f"answer {k}"}))
    sys.exit()
base = []
for line in open("testdata/data/debian-faq.jsonl", encoding="utf-8"):
    if line.strip():
        r = json.loads(line)
        base.append((r["question"], r["answer"]))
for r in json.load(open("testdata/data/bedrock-faq-training.json", encoding="utf-8")):
    base.append((r["sentence1"], r["sentence2"]))
out, k = [], 0
while len(out) < n:
    suffix = "" if k == 0 else f" (again {k})"
    out += [(a + suffix, p + suffix) for a, p in base]
    k += 1
for a, p in out[:n]:
    print(json.dumps({"anchor": a, "positive": p}, ensure_ascii=False))
EOF

bytes=$((limit * 1024 * 1024 * 1024))
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then # v2
  cg=/sys/fs/cgroup/embtune-probe-$$
  mkdir "$cg"
  echo "$bytes" >"$cg/memory.max"
  echo 0 >"$cg/memory.swap.max" 2>/dev/null || true
  peak_file=$cg/memory.peak
  events=$cg/memory.events
else # v1
  cg=/sys/fs/cgroup/memory/embtune-probe-$$
  mkdir "$cg"
  echo "$bytes" >"$cg/memory.limit_in_bytes"
  peak_file=$cg/memory.max_usage_in_bytes
  events=$cg/memory.failcnt
fi
cleanup() { rmdir "$cg" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

set +e
bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" \
  /usr/bin/time -f '%M %e' -o "$tmp/time" \
  "${EMBTUNE:-bin/embtune}" train --model "${MODEL:-third_party/models/all-MiniLM-L6-v2}" --data "$tmp/pairs.jsonl" \
  --output "$tmp/out" --epochs 1 --batch-size "$n" --validation-split 0 --checkpoints=false \
  --no-duplicates false --threads "${THREADS:-1}" "$@" >"$tmp/log" 2>&1
rc=$?
set -e
peak=$(cat "$peak_file" 2>/dev/null || echo 0)
read -r rss wall < <(tail -1 "$tmp/time") 2>/dev/null || { rss=?; wall=?; }
if [ $rc -eq 0 ]; then verdict=fits; else verdict="killed (exit $rc)"; tail -3 "$tmp/log" >&2; fi
printf 'batch %s %s limit %s GiB: %s; cgroup peak %s KiB, peak RSS %s KiB, %s s\n' \
  "$n" "$*" "$limit" "$verdict" $((peak / 1024)) "$rss" "$wall"
