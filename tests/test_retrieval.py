"""Hybrid retrieval with the real model and index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.retrieval import QueryError

DEV = Path("eval/sets/seeds-dev.jsonl")


def test_modes_and_score_breakdown(real_engine) -> None:  # type: ignore[no-untyped-def]
    for mode in ("hybrid", "dense", "sparse"):
        r = real_engine.search("江海区有多少名专职网格员", 5, mode)
        assert 0 < len(r.results) <= 5
        assert len({x.chunk_id for x in r.results}) == len(r.results)
        top = r.results[0]
        assert top.text == real_engine.index.documents[top.doc_id].text[top.start:top.end]
    h = real_engine.search("江海区有多少名专职网格员", 5, "hybrid").results[0]
    assert h.fused_score is not None and (h.dense_rank or h.sparse_rank)


def test_bad_queries(real_engine) -> None:  # type: ignore[no-untyped-def]
    for q in ("", "   \n"):
        with pytest.raises(QueryError) as e:
            real_engine.search(q)
        assert e.value.code == "empty_query" and e.value.message_zh
    with pytest.raises(QueryError):
        real_engine.search("江门", 5, "magic")
    long_q = "江门党建引领基层治理" * 120
    r = real_engine.search(long_q)
    assert r.truncated and r.results


def test_starter_set_recall(real_engine) -> None:  # type: ignore[no-untyped-def]
    """Hybrid finds the gold document in the top 5 for ≥ 0.95 of answerable dev questions."""
    rows = [json.loads(x) for x in DEV.read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r["answerable"]]
    hits = {m: 0 for m in ("hybrid", "dense", "sparse")}
    top1 = {m: 0 for m in hits}
    for r in rows:
        for m in hits:
            docs = [x.doc_id for x in real_engine.search(r["question"], 5, m).results]
            hits[m] += any(d in r["gold_docs"] for d in docs)
            top1[m] += bool(docs) and docs[0] in r["gold_docs"]
    n = len(rows)
    print({m: (hits[m] / n, top1[m] / n) for m in hits})
    assert hits["hybrid"] / n >= 0.95
