"""SageMaker inference handler for an embtune model archive (model.tar.gz).

Written by embtune's PackageModel. The AWS PyTorch and Hugging Face inference
containers import it from /opt/ml/model/code and call model_fn, input_fn,
predict_fn and output_fn.

Request (application/json):  {"inputs": "a text"} or {"inputs": ["a text", ...]}
Response (application/json): {"embeddings": [[...], ...]}, one L2-normalised
vector per input text, in input order.

Environment: EMBTUNE_BATCH_SIZE (texts per forward pass, default 32) and
EMBTUNE_MAX_INPUTS (texts per request, default 2048).
"""

import json
import os

import torch
from tokenizers import Tokenizer

JSON = "application/json"
BATCH_SIZE = max(1, int(os.environ.get("EMBTUNE_BATCH_SIZE", "32")))
MAX_INPUTS = max(1, int(os.environ.get("EMBTUNE_MAX_INPUTS", "2048")))


def _read_json(model_dir, name):
    path = os.path.join(model_dir, name)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _media_type(value):
    return (value or JSON).split(";")[0].strip().lower()


def model_fn(model_dir):
    """Loads model.pt (TorchScript) and tokenizer.json from the archive root."""
    manifest = _read_json(model_dir, "embtune-manifest.json")
    st_config = _read_json(model_dir, "sentence_bert_config.json")
    max_len = int(manifest.get("max_seq_length") or st_config.get("max_seq_length") or 256)
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    # tokenizer.json may pad and truncate to a fixed length; sentence-transformers
    # truncates at max_seq_length and pads to the longest text of the batch.
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.jit.load(os.path.join(model_dir, "model.pt"), map_location=device)
    model.eval()
    return {"model": model, "tokenizer": tokenizer, "device": device}


def input_fn(request_body, request_content_type):
    """Accepts {"inputs": str | [str]} (a bare string or list also works)."""
    if _media_type(request_content_type) != JSON:
        raise ValueError("unsupported content type %r: send application/json" % request_content_type)
    if isinstance(request_body, (bytes, bytearray)):
        request_body = bytes(request_body).decode("utf-8")
    data = json.loads(request_body)
    texts = data.get("inputs") if isinstance(data, dict) else data
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError('the body must be {"inputs": "a text"} or {"inputs": ["a text", ...]}')
    if len(texts) > MAX_INPUTS:
        raise ValueError("%d texts in one request; the limit is %d (EMBTUNE_MAX_INPUTS)" % (len(texts), MAX_INPUTS))
    return texts


def predict_fn(texts, model):
    """Embeds every text; returns a list of L2-normalised vectors."""
    encoder, tokenizer, device = model["model"], model["tokenizer"], model["device"]
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH_SIZE):
            batch = tokenizer.encode_batch(texts[start:start + BATCH_SIZE])
            ids = torch.tensor([e.ids for e in batch], dtype=torch.long, device=device)
            mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.long, device=device)
            emb = encoder(ids, mask).float()
            emb = torch.nn.functional.normalize(emb, p=2.0, dim=1)
            vectors.extend(emb.cpu().tolist())
    return vectors


def output_fn(prediction, accept):
    """Serialises {"embeddings": [...]} as JSON (the only type offered)."""
    if _media_type(accept) not in (JSON, "*/*"):
        raise ValueError("unsupported accept type %r: only application/json is offered" % accept)
    return json.dumps({"embeddings": prediction})
