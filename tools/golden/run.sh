#!/usr/bin/env bash
# Regenerates testdata/golden/ from the real peers (HF tokenizers,
# sentence-transformers, torch), installed from PyPI into
# third_party/golden-venv. Usage:
#   tools/golden/run.sh corpus                 token ids and embeddings
#   tools/golden/run.sh loss                   first-step MNRL loss and gradient norm
#   tools/golden/run.sh matryoshka             first-step MatryoshkaLoss(MNRL) loss and gradient norm
#   tools/golden/run.sh cached                 first-step CachedMultipleNegativesRankingLoss loss and gradient norm
#   tools/golden/run.sh truncate               SentenceTransformer(truncate_dim=N).encode
#   tools/golden/run.sh negatives              util.mine_hard_negatives on Debian FAQ pairs
#   tools/golden/run.sh search                 util.semantic_search on the Debian FAQ
#   tools/golden/run.sh adamw                  torch.optim.AdamW steps on fixed tensors
#   tools/golden/run.sh torchscript MODEL_PT   check embtune's TorchScript export
#   tools/golden/run.sh families               small random BERT folders, one per head variant
#   tools/golden/run.sh stats                  scipy.stats.wilcoxon p-values and the paired bootstrap (numpy)
#   tools/golden/run.sh tokenizers             token ids of every tokenizer kind (testdata/tokenizers)
#   tools/golden/run.sh tokenizers-left        their ids truncated on the left (testdata/tokenizers/left-truncation.jsonl.gz)
#   tools/golden/run.sh bench-tokenizers       tokenizing speed per kind, embtune vs HF tokenizers
#   tools/golden/run.sh tokenizer-models       model folders for the tokenizer kinds (e5 dequantized, BGE from ONNX)
#   tools/golden/run.sh tokenizer-parity BIN   their embeddings, embtune vs sentence-transformers
#   tools/golden/run.sh families-export DIR V… check embtune's exports DIR/V of those variants
#   tools/golden/run.sh encoders [FAMILY...]   small random folders of the encoder families (bert-e5: BERT with pad_token_id on <s>)
#   tools/golden/run.sh encoders-left          the folders of the non-BERT families with padding_side left
#   tools/golden/run.sh encoders-export DIR F  check embtune's export DIR (with model.pt) of family F
#   tools/golden/run.sh encoders-export-golden BIN  each family's export loaded by ST (testdata/golden/encoders-export)
#   tools/golden/run.sh encoders-export-real DIR NAME  check embtune's export DIR of the real folder behind NAME.json
#   tools/golden/run.sh encoders-real          all-mpnet-base-v2's ids and vectors (tools/fetch-mpnet.sh)
#   tools/golden/run.sh peer-folds OUT_DIR     ST fine-tuning on embtune's folds
#   tools/golden/run.sh peer-blog DATA_JSON    the AWS sample's fit() run
#   tools/golden/run.sh bench [EMBTUNE_BIN [BEFORE_BIN]]  encode throughput, ST vs embtune (vs an older build)
#   tools/golden/run.sh bench-train BIN DATA [EPOCHS]
#                                              training throughput, ST vs embtune
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/third_party/golden-venv"
req="$root/tools/golden/requirements.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements"
fi
model="${MODEL:-$root/third_party/models/all-MiniLM-L6-v2}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
case "${1:-}" in
  corpus|loss|matryoshka|cached|truncate|negatives|search) exec "$venv/bin/python" "$root/tools/golden/generate.py" "$1" "$model" ;;
  adamw) exec "$venv/bin/python" "$root/tools/golden/generate.py" adamw ;;
  tokenizers) exec "$venv/bin/python" "$root/tools/golden/tokenizer_kinds.py" "$root" ;;
  tokenizers-left) exec "$venv/bin/python" "$root/tools/golden/tokenizer_kinds.py" "$root" left ;;
  tokenizer-models) exec "$venv/bin/python" "$root/tools/golden/tokenizer_models.py" "$root" build ;;
  tokenizer-parity) exec "$venv/bin/python" "$root/tools/golden/tokenizer_models.py" "$root" check "$2" ;;
  bench-tokenizers) exec "$venv/bin/python" "$root/tools/golden/bench_tokenizers.py" "$root" ;;
  families) exec "$venv/bin/python" "$root/tools/golden/families.py" "$model" ;;
  stats) exec "$venv/bin/python" "$root/tools/golden/gen_stats.py" ;;
  encoders) exec "$venv/bin/python" "$root/tools/golden/encoders.py" "$model" "${@:2}" ;;
  encoders-left) exec "$venv/bin/python" "$root/tools/golden/encoders.py" left xlm-roberta mpnet modernbert qwen3 gemma3_text ;;
  encoders-real) exec "$venv/bin/python" "$root/tools/golden/encoders.py" real \
    "${MPNET:-$root/third_party/models/all-mpnet-base-v2}" all-mpnet-base-v2 ;;
  encoders-export-golden) exec "$venv/bin/python" "$root/tools/golden/encoders.py" export-golden "$2" ;;
  encoders-export-real) exec "$venv/bin/python" "$root/tools/golden/encoders.py" check-export-real "$2" "$3" ;;
  encoders-export) exec "$venv/bin/python" "$root/tools/golden/encoders.py" check-export "$2" "$3" ;;
  families-export) shift; exec "$venv/bin/python" "$root/tools/golden/families.py" check-export "$@" ;;
  peer-folds) exec "$venv/bin/python" "$root/tools/golden/peer_train.py" folds "$2" "$model" ;;
  peer-blog) exec "$venv/bin/python" "$root/tools/golden/peer_train.py" blog "$2" "$model" ${3:+"$3"} ;;
  bench) exec "$venv/bin/python" "$root/tools/golden/bench_peer.py" "$model" "${2:-$root/bin/embtune}" ${3:+"$3"} ;;
  bench-train) exec "$venv/bin/python" "$root/tools/golden/bench_train.py" "$model" "$2" "$3" ${4:+"$4"} ${5:+"$5"} ;;
  torchscript) exec "$venv/bin/python" "$root/tools/golden/generate.py" torchscript "$2" "$model" ;;
  *) echo "usage: $0 corpus | families | stats | tokenizers | encoders | loss | matryoshka | cached | truncate | negatives | search | adamw | torchscript MODEL_PT | peer-folds OUT | peer-blog DATA | bench | bench-train BIN DATA [EPOCHS]" >&2; exit 2 ;;
esac
