"""Reciprocal-rank fusion of dense and sparse rankings, keeping each side's rank and score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FusedHit:
    row: int  # chunk row in the index
    fused: float
    dense_rank: int | None  # 1-based
    dense_score: float | None
    sparse_rank: int | None
    sparse_score: float | None


def rrf(dense: Sequence[tuple[int, float]], sparse: Sequence[tuple[int, float]], *, k: int = 60,
        limit: int | None = None) -> list[FusedHit]:
    """dense/sparse: (row, score) best first. A row found by both is listed once, its scores summed."""
    parts: dict[int, dict[str, float | int]] = {}
    for name, ranking in (("dense", dense), ("sparse", sparse)):
        seen: set[int] = set()
        for rank, (row, score) in enumerate(ranking, start=1):
            if row < 0 or row in seen:
                continue
            seen.add(row)
            entry = parts.setdefault(row, {"fused": 0.0})
            entry["fused"] = float(entry["fused"]) + 1.0 / (k + rank)
            entry[f"{name}_rank"] = rank
            entry[f"{name}_score"] = float(score)
    hits = [
        FusedHit(
            row=row,
            fused=float(e["fused"]),
            dense_rank=int(e["dense_rank"]) if "dense_rank" in e else None,
            dense_score=float(e["dense_score"]) if "dense_score" in e else None,
            sparse_rank=int(e["sparse_rank"]) if "sparse_rank" in e else None,
            sparse_score=float(e["sparse_score"]) if "sparse_score" in e else None,
        )
        for row, e in parts.items()
    ]
    # Ties (same fused score) go to the better best-rank, then the row order, so results are stable.
    hits.sort(key=lambda h: (-h.fused, min(h.dense_rank or 10**9, h.sparse_rank or 10**9), h.row))
    return hits[:limit] if limit is not None else hits


def score_fusion(dense: Sequence[tuple[int, float]], sparse: Sequence[tuple[int, float]], *, alpha: float = 0.3,
                 limit: int | None = None) -> list[FusedHit]:
    """Convex combination of normalised scores: (1-alpha)·BM25/max(BM25) + alpha·min-max(cosine).

    Unlike RRF it keeps how far apart the scores are: on short local-policy questions that share words with the
    text, a clear BM25 winner stays first unless the dense side is clearly more confident.
    """
    d_rank = _ranks(dense)
    s_rank = _ranks(sparse)
    d_score = {row: float(s) for row, s in dense if row >= 0}
    s_score = {row: float(s) for row, s in sparse if row >= 0}
    s_max = max(s_score.values(), default=0.0) or 1.0
    d_min = min(d_score.values(), default=0.0)
    d_span = (max(d_score.values(), default=0.0) - d_min) or 1.0
    hits = []
    for row in d_score.keys() | s_score.keys():
        dn = (d_score[row] - d_min) / d_span if row in d_score else 0.0
        fused = (1 - alpha) * s_score.get(row, 0.0) / s_max + alpha * dn
        hits.append(FusedHit(row=row, fused=fused, dense_rank=d_rank.get(row), dense_score=d_score.get(row),
                             sparse_rank=s_rank.get(row), sparse_score=s_score.get(row)))
    hits.sort(key=lambda h: (-h.fused, min(h.dense_rank or 10**9, h.sparse_rank or 10**9), h.row))
    return hits[:limit] if limit is not None else hits


def _ranks(ranking: Sequence[tuple[int, float]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for rank, (row, _) in enumerate(ranking, start=1):
        if row >= 0 and row not in out:
            out[row] = rank
    return out
