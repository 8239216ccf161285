#!/bin/bash
# alternating Go bench: fp32, int8, int8-no-smooth; THREADS threads, ROUNDS rounds
cd "$(dirname "$0")/../.."
for r in $(seq 1 ${ROUNDS:-3}); do
  for q in none int8 int8-no-smooth; do
    s=$(bin/embtune bench --device cpu --quantize $q --threads ${THREADS:-1} --gemm=false --reps 1 --batch-size ${BS:-32} --texts ${TEXTS:?one golden text per line} 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["sentences_per_sec"],1))')
    echo "round $r $q $s sent/s load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
