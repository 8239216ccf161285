#!/usr/bin/env bash
# Encode speed of the encoder families at their published sizes, against
# sentence-transformers (and ONNX Runtime where the folder exports to it):
# tools/golden/run.sh bench, one family at a time (docs/families.md,
# "Encode speed").
#
#   tools/speed/families.sh [FAMILY...]
#
# FAMILY is one of modernbert-base, qwen3-embedding-0.6b,
# embeddinggemma-300m, xlm-roberta-e5-small (all four by default). The
# folders are random weights from the published configs
# (tools/memory/folders.py: the same parameter count, shapes and compute as
# the trained checkpoints, whose weights no registry here offers), built
# once under third_party/tmp/speed. Random weights time like trained ones;
# their vectors mean nothing. BENCH_TEXTS, BENCH_ROUNDS and BENCH_THREADS
# pass through (defaults here: 128 texts, 3 rounds, 2 threads); the runs
# hold /tmp/embtune-bench.lock, as the other benches do. Before each
# bench, tools/speed/parity.py prints the folder's cosine to
# sentence-transformers on 48 golden texts (PARITY=0 skips it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=third_party/golden-venv/bin/python
[ -x "$py" ] || tools/golden/run.sh >/dev/null 2>&1 || true # builds the golden venv (usage exits 2)
[ -x bin/embtune ] || make --no-print-directory build
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(modernbert-base qwen3-embedding-0.6b embeddinggemma-300m xlm-roberta-e5-small)
for f in "${families[@]}"; do
  case $f in
    xlm-roberta-e5-small) config=multilingual-e5-small ;; # an XLMRobertaConfig of e5-small's sizes
    modernbert-base|qwen3-embedding-0.6b|embeddinggemma-300m) config=$f ;;
    *) echo "families.sh: unknown family $f" >&2; exit 2 ;;
  esac
  dir=third_party/tmp/speed/$f
  [ -f "$dir/model.safetensors" ] || "$py" tools/memory/folders.py "$dir" "$config" >&2
  echo "== $f ($(grep -o '"model_type": "[^"]*"' "$dir/config.json"))"
  [ "${PARITY:-1}" = 0 ] || "$py" tools/speed/parity.py "$dir" "$root/bin/embtune" 2>/dev/null
  flock /tmp/embtune-bench.lock env MODEL="$root/$dir" BENCH_TEXTS="${BENCH_TEXTS:-128}" \
    BENCH_ROUNDS="${BENCH_ROUNDS:-3}" BENCH_LATENCY=0 ${BENCH_THREADS:+BENCH_THREADS=$BENCH_THREADS} \
    tools/golden/run.sh bench "$root/bin/embtune"
done
