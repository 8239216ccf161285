#!/bin/bash
# alternating Go bench at 2 threads: default OpenMP waiting vs OMP_WAIT_POLICY=PASSIVE, fp32 and int8
cd "$(dirname "$0")/../.."
for r in $(seq 1 ${ROUNDS:-2}); do
  for pol in default PASSIVE; do
  for q in none int8; do
    if [ $pol = default ]; then envs=""; else envs="OMP_WAIT_POLICY=PASSIVE"; fi
    s=$(env $envs bin/embtune bench --device cpu --quantize $q --threads 2 --gemm=false --reps 1 --texts ${TEXTS:?one golden text per line} 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["sentences_per_sec"],1))')
    echo "round $r wait=$pol $q $s sent/s load $(cut -d' ' -f1 /proc/loadavg)"
  done
  done
done
