"""Run a question set through the engine and write one JSON row per question per mode (run.jsonl)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.sets import Question
from index.store import built_backend, store_summary
from service.answering import Citation, CitationError, verify_citation
from service.engine import Engine
from service.llm.generate import AnswerMode

SEARCH_K = 10
ANSWER_K = 5


def index_fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a run's figures depend on besides the code: corpus, model, encoder variant, generation, and where
    the searches ran (FAISS or Milvus, which BM25 engine, which dense index)."""
    corpus = manifest.get("corpus") or {}
    model = manifest.get("model") or {}
    store = store_summary(manifest)
    return {"corpus": str(corpus.get("fingerprint", "")), "model": str(model.get("fingerprint", "")),
            "encoder": built_backend(manifest),
            "generation": str(manifest.get("generation", "")),
            "store": {k: store.get(k) for k in ("kind", "bm25", "dense_index")}}


def _citation(d: dict[str, Any]) -> Citation:
    return Citation(n=int(d.get("n", 0)), doc_id=d["doc_id"], chunk_id=d.get("chunk_id", ""),
                    title=d.get("title", ""), date=d.get("date", ""), section=tuple(d.get("section") or ()),
                    quote=d["quote"], start=int(d["start"]), end=int(d["end"]), article=str(d.get("article") or ""))


def run_label(mode: str, answer_mode: str) -> str:
    """The name a run's rows are grouped and reported under: hybrid, or hybrid+generative beside it."""
    return mode if answer_mode == "extractive" else f"{mode}+{answer_mode}"


def run_question(engine: Engine, q: Question, mode: str, doc_ids: Mapping[str, str] | None = None,
                 answer_mode: AnswerMode = "extractive") -> dict[str, Any]:
    """One row of run.jsonl. `doc_ids` maps index doc ids to the set's own ids (external sets), applied to
    the ranked documents and the citations after the citations were verified against the index."""
    # The answer is timed first with no remembered query vector, so its latency includes encoding the question
    # as a new question's would; the ranking search after it reuses that vector, so its own time is not
    # representative and the search latency reported is the retrieval part of the answer call.
    clear = getattr(engine.encoder, "clear_query_cache", None)
    if clear is not None:
        clear()
    t0 = time.perf_counter()
    ans = engine.answer(q.question, ANSWER_K, mode, answer_mode)
    t1 = time.perf_counter()
    resp = engine.search(q.question, SEARCH_K, mode)
    search_ms = sum(v for name, v in ans.timings_ms.items() if name in ("encode", "dense", "sparse", "fuse"))
    a = ans.to_dict()
    index = engine.index
    checks: list[bool] = []
    for c in a["citations"]:
        try:
            verify_citation(index, _citation(c))
            checks.append(True)
        except (CitationError, KeyError, ValueError):
            checks.append(False)
    citations = [{k: c.get(k) for k in ("n", "quote", "doc_id", "chunk_id", "start", "end")}
                 for c in a["citations"]]
    ranked = [r.doc_id for r in resp.results]
    if doc_ids:
        ranked = [doc_ids.get(d, d) for d in ranked]
        for c in citations:
            c["doc_id"] = doc_ids.get(str(c["doc_id"]), c["doc_id"])
    return {
        "id": q.id, "mode": run_label(mode, answer_mode), "question": q.question, "tags": list(q.tags),
        "answerable": q.answerable, "answers": list(q.answers), "gold_docs": list(q.gold_docs),
        "require_all": q.require_all, "ranked_doc_ids": ranked,
        "ranked_chunk_ids": [r.chunk_id for r in resp.results],
        "answer": {"answer": a["answer"], "short_answer": a["short_answer"], "refused": a["refused"],
                   "reason": a["reason"], "confidence": a.get("confidence"), "citations": citations,
                   "answer_mode_used": a["answer_mode_used"], "fallback_reason": a["fallback_reason"],
                   "statements": a["statements"],
                   "llm_called": a["llm"] is not None},
        "citation_checks": checks,
        "citation_verified": all(checks),
        "timings": {"search_ms": round(search_ms, 2), "answer_ms": round((t1 - t0) * 1000, 2),
                    "engine_ms": a.get("timings_ms", {})},
    }


def error_row(q: Question, mode: str, exc: Exception, answer_mode: str = "extractive") -> dict[str, Any]:
    """The row of a question the engine could not answer (empty text, engine error): scored as a miss, counted
    as an error, and the run goes on."""
    return {
        "id": q.id, "mode": run_label(mode, answer_mode), "question": q.question, "tags": list(q.tags),
        "answerable": q.answerable, "answers": list(q.answers), "gold_docs": list(q.gold_docs),
        "require_all": q.require_all, "error": {"type": type(exc).__name__, "message": str(exc)},
        "ranked_doc_ids": [], "ranked_chunk_ids": [],
        "answer": {"answer": "", "short_answer": None, "refused": False, "reason": None, "confidence": None,
                   "citations": []},
        "citation_checks": [], "citation_verified": True, "timings": None,
    }


def run_set(engine: Engine, questions: Sequence[Question], modes: Sequence[str], out_path: Path,
            progress: bool = True, doc_ids: Mapping[str, str] | None = None,
            answer_modes: Sequence[AnswerMode] = ("extractive",)) -> int:
    """Write run.jsonl; returns the number of rows."""
    from tqdm import tqdm

    engine.search("预热", 1, "hybrid")  # load the index and the encoder before timing the first question
    n = 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    runs = [(mode, am) for am in answer_modes for mode in modes]
    with out_path.open("w", encoding="utf-8") as f, tqdm(total=len(questions) * len(runs), desc="eval",
                                                       unit="q", file=sys.stderr, disable=not progress) as bar:
        for mode, answer_mode in runs:
            bar.set_postfix(mode=run_label(mode, answer_mode))
            for q in questions:
                try:
                    row = run_question(engine, q, mode, doc_ids, answer_mode)
                except Exception as exc:  # one bad question must not end a run of thousands
                    row = error_row(q, mode, exc, answer_mode)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
                bar.update(1)
    return n
