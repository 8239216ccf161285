#!/usr/bin/env bash
# Builds the folder a GPU machine needs for tools/gpu-check.sh (make gpu-stage):
#
#   embtune, bin/embtune   the CUDA binary (bin/embtune-cuda, stripped) and its
#                          wrapper (tools/gpu/embtune.sh), which points it at
#                          the machine's python3 torch/lib
#   model/                 all-MiniLM-L6-v2's tokenizer and configs with
#                          dropout 0; weights are rebuilt there (make_weights.py)
#   model-dropout/         the same with the model's own dropout, for speed
#   data/                  golden texts (testdata/golden), the first-step batch
#                          (testdata/golden/loss.json), Debian FAQ pairs, the
#                          weights' sha256
#   ref/                   CPU reference loss curves, made here with bin/embtune
#   encoders/              the encoder families' golden folders (testdata/golden/
#                          encoders, dropout 0), for check 8
#   gpu-check.sh, gpu/     the check
#
# The folder must stay under 64 MiB (what travels to the GPU machine).
# Usage: tools/gpu/stage.sh DIR   (run from make gpu-stage)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=$root/${1:-gpu-stage}
py=${GOLDEN_PYTHON:-$root/third_party/golden-venv/bin/python}
model=${MODEL:-$root/third_party/models/all-MiniLM-L6-v2}
faq=$root/third_party/data/debian-faq.jsonl
for f in "$root/bin/embtune-cuda" "$root/bin/embtune" "$faq" "$model/tokenizer.json"; do
  [ -e "$f" ] || { echo "stage: $f is missing (make cuda-build build faq)" >&2; exit 1; }
done
"$py" -c 'import numpy' 2>/dev/null || { echo "stage: $py has no numpy (tools/golden/run.sh makes the golden venv)" >&2; exit 1; }

tmp=$(mktemp -d "$root/.gpu-stage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/model" "$tmp/data" "$tmp/ref" "$tmp/gpu"
strip -o "$tmp/bin/embtune" "$root/bin/embtune-cuda"
cp "$root/tools/gpu/embtune.sh" "$tmp/embtune"
cp "$root/tools/gpu-check.sh" "$tmp/gpu-check.sh"
cp "$root/tools/gpu/check.py" "$root/tools/gpu/make_weights.py" "$tmp/gpu/"
for f in config.json config_sentence_transformers.json modules.json sentence_bert_config.json \
  special_tokens_map.json tokenizer.json tokenizer_config.json vocab.txt; do
  [ -e "$model/$f" ] && cp "$model/$f" "$tmp/model/"
done
for d in "$model"/[0-9]_*/; do
  [ -d "$d" ] && cp -r "$d" "$tmp/model/"
done
cp -r "$tmp/model" "$tmp/model-dropout"
"$py" - "$root" "$tmp" "$faq" <<'PY'
import json, shutil, sys
from pathlib import Path
root, tmp, faq = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
cfg = json.loads((tmp / "model" / "config.json").read_text())
cfg["hidden_dropout_prob"] = 0.0
cfg["attention_probs_dropout_prob"] = 0.0
(tmp / "model" / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
texts = [json.loads(l)["text"] for l in (root / "testdata/golden/tokens.jsonl").read_text(encoding="utf-8").split("\n") if l]
# One text a line for embtune encode; ST gets the same lines.
texts = [t.replace("\r", " ").replace("\n", " ") for t in texts]
(tmp / "data" / "golden.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
# The encoder families' golden folders (check 8), with dropout 0 so that
# the first training step is deterministic on both sides.
for src in sorted((root / "testdata/golden/encoders").iterdir()):
    if not src.is_dir():
        continue
    dst = tmp / "encoders" / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("golden.json"))
    c = json.loads((dst / "config.json").read_text())
    for k, v in list(c.items()):
        if "dropout" in k and isinstance(v, (int, float)):
            c[k] = 0.0
    (dst / "config.json").write_text(json.dumps(c, indent=2) + "\n")
batch = json.loads((root / "testdata/golden/loss.json").read_text(encoding="utf-8"))["batch"]
with open(tmp / "data" / "loss_batch.jsonl", "w", encoding="utf-8") as f:
    for a, p in zip(batch["anchors"], batch["positives"]):
        f.write(json.dumps({"anchor": a, "positive": p}, ensure_ascii=False) + "\n")
with open(tmp / "data" / "train.jsonl", "w", encoding="utf-8") as f:
    for l in faq.read_text(encoding="utf-8").split("\n"):
        if l.strip():
            p = json.loads(l)
            f.write(json.dumps({"anchor": p["question"], "positive": p["answer"]}, ensure_ascii=False) + "\n")
PY
# The weights' hash, from a scratch copy: weights never enter the stage.
scratch=$tmp/.w
mkdir -p "$scratch"
cp "$tmp/model/config.json" "$scratch/"
"$py" "$root/tools/gpu/make_weights.py" "$scratch" > "$tmp/data/weights.sha256"
rm -rf "$scratch"

# CPU reference curves: reused while the weights, data, check 4's settings
# and the trainer's sources are unchanged (they cost minutes on 2 cores).
key=$({ cat "$tmp/data/weights.sha256" "$tmp/data/train.jsonl" "$tmp/model/config.json"
  "$py" "$tmp/gpu/check.py" --print-curve --stage . --embtune . --out .
  (cd "$root" && cat $(git ls-files trainer minilm torch cmd dataset 2>/dev/null)); } | sha256sum | cut -c1-16)
if [ -f "$dest/ref/key" ] && [ "$(cat "$dest/ref/key")" = "$key" ]; then
  cp "$dest"/ref/* "$tmp/ref/"
else
  echo "stage: making the CPU reference loss curves with bin/embtune (a few minutes)" >&2
  HF_HUB_OFFLINE=1 "$py" "$tmp/gpu/check.py" --reference --stage "$tmp" --embtune "$root/bin/embtune" \
    --out "$tmp/.refout" --device cpu
  rm -rf "$tmp/.refout"
  echo "$key" > "$tmp/ref/key"
fi

size=$(du -sb "$tmp" | cut -f1)
limit=$((64 * 1024 * 1024))
if [ "$size" -ge "$limit" ]; then
  echo "stage: $size bytes, over the 64 MiB that travels to the GPU machine" >&2
  exit 1
fi
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "stage: $dest, $((size / 1024 / 1024)) MiB ($size bytes); on the GPU machine run $(basename "$dest")/gpu-check.sh" >&2
