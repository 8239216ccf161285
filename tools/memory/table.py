"""Turns tools/memory/measure.sh's JSON lines into docs/families.md's
training-memory table. Peaks are VmHWM after 2 optimizer steps, in MiB.

For a family measured at 2 and 4 layers, the full model's peak is
extrapolated linearly in layers: p(L) = p(2) + (p(4) - p(2)) / 2 * (L - 2).
For the large-vocabulary decoders, the 2- and 4-layer runs use a
30,522-row embedding table (the "s" folders) and the real table's cost is
the difference of the 2-layer runs with the real and the small table
(without checkpointing; the table's parameters, gradients, AdamW moments
and lookups do not depend on checkpointing).

  python3 tools/memory/table.py RESULTS.jsonl
"""

import json
import sys

# folder prefix -> (label, full layer count, prefix of the real-vocabulary 2-layer run or None)
FAMILIES = [
    ("mpnet", "mpnet: all-mpnet-base-v2 (real weights)", 12, None),
    ("e5s", "xlm-roberta: multilingual-e5-small", 12, "e5"),
    ("modernbert", "modernbert: ModernBERT-base", 22, None),
    ("qwen3s", "qwen3: Qwen3-Embedding-0.6B", 28, "qwen3"),
    ("gemmas", "gemma3_text: EmbeddingGemma-300m (without its Dense modules)", 24, "gemma"),
]


def main():
    runs = {}
    for line in open(sys.argv[1]):
        r = json.loads(line)
        name = r["model"].rstrip("/").split("/")[-1]
        runs[(name, r["gradient_checkpointing"])] = r["vmhwm_after_steps_mib"]
    print("| family: model | measured (MiB, without / with checkpointing) | full model, estimated, MiB | "
          "with `--gradient-checkpointing`, estimated, MiB | saved |")
    print("|---|---|---|---|---|")
    plain, ck = runs.get(("all-MiniLM-L6-v2", False)), runs.get(("all-MiniLM-L6-v2", True))
    if plain and ck:
        print(f"| bert: all-MiniLM-L6-v2 (real weights), 6 layers | {plain:,} / {ck:,} (the full model) | "
              f"{plain:,} (measured) | {ck:,} (measured) | {1 - ck / plain:.0%} |")
    for prefix, label, layers, real in FAMILIES:
        got = {}
        for c in (False, True):
            p2, p4 = runs.get((f"{prefix}-L2", c)), runs.get((f"{prefix}-L4", c))
            if p2 is not None and p4 is not None:
                got[c] = (p2, p4)
        if not got:
            p2 = [runs.get((f"{prefix}-L2", c)) for c in (False, True)]
            if None not in p2:
                print(f"| {label}, {layers} layers | 2 layers: {p2[0]:,} / {p2[1]:,}; 4 layers not measured | "
                      f"not estimated | not estimated | |")
            continue
        vocab = 0
        if real is not None:
            full2, small2 = runs.get((f"{real}-L2", False)), runs.get((f"{prefix}-L2", False))
            if full2 is None or small2 is None:
                continue
            vocab = full2 - small2
        cells = []
        est = {}
        for c, (p2, p4) in got.items():
            per = (p4 - p2) / 2
            est[c] = vocab + p2 + per * (layers - 2)
            cells.append(f"{'with' if c else 'without'}: 2 layers {p2:,}, 4 layers {p4:,} (+{per:,.0f} a layer)")
        measured = "; ".join(cells)
        if vocab:
            measured += f"; the real embedding table adds {vocab:,} (2 layers, without)"
        a = f"**{est[False]:,.0f}**" if False in est else "not measured"
        b = f"**{est[True]:,.0f}**" if True in est else "not measured"
        saved = f"{1 - est[True] / est[False]:.0%}" if len(est) == 2 else ""
        print(f"| {label}, {layers} layers | {measured} | {a} | {b} | {saved} |")


if __name__ == "__main__":
    main()
