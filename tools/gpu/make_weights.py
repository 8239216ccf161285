"""Writes MiniLM-shaped weights for the GPU check: model.safetensors for the
config.json beside it, from an integer hash, so the GPU machine rebuilds
byte for byte the weights the CPU reference curves were made with (the real
90 MB weights do not fit the 64 MiB that travels; parity and speed do not
need them). Needs only numpy.

  make_weights.py MODEL_DIR          writes MODEL_DIR/model.safetensors, prints its sha256

Layout is BertModel's: normal-ish init with std 0.02 for matrices and
embeddings (the sum of four uniforms, exact in any numpy on any CPU: only
integer arithmetic and exactly rounded float32 operations), LayerNorm weights
1, biases 0, as transformers' BertPreTrainedModel._init_weights does.
"""

import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

SEED = 20261130
MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x):
    """SplitMix64 over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def normalish(n, stream):
    """n float32 values with mean 0 and std 0.02: a scaled sum of four 16-bit
    uniforms taken from one 64-bit hash per value."""
    idx = np.arange(n, dtype=np.uint64) + np.uint64(stream) * np.uint64(1 << 40) + np.uint64(SEED)
    h = splitmix64(idx)
    s = np.zeros(n, dtype=np.int64)
    for k in range(4):
        s += ((h >> np.uint64(16 * k)) & np.uint64(0xFFFF)).astype(np.int64)
    # The sum of four U{0..65535} has mean 131070 and variance 4 * (65536^2 - 1) / 12.
    centered = (s - 131070).astype(np.float32)  # |value| < 2^18: exact in float32
    std = np.float32(np.sqrt(4 * (65536.0**2 - 1) / 12))
    return centered / std * np.float32(0.02)


def shapes(cfg):
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    out = [
        ("embeddings.word_embeddings.weight", (cfg["vocab_size"], h)),
        ("embeddings.position_embeddings.weight", (cfg["max_position_embeddings"], h)),
        ("embeddings.token_type_embeddings.weight", (cfg["type_vocab_size"], h)),
        ("embeddings.LayerNorm.weight", (h,)),
        ("embeddings.LayerNorm.bias", (h,)),
    ]
    per = [
        ("attention.self.query.weight", (h, h)), ("attention.self.query.bias", (h,)),
        ("attention.self.key.weight", (h, h)), ("attention.self.key.bias", (h,)),
        ("attention.self.value.weight", (h, h)), ("attention.self.value.bias", (h,)),
        ("attention.output.dense.weight", (h, h)), ("attention.output.dense.bias", (h,)),
        ("attention.output.LayerNorm.weight", (h,)), ("attention.output.LayerNorm.bias", (h,)),
        ("intermediate.dense.weight", (i, h)), ("intermediate.dense.bias", (i,)),
        ("output.dense.weight", (h, i)), ("output.dense.bias", (h,)),
        ("output.LayerNorm.weight", (h,)), ("output.LayerNorm.bias", (h,)),
    ]
    for layer in range(cfg["num_hidden_layers"]):
        out += [(f"encoder.layer.{layer}.{name}", shape) for name, shape in per]
    out += [("pooler.dense.weight", (h, h)), ("pooler.dense.bias", (h,))]
    return out


def tensor(name, shape, stream):
    n = int(np.prod(shape))
    if name.endswith("LayerNorm.weight"):
        return np.ones(n, dtype=np.float32)
    if name.endswith(".bias"):
        return np.zeros(n, dtype=np.float32)
    return normalish(n, stream)


def write(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    header, blobs, offset = {"__metadata__": {"format": "pt", "embtune": f"gpu-check seed {SEED}"}}, [], 0
    for stream, (name, shape) in enumerate(shapes(cfg)):
        data = tensor(name, shape, stream).astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path = model_dir / "model.safetensors"
    tmp = path.with_suffix(".tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as f:
        for chunk in [struct.pack("<Q", len(h)), h, *blobs]:
            f.write(chunk)
            digest.update(chunk)
    tmp.replace(path)
    return digest.hexdigest()


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))
