"""Per-op time of the fp32 and int8 encoders (same ops as embtune's
TorchScript), 441 golden texts, batch 32, alternating, torch.profiler."""
import os, sys, time
sys.argv = [sys.argv[0]]
import torch
from torch.profiler import profile, ProfilerActivity
import sens
cfgs = {"fp32": lambda l, k: "fp32",
        "int8": lambda l, k: "sq:0.5:ln" if k in ("qkv", "up") else "int8",
        "int8-no-smooth": lambda l, k: "int8"}
engine = os.environ.get("ENGINE", "onednn")
torch.backends.quantized.engine = engine
P = {n: sens.build(c) for n, c in cfgs.items()}
bs = int(os.environ.get("BS", "32"))
names = os.environ.get("NAMES", "fp32,int8,int8-no-smooth").split(",")
times = {n: [] for n in names}
for r in range(3):
    for n in names:
        t = time.perf_counter(); sens.encode(P[n], bs); times[n].append(time.perf_counter() - t)
for n in names:
    ts = sorted(times[n]); print(f"{n:16s} median {ts[1]:.2f}s  {441/ts[1]:.1f} sent/s  runs {[round(x,2) for x in times[n]]}")
if os.environ.get("PROFILE", "1") == "1":
    for n in names:
        with profile(activities=[ProfilerActivity.CPU]) as p:
            sens.encode(P[n], bs)
        print(f"== {n} ({engine}, {torch.get_num_threads()} threads, batch {bs})")
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=40))
