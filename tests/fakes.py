"""Test doubles shared by the unit tests."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Sequence

import numpy as np


class FakeEncoder:
    """Deterministic stand-in for the real encoders in index.encoders (satisfies the TextEncoder protocol).

    A text becomes the L2-normalised sum of hashed character bigrams (unigrams for one-character
    texts), so texts sharing bigrams are similar and identical texts give identical vectors in any
    process (crc32, not the salted built-in hash). Queries and passages share one space. A "token"
    is one non-space character; the prompt counts as two tokens and specials as two more.
    """

    PROMPT_TOKENS = 2
    SPECIAL_TOKENS = 2

    def __init__(self, dim: int = 64, *, max_tokens: int = 512, name: str = "fake-bigram") -> None:
        self._dim = dim
        self._max_tokens = max_tokens
        self._name = name
        self.query_calls = 0
        self.passages_encoded = 0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def fingerprint(self) -> str:
        return f"{self._name}-{self._dim}"

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def backend(self) -> str:
        return "fake"

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.query_calls += 1
        return self._embed(texts)

    def encode_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 16,
        on_progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        items = list(texts)
        rows = []
        for start in range(0, len(items), max(1, batch_size)):
            batch = items[start : start + max(1, batch_size)]
            rows.append(self._embed(batch))
            self.passages_encoded += len(batch)
            if on_progress is not None:
                on_progress(len(batch))
        return np.concatenate(rows) if rows else np.empty((0, self._dim), dtype=np.float32)

    def count_tokens(self, text: str, *, query: bool) -> int:
        return sum(1 for ch in text if not ch.isspace()) + self.PROMPT_TOKENS + self.SPECIAL_TOKENS

    def truncates(self, text: str, *, query: bool) -> bool:
        return self.count_tokens(text, query=query) > self._max_tokens

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            chars = [ch for ch in text.lower() if not ch.isspace()]
            grams = ["".join(pair) for pair in itertools.pairwise(chars)] or chars
            for gram in grams:
                h = zlib.crc32(gram.encode("utf-8"))
                out[row, h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0  # empty text: still a unit vector
        return out
