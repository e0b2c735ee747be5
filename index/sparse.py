"""BM25 (bm25s) over jieba tokens, built once per index generation and saved with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np


@dataclass(frozen=True)
class SparseHits:
    ids: np.ndarray  # (k,) int64, only documents with a positive score
    scores: np.ndarray  # (k,) float32


class SparseIndex:
    def __init__(self, retriever: bm25s.BM25, size: int) -> None:
        self._bm25 = retriever
        self.size = size

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> SparseIndex:
        retriever = bm25s.BM25()  # Lucene-style BM25, k1=1.5, b=0.75
        # bm25s rejects an empty vocabulary; a placeholder token keeps empty corpora loadable.
        safe = [toks if toks else ["\u0000"] for toks in token_lists] or [["\u0000"]]
        retriever.index(safe, show_progress=False)
        return cls(retriever, len(token_lists))

    def search(self, tokens: list[str], k: int, *, text: str | None = None) -> SparseHits:
        """BM25 over our jieba tokens (``text`` is for stores that analyse the query themselves)."""
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known or not self.size:
            return SparseHits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        scores = np.asarray(self._bm25.get_scores(known), dtype=np.float32)[: self.size]
        k = min(k, scores.shape[0])
        top = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return SparseHits(top.astype(np.int64), scores[top])

    def doc_freq(self, token: str) -> int:
        """How many indexed passages contain the token (0 when unknown)."""
        tid = self._bm25.vocab_dict.get(token)
        if tid is None:
            return 0
        indptr = self._bm25.scores["indptr"]  # CSC over tokens: one column per vocabulary id
        return int(indptr[tid + 1] - indptr[tid])

    def idf(self, token: str) -> float:
        df = self.doc_freq(token)
        return float(np.log(1.0 + (self.size - df + 0.5) / (df + 0.5)))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(folder))
        (folder / "size.txt").write_text(str(self.size))

    @classmethod
    def load(cls, folder: Path) -> SparseIndex:
        retriever = bm25s.BM25.load(str(folder))
        size = int((folder / "size.txt").read_text())
        return cls(retriever, size)
