#!/usr/bin/env bash
# Peak training memory per encoder family at batch 32 on the CPU, with and
# without --gradient-checkpointing (docs/families.md, "Training memory").
# Builds the folders (tools/memory/folders.py, golden venv) under
# third_party/tmp/mem and runs bin/trainmem on each: 2 optimizer steps of 32
# Debian FAQ pairs, max_seq_length 128. Prints one JSON line per run;
# tools/memory/table.py makes the table.
#
# The full-size models do not fit a shared machine, so each family runs
# with 2 and 4 layers, and the table extrapolates linearly in layers (the
# layers are identical). The large-vocabulary decoders run their 2- and
# 4-layer folders with a 30,522-row embedding table ("s" folders: the
# per-layer cost) and once with their real table at 2 layers without
# checkpointing (the table's cost, the same with checkpointing).
#
# MEASURE_ONLY="e5s e5 gemmas gemma" runs only the folders with those
# prefixes (all-MiniLM-L6-v2, mpnet, modernbert, qwen3s, gemmas, e5s, and
# the real-table qwen3, gemma, e5); THREADS=N passes --threads N.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=third_party/golden-venv/bin/python
mem=third_party/tmp/mem
mkdir -p "$mem"
head -64 testdata/data/debian-faq.jsonl > "$mem/pairs64.jsonl"
tools/gotest.sh build -o bin/trainmem ./tools/trainmem
only=${MEASURE_ONLY:-}
wanted() { # folder name
  [ -z "$only" ] && return 0
  local o
  for o in $only; do
    case $1 in "$o"-L*|"$o") return 0 ;; esac
  done
  return 1
}
folder() { # name builder-args...
  local name=$1; shift
  wanted "$name" || return 0
  [ -f "$mem/$name/model.safetensors" ] || "$py" tools/memory/folders.py "$@" >&2
}
runs=(all-MiniLM-L6-v2:third_party/models/all-MiniLM-L6-v2:false all-MiniLM-L6-v2:third_party/models/all-MiniLM-L6-v2:true)
for l in 2 4; do
  folder mpnet-L$l trim third_party/models/all-mpnet-base-v2 "$mem/mpnet-L$l" $l
  folder modernbert-L$l "$mem/modernbert-L$l" modernbert-base $l
  folder qwen3s-L$l "$mem/qwen3s-L$l" qwen3-embedding-0.6b $l 30522
  folder gemmas-L$l "$mem/gemmas-L$l" embeddinggemma-300m $l 30522
  folder e5s-L$l "$mem/e5s-L$l" multilingual-e5-small $l 30522
  for n in mpnet modernbert qwen3s gemmas e5s; do
    runs+=("$n-L$l:$mem/$n-L$l:false" "$n-L$l:$mem/$n-L$l:true")
  done
done
folder qwen3-L2 "$mem/qwen3-L2" qwen3-embedding-0.6b 2
folder gemma-L2 "$mem/gemma-L2" embeddinggemma-300m 2
folder e5-L2 "$mem/e5-L2" multilingual-e5-small 2
runs+=("qwen3-L2:$mem/qwen3-L2:false" "gemma-L2:$mem/gemma-L2:false" "e5-L2:$mem/e5-L2:false")
for r in "${runs[@]}"; do
  IFS=: read -r name dir ckpt <<< "$r"
  wanted "$name" || continue
  bin/trainmem --model "$dir" --data "$mem/pairs64.jsonl" --gradient-checkpointing="$ckpt" \
    ${THREADS:+--threads "$THREADS"} 2>/dev/null
done
