"""Encode throughput and latency: sentence-transformers (torch fp32), ONNX
Runtime fp32 and dynamic int8 of the same model, and embtune fp32 and int8,
on the same texts and machine, alternating, medians of ROUNDS, equal threads.

  bench_peer.py MODEL_DIR EMBTUNE_BIN [BEFORE_BIN]

BEFORE_BIN, an older embtune build, adds "embtune fp32 (before)" to the
alternation, for a before/after ratio from one run (its bench command may
predate --threads and --quantize, so it runs with its defaults: all cores).

MODEL_DIR may be any family embtune reads. ONNX Runtime runs where the
folder is Transformer, mean Pooling and Normalize and torch.onnx exports
its transformers model; embtune int8 runs where the family has an int8
form (otherwise embtune's refusal is printed). The export is cached per
model folder under third_party/tmp/onnx/. BENCH_ROUNDS sets the rounds
(3), BENCH_TEXTS=N times N of the golden texts, evenly spaced (all 441),
BENCH_LATENCY=0 skips the single-query latencies, BENCH_QUALITY=0 the
int8 quality line.

ONNX Runtime is driven directly (sentence-transformers' backend="onnx" extra
cannot be installed with transformers 5): the model is exported with
torch.onnx and quantized with onnxruntime.quantization.quantize_dynamic as
sentence-transformers' int8 export does (per-channel int8 weights, uint8
activations, no reduce_range). Each ONNX Runtime encode times the HF
tokenizer, the session, and mean pooling plus normalisation, with texts
sorted by length as SentenceTransformer.encode sorts them.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import ROOT, corpus_texts  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BATCH = 32
LATENCY_QUERIES = 500
LATENCY_BLOCK = 50
# Untimed queries at the start of every block, for every system: the engine
# that ran the block before keeps its idle threads spinning for tens of ms
# (ONNX Runtime's allow_spinning, libgomp's spin-wait) on the same cores.
# Measured with one warm-up query: serve's first 5 queries after ONNX
# Runtime's block took 5.3 ms against 2.0 ms from the 15th on, and 3.7 ms
# with ONNX Runtime's spinning turned off; ONNX Runtime's after serve's, 2.8
# against 2.1.
LATENCY_WARMUP = 10


def export_onnx(model_dir, out_dir):
    """model.onnx (fp32, torch.onnx) and model_int8.onnx (quantize_dynamic), cached."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out_dir / "model.onnx", out_dir / "model_int8.onnx"
    if not fp32.exists():
        model = AutoModel.from_pretrained(model_dir).eval()

        class Wrap(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        ids = torch.ones(2, 8, dtype=torch.long)
        tmp = out_dir / "model.onnx.tmp"
        torch.onnx.export(Wrap(model), (ids, ids), str(tmp), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
                                        "last_hidden_state": {0: "b", 1: "s"}})
        tmp.rename(fp32)
    if not int8.exists():
        tmp = out_dir / "model_int8.tmp.onnx"
        quantize_dynamic(str(fp32), str(tmp), per_channel=True, reduce_range=False, weight_type=QuantType.QInt8)
        tmp.rename(int8)
    return fp32, int8


def onnx_dir(model_dir):
    """The ONNX export cache of one model folder."""
    import hashlib

    p = Path(model_dir).resolve()
    return ROOT / "third_party" / "tmp" / "onnx" / f"{p.name}-{hashlib.sha256(str(p).encode()).hexdigest()[:8]}"


def ort_unsupported(st):
    """Why the ONNX Runtime encoder (mean pooling, then normalisation)
    cannot stand in for this folder's pipeline, or None."""
    kinds = [type(m).__name__ for m in st]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        return "modules " + ", ".join(kinds)
    cfg = st[1].get_config_dict()
    mode = cfg.get("pooling_mode") or [k[len("pooling_mode_"):] for k, v in cfg.items()
                                       if k.startswith("pooling_mode_") and v is True]
    if mode not in ("mean", ["mean_tokens"]):
        return f"pooling {mode}"
    return None


class ORTEncoder:
    def __init__(self, path, tokenizer, threads, max_len, dim):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.tok, self.max_len, self.dim = tokenizer, max_len, dim

    def encode(self, texts, batch=BATCH):
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            enc = self.tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_len,
                           return_tensors="np")
            mask = enc["attention_mask"].astype(np.int64)
            h = self.sess.run(None, {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": mask})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (h * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[idx] = pooled
        return out


def ndcg10(q, c, relevant):
    """InformationRetrievalEvaluator's NDCG@10 with cosine scores (binary relevance)."""
    scores = q @ c.T
    total = 0.0
    for i, rel in enumerate(relevant):
        top = np.argsort(-scores[i], kind="stable")[:10]
        dcg = sum(1.0 / np.log2(r + 2) for r, d in enumerate(top) if d in rel)
        idcg = sum(1.0 / np.log2(r + 2) for r in range(min(len(rel), 10)))
        total += dcg / idcg
    return total / len(relevant)


def embtune_bench(binary, model_dir, path, threads, quantize):
    args = [binary, "bench", "--model", model_dir, "--texts", path, "--batch-size", str(BATCH),
            "--reps", "1", "--gemm=false"]
    if quantize is not None:
        args += ["--threads", str(threads), "--quantize", quantize]
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise Refused(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}")
    return json.loads(res.stdout)["median_seconds"]


class Refused(Exception):
    """embtune declined the run (e.g. --quantize int8 on a family without an int8 form)."""


def embtune_latency(binary, model_dir, threads, texts):
    """embtune bench --latency: each text encoded alone in the embtune
    process (tokenize, forward, pool), the floor under the served figure."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(t.replace("\n", " ") for t in texts) + "\n")
    try:
        out = subprocess.run([binary, "bench", "--model", model_dir, "--texts", f.name, "--latency", "--threads",
                              str(threads), "--quantize", "int8"], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out)["latency_seconds"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(times):
    times = sorted(times)
    return 1000 * times[len(times) // 2], 1000 * times[min(len(times) - 1, int(0.99 * len(times)))]


def paired_latency(binary, model_dir, threads, queries, peer):
    """One query at a time, in blocks of LATENCY_BLOCK queries alternating
    between peer(q) in process, POST /embed to embtune serve on one
    kept-alive connection (as an HTTP client library keeps it: a new TCP
    connection per query would time the handshake too), and GET /ping on it
    (the HTTP round trip alone). Blocks, not single queries, alternate: both
    engines' idle threads spin for a while after each call, and alternating
    query by query made each wait for the other's spinning threads (ONNX
    Runtime 2.5 ms instead of 1.9, embtune 5.5 instead of 2.0, on 2 cores).
    Each block starts with LATENCY_WARMUP untimed queries for every system
    (the previous system's threads are still spinning then). Returns the p50
    and p99 of each, in ms."""
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--model", model_dir, "--addr", f"127.0.0.1:{port}", "--threads",
                             str(threads), "--quantize", "int8"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/ping", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call(method, path, body=None):
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"{path} answered {r.status}")

        def embed(q):
            call("POST", "/embed", json.dumps({"inputs": q}).encode())

        try:
            for q in queries[:20]:
                peer(q)
                embed(q)
            times = {"peer": [], "serve": [], "ping": [], "in-process": []}
            systems = {"peer": peer, "serve": embed, "ping": lambda q: call("GET", "/ping")}
            for at in range(0, len(queries), LATENCY_BLOCK):
                block = queries[at:at + LATENCY_BLOCK]
                warm = block[:LATENCY_WARMUP]
                for name, fn in systems.items():
                    for q in warm:
                        fn(q)
                    for q in block:
                        start = time.perf_counter()
                        fn(q)
                        times[name].append(time.perf_counter() - start)
                times["in-process"] += embtune_latency(binary, model_dir, threads, warm + block)[len(warm):]
            out = {k: percentiles(v) for k, v in times.items()}
            out["inside"] = server_means(urllib.request.urlopen(url + "/metrics", timeout=10).read().decode())
            return out
        finally:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def server_means(metrics):
    """Mean ms per /embed request inside serve, from its /metrics: the
    handler's whole time, tokenizing, the queue and the forward batch (which
    includes the hand-off to and from the torch thread)."""
    values = {}
    for line in metrics.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)

    def mean(name, labels=""):
        count = values.get(name + "_count" + labels, 0)
        return 1000 * values.get(name + "_sum" + labels, 0) / count if count else float("nan")

    return {"request": mean("embtune_http_request_duration_seconds", '{route="embed"}'),
            "tokenize": mean("embtune_tokenization_seconds"), "queue": mean("embtune_queue_seconds"),
            "forward": mean("embtune_inference_seconds")}


def print_latency(lat, n):
    print(f"latency, one query at a time, alternating in blocks of {LATENCY_BLOCK} after {LATENCY_WARMUP} untimed "
          f"({n} Debian FAQ questions), "
          f"load average {os.getloadavg()[0]:.2f}:")
    print(f"  ONNX Runtime int8 (tokenize + run + pool, in process): p50 {lat['peer'][0]:.2f} ms, p99 {lat['peer'][1]:.2f} ms")
    print(f"  embtune serve --quantize int8, POST /embed over HTTP:  p50 {lat['serve'][0]:.2f} ms, p99 {lat['serve'][1]:.2f} ms")
    print(f"  embtune --quantize int8 in process (bench --latency):  p50 {lat['in-process'][0]:.2f} ms, p99 {lat['in-process'][1]:.2f} ms")
    print(f"  the HTTP round trip alone, GET /ping:                  p50 {lat['ping'][0]:.2f} ms, p99 {lat['ping'][1]:.2f} ms")
    inside = lat["inside"]
    print(f"  inside serve, mean per /embed (its /metrics): handler {inside['request']:.2f} ms = tokenizing "
          f"{inside['tokenize']:.3f} + queue {inside['queue']:.3f} + forward batch {inside['forward']:.2f} "
          f"(with the torch-thread hand-off) + the rest {inside['request'] - inside['tokenize'] - inside['queue'] - inside['forward']:.2f}")


def latency(binary, model_dir, threads, task, ort8):
    """Prints the paired single-query latencies over LATENCY_QUERIES of the
    task's questions, repeated as needed."""
    queries = (task["queries"] * (LATENCY_QUERIES // len(task["queries"]) + 1))[:LATENCY_QUERIES]
    print_latency(paired_latency(binary, model_dir, threads, queries, lambda q: ort8.encode([q])), len(queries))


def main():
    model_dir, binary = sys.argv[1], sys.argv[2]
    before = sys.argv[3] if len(sys.argv) > 3 else None
    threads = int(os.environ.get("BENCH_THREADS", 0)) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer

    texts = [t.replace("\n", " ").replace("\r", " ") for t in corpus_texts()]
    if int(os.environ.get("BENCH_TEXTS", "0")) > 0:
        n = min(int(os.environ["BENCH_TEXTS"]), len(texts))
        texts = [texts[i * len(texts) // n] for i in range(n)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
        path = f.name
    st = SentenceTransformer(model_dir, device="cpu")
    dim = st.get_sentence_embedding_dimension()
    ort32 = ort8 = None
    no_ort = ort_unsupported(st)
    if no_ort is None:
        try:
            fp32_path, int8_path = export_onnx(model_dir, onnx_dir(model_dir))
            ort32 = ORTEncoder(fp32_path, st.tokenizer, threads, st.max_seq_length, dim)
            ort8 = ORTEncoder(int8_path, st.tokenizer, threads, st.max_seq_length, dim)
            for enc in (ort32, ort8):
                enc.encode(texts[:64])
        except Exception as e:  # an export torch.onnx cannot do is reported, not fatal
            no_ort, ort32, ort8 = f"export failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}", None, None
    st.encode(texts[:64], batch_size=BATCH)
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    print(f"model {Path(model_dir).name}: model_type {cfg.get('model_type')}, "
          f"{sum(p.numel() for p in st.parameters()) / 1e6:.1f}M parameters, dim {dim}, "
          f"max_seq_length {st.max_seq_length}")
    if no_ort:
        print(f"ONNX Runtime: not run ({no_ort})")

    if os.environ.get("BENCH_LATENCY_ONLY"):
        task = json.loads((ROOT / "testdata" / "golden" / "evaluator" / "debian-faq.json").read_text())
        latency(binary, model_dir, threads, task, ort8)
        return

    systems = {
        "sentence-transformers (torch fp32)": lambda: st.encode(texts, batch_size=BATCH),
        "ONNX Runtime fp32": ort32 and (lambda: ort32.encode(texts)),
        "ONNX Runtime dynamic int8": ort8 and (lambda: ort8.encode(texts)),
        "embtune fp32": "none",
        "embtune int8": "int8",
    }
    systems = {k: v for k, v in systems.items() if v is not None}
    if before:
        systems["embtune fp32 (before)"] = "before"
    times = {k: [] for k in systems}
    refused = {}
    for _ in range(ROUNDS):
        for name, fn in systems.items():
            if name in refused:
                continue
            if fn == "before":
                times[name].append(embtune_bench(before, model_dir, path, threads, None))
            elif isinstance(fn, str):
                try:
                    times[name].append(embtune_bench(binary, model_dir, path, threads, fn))
                except Refused as e:
                    refused[name] = str(e)
            else:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    load = os.getloadavg()
    print(f"texts {len(texts)}, batch {BATCH}, threads {threads}, rounds {ROUNDS} (alternating), torch {torch.__version__}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    med = {k: statistics.median(v) for k, v in times.items() if v}
    base = med.get("ONNX Runtime dynamic int8")
    st_med = med["sentence-transformers (torch fp32)"]
    print("| system | sentences/s | × ORT int8 | × ST | runs (s) |")
    print("|---|---|---|---|---|")
    for k, v in med.items():
        vs_ort = f"{base / v:.2f}" if base else "n/a"
        print(f"| {k} | {len(texts) / v:.1f} | {vs_ort} | {st_med / v:.2f} | {[round(t, 2) for t in times[k]]} |")
    for k, why in refused.items():
        print(f"{k}: refused: {why}")
    if ort8 is None or os.environ.get("BENCH_QUALITY", "1") == "0":
        os.unlink(path)
        return

    # Quality of ONNX Runtime int8 against sentence-transformers fp32.
    ref = st.encode(texts, batch_size=BATCH, normalize_embeddings=True)
    got = ort8.encode(texts)
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    task = json.loads((ROOT / "testdata" / "golden" / "evaluator" / "debian-faq.json").read_text())
    rel = [set(r) for r in task["relevant"]]
    n32 = ndcg10(st.encode(task["queries"], normalize_embeddings=True),
                 st.encode(task["corpus"], normalize_embeddings=True), rel)
    n8 = ndcg10(ort8.encode(task["queries"]), ort8.encode(task["corpus"]), rel)
    print(f"ONNX Runtime int8: worst cosine to ST fp32 {cos.min():.4f}; NDCG@10 Debian FAQ {n8:.4f} (ST fp32 {n32:.4f})")

    if os.environ.get("BENCH_LATENCY", "1") != "0" and "embtune int8" not in refused:
        latency(binary, model_dir, threads, task, ort8)
    os.unlink(path)


if __name__ == "__main__":
    main()
