"""Golden embeddings for model families other than mean-pooled MiniLM.

Builds one small seeded random-weight BERT (hidden 32, 2 layers, 2 heads,
intermediate 64, 64 positions) with a vocabulary cut down to the word pieces
that the golden texts and prompts need, then one sentence-transformers folder
per head variant (pooling mode, Dense, Normalize, prompts), each saved by
SentenceTransformer.save and loaded back before encoding, so that what is
stored is what sentence-transformers reads from disk.

Written under testdata/golden/families/:
  base/          the shared transformer: config.json, model.safetensors, tokenizer files
  <variant>/     the variant's own files (modules.json, 1_Pooling/, 2_Dense/,
                 sentence_bert_config.json, config_sentence_transformers.json)
                 plus golden.json: the texts and sentence-transformers'
                 encode / encode_query / encode_document vectors.
A test assembles base + variant into one folder. Usage:
  families.py TOKENIZER_SOURCE_DIR          write the goldens
  families.py check-export DIR VARIANT...   load DIR/VARIANT (an `embtune export
                                            --folder DIR/VARIANT --torchscript
                                            DIR/VARIANT/model.pt` of that variant) with
                                            sentence-transformers and torch.jit.load, and
                                            print the largest |diff| to the goldens
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
from transformers import AutoTokenizer, BertConfig, BertModel

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "golden" / "families"
MAX_SEQ = 32

TEXTS = [
    "How do I install a package?",
    "What is Debian?",
    "",
    "   ",
    "The QUICK brown fox jumps over the lazy dog.",
    "Café naïve résumé",
    "apt-get install --no-install-recommends build-essential",
    "Can I run Debian on a 64-bit machine with 2 GB of RAM?",
    "Where is the source code of the kernel kept, and who maintains the archive mirrors?",
    "a",
    "Hello, world!",
    "Debian is a free operating system, developed and maintained by a community of volunteers "
    "who keep thousands of packages up to date, test them, and release stable versions every two years.",
    "Packages are installed with dpkg; apt resolves their dependencies.",
    "version 12.5 (bookworm)",
    "Why does my system not boot after an upgrade?",
    "Translations: Deutsch, Français, Español",
    "e-mail the security team at once",
    "  leading and trailing spaces  ",
    "What are the differences between stable, testing and unstable?",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty twenty-one twenty-two",
]

BGE_QUERY = "Represent this sentence for searching relevant passages: "

# name -> (pooling_mode, dense [(out, bias, activation)], normalize, prompts, default_prompt_name)
VARIANTS = {
    "mean": ("mean", [], False, None, None),
    "mean-normalize": ("mean", [], True, None, None),
    "cls-normalize-bge": ("cls", [], True, {"query": BGE_QUERY}, None),
    "max": ("max", [], False, None, None),
    "max-normalize": ("max", [], True, None, None),
    "mean-sqrt-len": ("mean_sqrt_len_tokens", [], False, None, None),
    "weightedmean-normalize": ("weightedmean", [], True, None, None),
    "lasttoken": ("lasttoken", [], False, None, None),
    "lasttoken-normalize": ("lasttoken", [], True, None, None),
    "cls-mean-max": (("cls", "mean", "max"), [], True, None, None),
    "dense-tanh-normalize": ("mean", [(16, True, torch.nn.Tanh())], True, None, None),
    "cls-dense-identity-nobias": ("cls", [(24, False, torch.nn.Identity())], False, None, None),
    "dense-relu-dense-tanh": ("mean", [(48, True, torch.nn.ReLU()), (20, True, torch.nn.Tanh())], True, None, None),
    "e5-prompts": ("mean", [], True, {"query": "query: ", "passage": "passage: "}, None),
    "prompts-default": (
        "mean",
        [],
        True,
        {"query": "query: ", "document": "document: ", "classification": "classify this:"},
        "classification",
    ),
}

# Variants whose 1_Pooling/config.json is rewritten in the legacy
# pooling_mode_* boolean form (how most folders on the Hub spell it) before
# sentence-transformers loads them back.
LEGACY_POOLING = {"cls-normalize-bge", "cls-mean-max", "weightedmean-normalize", "lasttoken"}
LEGACY_KEYS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


def reduced_vocab(src_dir, texts):
    """The word pieces the texts need under the source tokenizer, plus specials."""
    tok = AutoTokenizer.from_pretrained(src_dir)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = []
    for t in texts:
        for p in tok.tokenize(t.lower()):
            if p not in pieces and p not in specials:
                pieces.append(p)
    return specials + sorted(pieces)


def build_base(src_dir, work):
    prompts = [BGE_QUERY]
    for v in VARIANTS.values():
        if v[3]:
            prompts += list(v[3].values())
    vocab = reduced_vocab(src_dir, TEXTS + prompts)
    base = work / "base"
    base.mkdir()
    # The source tokenizer.json with its vocabulary cut down: same
    # normalizer, pre-tokenizer and post-processor, ids renumbered.
    ids = {p: i for i, p in enumerate(vocab)}
    tj = json.loads((Path(src_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    tj["model"]["vocab"] = ids
    tj["added_tokens"] = [dict(a, id=ids[a["content"]]) for a in tj["added_tokens"] if a["content"] in ids]
    for st in tj["post_processor"]["special_tokens"].values():
        st["ids"] = [ids[t] for t in st["tokens"]]
    tj["truncation"] = None
    tj["padding"] = None
    (base / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    tc = json.loads((Path(src_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))
    tc["model_max_length"] = MAX_SEQ
    tc.pop("name_or_path", None)
    (base / "tokenizer_config.json").write_text(json.dumps(tc), encoding="utf-8")
    (base / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    shutil.copy(Path(src_dir) / "special_tokens_map.json", base / "special_tokens_map.json")
    check = AutoTokenizer.from_pretrained(str(base))
    full = AutoTokenizer.from_pretrained(src_dir)
    for t in TEXTS + prompts:
        assert check.tokenize(t) == full.tokenize(t), t
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
    )
    torch.manual_seed(14)
    model = BertModel(cfg, add_pooling_layer=False)
    with torch.no_grad():
        # Wider than BERT's 0.02 init so that tokens differ visibly after the
        # layer norms, and the pooling modes give different vectors.
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    model.save_pretrained(base)
    return base, vocab


def variant_model(base, spec):
    mode, dense, normalize, prompts, default = spec
    torch.manual_seed(7)
    modules = [Transformer(str(base), max_seq_length=MAX_SEQ)]
    pooling = Pooling(32, pooling_mode=mode)
    modules.append(pooling)
    dim = pooling.get_embedding_dimension()
    for out, bias, act in dense:
        d = Dense(dim, out, bias=bias, activation_function=act)
        with torch.no_grad():
            d.linear.weight.normal_(0, 0.4)
            if bias:
                d.linear.bias.normal_(0, 0.4)
        modules.append(d)
        dim = out
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, prompts=prompts, default_prompt_name=default, device="cpu")


def to_legacy(pooling_config):
    cfg = json.loads(pooling_config.read_text())
    modes = cfg.pop("pooling_mode")
    modes = [modes] if isinstance(modes, str) else modes
    legacy = {"word_embedding_dimension": cfg.pop("embedding_dimension")}
    for mode, key in LEGACY_KEYS.items():
        legacy[key] = mode in modes
    legacy.update(cfg)
    pooling_config.write_text(json.dumps(legacy, indent=2) + "\n")


def floats(a):
    return [[float(x) for x in row] for row in a]


def main():
    src = sys.argv[1]
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, vocab = build_base(src, work)
        shutil.copytree(base, OUT / "base")
        for name, spec in VARIANTS.items():
            full = work / name
            variant_model(base, spec).save(str(full))
            if name in LEGACY_POOLING:
                to_legacy(full / "1_Pooling" / "config.json")
            model = SentenceTransformer(str(full), device="cpu")
            model.eval()
            golden = {
                "variant": name,
                "max_seq_length": model.max_seq_length,
                "dim": model.get_sentence_embedding_dimension(),
                "prompts": model.prompts,
                "default_prompt_name": model.default_prompt_name,
                "texts": TEXTS,
                "encode": floats(model.encode(TEXTS, convert_to_numpy=True)),
                "encode_query": floats(model.encode_query(TEXTS, convert_to_numpy=True)),
                "encode_document": floats(model.encode_document(TEXTS, convert_to_numpy=True)),
            }
            dst = OUT / name
            for root, _, files in os.walk(full):
                for f in files:
                    rel = Path(root).relative_to(full) / f
                    if (base / rel).exists() or str(rel) == "README.md":
                        continue  # shared with base/, or a model card
                    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(Path(root) / f, dst / rel)
            (dst / "golden.json").write_text(json.dumps(golden) + "\n")
            print(name, golden["dim"], file=sys.stderr)
    import sentence_transformers
    import transformers

    meta = {
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
        "vocab_size": len(vocab),
        "variants": sorted(VARIANTS),
        "legacy_pooling_config": sorted(LEGACY_POOLING),
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def check_export(root, variants):
    for v in variants:
        g = json.loads((OUT / v / "golden.json").read_text())
        model = SentenceTransformer(str(Path(root) / v), device="cpu")
        worst = {}
        for key, fn in (("encode", model.encode), ("encode_query", model.encode_query),
                        ("encode_document", model.encode_document)):
            e = fn(g["texts"], convert_to_tensor=True)
            worst[key] = (e - torch.tensor(g[key])).abs().max().item()
        ts = torch.jit.load(str(Path(root) / v / "model.pt"))
        feats = model.tokenize([model.prompts.get("query", "") + t for t in g["texts"]])
        out = ts(feats["input_ids"], feats["attention_mask"])
        worst["model.pt"] = (out - torch.tensor(g["encode_query"])).abs().max().item()
        print(v, json.dumps({k: float(f"{x:.2g}") for k, x in worst.items()}))


if __name__ == "__main__":
    if sys.argv[1] == "check-export":
        check_export(sys.argv[2], sys.argv[3:])
    else:
        main()
