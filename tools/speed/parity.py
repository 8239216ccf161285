"""embtune encode against SentenceTransformer.encode on one folder: the
cosine of each of 48 golden texts (evenly spaced from the golden corpus),
one thread each. For folders at the published sizes (tools/speed/
families.sh), where the goldens of make test are tiny.

  parity.py MODEL_DIR EMBTUNE_BIN
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
from generate import corpus_texts  # noqa: E402

from sentence_transformers import SentenceTransformer  # noqa: E402


def main():
    folder, embtune = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    texts = corpus_texts()
    texts = [t.replace("\n", " ") for t in texts[:: max(1, len(texts) // 48)][:48]]
    out = subprocess.run([embtune, "encode", "--model", folder, "--threads", "1", "--device", "cpu"],
                         input="\n".join(texts) + "\n", capture_output=True, text=True, check=True).stdout
    got = np.array([json.loads(line) for line in out.splitlines()], dtype=np.float64)
    want = SentenceTransformer(folder, device="cpu").encode(texts, batch_size=32).astype(np.float64)
    if got.shape != want.shape:
        raise SystemExit(f"{folder}: embtune gave {got.shape}, sentence-transformers {want.shape}")
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    print(f"{Path(folder).name}: {len(texts)} texts, cosine to sentence-transformers min {cos.min():.9f}, mean {cos.mean():.9f}")


if __name__ == "__main__":
    main()
