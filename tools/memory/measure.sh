#!/usr/bin/env bash
# Peak training memory per encoder family at batch 32 on the CPU, with and
# without --gradient-checkpointing (docs/families.md, "Training memory").
# Builds the folders (tools/memory/folders.py, golden venv) under
# third_party/tmp/mem and runs bin/trainmem on each: 2 optimizer steps of 32
# Debian FAQ pairs, max_seq_length 128. Families too large for a shared
# machine run with 2 and 4 layers; the table extrapolates linearly in layers.
# Prints one JSON line per run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=third_party/golden-venv/bin/python
mem=third_party/tmp/mem
mkdir -p "$mem"
head -64 testdata/data/debian-faq.jsonl > "$mem/pairs64.jsonl"
tools/gotest.sh build -o bin/trainmem ./tools/trainmem
folder() { # name builder-args...
  local name=$1; shift
  [ -f "$mem/$name/model.safetensors" ] || "$py" tools/memory/folders.py "$@" >&2
}
runs=(all-MiniLM-L6-v2:third_party/models/all-MiniLM-L6-v2)
for l in 2 4; do
  folder mpnet-L$l trim third_party/models/all-mpnet-base-v2 "$mem/mpnet-L$l" $l
  folder e5-L$l "$mem/e5-L$l" multilingual-e5-small $l
  folder modernbert-L$l "$mem/modernbert-L$l" modernbert-base $l
  folder qwen3-L$l "$mem/qwen3-L$l" qwen3-embedding-0.6b $l
  folder gemma-L$l "$mem/gemma-L$l" embeddinggemma-300m $l
  runs+=(mpnet-L$l:$mem/mpnet-L$l e5-L$l:$mem/e5-L$l modernbert-L$l:$mem/modernbert-L$l qwen3-L$l:$mem/qwen3-L$l gemma-L$l:$mem/gemma-L$l)
done
for r in "${runs[@]}"; do
  for c in false true; do
    bin/trainmem --model "${r#*:}" --data "$mem/pairs64.jsonl" --gradient-checkpointing=$c 2>/dev/null
  done
done
