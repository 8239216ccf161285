"""Encode throughput: sentence-transformers against embtune on the same texts
and machine, alternating runs, reporting medians and the ratio.

  bench_peer.py MODEL_DIR EMBTUNE_BIN
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import corpus_texts  # noqa: E402

ROUNDS = 3


def main():
    model_dir, binary = sys.argv[1], sys.argv[2]
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer

    texts = [t.replace("\n", " ").replace("\r", " ") for t in corpus_texts()]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
        path = f.name
    st = SentenceTransformer(model_dir, device="cpu")
    st.encode(texts[:64], batch_size=32)
    st_times, ours, last = [], [], {}
    for r in range(ROUNDS):
        start = time.perf_counter()
        st.encode(texts, batch_size=32)
        st_times.append(time.perf_counter() - start)
        out = subprocess.run(
            [binary, "bench", "--model", model_dir, "--texts", path, "--batch-size", "32", "--reps", "3",
             "--gemm", "true" if r == ROUNDS - 1 else "false", "--threads", str(threads)],
            check=True, capture_output=True, text=True,
        ).stdout
        last = json.loads(out)
        ours.append(last["median_seconds"])
    st_med, our_med = statistics.median(st_times), statistics.median(ours)
    print(f"texts {len(texts)}, tokens {last['tokens']}, batch 32, threads {threads}, torch {torch.__version__}")
    print(f"sentence-transformers encode: median {st_med:.2f}s ({len(texts) / st_med:.1f} sentences/s) runs {[round(t, 2) for t in st_times]}")
    print(f"embtune encode:               median {our_med:.2f}s ({len(texts) / our_med:.1f} sentences/s) runs {[round(t, 2) for t in ours]}")
    print(f"ratio embtune/ST speed: {st_med / our_med:.2f}x")
    print(f"GEMM 2048^3: {last['gemm_gflops']:.1f} GFLOP/s; encoder 32x128: {last['encoder_32x128_gflops']:.1f} GFLOP/s "
          f"({last['encoder_32x128_tokens_per_sec']:.0f} tokens/s) = {100 * last['encoder_over_gemm']:.0f}% of GEMM")
    os.unlink(path)


if __name__ == "__main__":
    main()
