"""Golden files for trainer.EvaluateIR from sentence-transformers' real
InformationRetrievalEvaluator.

Run with the golden venv, offline:

  HF_HUB_OFFLINE=1 third_party/golden-venv/bin/python tools/golden/gen_evaluator.py [MODEL_DIR]

For every task it writes to testdata/golden/evaluator/:

  <task>.json         {"queries": [...], "corpus": [...], "relevant": [[corpus index, ...], ...],
                       "metrics": {"accuracy@1": ..., ...}, "st_version": ..., ...}
  <task>.queries.f32  the query embeddings the evaluator scored, little-endian float32, rows x 384
  <task>.corpus.f32   the corpus embeddings the evaluator scored, likewise

Tasks:

  debian-faq      queries = the 120 Debian FAQ questions, corpus = their distinct
                  answers, relevant = the question's own answer.
  debian-chapter  the same queries and corpus; relevant = every answer in the
                  question's chapter (the first component of "section"), so most
                  queries have several relevant documents (up to 20). Grouping by the
                  full "section" string would repeat debian-faq: all 120 sections
                  in the file are distinct.
  ties            exact score ties: the first 40 questions against a corpus that holds
                  each of the first 40 answer embeddings three times (rows j, j+40 and
                  j+80 are bit-identical), so every ranking is full of ties, including
                  at the top-100 cut. Relevance points at different copies.

Corpus ids are zero-padded ("d000", ...) so that ST's tie-break, ascending corpus
id as a string, is the same order as ascending corpus index, which is what the Go
side uses. The embeddings are captured from the evaluator's own embed_inputs
calls (model.encode_query / model.encode_document with convert_to_tensor=True), so
they are exactly the numbers it scored.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "testdata" / "data"
OUT = ROOT / "testdata" / "golden" / "evaluator"
DEFAULT_MODEL = ROOT / "third_party" / "models" / "all-MiniLM-L6-v2"

# ST's metric family names -> the Go key prefix (identical, kept explicit).
FAMILIES = ["accuracy@k", "precision@k", "recall@k", "mrr@k", "ndcg@k", "map@k"]


def load_rows():
    with open(DATA / "debian-faq.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def qid(i):
    return f"q{i:03d}"


def did(i):
    return f"d{i:03d}"


class Capture:
    """Wraps evaluator.embed_inputs and keeps every tensor it returns."""

    def __init__(self, evaluator):
        self.calls = []
        orig = evaluator.embed_inputs

        def wrapped(model, sentences, encode_fn_name=None, **kw):
            emb = orig(model, sentences, encode_fn_name=encode_fn_name, **kw)
            self.calls.append((encode_fn_name, emb.detach().cpu().clone()))
            return emb

        evaluator.embed_inputs = wrapped

    def get(self, kind):
        parts = [e for name, e in self.calls if name == kind]
        return torch.cat(parts) if parts else None


def flat_metrics(scores):
    """ST's nested {"accuracy@k": {1: v}} -> {"accuracy@1": v}, as __call__ names them."""
    out = {}
    for fam in FAMILIES:
        for k, v in scores[fam].items():
            out[fam.replace("@k", f"@{k}")] = float(v)
    return out


def strip_call_keys(metrics, name, score_fn):
    prefix = f"{name}_{score_fn}_"
    out = {}
    for key, v in metrics.items():
        assert key.startswith(prefix), key
        out[key[len(prefix):]] = float(v)
    return out


def write_f32(path, t):
    a = np.ascontiguousarray(t.numpy(), dtype="<f4")
    assert a.ndim == 2
    a.tofile(path)


def write_task(task, queries, corpus, relevant_idx, metrics, q_emb, c_emb, extra):
    import sentence_transformers

    assert q_emb.shape == (len(queries), 384) and c_emb.shape == (len(corpus), 384)
    assert q_emb.dtype == torch.float32 and c_emb.dtype == torch.float32
    doc = {
        "task": task,
        "st_version": sentence_transformers.__version__,
        "torch_version": torch.__version__,
        "score_function": "cosine",
        "dim": int(q_emb.shape[1]),
        "queries": queries,
        "corpus": corpus,
        "relevant": relevant_idx,
        "metrics": metrics,
    }
    doc.update(extra)
    with open(OUT / f"{task}.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    write_f32(OUT / f"{task}.queries.f32", q_emb)
    write_f32(OUT / f"{task}.corpus.f32", c_emb)
    print(f"{task}: {len(queries)} queries, {len(corpus)} docs, "
          f"ndcg@10={metrics['ndcg@10']:.6f} map@100={metrics['map@100']:.6f}")


def run_full(model, task, queries, corpus, relevant_idx):
    """The whole public path: InformationRetrievalEvaluator(...)(model)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    q = {qid(i): t for i, t in enumerate(queries)}
    c = {did(j): t for j, t in enumerate(corpus)}
    rel = {qid(i): {did(j) for j in r} for i, r in enumerate(relevant_idx)}
    ev = InformationRetrievalEvaluator(q, c, rel, name=task, show_progress_bar=False)
    cap = Capture(ev)
    raw = ev(model)
    assert ev.queries_ids == list(q), "evaluator dropped or reordered queries"
    assert ev.corpus_ids == sorted(ev.corpus_ids), "corpus ids must sort like their indexes"
    metrics = strip_call_keys(raw, task, model.similarity_fn_name)
    q_emb, c_emb = cap.get("query"), cap.get("document")

    # The same numbers again through the encode calls the evaluator makes.
    q2 = model.encode_query(queries, batch_size=ev.batch_size, show_progress_bar=False, convert_to_tensor=True)
    c2 = model.encode_document(corpus, batch_size=ev.batch_size, show_progress_bar=False, convert_to_tensor=True)
    assert torch.equal(q_emb, q2.cpu()) and torch.equal(c_emb, c2.cpu()), "encode is not reproducible"
    return metrics, q_emb, c_emb


def ties_task(model, questions, answers, a_emb):
    """Corpus = 3 bit-identical copies of 40 answer embeddings, scored by the real
    evaluator's compute_all_metrics with precomputed corpus embeddings."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    n = 40
    queries = questions[:n]
    corpus = [answers[j % n] for j in range(3 * n)]
    c_emb = a_emb[:n].repeat(3, 1).contiguous()
    relevant_idx = []
    for i in range(n):
        r = [(i, i + n, i + 2 * n, i + n)[i % 4]]  # own answer, in one of its copies
        if i % 4 == 3:
            r.append(i + 2 * n)  # two copies of the own answer
        if i % 5 == 0:
            r.append((i + 7) % n + n)  # plus another answer's middle copy
        relevant_idx.append(sorted(set(r)))

    q = {qid(i): t for i, t in enumerate(queries)}
    c = {did(j): t for j, t in enumerate(corpus)}
    rel = {qid(i): {did(j) for j in r} for i, r in enumerate(relevant_idx)}
    ev = InformationRetrievalEvaluator(q, c, rel, name="ties", show_progress_bar=False)
    cap = Capture(ev)
    # What __call__ does first: take the model's own similarity.
    ev.score_functions = ev._model_score_functions(model)
    sims = []
    fn_name, fn = next(iter(ev.score_functions.items()))

    def recording(a, b):
        s = fn(a, b)
        sims.append(s.detach().cpu().clone())
        return s

    ev.score_functions = {fn_name: recording}
    scores = ev.compute_all_metrics(model, corpus_embeddings=c_emb)
    metrics = flat_metrics(scores[fn_name])
    q_emb = cap.get("query")

    # The ties must be real in the scores ST ranked.
    s = torch.cat(sims)
    assert torch.equal(s[:, :n], s[:, n : 2 * n]) and torch.equal(s[:, :n], s[:, 2 * n :]), "copies not tied"
    return queries, corpus, relevant_idx, metrics, q_emb, c_emb


def main():
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model_dir = sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_MODEL)
    model = SentenceTransformer(model_dir, device="cpu")
    model.eval()
    assert model.similarity_fn_name == "cosine", model.similarity_fn_name
    OUT.mkdir(parents=True, exist_ok=True)

    rows = load_rows()
    questions = [r["question"] for r in rows]
    answers, answer_idx = [], {}
    for r in rows:
        if r["answer"] not in answer_idx:
            answer_idx[r["answer"]] = len(answers)
            answers.append(r["answer"])
    own = [answer_idx[r["answer"]] for r in rows]

    # (a) one relevant document per query.
    rel_a = [[j] for j in own]
    m, q_emb, c_emb = run_full(model, "debian-faq", questions, answers, rel_a)
    write_task("debian-faq", questions, answers, rel_a, m, q_emb, c_emb, {})

    # (b) several relevant documents per query: the question's whole chapter.
    chapter = [r["section"].split(".")[0] for r in rows]
    by_chapter = {}
    for r, ch in zip(rows, chapter):
        by_chapter.setdefault(ch, set()).add(answer_idx[r["answer"]])
    rel_b = [sorted(by_chapter[ch]) for ch in chapter]
    m, q_emb_b, c_emb_b = run_full(model, "debian-chapter", questions, answers, rel_b)
    assert torch.equal(q_emb, q_emb_b) and torch.equal(c_emb, c_emb_b)
    write_task("debian-chapter", questions, answers, rel_b, m, q_emb_b, c_emb_b,
               {"relevance": "all answers whose section has the question's chapter (section.split('.')[0])"})

    # (c) exact ties everywhere.
    tq, tc, rel_c, m, q_emb_c, c_emb_c = ties_task(model, questions, answers, c_emb)
    # Re-encoded in other batches, so equal only up to float noise.
    assert torch.allclose(q_emb_c, q_emb[:40], atol=1e-5)
    write_task("ties", tq, tc, rel_c, m, q_emb_c, c_emb_c,
               {"relevance": "corpus rows j, j+40, j+80 are copies of answer j; see gen_evaluator.py"})


if __name__ == "__main__":
    main()
