"""FAISS inner product over L2-normalised vectors: exact up to a threshold, HNSW above it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
# Batches up to this size (a request's single query) are searched on the calling thread alone. FAISS runs
# an OpenMP team (its own libgomp, one thread per vCPU) even for one query; on the 2-vCPU machine with
# the other vCPU busy, waiting for that team made one flat search over 100k vectors ~2.5x slower (48 vs
# 19 ms p50) and over 10k ~8x (16 vs 2 ms), and doubled HNSW's p99. Concurrent requests are the
# parallelism instead. Larger batches (FAISS uses BLAS from 20 queries) keep the default team.
SINGLE_THREAD_MAX_QUERIES = 16


@contextlib.contextmanager
def _faiss_threads(n: int) -> Iterator[None]:
    """FAISS's OpenMP thread count for the calling thread only (OpenMP keeps it per thread)."""
    before = faiss.omp_get_max_threads()
    if before == n:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@dataclass(frozen=True)
class DenseHits:
    ids: np.ndarray  # (n_queries, k) int64, -1 where fewer than k vectors exist
    scores: np.ndarray  # (n_queries, k) float32 cosine similarities


class DenseIndex:
    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self._index, faiss.IndexHNSW) else "flat"

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @classmethod
    def build(cls, vectors: np.ndarray, *, hnsw_threshold: int = 100_000) -> DenseIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-D array")
        n, dim = vectors.shape
        index: faiss.Index
        if n >= hnsw_threshold:
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            index = faiss.IndexFlatIP(dim)
        if n:
            index.add(vectors)
        return cls(index)

    def search(self, vectors: np.ndarray, k: int) -> DenseHits:
        queries = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        k = max(1, min(k, self.size)) if self.size else 1
        if not self.size:
            n = queries.shape[0]
            return DenseHits(np.full((n, 0), -1, dtype=np.int64), np.zeros((n, 0), dtype=np.float32))
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(HNSW_EF_SEARCH, k)  # type: ignore[attr-defined]
        small = queries.shape[0] <= SINGLE_THREAD_MAX_QUERIES
        with _faiss_threads(1) if small else contextlib.nullcontext():
            scores, ids = self._index.search(queries, k)
        return DenseHits(ids.astype(np.int64), scores.astype(np.float32))

    def similarities(self, vector: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """Inner products of one query vector with stored rows (flat and HNSW both keep the vectors)."""
        stored = np.vstack([self._index.reconstruct(int(r)) for r in rows])
        return np.asarray(stored @ np.asarray(vector, dtype=np.float32), dtype=np.float32)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        index = faiss.read_index(str(path))
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        return cls(index)
