"""Where a generation's dense vectors and BM25 live: the two searches the retriever fuses.

Two stores implement them over the same chunk rows (the line numbers of the generation's chunks.jsonl):
the default one, FAISS (``dense.faiss``) + bm25s (``sparse/``) files inside the generation folder
(index.dense.DenseIndex, index.sparse.SparseIndex), and Milvus (index/stores/milvus.py: one collection per
generation holding the e5 vectors and a BM25 function over the passage text, an alias as the current pointer).
The generation folder keeps chunks.jsonl, documents.jsonl and the manifest with either store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # settings import MilvusConfig from here: no FAISS or bm25s import for it
    import numpy as np

    from index.dense import DenseHits
    from index.sparse import SparseHits


class DenseStore(Protocol):
    @property
    def kind(self) -> str: ...  # flat | hnsw | milvus-<index type>

    @property
    def size(self) -> int: ...

    def search(self, vectors: np.ndarray, k: int) -> DenseHits:
        """Best k rows by inner product (cosine: the vectors are normalised) per query vector."""
        ...

    def similarities(self, vector: np.ndarray, rows: Sequence[int]) -> np.ndarray: ...


class SparseStore(Protocol):
    @property
    def size(self) -> int: ...

    def search(self, tokens: list[str], k: int, *, text: str | None = None) -> SparseHits:
        """Best k rows by BM25 with a positive score. FAISS's bm25s side scores our jieba ``tokens``; Milvus
        analyses ``text`` itself with its own jieba analyzer (the tokens joined by spaces when not given)."""
        ...

    def doc_freq(self, token: str) -> int: ...


@dataclass(frozen=True)
class MilvusConfig:
    """Where the Milvus store lives: a local file path (Milvus Lite, embedded) or http(s)://host:19530."""

    uri: str
    token: str = ""
    db: str = ""
    prefix: str = "policyqa"  # collection names <prefix>_<generation>, the alias <prefix>_current

    @property
    def alias(self) -> str:
        return f"{self.prefix}_current"
