"""Training throughput: sentence-transformers against embtune on the same
pairs, settings and machine, alternating runs, reporting medians and the
ratio. Checkpoints are off on both sides (save_strategy "no").

  bench_train.py MODEL_DIR EMBTUNE_BIN DATA_JSONL [EPOCHS [BEFORE_BIN]]

BEFORE_BIN, an older embtune build, joins the alternation for a
before/after ratio from one run. embtune's default preset holds out a
validation split, scores it every epoch and refits; those are turned off
here (where the build has them), so both sides train on every pair and
time training only.

sentence-transformers trains with SentenceTransformerTrainer, which its
fit() wraps since v3, with embtune's default preset: batch 32, lr 2e-5,
warmup ratio 0.1, weight decay 0.01, clipping 1.0, the no-duplicates
sampler, max_seq_length 128.

embtune also trains with the cached loss (--mini-batch-size, GradCache) at
the same batch, mini-batch MINI_BATCH (env BENCH_MINI_BATCH, default 16; 0
leaves it out), in the same alternation: its ratio to the plain step is the
cost of the second forward pass and of the smaller mini-batches.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROUNDS = 3
MINI_BATCH = int(os.environ.get("BENCH_MINI_BATCH", "16"))
HP = {"batch_size": 32, "lr": 2e-5, "warmup_ratio": 0.1, "weight_decay": 0.01, "max_grad_norm": 1.0,
      "max_seq_length": 128, "seed": 42}


def st_run(model_dir, pairs, epochs, tmp):
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = HP["max_seq_length"]
    args = SentenceTransformerTrainingArguments(
        output_dir=tmp, num_train_epochs=epochs, per_device_train_batch_size=HP["batch_size"],
        learning_rate=HP["lr"], warmup_ratio=HP["warmup_ratio"], weight_decay=HP["weight_decay"],
        max_grad_norm=HP["max_grad_norm"], lr_scheduler_type="linear",
        batch_sampler=BatchSamplers.NO_DUPLICATES, seed=HP["seed"], save_strategy="no", report_to="none",
        logging_steps=1000000, use_cpu=True, disable_tqdm=True,
    )
    ds = Dataset.from_dict({"anchor": [p["anchor"] for p in pairs], "positive": [p["positive"] for p in pairs]})
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds,
                                         loss=MultipleNegativesRankingLoss(model, scale=20.0))
    start = time.perf_counter()
    trainer.train()
    return len(pairs) * epochs / (time.perf_counter() - start)


def validation_flags(binary):
    """The flags that turn off a build's validation split, if it has one."""
    usage = subprocess.run([binary, "train", "--help"], capture_output=True, text=True)
    if "validation-split" not in usage.stdout + usage.stderr:
        return []
    return ["--validation-split", "0", "--wise-ft", "off", "--load-best-model-at-end", "false"]


def embtune_run(binary, model_dir, data, epochs, threads, tmp, mini_batch=0):
    out = os.path.join(tmp, "embtune")
    subprocess.run(
        [binary, "train", "--model", model_dir, "--data", data, "--output", out, "--epochs", str(epochs),
         "--batch-size", str(HP["batch_size"]), "--lr", str(HP["lr"]), "--warmup-ratio", str(HP["warmup_ratio"]),
         "--weight-decay", str(HP["weight_decay"]), "--max-grad-norm", str(HP["max_grad_norm"]),
         "--max-seq-length", str(HP["max_seq_length"]), "--seed", str(HP["seed"]), "--no-duplicates", "true",
         "--checkpoints=false", "--threads", str(threads)] + validation_flags(binary)
        + (["--mini-batch-size", str(mini_batch)] if mini_batch else []),
        check=True, capture_output=True, text=True,
    )
    with open(os.path.join(out, "eval.json"), encoding="utf-8") as f:
        return json.load(f)["training"]["pairs_per_sec"]


def read_pairs(path):
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                pairs.append({"anchor": row.get("anchor", row.get("question")),
                              "positive": row.get("positive", row.get("answer"))})
    return pairs


def main():
    model_dir, binary, data = sys.argv[1], sys.argv[2], sys.argv[3]
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    before = sys.argv[5] if len(sys.argv) > 5 else None
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    pairs = read_pairs(data)
    st, ours, old, cached = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            st.append(st_run(model_dir, pairs, epochs, tmp))
            ours.append(embtune_run(binary, model_dir, data, epochs, threads, tmp))
            if MINI_BATCH:
                cached.append(embtune_run(binary, model_dir, data, epochs, threads, tmp, MINI_BATCH))
            if before:
                old.append(embtune_run(before, model_dir, data, epochs, threads, tmp))
    st_med, our_med = statistics.median(st), statistics.median(ours)
    print(f"train: {len(pairs)} pairs x {epochs} epochs, batch {HP['batch_size']}, max_seq_length "
          f"{HP['max_seq_length']}, threads {threads}, torch {torch.__version__}, {ROUNDS} alternating rounds")
    print(f"sentence-transformers trainer: median {st_med:.2f} pairs/s runs {[round(x, 2) for x in st]}")
    print(f"embtune train:                 median {our_med:.2f} pairs/s runs {[round(x, 2) for x in ours]}")
    print(f"ratio embtune/ST training speed: {our_med / st_med:.2f}x")
    if MINI_BATCH:
        cached_med = statistics.median(cached)
        print(f"embtune train --mini-batch-size {MINI_BATCH}: median {cached_med:.2f} pairs/s runs "
              f"{[round(x, 2) for x in cached]}; ratio cached/plain {cached_med / our_med:.2f}x")
    if before:
        old_med = statistics.median(old)
        print(f"embtune before ({before}): median {old_med:.2f} pairs/s runs {[round(x, 2) for x in old]}; "
              f"ratio before/ST {old_med / st_med:.2f}x, after/before {our_med / old_med:.3f}")
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
