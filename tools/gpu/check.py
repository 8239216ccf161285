"""The GPU check: embtune's CUDA path against sentence-transformers on the same
GPU, in one run that writes gpu-check.json and gpu-check.txt to OUT.

  check.py --stage DIR --embtune BIN --out OUT [--device cuda] [--dry-run]

The checks (issue #12):
  1 info      `embtune info` reports a CUDA build and the device
  2 encode    golden texts: embtune vs sentence-transformers cosine (fp32 and bf16)
  3 loss      first-step MultipleNegativesRankingLoss and gradient norm vs ST
  4 curve     short fp32 and bf16 runs against the CPU reference made by make gpu-stage
  5 speed     encode sentences/s (batch 32, 256) and train pairs/s, fp32 and bf16, vs ST
  6 nccl      `embtune train --nproc-per-node N` (when the binary has it)
  7 serve     `embtune serve` answers POST /invocations with ST's vectors
  8 families  every encoder family's golden folder: encode (fp32, bf16) and the
              first training step against ST on the same device

--dry-run runs the same steps on the CPU with smaller sizes: it proves the
script, the stage and the CPU side, not the GPU.

Weights: MiniLM-shaped, rebuilt by make_weights.py (numpy only) and checked
against the hash make gpu-stage recorded. model/ has dropout 0 so that
embtune and ST compute the same numbers (checks 2-4, 7); model-dropout/ keeps
all-MiniLM-L6-v2's dropout 0.1 for the speed runs.
"""

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_weights  # noqa: E402

# Thresholds: the issue's (cosine 0.99999 in fp32, loss and grad norm to 1e-4);
# the curve tolerances are ours: fp32 runs on two devices differ only by
# rounding, bf16 by bf16 rounding on different kernels.
COS_FP32 = 0.99999
LOSS_TOL = 1e-4
CURVE_FP32_REL = 0.01
CURVE_BF16_REL = 0.05
# The short training run of check 4 (make gpu-stage runs it on the CPU for
# the reference): 120 Debian FAQ pairs, 2 epochs of batch 16, at a learning
# rate high enough for hash-initialised weights to learn visibly.
CURVE = {"epochs": 2, "batch_size": 16, "lr": 1e-4}


class Check:
    def __init__(self, num, name):
        self.num, self.name = num, name
        self.status, self.summary, self.data, self.seconds = "fail", "", {}, 0.0

    def as_dict(self):
        return {"check": self.num, "name": self.name, "status": self.status, "summary": self.summary,
                "seconds": round(self.seconds, 2), **self.data}


class Ctx:
    def __init__(self, args):
        self.args = args
        self.stage = Path(args.stage).resolve()
        self.bin = args.embtune
        self.device = args.device
        self.dry = args.dry_run
        self.work = Path(tempfile.mkdtemp(prefix="embtune-gpu-check-"))
        self.st_cache = {}
        self.log = open(Path(args.out) / "gpu-check.log", "w", encoding="utf-8")

    def run(self, argv, stdin=None, timeout=300, check=True):
        """Runs embtune (or anything), logs it, returns CompletedProcess."""
        self.log.write(f"$ {' '.join(map(str, argv))}\n")
        self.log.flush()
        p = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, text=True, timeout=timeout)
        self.log.write(p.stderr[-4000:] + "\n")
        self.log.flush()
        if check and p.returncode != 0:
            raise RuntimeError(f"{argv[1] if len(argv) > 1 else argv[0]} exited {p.returncode}: {p.stderr.strip()[-800:]}")
        return p

    def embtune(self, *args, **kw):
        return self.run([self.bin, *args], **kw)

    def sync(self):
        if self.device.startswith("cuda"):
            import torch
            torch.cuda.synchronize()

    def st(self, folder):
        if folder not in self.st_cache:
            from sentence_transformers import SentenceTransformer
            self.st_cache[folder] = SentenceTransformer(str(self.model_dir(folder)), device=self.device)
        return self.st_cache[folder]

    def model_dir(self, folder="model"):
        return self.work / folder


def texts_file(ctx):
    return ctx.stage / "data" / "golden.txt"


def golden_texts(ctx):
    texts = texts_file(ctx).read_text(encoding="utf-8").split("\n")
    return texts[:-1] if texts and texts[-1] == "" else texts


def read_vectors(stdout):
    return np.array([json.loads(line) for line in stdout.splitlines() if line.strip()], dtype=np.float64)


def cosines(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def st_encode(ctx, texts, batch, bf16=False, folder="model"):
    import torch
    model = ctx.st(folder)
    with torch.autocast(device_type=ctx.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
        return model.encode(texts, batch_size=batch, convert_to_numpy=True)


# ---- setup ----

def prepare(ctx):
    """Copies model/ and model-dropout/ to the work folder and rebuilds the weights."""
    want = (ctx.stage / "data" / "weights.sha256").read_text().split()[0]
    for folder in ("model", "model-dropout"):
        shutil.copytree(ctx.stage / folder, ctx.model_dir(folder))
    got = make_weights.write(ctx.model_dir("model"))
    os.link(ctx.model_dir("model") / "model.safetensors", ctx.model_dir("model-dropout") / "model.safetensors")
    return {"weights_sha256": got, "weights_match_stage": got == want}


# ---- the checks ----

def check_info(ctx, c):
    p = ctx.embtune("info", timeout=120)
    info, _ = json.JSONDecoder().raw_decode(p.stdout)
    c.data["info"] = info
    devs = info.get("cuda") or []
    if ctx.dry:
        c.status = "pass"
        c.summary = f"libtorch {info.get('libtorch')}, cuda_build {info.get('cuda_build')}, {info.get('cuda_devices')} CUDA devices (dry run: CPU binary)"
        return
    ok = info.get("cuda_build") and info.get("cuda_devices", 0) >= 1 and devs
    c.status = "pass" if ok else "fail"
    names = ", ".join(f"{d['name']} (sm {d['compute_capability']}, {d['total_memory_bytes'] / 2**30:.0f} GiB)" for d in devs)
    c.summary = f"libtorch {info.get('libtorch')}, CUDA runtime {devs[0]['cuda_runtime'] if devs else '?'}: {names or 'no CUDA device'}"


def check_encode(ctx, c):
    texts = golden_texts(ctx)
    model = str(ctx.model_dir())
    ref = st_encode(ctx, texts, 32)
    ours = read_vectors(ctx.embtune("encode", "--model", model, "--device", ctx.device, "--batch-size", "32",
                                    stdin="\n".join(texts) + "\n").stdout)
    ours_bf16 = read_vectors(ctx.embtune("encode", "--model", model, "--device", ctx.device, "--batch-size", "32",
                                         "--bf16", stdin="\n".join(texts) + "\n").stdout)
    ref_bf16 = st_encode(ctx, texts, 32, bf16=True)
    if ours.shape != ref.shape or ours_bf16.shape != ref.shape:
        raise RuntimeError(f"shapes differ: embtune {ours.shape}, bf16 {ours_bf16.shape}, ST {ref.shape}")
    cos = cosines(ours, ref)
    cos_bf16 = cosines(ours_bf16, ref)
    cos_st_bf16 = cosines(ref_bf16, ref)
    worst = int(np.argmin(cos))
    c.data.update({"texts": len(texts), "fp32_min_cosine": float(cos.min()), "fp32_worst_text": worst,
                   "fp32_max_abs_diff": float(np.abs(ours - ref).max()),
                   "bf16_min_cosine_vs_st_fp32": float(cos_bf16.min()),
                   "st_bf16_min_cosine_vs_st_fp32": float(cos_st_bf16.min()),
                   "bf16_min_cosine_vs_st_bf16": float(cosines(ours_bf16, ref_bf16).min())})
    c.status = "pass" if cos.min() >= COS_FP32 else "fail"
    c.summary = (f"{len(texts)} texts: fp32 min cosine {cos.min():.7f} (need {COS_FP32}); bf16 worst {cos_bf16.min():.6f} "
                 f"vs ST fp32 (ST's own bf16 autocast: {cos_st_bf16.min():.6f})")


def read_loss_csv(path):
    rows = []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    head = lines[0].split(",")
    for line in lines[1:]:
        if not line:
            continue
        rows.append(dict(zip(head, map(float, line.split(",")))))
    return rows


def train_args(ctx, data, out, folder="model", epochs=1, batch=8, bf16=False, extra=(), lr=2e-5):
    a = ["train", "--model", str(ctx.model_dir(folder)), "--data", str(data), "--output", str(out),
         "--device", ctx.device, "--epochs", str(epochs), "--batch-size", str(batch), "--seed", "42",
         "--lr", repr(lr), "--warmup-ratio", "0.1", "--weight-decay", "0.01", "--max-grad-norm", "1",
         "--mine-hard-negatives", "0", "--no-duplicates", "true", "--checkpoints=false",
         "--validation-split", "0", *extra]  # loss-curve parity on every pair, as before the default held out 20%
    if bf16:
        a.append("--bf16")
    return a


def loss_batch(ctx):
    return [json.loads(line) for line in (ctx.stage / "data" / "loss_batch.jsonl").read_text(encoding="utf-8").split("\n") if line]


def st_first_step(folder, batch, device):
    """sentence-transformers' first-step MNRL loss and gradient norm on folder,
    with the folder's query and document prompts (if any), as embtune's
    trainer gives them."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(folder), device=device)
    model.train()
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0)
    q, d = model.prompts.get("query", ""), model.prompts.get("document", "")
    feats = []
    for prompt, col in ((q, "anchor"), (d, "positive")):
        f = model.tokenize([prompt + p[col] for p in batch])
        feats.append({k: v.to(device) if hasattr(v, "to") else v for k, v in f.items()})
    loss = loss_fn(feats, None)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], float("inf")).item()
    return loss.item(), norm


def check_loss(ctx, c):
    batch = loss_batch(ctx)
    out = ctx.work / "first-step"
    ctx.embtune(*train_args(ctx, ctx.stage / "data" / "loss_batch.jsonl", out, batch=len(batch)))
    ours = read_loss_csv(out / "loss.csv")[0]
    loss, norm = st_first_step(ctx.model_dir(), batch, ctx.device)
    ref = {"loss": loss, "grad_norm": norm}
    dl, dn = abs(ours["loss"] - ref["loss"]), abs(ours["grad_norm"] - ref["grad_norm"]) / max(ref["grad_norm"], 1e-12)
    c.data.update({"pairs": len(batch), "embtune": {"loss": ours["loss"], "grad_norm": ours["grad_norm"]}, "st": ref,
                   "loss_abs_diff": dl, "grad_norm_rel_diff": dn})
    c.status = "pass" if dl <= LOSS_TOL and dn <= LOSS_TOL else "fail"
    c.summary = (f"loss {ours['loss']:.6f} vs ST {ref['loss']:.6f} (|d| {dl:.1e}); grad norm {ours['grad_norm']:.6f} "
                 f"vs {ref['grad_norm']:.6f} (rel {dn:.1e}); need <= {LOSS_TOL:g}")


def curve_cmd(ctx, out, bf16):
    stage = getattr(ctx, "stage", Path("STAGE"))
    return train_args(ctx, stage / "data" / "train.jsonl", out, epochs=CURVE["epochs"],
                      batch=CURVE["batch_size"], bf16=bf16, lr=CURVE["lr"])


def make_reference(ctx):
    """Writes ref/loss-fp32.csv and ref/loss-bf16.csv with this (CPU) binary."""
    setup = prepare(ctx)
    ref = ctx.stage / "ref"
    ref.mkdir(exist_ok=True)
    for mode in ("fp32", "bf16"):
        out = ctx.work / f"ref-{mode}"
        ctx.embtune(*curve_cmd(ctx, out, mode == "bf16"), timeout=1800)
        shutil.copy(out / "loss.csv", ref / f"loss-{mode}.csv")
    (ref / "curve.json").write_text(json.dumps({**CURVE, "device": ctx.device, "weights_sha256": setup["weights_sha256"],
                                                "made": time.strftime("%Y-%m-%d %H:%M:%S %Z")}, indent=1) + "\n")


def check_curve(ctx, c):
    results, ok = {}, True
    for mode in ("fp32", "bf16"):
        out = ctx.work / f"curve-{mode}"
        ctx.embtune(*curve_cmd(ctx, out, mode == "bf16"), timeout=600)
        got = [r["loss"] for r in read_loss_csv(out / "loss.csv")]
        ref = [r["loss"] for r in read_loss_csv(ctx.stage / "ref" / f"loss-{mode}.csv")]
        ref32 = [r["loss"] for r in read_loss_csv(ctx.stage / "ref" / "loss-fp32.csv")]
        made = json.loads((ctx.stage / "ref" / "curve.json").read_text())
        if {k: made.get(k) for k in CURVE} != CURVE:
            raise RuntimeError(f"ref/curve.json was made with {made}, this script runs {CURVE}: rerun make gpu-stage")
        if len(got) != len(ref):
            results[mode] = {"error": f"{len(got)} steps, reference has {len(ref)}"}
            ok = False
            continue
        rel = [abs(g - r) / max(abs(r), 1e-12) for g, r in zip(got, ref)]
        tol = CURVE_FP32_REL if mode == "fp32" else CURVE_BF16_REL
        results[mode] = {"steps": len(got), "loss": got, "cpu_reference": ref, "max_rel_diff": max(rel),
                         "max_rel_diff_vs_cpu_fp32": max(abs(g - r) / max(abs(r), 1e-12) for g, r in zip(got, ref32)),
                         "first": got[0], "last": got[-1], "tolerance": tol}
        # The loss must fall: the last full batches against the first (each
        # epoch ends with a smaller batch, whose loss is lower by itself).
        full = [r for r in read_loss_csv(out / "loss.csv") if r["epoch"] % 1 != 0]
        falls = statistics.mean(r["loss"] for r in full[-3:]) < statistics.mean(r["loss"] for r in full[:3])
        results[mode]["falls"] = falls
        ok = ok and max(rel) <= tol and falls
    c.data.update(results)
    c.status = "pass" if ok else "fail"
    c.summary = "; ".join(
        f"{m}: {r['steps']} steps {r['first']:.4f} -> {r['last']:.4f}, max rel diff to CPU {r['max_rel_diff']:.1e} (tol {r['tolerance']:g})"
        if "steps" in r else f"{m}: {r['error']}" for m, r in results.items())


def st_train_pairs_per_sec(ctx, pairs, batch, steps, bf16):
    """sentence-transformers' model and MNRL loss in a plain loop with
    transformers' AdamW settings (no weight decay on biases and LayerNorm),
    linear warmup, clipping 1.0: the work SentenceTransformerTrainer does per
    step, without its bookkeeping (the GPU machine has no `datasets`)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(ctx.model_dir("model-dropout")), device=ctx.device)
    model.train()
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0)
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    nodecay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nodecay, "weight_decay": 0.0}], lr=2e-5)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    dev = ctx.device.split(":")[0]

    def step(i):
        b = [pairs[(i * batch + j) % len(pairs)] for j in range(batch)]
        feats = []
        for col in ("anchor", "positive"):
            f = model.tokenize([p[col] for p in b])
            feats.append({k: v.to(ctx.device, non_blocking=True) if hasattr(v, "to") else v for k, v in f.items()})
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(feats, None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    step(0)
    ctx.sync()
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    ctx.sync()
    return steps * batch / (time.perf_counter() - start)


def check_speed(ctx, c):
    texts = golden_texts(ctx)
    texts_path = texts_file(ctx)
    train_path = ctx.stage / "data" / "train.jsonl"
    if ctx.dry:
        # The dry run proves the pipeline, not the speed: a slice of the data.
        texts = texts[:64]
        texts_path = ctx.work / "speed-texts.txt"
        texts_path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        lines = train_path.read_text(encoding="utf-8").split("\n")[:64]
        train_path = ctx.work / "speed-train.jsonl"
        train_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reps = 1 if ctx.dry else 3
    sizes = [32] if ctx.dry else [32, 256]
    enc = {}
    for bf16 in (False, True):
        mode = "bf16" if bf16 else "fp32"
        for b in sizes:
            st_encode(ctx, texts[:b], b, bf16, folder="model-dropout")  # warm-up
            times = []
            for _ in range(reps):
                ctx.sync()
                t = time.perf_counter()
                st_encode(ctx, texts, b, bf16, folder="model-dropout")
                ctx.sync()
                times.append(time.perf_counter() - t)
            st_rate = len(texts) / statistics.median(times)
            args = ["bench", "--model", str(ctx.model_dir("model-dropout")), "--device", ctx.device, "--texts",
                    str(texts_path), "--batch-size", str(b), "--reps", str(reps), "--gemm=false"]
            if bf16:
                args.append("--bf16")
            res = json.loads(ctx.embtune(*args, timeout=600).stdout)
            enc[f"{mode}_batch{b}"] = {"embtune_sentences_per_sec": res["sentences_per_sec"],
                                       "st_sentences_per_sec": st_rate, "ratio": res["sentences_per_sec"] / st_rate}
    pairs = [json.loads(line) for line in train_path.read_text(encoding="utf-8").split("\n") if line]
    batch = 32
    epochs = 1 if ctx.dry else 8
    steps = 2 if ctx.dry else epochs * len(pairs) // batch
    train = {}
    for bf16 in (False, True):
        mode = "bf16" if bf16 else "fp32"
        out = ctx.work / f"speed-{mode}"
        ctx.embtune(*train_args(ctx, train_path, out, folder="model-dropout", epochs=epochs,
                                batch=batch, bf16=bf16), timeout=600)
        rep = json.loads((out / "eval.json").read_text())
        ours = find_key(rep, "pairs_per_sec")
        st_rate = st_train_pairs_per_sec(ctx, pairs, batch, steps, bf16)
        train[mode] = {"embtune_pairs_per_sec": ours, "st_pairs_per_sec": st_rate,
                       "ratio": ours / st_rate if ours else None}
    c.data.update({"encode": enc, "train": train, "texts": len(texts), "reps": reps, "train_batch": batch,
                   "train_epochs": epochs, "st_train_steps": steps})
    c.status = "pass"
    c.summary = "; ".join([f"encode {k} {v['embtune_sentences_per_sec']:.0f}/s vs ST {v['st_sentences_per_sec']:.0f}/s ({v['ratio']:.2f}x)"
                           for k, v in enc.items()] +
                          [f"train {k} {v['embtune_pairs_per_sec']:.0f} pairs/s vs ST {v['st_pairs_per_sec']:.0f} ({v['ratio']:.2f}x)"
                           for k, v in train.items() if v["embtune_pairs_per_sec"]])


def find_key(obj, key):
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = find_key(v, key)
            if r is not None:
                return r
    if isinstance(obj, list):
        for v in obj:
            r = find_key(v, key)
            if r is not None:
                return r
    return None


def check_nccl(ctx, c):
    helptext = ctx.embtune("train", "--help", check=False).stderr
    if "nproc-per-node" not in helptext:
        c.status = "skip"
        c.summary = "not available in this build (embtune train has no --nproc-per-node)"
        return
    if ctx.dry:
        c.status = "skip"
        c.summary = "the binary has --nproc-per-node; NCCL needs CUDA (dry run)"
        return
    import torch
    worlds = [1] + ([2] if torch.cuda.device_count() >= 2 else [])
    runs = {}
    for n in worlds:
        out = ctx.work / f"nccl-{n}"
        t = time.perf_counter()
        p = ctx.embtune(*train_args(ctx, ctx.stage / "data" / "loss_batch.jsonl", out, batch=8,
                                    extra=("--nproc-per-node", str(n))), check=False, timeout=300)
        runs[f"world{n}"] = {"rc": p.returncode, "seconds": time.perf_counter() - t, "stderr_tail": p.stderr[-600:]}
    c.data["runs"] = runs
    c.status = "pass" if all(r["rc"] == 0 for r in runs.values()) else "fail"
    c.summary = ", ".join(f"{k}: rc {v['rc']} in {v['seconds']:.1f}s" for k, v in runs.items()) + \
        ("" if len(worlds) > 1 else " (one GPU: world size 2 not tried)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_serve(ctx, c):
    port = free_port()
    texts = golden_texts(ctx)[:16]
    argv = [ctx.bin, "serve", "--model", str(ctx.model_dir()), "--device", ctx.device, "--addr", f"127.0.0.1:{port}"]
    ctx.log.write(f"$ {' '.join(map(str, argv))}\n")
    errlog = open(ctx.work / "serve.log", "w+")
    proc = subprocess.Popen([str(a) for a in argv], stdout=errlog, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                errlog.seek(0)
                raise RuntimeError(f"serve exited {proc.returncode}: {errlog.read()[-800:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("serve did not answer /ping within 120 s")
            time.sleep(0.5)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps({"inputs": texts}).encode(),
                                     headers={"Content-Type": "application/json"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as r:
            body = json.loads(r.read())
        latency = time.perf_counter() - t
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errlog.close()
    vecs = body.get("embeddings", body) if isinstance(body, dict) else body
    vecs = np.array(vecs, dtype=np.float64)
    ref = st_encode(ctx, texts, 32)
    if vecs.shape != ref.shape:
        raise RuntimeError(f"/invocations returned shape {vecs.shape}, want {ref.shape}")
    cos = cosines(vecs, ref)
    c.data.update({"inputs": len(texts), "min_cosine": float(cos.min()), "latency_seconds": latency})
    c.status = "pass" if cos.min() >= COS_FP32 else "fail"
    c.summary = f"/invocations with {len(texts)} inputs in {latency * 1000:.0f} ms; min cosine to ST {cos.min():.7f}"


def check_families(ctx, c):
    """Every encoder family's golden folder (testdata/golden/encoders, random
    weights from the published configs, dropout 0 here): encode in fp32
    (and bf16, reported) against sentence-transformers on the same device,
    and the first training step's loss and gradient norm."""
    root = ctx.stage / "encoders"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not folders:
        raise RuntimeError(f"no encoder folders in {root} (make gpu-stage copies testdata/golden/encoders)")
    texts = golden_texts(ctx)[: 64 if ctx.dry else None]
    batch = loss_batch(ctx)
    from sentence_transformers import SentenceTransformer

    rows, ok = {}, True
    for src in folders:
        folder = ctx.work / "encoders" / src.name
        shutil.copytree(src, folder)
        st = SentenceTransformer(str(folder), device=ctx.device)
        ref = st.encode(texts, batch_size=32, convert_to_numpy=True)
        seq = st.max_seq_length
        del st
        args = ("encode", "--model", str(folder), "--device", ctx.device, "--batch-size", "32")
        ours = read_vectors(ctx.embtune(*args, stdin="\n".join(texts) + "\n").stdout)
        ours_bf16 = read_vectors(ctx.embtune(*args, "--bf16", stdin="\n".join(texts) + "\n").stdout)
        if ours.shape != ref.shape or ours_bf16.shape != ref.shape:
            raise RuntimeError(f"{src.name}: shapes differ: embtune {ours.shape}, bf16 {ours_bf16.shape}, ST {ref.shape}")
        out = ctx.work / "first-step" / src.name
        ctx.embtune(*train_args(ctx, ctx.stage / "data" / "loss_batch.jsonl", out, folder=f"encoders/{src.name}",
                                batch=len(batch), extra=("--max-seq-length", str(seq))))
        step = read_loss_csv(out / "loss.csv")[0]
        loss, norm = st_first_step(folder, batch, ctx.device)
        dl = abs(step["loss"] - loss)
        dn = abs(step["grad_norm"] - norm) / max(norm, 1e-12)
        row = {"fp32_min_cosine": float(cosines(ours, ref).min()),
               "bf16_min_cosine_vs_st_fp32": float(cosines(ours_bf16, ref).min()),
               "loss": [step["loss"], loss], "grad_norm": [step["grad_norm"], norm],
               "loss_abs_diff": dl, "grad_norm_rel_diff": dn}
        row["pass"] = row["fp32_min_cosine"] >= COS_FP32 and dl <= LOSS_TOL and dn <= LOSS_TOL
        ok = ok and row["pass"]
        rows[src.name] = row
    c.data["families"] = rows
    c.status = "pass" if ok else "fail"
    worst = min(rows.items(), key=lambda kv: kv[1]["fp32_min_cosine"])
    failed = [k for k, r in rows.items() if not r["pass"]]
    c.summary = (f"{len(rows)} folders, {len(texts)} texts: worst fp32 cosine {worst[1]['fp32_min_cosine']:.7f} ({worst[0]}), "
                 f"worst bf16 {min(r['bf16_min_cosine_vs_st_fp32'] for r in rows.values()):.5f}; "
                 f"first step: max |d loss| {max(r['loss_abs_diff'] for r in rows.values()):.1e}, "
                 f"max rel d grad norm {max(r['grad_norm_rel_diff'] for r in rows.values()):.1e}"
                 + (f"; failed: {', '.join(failed)}" if failed else ""))


CHECKS = [(1, "info", check_info), (2, "encode", check_encode), (3, "first-step loss", check_loss),
          (4, "loss curve", check_curve), (5, "speed", check_speed), (6, "nccl", check_nccl), (7, "serve", check_serve),
          (8, "families", check_families)]


def versions(ctx):
    v = {"python": sys.version.split()[0]}
    for mod in ("torch", "sentence_transformers", "transformers", "numpy"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            v[mod] = f"unavailable: {e}"
    try:
        import torch
        v["torch_cuda"] = torch.version.cuda
        v["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001
        pass
    return v


def table(report):
    lines = [f"embtune GPU check ({'DRY RUN on ' + report['device'] if report['dry_run'] else report['device']}), "
             f"{report['started']}, {report['total_seconds']:.0f} s", ""]
    lines.append(f"{'#':<2} {'check':<16} {'status':<6} {'s':>6}  summary")
    for c in report["checks"]:
        lines.append(f"{c['check']:<2} {c['name']:<16} {c['status']:<6} {c['seconds']:>6.1f}  {c['summary']}")
    speed = next((c for c in report["checks"] if c["name"] == "speed" and "encode" in c), None)
    if speed:
        lines += ["", f"{'speed':<22} {'embtune':>10} {'ST':>10} {'ratio':>7}"]
        for k, v in speed["encode"].items():
            lines.append(f"{'encode ' + k:<22} {v['embtune_sentences_per_sec']:>10.1f} {v['st_sentences_per_sec']:>10.1f} {v['ratio']:>6.2f}x")
        for k, v in speed["train"].items():
            if v["embtune_pairs_per_sec"]:
                lines.append(f"{'train ' + k + ' pairs/s':<22} {v['embtune_pairs_per_sec']:>10.1f} {v['st_pairs_per_sec']:>10.1f} {v['ratio']:>6.2f}x")
    lines += ["", "versions: " + json.dumps(report["versions"]), f"setup: {json.dumps(report['setup'])}"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", required=True)
    ap.add_argument("--embtune", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated check numbers")
    ap.add_argument("--reference", action="store_true", help="write the CPU reference curves into the stage")
    ap.add_argument("--print-curve", action="store_true", help="print check 4's training settings (the reference's cache key)")
    args = ap.parse_args()
    if args.print_curve:
        spec = types.SimpleNamespace(model_dir=lambda folder="model": folder, device="DEVICE")
        print(json.dumps({"curve": CURVE, "fp32": curve_cmd(spec, "OUT", False), "bf16": curve_cmd(spec, "OUT", True)}))
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    ctx = Ctx(args)
    if args.reference:
        make_reference(ctx)
        shutil.rmtree(ctx.work, ignore_errors=True)
        return 0
    start = time.perf_counter()
    report = {"device": args.device, "dry_run": args.dry_run, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "versions": versions(ctx), "checks": []}
    try:
        report["setup"] = prepare(ctx)
    except Exception as e:  # noqa: BLE001 - every failure goes in the report
        report["setup"] = {"error": f"{type(e).__name__}: {e}"}
    only = {int(x) for x in args.only.split(",") if x}
    for num, name, fn in CHECKS:
        if only and num not in only:
            continue
        c = Check(num, name)
        t = time.perf_counter()
        if "error" in report["setup"]:
            c.summary = "setup failed: " + report["setup"]["error"]
        else:
            try:
                fn(ctx, c)
            except Exception as e:  # noqa: BLE001
                c.status = "fail"
                c.summary = f"{type(e).__name__}: {e}"[:1200]
                ctx.log.write(traceback.format_exc())
        c.seconds = time.perf_counter() - t
        report["checks"].append(c.as_dict())
        print(f"[{c.num}] {c.name}: {c.status} ({c.seconds:.1f}s) {c.summary}", flush=True)
        write(args.out, report, start)
    write(args.out, report, start)
    shutil.rmtree(ctx.work, ignore_errors=True)
    print(table(report))
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    return 1 if failed else 0


def write(out, report, start):
    report["total_seconds"] = time.perf_counter() - start
    (Path(out) / "gpu-check.json").write_text(json.dumps(report, indent=1, default=str))
    (Path(out) / "gpu-check.txt").write_text(table(report))


if __name__ == "__main__":
    sys.exit(main())
