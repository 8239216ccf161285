"""Usage (golden venv, HF_HUB_OFFLINE=1; THREADS, BS in the environment):
  sens.py fp32 base only:up keep:down keep:L3 sq:0.5:ln sq:0.5:cal sq:0.5:ln:kd2 sq:0.5:ln:keepdown
only:KIND quantizes just that kind (qkv, ao, up, down), keep:KIND[@L] or keep:LN
keeps it fp32; sq:ALPHA:SRC smooths the QKV and FFN-up inputs with ranges from the
LayerNorm (ln, lnK for K|γ|+|β|) or calibrated on the golden texts (cal), :down
smooths FFN down too, :kdL / :keepdown keep FFN down of layer L / all in fp32.

Per-Linear sensitivity of MiniLM int8 (quantized::linear_dynamic, onednn,
reduce_range=False, per-channel symmetric weights), mirroring embtune's
quantized encoder: texts sorted by token length, batches of 32, real tokens
packed so the activation scale spans the batch's real tokens."""
import json, sys, os
import numpy as np, torch
from safetensors.torch import load_file

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
torch.backends.quantized.engine = "onednn"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
W = load_file(f"{ROOT}/third_party/models/all-MiniLM-L6-v2/model.safetensors")
W = {k.removeprefix("bert."): v for k, v in W.items()}
rows = [json.loads(l) for l in open(f"{ROOT}/testdata/golden/tokens.jsonl")]
ids = [r["ids"] for r in rows]
gold = np.fromfile(f"{ROOT}/testdata/golden/embeddings.f32", dtype="<f4").reshape(len(ids), 384)
L, H, NH, EPS = 6, 384, 12, 1e-12

def wb(n): return W[n + ".weight"], W[n + ".bias"]

def pack(w, b, mode):
    if mode == "fp32": return ("fp32", w, b)
    if mode == "fp16": return ("fp16", torch.ops.quantized.linear_prepack_fp16(w, b))
    amax = w.abs().amax(1)
    s = (amax / 127.5).clamp_min(torch.finfo(torch.float32).eps).double()
    q = torch.quantize_per_channel(w, s, torch.zeros(w.shape[0], dtype=torch.long), 0, torch.qint8)
    return ("int8", torch.ops.quantized.linear_prepack(q, b))

def run(p, x):
    if len(p) == 3 and p[0] == "sq":
        return run(p[2], x * p[1])
    if p[0] == "fp32": return torch.nn.functional.linear(x, p[1], p[2])
    if p[0] == "fp16": return torch.ops.quantized.linear_dynamic_fp16(x, p[1])
    return torch.ops.quantized.linear_dynamic(x, p[1], False)

KINDS = ["qkv", "ao", "up", "down"]
def build(cfg):
    """cfg(layer, kind) -> mode"""
    P = []
    for l in range(L):
        pre = f"encoder.layer.{l}."
        q, k, v = (wb(pre + "attention.self." + n) for n in ("query", "key", "value"))
        d = {"qkv": (torch.cat([q[0], k[0], v[0]]), torch.cat([q[1], k[1], v[1]])),
             "ao": wb(pre + "attention.output.dense"), "up": wb(pre + "intermediate.dense"),
             "down": wb(pre + "output.dense")}
        lnof = {"qkv": pre[:-1] and (f"encoder.layer.{l-1}.output.LayerNorm" if l else "embeddings.LayerNorm"),
                "up": pre + "attention.output.LayerNorm"}
        P.append({})
        for kd in KINDS:
            mode = cfg(l, kd)
            if mode.startswith("sq") and kd == "down":
                alpha = float(mode.split(":")[1]); src = mode.split(":")[2]
                if src.startswith("ln"):
                    K = float(src[2:] or 1)
                    g, be = W[pre + "attention.output.LayerNorm.weight"], W[pre + "attention.output.LayerNorm.bias"]
                    wu, bu = d["up"]
                    z = K * ((wu * g) ** 2).sum(1).sqrt() + (bu + wu @ be).abs()
                    a = torch.nn.functional.gelu(z)
                else:
                    a = CAL[(l, kd)]
                w, bb = d[kd]
                sc = (a.clamp_min(1e-5) ** alpha / w.abs().amax(0).clamp_min(1e-5) ** (1 - alpha))
                P[-1][kd] = ("sq", 1 / sc, pack(w * sc, bb, "int8"))
            elif mode.startswith("sq") and kd in lnof:
                alpha = float(mode.split(":")[1]); src = mode.split(":")[2]
                if src.startswith("ln"):
                    K = float(src[2:] or 1)
                    a = K * W[lnof[kd] + ".weight"].abs() + W[lnof[kd] + ".bias"].abs()
                else:
                    a = CAL[(l, kd)]
                w, bb = d[kd]
                sc = (a.clamp_min(1e-5) ** alpha / w.abs().amax(0).clamp_min(1e-5) ** (1 - alpha))
                P[-1][kd] = ("sq", 1 / sc, pack(w * sc, bb, "int8"))
            else:
                P[-1][kd] = pack(*d[kd], "int8" if mode.startswith("sq") else mode)
    return P

def ln(x, n): return torch.layer_norm(x, [H], W[n + ".weight"], W[n + ".bias"], EPS)

def encode_batch(P, batch, hook=None):
    b, s = len(batch), max(len(t) for t in batch)
    inp = torch.zeros(b, s, dtype=torch.long); mask = torch.zeros(b, s, dtype=torch.long)
    for i, t in enumerate(batch): inp[i, :len(t)] = torch.tensor(t); mask[i, :len(t)] = 1
    idx = (mask.reshape(-1) > 0).nonzero().squeeze(1)
    x = W["embeddings.word_embeddings.weight"][inp.reshape(-1)[idx]] + W["embeddings.position_embeddings.weight"][idx % s] + W["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    am = (mask > 0)[:, None, None, :]
    for l in range(L):
        pre = f"encoder.layer.{l}."
        if hook: hook(l, "qkv", x)
        qkv = run(P[l]["qkv"], x)
        full = qkv.new_zeros(b * s, 3 * H).index_copy(0, idx, qkv).view(b, s, 3, NH, H // NH).permute(2, 0, 3, 1, 4)
        a = torch.nn.functional.scaled_dot_product_attention(full[0], full[1], full[2], am)
        a = a.transpose(1, 2).reshape(b * s, H).index_select(0, idx)
        if hook: hook(l, "ao", a)
        a = run(P[l]["ao"], a)
        x = ln(a + x, pre + "attention.output.LayerNorm")
        if hook: hook(l, "up", x)
        f = torch.nn.functional.gelu(run(P[l]["up"], x))
        if hook: hook(l, "down", f)
        f = run(P[l]["down"], f)
        x = ln(f + x, pre + "output.LayerNorm")
    x = x.new_zeros(b * s, H).index_copy(0, idx, x).view(b, s, H)
    m = mask[..., None].float()
    e = (x * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(e, dim=1)

def encode(P, bs=32, hook=None):
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    out = np.zeros((len(ids), H), dtype=np.float32)
    with torch.no_grad():
        for st in range(0, len(order), bs):
            o = order[st:st + bs]
            out[o] = encode_batch(P, [ids[i] for i in o], hook).numpy()
    return out

def worst(P, bs=32):
    e = encode(P, bs)
    c = (e * gold).sum(1) / np.linalg.norm(gold, axis=1)
    i = int(c.argmin())
    return c.min(), i, np.sort(c)[:5]

if __name__ == "__main__":
    exps = sys.argv[1:] or ["base"]
    for ex in exps:
        if ex == "fp32": cfg = lambda l, k: "fp32"
        elif ex == "base": cfg = lambda l, k: "int8"
        elif ex.startswith("sq"):  # sq:ALPHA:SRC[:keepdown]
            parts = ex.split(":")
            if parts[2] == "cal" and "CAL" not in globals():
                CAL = {}
                def hook(l, k, x):
                    m = x.abs().amax(0)
                    CAL[(l, k)] = torch.maximum(CAL.get((l, k), m), m)
                encode(build(lambda l, k: "fp32"), 32, hook)
            def cfg(l, k, parts=parts):
                if k in ("qkv", "up") and (len(parts) < 4 or parts[3] != "uponly" or k == "up"):
                    return ":".join(parts[:3])
                if k == "down" and "keepdown" in parts: return "fp32"
                if k == "down" and f"kd{l}" in parts: return "fp32"
                if k == "down" and "down" in parts: return ":".join(parts[:3])
                return "int8"
        elif ex.startswith("keep:"):  # keep:down or keep:down@5 or keep:L5
            spec = ex[5:].split(",")
            def cfg(l, k, spec=spec):
                for sp in spec:
                    if sp.startswith("L") and int(sp[1:]) == l: return "fp32"
                    kk, _, ll = sp.partition("@")
                    if kk == k and (ll == "" or int(ll) == l): return "fp32"
                return "int8"
        elif ex.startswith("only:"):  # quantize only this kind (or kind@layer)
            kk, _, ll = ex[5:].partition("@")
            cfg = lambda l, k, kk=kk, ll=ll: "int8" if k == kk and (ll == "" or int(ll) == l) else "fp32"
        bs = int(os.environ.get("BS", "32"))
        w, i, low = worst(build(cfg), bs)
        print(f"{ex:24s} worst {w:.4f} at {i} {rows[i]['text'][:30]!r} low5 {np.round(low,4).tolist()}", flush=True)
