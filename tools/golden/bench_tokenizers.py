"""Tokenizing speed: embtune's hf package vs HF tokenizers, per kind.

Times HF tokenizers (Python, encode() one text at a time, one thread) on the
golden corpus of testdata/tokenizers for every kind in kinds.json, then runs
embtune's BenchmarkTokenizerKinds on the same texts in the same session, and
prints texts/s for both and their ratio.

Usage: python bench_tokenizers.py REPO_ROOT [GO_BENCHTIME]
"""
import gzip
import json
import os
import re
import subprocess
import sys
import time

from tokenizers import Tokenizer


def main():
    root = sys.argv[1]
    benchtime = sys.argv[2] if len(sys.argv) > 2 else "3x"
    td = os.path.join(root, "testdata", "tokenizers")
    with open(os.path.join(td, "kinds.json")) as f:
        kinds = json.load(f)["kinds"]
    with gzip.open(os.path.join(td, "corpus.jsonl.gz"), "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    hf = {}
    for name, k in sorted(kinds.items()):
        path = os.path.join(root, k["tokenizer"])
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                tok = Tokenizer.from_str(f.read())
        else:
            tok = Tokenizer.from_file(path)
        tok.no_padding()
        tok.no_truncation()
        for t in texts[:200]:
            tok.encode(t)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for t in texts:
                tok.encode(t)
            best = min(best, time.perf_counter() - t0)
        hf[name] = len(texts) / best
    out = subprocess.run(["go", "test", "-run", "^$", "-bench", "BenchmarkTokenizerKinds", "-benchtime", benchtime,
                          "-count", "1", "./hf/"], cwd=root, env={**os.environ, "CGO_ENABLED": "0"},
                         capture_output=True, text=True, check=True).stdout
    go = {m.group(1): float(m.group(2))
          for m in re.finditer(r"BenchmarkTokenizerKinds/(\S+?)(?:-\d+)?\s.*?([\d.]+) texts/s", out)}
    print("%-28s %12s %12s %8s" % ("kind", "embtune t/s", "HF t/s", "ratio"))
    for name in sorted(kinds):
        g = go.get(name)
        print("%-28s %12.0f %12.0f %8.2f" % (name, g or 0, hf[name], (g or 0) / hf[name]))


if __name__ == "__main__":
    main()
