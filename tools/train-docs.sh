#!/usr/bin/env bash
# make train-docs: training pairs from documents, measured on human questions
# (docs/generate.md).
#   1. The Debian FAQ's ANSWERS only become the documents ({"id","text"}).
#   2. embtune data generate asks an LLM for questions on their chunks and
#      filters them (round trip, near duplicates). Without LLM_URL,
#      llama.cpp's server of make deps-llm is started on loopback with one
#      thread and stopped afterwards. The run is resumable: run it again and
#      it continues where it stopped.
#   3. Generated questions that are real FAQ questions word for word are
#      left out (train refuses held-out questions in its training data).
#   4. embtune train --folds 5 --seed 42 tests each fold on the FAQ's real
#      questions of that fold against every real answer, training on the
#      generated pairs (TRAIN_SCOPE=all: of every answer; fold: not of the
#      fold's held-out answers); the exported model (OUT/generated) trains on
#      all generated pairs.
#   5. The same folds trained on the real pairs with the same TRAIN_FLAGS
#      (OUT/real; or REAL_REPORT names an existing report, such as make
#      train's out/default/eval.json), and embtune compare sets
#      tuned-on-generated against tuned-on-real, question by question.
# GEN_FLAGS go to data generate (e.g. --max-chunks N), TRAIN_FLAGS to both
# trainings (e.g. --epochs 2 --refit=false).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
embtune=${EMBTUNE:-bin/embtune}
data=${DATA:-third_party/data/debian-faq.jsonl}
out=${OUT:-out/docs}
model=${MODEL:-third_party/models/all-MiniLM-L6-v2}
folds=${FOLDS:-5}
seed=${SEED:-42}
questions=${QUESTIONS:-3}
scope=${TRAIN_SCOPE:-all}
llm_model=${LLM_MODEL:-qwen2.5-coder-0.5b-instruct}
real_report=${REAL_REPORT:-}
llm_python=${EMBTUNE_LLM_PYTHON:-third_party/llm-venv/bin/python}
gguf=${EMBTUNE_LLM_GGUF:-third_party/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}

log() { echo "train-docs: $*" >&2; }

mkdir -p "$out"
"${PYTHON:-python3}" -c 'import json, sys
for line in sys.stdin:
    if line.strip():
        r = json.loads(line)
        print(json.dumps({"id": r["id"], "text": r["answer"]}, ensure_ascii=False))' <"$data" >"$out/answers.jsonl.tmp"
mv "$out/answers.jsonl.tmp" "$out/answers.jsonl"
log "$(wc -l <"$out/answers.jsonl") answers -> $out/answers.jsonl"

server=
stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  fi
}
trap stop_server EXIT

url=${LLM_URL:-}
if [ -z "$url" ]; then
  for f in "$llm_python" "$gguf"; do
    [ -e "$f" ] || { log "$f is missing: run make deps-llm, or give LLM_URL"; exit 1; }
  done
  port=${LLM_PORT:-$("$llm_python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  "$llm_python" -m llama_cpp.server --model "$gguf" --model_alias "$llm_model" \
    --host 127.0.0.1 --port "$port" --n_threads "${LLM_THREADS:-1}" --n_ctx 4096 >"$out/llm-server.log" 2>&1 &
  server=$!
  url=http://127.0.0.1:$port/v1
  for _ in $(seq 1 300); do
    curl -sf "$url/models" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { log "the LLM server stopped: see $out/llm-server.log"; exit 1; }
    sleep 1
  done
  curl -sf "$url/models" >/dev/null || { log "the LLM server did not answer in 300 s: see $out/llm-server.log"; exit 1; }
  log "llama.cpp server on $url (log $out/llm-server.log)"
fi

"$embtune" data generate --docs "$out/answers.jsonl" --output "$out/generated.jsonl" --model "$model" \
  --llm-url "$url" --llm-model "$llm_model" --questions-per-chunk "$questions" --concurrency 1 ${GEN_FLAGS:-} \
  | tee "$out/generate.txt"
stop_server

# A generated question that is, word for word (up to case and punctuation), a
# real FAQ question would be a held-out question in the training data, which
# train refuses: such pairs are left out.
"${PYTHON:-python3}" -c 'import json, re, sys
key = lambda s: " ".join(re.findall(r"[^\W_]+", s.lower()))
real = {key(json.loads(l)["question"]) for l in open(sys.argv[1], encoding="utf-8") if l.strip()}
for line in sys.stdin:
    if line.strip() and key(json.loads(line)["anchor"]) not in real:
        sys.stdout.write(line)' "$data" <"$out/generated.jsonl" >"$out/generated-train.jsonl"
log "$(($(wc -l <"$out/generated.jsonl") - $(wc -l <"$out/generated-train.jsonl"))) generated questions are FAQ questions word for word: left out -> $out/generated-train.jsonl"

"$embtune" train --model "$model" --data "$data" --train-data "$out/generated-train.jsonl" --train-data-scope "$scope" \
  --folds "$folds" --seed "$seed" --output "$out/generated" ${TRAIN_FLAGS:-} | tee "$out/train.txt"

if [ -z "$real_report" ]; then
  "$embtune" train --model "$model" --data "$data" --folds "$folds" --seed "$seed" --output "$out/real" ${TRAIN_FLAGS:-} \
    | tee "$out/train-real.txt"
  real_report=$out/real/eval.json
fi
"$embtune" compare "$out/generated/eval.json" "$real_report" | tee "$out/compare.txt"
