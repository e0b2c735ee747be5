"""Hybrid retrieval: dense (FAISS) + sparse (BM25) fused by reciprocal rank, with score breakdowns."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from corpus.chunking import Chunk
from corpus.errors import BilingualError
from index.encoders import TextEncoder
from index.fusion import FusedHit, rrf, score_fusion
from index.gazetteer import load_gazetteer
from index.segmentation import Segmenter
from index.store import LoadedIndex
from index.synonyms import expand_terms
from service.named_article import promote_named_article

Mode = Literal["hybrid", "dense", "sparse"]
MODES: tuple[str, ...] = ("hybrid", "dense", "sparse")
CANDIDATES = 50  # per side before fusion


class QueryError(BilingualError):
    """The query itself is unusable (empty, bad mode, k out of range)."""


@dataclass(frozen=True)
class SearchResult:
    rank: int
    doc_id: str
    chunk_id: str
    title: str
    section: tuple[str, ...]
    date: str
    kind: str
    text: str
    start: int
    end: int
    score: float  # the score the ranking used (fused, cosine or BM25 by mode)
    fused_score: float | None
    dense_rank: int | None
    dense_score: float | None
    sparse_rank: int | None
    sparse_score: float | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["section"] = list(self.section)
        return d


@dataclass(frozen=True)
class SearchResponse:
    query: str
    mode: str
    k: int
    results: tuple[SearchResult, ...]
    truncated: bool  # the query was longer than the model window and was cut for the dense side
    generation: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "mode": self.mode, "k": self.k, "truncated": self.truncated,
                "generation": self.generation, "timings_ms": self.timings_ms,
                "results": [r.to_dict() for r in self.results]}


def validate_query(query: str, k: int, mode: str, max_k: int = 50) -> str:
    q = (query or "").strip()
    if not q:
        raise QueryError("empty_query", "问题不能为空", "the query is empty")
    if mode not in MODES:
        raise QueryError("bad_mode", f"mode 须为 {'、'.join(MODES)} 之一", f"mode must be one of {', '.join(MODES)}")
    if not 1 <= k <= max_k:
        raise QueryError("bad_k", f"k 须在 1 到 {max_k} 之间", f"k must be between 1 and {max_k}")
    return q


class Retriever:
    def __init__(self, index: LoadedIndex, encoder: TextEncoder, segmenter: Segmenter, *, rrf_k: int = 60,
                 max_k: int = 50, fusion: str = "score", dense_weight: float = 0.3,
                 exclude: frozenset[str] = frozenset()) -> None:
        self.index = index
        self.exclude = exclude  # deleted documents still in this generation
        self.encoder = encoder
        self.segmenter = segmenter
        self.rrf_k = rrf_k
        self.max_k = max_k
        self.fusion = fusion
        self.dense_weight = dense_weight

    def query_vector(self, query: str) -> np.ndarray:
        """The dense vector a question is searched with (its 江门 aliases expanded)."""
        return self.encoder.encode_queries([load_gazetteer().expand(query)])[0]

    def search(self, query: str, k: int = 5, mode: str = "hybrid", *,
               deny: frozenset[str] = frozenset()) -> SearchResponse:
        """The k best passages; `deny` leaves those documents out (other places' regulations, older versions)."""
        q = validate_query(query, k, mode, self.max_k)
        started = time.perf_counter()
        lookup = load_gazetteer().expand(q)
        timings: dict[str, float] = {}
        depth = max(CANDIDATES, k)
        excluded = self.exclude | deny
        if excluded:  # look deeper by as many rows as the excluded documents hold
            depth += sum(d.chunks for i, d in self.index.documents.items() if i in excluded)
        dense_list: list[tuple[int, float]] = []
        sparse_list: list[tuple[int, float]] = []
        truncated = False
        qvec: np.ndarray | None = None
        if mode in ("hybrid", "dense"):
            t = time.perf_counter()
            truncated = self.encoder.truncates(lookup, query=True)
            qvec = self.query_vector(q)
            timings["encode"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            hits = self.index.dense.search(qvec[None, :], depth)
            dense_list = [(int(i), float(s)) for i, s in zip(hits.ids[0], hits.scores[0], strict=True) if i >= 0]
            timings["dense"] = (time.perf_counter() - t) * 1000
        if mode in ("hybrid", "sparse"):
            t = time.perf_counter()
            sparse_q = expand_terms(lookup)  # 遛狗不牵绳 → also 牵引带: the words the texts use
            sh = self.index.sparse.search(self.segmenter.tokens(sparse_q), depth, text=sparse_q)
            sparse_list = [(int(i), float(s)) for i, s in zip(sh.ids, sh.scores, strict=True)]
            timings["sparse"] = (time.perf_counter() - t) * 1000
        if excluded:
            chunks = self.index.chunks
            dense_list = [h for h in dense_list if chunks[h[0]].doc_id not in excluded]
            sparse_list = [h for h in sparse_list if chunks[h[0]].doc_id not in excluded]
        t = time.perf_counter()
        if mode == "hybrid" and self.fusion == "score":
            fused = score_fusion(dense_list, sparse_list, alpha=self.dense_weight)
        else:
            fused = rrf(dense_list, sparse_list, k=self.rrf_k)
        # a question naming 第N条 gets that article first
        fused = promote_named_article(q, fused, self.index, exclude=excluded, query_vector=qvec)[:k]
        results = tuple(self._result(rank, h, mode) for rank, h in enumerate(fused, start=1))
        timings["fuse"] = (time.perf_counter() - t) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return SearchResponse(q, mode, k, results, truncated, self.index.generation,
                              {n: round(v, 3) for n, v in timings.items()}, qvec)

    def _result(self, rank: int, hit: FusedHit, mode: str) -> SearchResult:
        c: Chunk = self.index.chunks[hit.row]
        if mode == "dense":
            score = hit.dense_score or 0.0
        elif mode == "sparse":
            score = hit.sparse_score or 0.0
        else:
            score = hit.fused
        return SearchResult(rank=rank, doc_id=c.doc_id, chunk_id=c.chunk_id, title=c.title, section=c.section,
                            date=c.date, kind=c.kind, text=c.text, start=c.start, end=c.end, score=score,
                            fused_score=hit.fused if mode == "hybrid" else None,
                            dense_rank=hit.dense_rank, dense_score=hit.dense_score,
                            sparse_rank=hit.sparse_rank, sparse_score=hit.sparse_score)
