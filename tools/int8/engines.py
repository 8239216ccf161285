"""fp32, int8 (smoothed) on oneDNN and on fbgemm, alternating, medians of 3."""
import os, sys, time
sys.argv = [sys.argv[0]]
import torch, sens
cfg = lambda l, k: "sq:0.5:ln" if k in ("qkv", "up") else "int8"
P = {"fp32": sens.build(lambda l, k: "fp32")}
for e in ("onednn", "fbgemm"):
    torch.backends.quantized.engine = e
    P["int8-" + e] = sens.build(cfg)
bs = int(os.environ.get("BS", "32"))
times = {n: [] for n in P}
for r in range(3):
    for n in P:
        t = time.perf_counter(); sens.encode(P[n], bs); times[n].append(time.perf_counter() - t)
for n in P:
    ts = sorted(times[n]); print(f"{n:14s} median {ts[1]:.2f}s  {441/ts[1]:.1f} sent/s  runs {[round(x,2) for x in times[n]]}")
print("worst cosine fbgemm", sens.worst(P["int8-fbgemm"])[0], "onednn", sens.worst(P["int8-onednn"])[0])
