"""Turns tools/memory/measure.sh's JSON lines into docs/families.md's
training-memory table: the measured peaks, and for the folders measured at
2 and 4 layers, the full model's peak extrapolated linearly in layers.

  python3 tools/memory/table.py RESULTS.jsonl
"""

import json
import re
import sys

# name -> (label, full number of layers)
FULL = {
    "mpnet": ("mpnet: all-mpnet-base-v2 (real weights, 110M)", 12),
    "e5": ("xlm-roberta: multilingual-e5-small (118M)", 12),
    "modernbert": ("modernbert: ModernBERT-base (149M)", 22),
    "qwen3": ("qwen3: Qwen3-Embedding-0.6B (596M)", 28),
    "gemma": ("gemma3_text: EmbeddingGemma-300m (303M, without its Dense modules)", 24),
}


def main():
    runs = {}
    for line in open(sys.argv[1]):
        r = json.loads(line)
        name = r["model"].rstrip("/").split("/")[-1]
        runs[(name, r["gradient_checkpointing"])] = r["vmhwm_after_steps_mib"]
    print("| family: folder | layers measured | peak RSS, MiB | with --gradient-checkpointing | saved |")
    print("|---|---|---|---|---|")
    plain, ck = runs.get(("all-MiniLM-L6-v2", False)), runs.get(("all-MiniLM-L6-v2", True))
    if plain and ck:
        print(f"| bert: all-MiniLM-L6-v2 (real weights, 22M) | 6 of 6 | {plain:,} | {ck:,} | {1 - ck / plain:.0%} |")
    for key, (label, layers) in FULL.items():
        row = {}
        for c in (False, True):
            p2, p4 = runs.get((f"{key}-L2", c)), runs.get((f"{key}-L4", c))
            if p2 is None or p4 is None:
                continue
            per = (p4 - p2) / 2
            row[c] = (p2, p4, per, p2 + per * (layers - 2))
        if len(row) < 2:
            continue
        (a2, a4, ap, af), (b2, b4, bp, bf) = row[False], row[True]
        print(f"| {label} | 2 / 4 of {layers} | {a2:,} / {a4:,}; {layers} layers ≈ **{af:,.0f}** (+{ap:,.0f} a layer) "
              f"| {b2:,} / {b4:,}; {layers} layers ≈ **{bf:,.0f}** (+{bp:,.0f} a layer) | {1 - bf / af:.0%} |")


if __name__ == "__main__":
    main()
