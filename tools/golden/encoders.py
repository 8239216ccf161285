"""Golden files for encoder families other than BERT.

For each family, a small seeded random-weight model built by transformers
from the family's real config (its non-size fields as the published
checkpoint sets them; sizes cut down to hidden 32, 2 layers), saved as a
sentence-transformers folder (mean pooling, last-token for decoders;
Normalize) by
SentenceTransformer.save and loaded back, then:
  - encode / encode_query / encode_document on the golden texts, with the
    input ids sentence-transformers fed the model;
  - the first-step MultipleNegativesRankingLoss and gradient norm (scale 20,
    dropout off) on 8 Bedrock pairs, as generate.py's loss does, with the
    folder's query and document prompts on anchors and positives.

The tokenizer is the all-MiniLM-L6-v2 WordPiece tokenizer with its
vocabulary cut down to the pieces the texts need, renumbered in the
family's special-token layout (XLM-R and MPNet: <s>=0, <pad>=1, </s>=2,
<unk>=3; ModernBERT: BERT's), so that the family's padding_idx is the
tokenizer's pad id.

Written under testdata/golden/encoders/<family>/: the whole folder plus
golden.json. Usage:
  encoders.py TOKENIZER_SOURCE_DIR [FAMILY...]  write the goldens (of FAMILY only)
  encoders.py real MODEL_DIR NAME            a real folder's input ids and encode vectors
                                             for the golden texts, to NAME.json
  encoders.py left FAMILY...                 copy the stored FAMILY folder to FAMILY-left
                                             with padding_side "left", and its goldens
  encoders.py check-export DIR FAMILY        load DIR (embtune's export of that
                                             family, with model.pt) in ST and
                                             torch.jit.load; print the worst cosine
  encoders.py check-export-real DIR NAME      load DIR (embtune's export of the real folder
                                             behind NAME.json) in ST; print the worst cosine
  encoders.py export-golden EMBTUNE_BIN      `embtune export` every family's golden folder,
                                             load each export in ST and write what ST
                                             computed from it, with the export's files'
                                             digests, to testdata/golden/encoders-export/
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "testdata" / "golden" / "encoders"
MAX_SEQ = 32

sys.path.insert(0, str(Path(__file__).resolve().parent))
from families import TEXTS  # noqa: E402


def loss_batch():
    with open(SHARED / "bedrock-faq-training.json", encoding="utf-8") as f:
        pairs = json.load(f)
    return [p["sentence1"] for p in pairs[:8]], [p["sentence2"] for p in pairs[:8]]


def bert_e5_config(vocab_size):
    from transformers import BertConfig

    # intfloat/multilingual-e5-small's config.json (a BertModel with XLM-R's
    # vocabulary), sizes cut down. Its pad_token_id is 0, which in that
    # vocabulary is <s>, the first token of every text, not the tokenizer's
    # <pad> (1): BertEmbeddings' padding_idx holds that row's gradient at
    # zero, so training never moves it.
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=64,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        position_embedding_type="absolute",
    )


def xlm_roberta_config(vocab_size):
    from transformers import XLMRobertaConfig

    # xlm-roberta-base / multilingual-e5's config.json, sizes cut down. 66
    # positions: MAX_SEQ tokens after the padding_idx+1 offset, and more.
    return XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=MAX_SEQ + 34,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        position_embedding_type="absolute",
    )


def mpnet_config(vocab_size):
    from transformers import MPNetConfig

    # all-mpnet-base-v2's config.json, sizes cut down.
    return MPNetConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=MAX_SEQ + 34,
        layer_norm_eps=1e-5,
        relative_attention_num_buckets=32,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


def modernbert_config(vocab_size):
    from transformers import ModernBertConfig

    # answerdotai/ModernBERT-base's config.json, sizes cut down. Four layers
    # (global, sliding, sliding, global) and local_attention 8 (a window of
    # 4 each side), so that the sliding window cuts into the golden texts.
    return ModernBertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=48,
        hidden_activation="gelu",
        max_position_embeddings=64,
        norm_eps=1e-5,
        norm_bias=False,
        attention_bias=False,
        mlp_bias=False,
        global_rope_theta=160000.0,
        local_rope_theta=10000.0,
        local_attention=8,
        global_attn_every_n_layers=3,
        embedding_dropout=0.0,
        mlp_dropout=0.0,
        attention_dropout=0.0,
        pad_token_id=0,
        cls_token_id=2,
        sep_token_id=3,
        bos_token_id=2,
        eos_token_id=3,
    )


def qwen3_config(vocab_size):
    from transformers import Qwen3Config

    # Qwen3-Embedding-0.6B's config.json, sizes cut down; grouped-query
    # attention (4 query heads, 2 key/value heads) with head_dim 16, not
    # hidden_size / heads.
    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        hidden_act="silu",
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        attention_bias=False,
        attention_dropout=0.0,
        use_sliding_window=False,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )


def gemma3_config(vocab_size, bidirectional=True):
    from transformers import Gemma3TextConfig

    # EmbeddingGemma-300m's config.json (bidirectional attention, tanh GELU,
    # sliding and full layers with their own rotary bases), sizes cut down:
    # 3 layers, 4 query and 2 key/value heads of size 16,
    # query_pre_attn_scalar 20, sliding_window 8 so that the window cuts
    # into the golden texts.
    return Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        hidden_activation="gelu_pytorch_tanh",
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        query_pre_attn_scalar=20,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
        use_bidirectional_attention=bidirectional,
        attn_logit_softcapping=None,
        final_logit_softcapping=None,
        attention_bias=False,
        attention_dropout=0.0,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )


# family -> (special tokens in id order, config builder)
FAMILIES = {
    # BERT with the first token at pad_token_id, as multilingual-e5-small.
    "bert-e5": (["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"], bert_e5_config),
    "xlm-roberta": (["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"], xlm_roberta_config),
    "mpnet": (["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"], mpnet_config),
    "modernbert": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], modernbert_config),
    "qwen3": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], qwen3_config),
    "gemma3_text": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], gemma3_config),
    # Gemma 3 as a causal decoder (use_bidirectional_attention off).
    "gemma3_text-causal": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                           lambda v: gemma3_config(v, bidirectional=False)),
}

# The pooling each family's folders use (mean otherwise).
POOLING = {"qwen3": "lasttoken"}


def build_tokenizer(src_dir, specials, texts, out):
    tok = AutoTokenizer.from_pretrained(src_dir)
    pieces = []
    for t in texts:
        for p in tok.tokenize(t.lower()):
            if p not in pieces and p not in specials:
                pieces.append(p)
    vocab = specials + sorted(pieces)
    ids = {p: i for i, p in enumerate(vocab)}
    tj = json.loads((Path(src_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    tj["model"]["vocab"] = ids
    tj["added_tokens"] = [dict(a, id=ids[a["content"]]) for a in tj["added_tokens"] if a["content"] in ids]
    for st in tj["post_processor"]["special_tokens"].values():
        st["ids"] = [ids[t] for t in st["tokens"]]
    tj["truncation"] = None
    tj["padding"] = None
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    tc = json.loads((Path(src_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))
    tc["model_max_length"] = MAX_SEQ
    tc.pop("name_or_path", None)
    (out / "tokenizer_config.json").write_text(json.dumps(tc), encoding="utf-8")
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    shutil.copy(Path(src_dir) / "special_tokens_map.json", out / "special_tokens_map.json")
    check = AutoTokenizer.from_pretrained(str(out))
    for t in texts:
        assert check.tokenize(t) == tok.tokenize(t), t
    return vocab


def build(name, src_dir, work):
    from transformers import AutoModel

    specials, config_of = FAMILIES[name]
    anchors, positives = loss_batch()
    hf_dir = work / (name + "-hf")
    hf_dir.mkdir()
    vocab = build_tokenizer(src_dir, specials, TEXTS + anchors + positives, hf_dir)
    torch.manual_seed(25)
    model = AutoModel.from_config(config_of(len(vocab)))
    with torch.no_grad():
        # Wider than the 0.02 init so that tokens and positions differ
        # visibly after the layer norms.
        for pname, p in model.named_parameters():
            if "LayerNorm.weight" in pname or "norm.weight" in pname:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    model.save_pretrained(hf_dir)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        assert (hf_dir / f).exists()
    modules = [Transformer(str(hf_dir), max_seq_length=MAX_SEQ)]
    modules.append(Pooling(32, pooling_mode=POOLING.get(name, "mean")))
    modules.append(Normalize())
    st = SentenceTransformer(modules=modules, prompts={"query": "query: ", "document": "passage: "}, device="cpu")
    folder = work / name
    st.save(str(folder))
    return folder, anchors, positives


def floats(a):
    return [[float(x) for x in row] for row in a]


def first_step(folder, anchors, positives):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(folder), device="cpu")
    model.eval()
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0)
    # Anchors with the query prompt and positives with the document prompt,
    # as the training argument prompts={"anchor": ..., "positive": ...}
    # gives them (and as embtune's trainer does with a folder's prompts).
    q, d = model.prompts["query"], model.prompts["document"]
    features = [model.tokenize([q + a for a in anchors]), model.tokenize([d + p for p in positives])]
    loss = loss_fn(features, None)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
    return loss.item(), norm


def golden_of(name, folder, anchors, positives):
    import sentence_transformers
    import transformers

    model = SentenceTransformer(str(folder), device="cpu")
    model.eval()
    features = model.tokenize(TEXTS)
    ids = [[int(x) for x, m in zip(row, mask) if m]
           for row, mask in zip(features["input_ids"].tolist(), features["attention_mask"].tolist())]
    loss, norm = first_step(folder, anchors, positives)
    golden = {
        "family": name,
        "model_type": model[0].auto_model.config.model_type,
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "dim": model.get_sentence_embedding_dimension(),
        "texts": TEXTS,
        "input_ids": ids,
        "encode": floats(model.encode(TEXTS, convert_to_numpy=True)),
        "encode_query": floats(model.encode_query(TEXTS, convert_to_numpy=True)),
        "encode_document": floats(model.encode_document(TEXTS, convert_to_numpy=True)),
        "loss": {"anchors": anchors, "positives": positives, "scale": 20.0, "loss": loss, "grad_norm": norm},
    }
    return golden, loss, norm


def write_left(names):
    """F-left: the stored folder F with padding_side "left" in
    tokenizer_config.json (as Qwen3-Embedding's tokenizer has it), its
    goldens computed by sentence-transformers on left-padded batches."""
    anchors, positives = loss_batch()
    for name in names:
        dst = OUT / (name + "-left")
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(OUT / name, dst, ignore=shutil.ignore_patterns("golden.json"))
        tc_path = dst / "tokenizer_config.json"
        tc = json.loads(tc_path.read_text(encoding="utf-8"))
        tc["padding_side"] = "left"
        tc_path.write_text(json.dumps(tc), encoding="utf-8")
        model = SentenceTransformer(str(dst), device="cpu")
        mask = model.tokenize(TEXTS)["attention_mask"]
        assert model.tokenizer.padding_side == "left" and bool((mask[:, 0] == 0).any()), "not left-padded"
        golden, loss, norm = golden_of(name + "-left", dst, anchors, positives)
        (dst / "golden.json").write_text(json.dumps(golden) + "\n")
        print(name + "-left", "loss", loss, "grad norm", norm, file=sys.stderr)


def main():
    src = sys.argv[1]
    names = sys.argv[2:] or list(FAMILIES)

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in names:
            folder, anchors, positives = build(name, src, work)
            golden, loss, norm = golden_of(name, folder, anchors, positives)
            dst = OUT / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(folder, dst, ignore=shutil.ignore_patterns("README.md"))
            (dst / "golden.json").write_text(json.dumps(golden) + "\n")
            print(name, "loss", loss, "grad norm", norm, file=sys.stderr)


def write_real(model_dir, name):
    import sentence_transformers
    import transformers

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    feats = model.tokenize(TEXTS)
    ids = [[int(x) for x, m in zip(row, mask) if m]
           for row, mask in zip(feats["input_ids"].tolist(), feats["attention_mask"].tolist())]
    golden = {
        "model": name,
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "dim": model.get_embedding_dimension(),
        "texts": TEXTS,
        "input_ids": ids,
        "encode": floats(model.encode(TEXTS, convert_to_numpy=True)),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / (name + ".json")).write_text(json.dumps(golden) + "\n")


def check_export(root, name):
    g = json.loads((OUT / name / "golden.json").read_text())
    model = SentenceTransformer(str(root), device="cpu")
    cos = torch.nn.functional.cosine_similarity
    worst = {}
    for key, fn in (("encode", model.encode), ("encode_query", model.encode_query),
                    ("encode_document", model.encode_document)):
        e = fn(g["texts"], convert_to_tensor=True)
        worst[key] = cos(e, torch.tensor(g[key])).min().item()
    ts = torch.jit.load(str(Path(root) / "model.pt"))
    feats = model.tokenize([model.prompts.get("query", "") + t for t in g["texts"]])
    out = ts(feats["input_ids"], feats["attention_mask"])
    worst["model.pt"] = cos(out, torch.tensor(g["encode_query"])).min().item()
    print(name, json.dumps({k: float(f"{x:.8f}") for k, x in worst.items()}))


def tensors_digest(path):
    """sha256 over the tensors of a safetensors file, in name order: name,
    dtype, shape and raw bytes, each followed by a NUL (the header's
    formatting and the data order do not enter)."""
    import hashlib
    import struct

    raw = Path(path).read_bytes()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    h = hashlib.sha256()
    for name in sorted(k for k in header if k != "__metadata__"):
        e = header[name]
        lo, hi = e["data_offsets"]
        for part in (name.encode(), e["dtype"].encode(), ",".join(str(d) for d in e["shape"]).encode(), data[lo:hi]):
            h.update(part)
            h.update(b"\0")
    return h.hexdigest()


def export_golden(embtune):
    """For every family folder: embtune's export of it, loaded by
    sentence-transformers. The Go test exports again and checks that the
    files sentence-transformers reads are these (the tensors by digest),
    so that these vectors are the ones its export gives."""
    import hashlib
    import subprocess

    import sentence_transformers
    import transformers

    out = OUT.parent / "encoders-export"
    out.mkdir(parents=True, exist_ok=True)
    cos = torch.nn.functional.cosine_similarity
    for src in sorted(p for p in OUT.iterdir() if p.is_dir()):
        name = src.name
        g = json.loads((src / "golden.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "export"
            subprocess.run([embtune, "export", "--model", str(src), "--folder", str(folder), "--device", "cpu",
                            "--threads", "1"], check=True, capture_output=True)
            files = {}
            for f in sorted(folder.rglob("*")):
                rel = f.relative_to(folder).as_posix()
                if f.is_file() and rel not in ("model.safetensors", "embtune-export.json", "README.md"):
                    files[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
            model = SentenceTransformer(str(folder), device="cpu")
            model.eval()
            vecs, worst = {}, {}
            for key, fn in (("encode", model.encode), ("encode_query", model.encode_query),
                            ("encode_document", model.encode_document)):
                e = fn(g["texts"], convert_to_tensor=True)
                vecs[key] = floats(e.numpy())
                worst[key] = cos(e, torch.tensor(g[key])).min().item()
            golden = {
                "family": name,
                "versions": {
                    "torch": torch.__version__,
                    "sentence_transformers": sentence_transformers.__version__,
                    "transformers": transformers.__version__,
                },
                "modules": [type(m).__name__ for m in model],
                "files": files,
                "tensors_sha256": tensors_digest(folder / "model.safetensors"),
                "worst_cosine_to_golden": worst,
                **vecs,
            }
        (out / (name + ".json")).write_text(json.dumps(golden) + "\n")
        print(name, json.dumps({k: float(f"{x:.8f}") for k, x in worst.items()}), file=sys.stderr)


def check_export_real(root, name):
    g = json.loads((OUT / (name + ".json")).read_text())
    model = SentenceTransformer(str(root), device="cpu")
    e = model.encode(g["texts"], convert_to_tensor=True)
    worst = torch.nn.functional.cosine_similarity(e, torch.tensor(g["encode"])).min().item()
    print(name, json.dumps({"encode": float(f"{worst:.8f}")}))


if __name__ == "__main__":
    if sys.argv[1] == "check-export-real":
        check_export_real(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "export-golden":
        export_golden(sys.argv[2])
    elif sys.argv[1] == "check-export":
        check_export(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "real":
        write_real(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "left":
        write_left(sys.argv[2:])
    else:
        main()
