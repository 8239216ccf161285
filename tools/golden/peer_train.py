"""Fine-tunes with sentence-transformers itself, for comparison with embtune.

Run through tools/golden/run.sh (the golden venv). Not used by tests.

  peer_train.py folds OUT_DIR MODEL_DIR
      For every OUT_DIR/folds/fold-N/{train,test}.jsonl written by
      `embtune train --folds K`, fine-tune the base model with the same
      hyperparameters (read from OUT_DIR/eval.json) and evaluate base and
      tuned with InformationRetrievalEvaluator on the same task embtune
      uses (queries: held-out anchors; corpus: every distinct positive),
      with the folder's query prompt on anchors and document prompt on
      positives in training, as embtune does.
      Prints means and pairs/s, and writes OUT_DIR/peer.json. When the
      hyperparameters have matryoshka_dims, the loss is MatryoshkaLoss
      around MNRL and each dim is also evaluated with the evaluator's
      truncate_dim (the "matryoshka" entries of peer.json).
      When a fold has validation.jsonl (embtune's --validation-split: pairs
      of train.jsonl held out), ST trains on train.jsonl less those pairs
      and evaluates them at every epoch end with the same task embtune uses
      (queries: validation anchors; corpus: every distinct positive of
      train.jsonl), eval_strategy="epoch", save_strategy="epoch" and
      load_best_model_at_end=True on the evaluator's ndcg@10. ST does not
      score the base model as a candidate; its validation score is reported
      beside the best epoch's.
      PEER_FOLDS=1,3 trains those folds only (the corpus is still every
      fold's test pairs), for models too slow to run all of them.
  peer_train.py blog DATA_JSON MODEL_DIR [EPOCHS]
      The AWS sample: fit() with its defaults, batch 8, 100 epochs, on the
      sentence1/sentence2 pairs; prints the seed pair's cosine before/after.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

SEED_QUERY = "What are Agents, and how can they be used?"


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ir_task(all_pairs, test_pairs):
    corpus, index = [], {}
    for p in all_pairs:
        if p["positive"] not in index:
            index[p["positive"]] = len(corpus)
            corpus.append(p["positive"])
    queries, relevant = [], []
    for p in test_pairs:
        queries.append(p["anchor"])
        relevant.append({index[p["positive"]]})
    return queries, corpus, relevant


def ir_evaluator(queries, corpus, relevant, name, truncate_dim=None):
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    return InformationRetrievalEvaluator(
        {f"q{i:04d}": q for i, q in enumerate(queries)},
        {f"d{i:04d}": d for i, d in enumerate(corpus)},
        {f"q{i:04d}": {f"d{j:04d}" for j in rel} for i, rel in enumerate(relevant)},
        name=name,
        show_progress_bar=False,
        truncate_dim=truncate_dim,
    )


def train_prompts(model, columns):
    """The training arguments' prompts: the folder's query prompt on the
    anchors and its document prompt ("document", else "passage", else
    "corpus", as encode_document picks it) on every other column, as
    embtune trains; None for a folder without prompts."""
    query = model.prompts.get("query") or ""
    doc = next((model.prompts[k] for k in ("document", "passage", "corpus") if model.prompts.get(k)), "")
    prompts = {c: query if c == "anchor" else doc for c in columns}
    return {c: p for c, p in prompts.items() if p} or None


def evaluate(model, queries, corpus, relevant, truncate_dim=None):
    res = ir_evaluator(queries, corpus, relevant, "eval", truncate_dim)(model)
    return {
        "ndcg@10": res["eval_cosine_ndcg@10"],
        "mrr@10": res["eval_cosine_mrr@10"],
        "accuracy@1": res["eval_cosine_accuracy@1"],
        "map@100": res["eval_cosine_map@100"],
    }


def folds(out_dir, model_dir):
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    out_dir = Path(out_dir)
    hp = json.load(open(out_dir / "eval.json"))["hyperparameters"]
    # MatryoshkaLoss sorts the dims in descending order, as embtune reports them.
    mdims = [int(x) for x in (hp.get("matryoshka_dims") or "").split(",") if x.strip()]
    mweights = [float(x) for x in (hp.get("matryoshka_weights") or "").split(",") if x.strip()] or None
    if mweights:
        mdims, mweights = map(list, zip(*sorted(zip(mdims, mweights), key=lambda x: x[0], reverse=True)))
    else:
        mdims = sorted(mdims, reverse=True)
    fold_dirs = sorted((out_dir / "folds").glob("fold-*"), key=lambda p: int(p.name.split("-")[1]))
    all_pairs = []
    for d in fold_dirs:
        all_pairs += read_jsonl(d / "test.jsonl")
    # The corpus order (here: fold order) matters only for exact score ties.
    only = {int(x) for x in os.environ.get("PEER_FOLDS", "").split(",") if x.strip()}
    results = []
    for d in fold_dirs:
        if only and int(d.name.split("-")[1]) not in only:
            continue
        train, test = read_jsonl(d / "train.jsonl"), read_jsonl(d / "test.jsonl")
        pool, validation = train, None
        if (d / "validation.jsonl").exists():
            validation = read_jsonl(d / "validation.jsonl")
            held = {}
            for p in validation:
                held[(p["anchor"], p["positive"])] = held.get((p["anchor"], p["positive"]), 0) + 1
            train = []
            for p in pool:
                k = (p["anchor"], p["positive"])
                if held.get(k, 0) > 0:
                    held[k] -= 1
                else:
                    train.append(p)
            if any(held.values()):
                raise SystemExit(f"{d}: validation.jsonl has pairs that train.jsonl lacks")
        queries, corpus, relevant = ir_task(all_pairs, test)
        model = SentenceTransformer(model_dir, device="cpu")
        model.max_seq_length = hp["max_seq_length"]
        base = evaluate(model, queries, corpus, relevant)
        base_dims = {d: evaluate(model, queries, corpus, relevant, d) for d in mdims}
        evaluator, val_args, val_base = None, {}, None
        if validation is not None:
            evaluator = ir_evaluator(*ir_task(pool, validation), name="val")
            val_base = evaluator(model)["val_cosine_ndcg@10"]
            val_args = dict(
                eval_strategy="epoch",
                save_strategy="epoch",
                save_total_limit=2,
                load_best_model_at_end=True,
                metric_for_best_model="eval_val_cosine_ndcg@10",
                greater_is_better=True,
            )
        tmp = tempfile.mkdtemp(prefix="peer-train-", dir="/tmp")
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp,
            num_train_epochs=hp["epochs"],
            per_device_train_batch_size=hp["batch_size"],
            learning_rate=hp["lr"],
            warmup_ratio=hp["warmup_ratio"],
            weight_decay=hp["weight_decay"],
            max_grad_norm=hp["max_grad_norm"],
            lr_scheduler_type="linear",
            batch_sampler=BatchSamplers.NO_DUPLICATES if hp["no_duplicates"] else BatchSamplers.BATCH_SAMPLER,
            seed=hp["seed"],
            report_to="none",
            logging_steps=1000000,
            use_cpu=True,
            dataloader_drop_last=False,
            **(val_args or {"save_strategy": "no"}),
        )
        ds = Dataset.from_dict({"anchor": [p["anchor"] for p in train], "positive": [p["positive"] for p in train]})
        if hp.get("hard_negatives", 0) > 0:
            from sentence_transformers.util import mine_hard_negatives

            # As embtune's --mine-hard-negatives: mined by the base model
            # from the fold's own positives, one row per pair.
            ds = mine_hard_negatives(ds, model, num_negatives=hp["hard_negatives"],
                                     absolute_margin=hp.get("hard_negative_margin") or None,
                                     output_format="n-tuple", verbose=False)
        args.prompts = train_prompts(model, ds.column_names)
        loss = MultipleNegativesRankingLoss(model, scale=hp["scale"])
        if mdims:
            loss = MatryoshkaLoss(model, loss, matryoshka_dims=mdims, matryoshka_weights=mweights)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=loss, evaluator=evaluator)
        start = time.time()
        trainer.train()
        secs = time.time() - start
        shutil.rmtree(tmp, ignore_errors=True)
        tuned = evaluate(model, queries, corpus, relevant)
        tuned_dims = {d: evaluate(model, queries, corpus, relevant, d) for d in mdims}
        pairs = len(train) * hp["epochs"]
        r = {"fold": d.name, "train": len(train), "base": base, "tuned": tuned, "seconds": secs, "pairs_per_sec": pairs / secs,
             "matryoshka": [{"dim": dim, "base": base_dims[dim], "tuned": tuned_dims[dim]} for dim in mdims]}
        note = ""
        if validation is not None:
            curve = [(h["epoch"], h["eval_val_cosine_ndcg@10"]) for h in trainer.state.log_history
                     if "eval_val_cosine_ndcg@10" in h]
            r["validation"] = {"pairs": len(validation), "base": val_base, "curve": curve,
                               "best_checkpoint": trainer.state.best_model_checkpoint,
                               "best": trainer.state.best_metric}
            note = f"  validation base {val_base:.4f}, best epoch {trainer.state.best_metric:.4f}"
        results.append(r)
        print(f"{d.name}: ndcg@10 {base['ndcg@10']:.4f} -> {tuned['ndcg@10']:.4f}  {pairs / secs:.2f} pairs/s{note}", flush=True)
        for dim in mdims:
            print(f"  dim {dim}: ndcg@10 {base_dims[dim]['ndcg@10']:.4f} -> {tuned_dims[dim]['ndcg@10']:.4f}", flush=True)
        # Written after every fold, so that an interrupted run keeps its folds.
        with open(out_dir / "peer.json", "w") as f:
            json.dump({"folds": results}, f, indent=1)
    summary = {}
    for key in ("ndcg@10", "mrr@10", "accuracy@1", "map@100"):
        for side in ("base", "tuned"):
            vals = [r[side][key] for r in results]
            summary[f"{side} {key}"] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
    summary["pairs_per_sec"] = (statistics.median(r["pairs_per_sec"] for r in results), 0.0)
    for i, dim in enumerate(mdims):
        for side in ("base", "tuned"):
            vals = [r["matryoshka"][i][side]["ndcg@10"] for r in results]
            summary[f"dim {dim} {side} ndcg@10"] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
    gains = [r["tuned"]["ndcg@10"] - r["base"]["ndcg@10"] for r in results]
    summary["gain ndcg@10"] = (statistics.mean(gains), statistics.stdev(gains) if len(gains) > 1 else 0.0)
    print("per-fold gain ndcg@10: " + " ".join(f"{g:+.4f}" for g in gains))
    for k, (m, s) in summary.items():
        print(f"{k:24s} {m:.4f} ± {s:.4f}")
    with open(out_dir / "peer.json", "w") as f:
        json.dump({"folds": results, "summary": summary}, f, indent=1)


def blog(data_json, model_dir, epochs=100):
    from sentence_transformers import InputExample, SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from torch.utils.data import DataLoader

    pairs = json.load(open(data_json, encoding="utf-8"))
    answer = next(p["sentence2"] for p in pairs if p["sentence1"].startswith("What are Agents for Amazon Bedrock"))
    torch.manual_seed(42)
    model = SentenceTransformer(model_dir, device="cpu")

    def cosine():
        e = model.encode([SEED_QUERY, answer], convert_to_tensor=True)
        return torch.nn.functional.cosine_similarity(e[0:1], e[1:2]).item()

    before = cosine()
    examples = [InputExample(texts=[p["sentence1"], p["sentence2"]]) for p in pairs]
    loader = DataLoader(examples, shuffle=True, batch_size=8)
    loss = MultipleNegativesRankingLoss(model)
    start = time.time()
    model.fit(train_objectives=[(loader, loss)], epochs=epochs, show_progress_bar=False)
    secs = time.time() - start
    after = cosine()
    print(f"blog preset (sentence-transformers fit): cosine {before:.4f} -> {after:.4f}, "
          f"{len(pairs) * epochs / secs:.2f} pairs/s over {secs:.0f}s ({epochs} epochs)")


def main():
    torch.set_num_threads(int(os.environ.get("PEER_THREADS", "0")) or max(1, os.cpu_count() or 1))
    if len(sys.argv) == 4 and sys.argv[1] == "folds":
        folds(sys.argv[2], sys.argv[3])
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "blog":
        blog(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else 100)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
