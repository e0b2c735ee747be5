"""Sentence encoder used by the index: a thin wrapper around a local sentence-transformers folder.

Importing this module is cheap; torch and sentence_transformers are imported when an Encoder is built.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from index.modelprep import PROMPTS, model_fingerprint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["Encoder", "EncoderPrompts", "TextEncoder"]

# Used when the folder has no sentence-transformers config to say otherwise.
_DEFAULT_WINDOW = 512
QUERY_CACHE_SIZE = 256
_ST_CONFIG = "config_sentence_transformers.json"


@runtime_checkable
class TextEncoder(Protocol):
    """What the index needs from an encoder (tests pass tests.fakes.FakeEncoder)."""

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def model_name(self) -> str: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 16,
        on_progress: Callable[[int], None] | None = None,
    ) -> np.ndarray: ...

    def count_tokens(self, text: str, *, query: bool) -> int: ...

    def truncates(self, text: str, *, query: bool) -> bool: ...


@dataclass(frozen=True)
class EncoderPrompts:
    query: str
    passage: str

    @classmethod
    def from_config(cls, prompts: dict[str, str | None] | None) -> EncoderPrompts:
        """Prompts from the "prompts" mapping of a folder's config_sentence_transformers.json.

        Without any non-empty prompt (no file, no mapping, or the all-empty mapping sentence-transformers
        saves by default) the e5 prompts are assumed, as e5 is policyqa's model family. Otherwise the
        folder's prompts are used as they are ("document" is the sentence-transformers name for the
        passage side), with no prefix for a side it leaves out.
        """
        configured = {name: text for name, text in (prompts or {}).items() if text}
        if not configured:
            return cls(query=PROMPTS["query"], passage=PROMPTS["passage"])
        passage = configured.get("passage", configured.get("document", ""))
        return cls(query=configured.get("query", ""), passage=passage)

    @classmethod
    def from_folder(cls, model_dir: Path) -> EncoderPrompts:
        # Read the file itself: SentenceTransformer.prompts turns "not configured" into "" and so
        # cannot tell a folder without prompts from one that asks for none.
        try:
            config = json.loads((model_dir / _ST_CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        prompts = config.get("prompts") if isinstance(config, dict) else None
        return cls.from_config(prompts if isinstance(prompts, dict) else None)


def _load_sentence_transformer(model_dir: Path) -> SentenceTransformer:
    # Offline before the hub libraries are touched: the folder is local and the hubs are unreachable.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    # fp32 compute whatever the storage dtype: transformers 5 would otherwise keep an fp16 checkpoint
    # in fp16, which is slow on CPU.
    return SentenceTransformer(
        str(model_dir),
        device="cpu",
        local_files_only=True,
        model_kwargs={"dtype": "float32"},
    )


class Encoder:
    """Embeds queries and passages with a local sentence-transformers folder (CPU, fp32).

    Output rows are float32 and L2-normalised, so a dot product is the cosine similarity.
    """

    def __init__(self, model_dir: Path, *, threads: int | None = None, query_cache: int = QUERY_CACHE_SIZE) -> None:
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise FileNotFoundError(f"embedding model folder not found: {model_dir}")
        if threads is not None:
            import torch

            # Process-wide setting; on small boxes fewer threads than vCPUs can be faster.
            torch.set_num_threads(max(1, int(threads)))
        self._name = model_dir.name  # as given: a symlinked folder keeps the name it is known by
        self._model_dir = model_dir.resolve()
        self._model = _load_sentence_transformer(self._model_dir)
        self._prompts = EncoderPrompts.from_folder(self._model_dir)
        self._dim = int(self._model.get_embedding_dimension() or 0)
        self._max_tokens = int(self._model.max_seq_length or _DEFAULT_WINDOW)
        self._fingerprint: str | None = None
        # The fast tokenizer is stateful (truncation/padding settings) and errors with "Already
        # borrowed" under concurrent use; there is no speed to gain from parallel calls on CPU anyway.
        self._lock = threading.Lock()
        # The same question is often encoded twice in a row (search, then answer; an eval run's search and
        # answer calls; a retried request): a small LRU of query vectors skips the repeat (~50 ms each here).
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_size = max(0, query_cache)  # 0 turns it off (benchmarks of the encoder itself)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        """The model window in tokens, prompt and special tokens included."""
        return self._max_tokens

    @property
    def fingerprint(self) -> str:
        # Lazy: for a folder not made by modelprep this hashes the weights file.
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self._model_dir)
        return self._fingerprint

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def prompts(self) -> EncoderPrompts:
        return self._prompts

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        items = list(texts)
        out = np.empty((len(items), self._dim), dtype=np.float32)
        with self._lock:
            hits = {i: self._query_cache.get(t) for i, t in enumerate(items)}
        todo = [i for i, v in hits.items() if v is None]
        if todo:
            fresh = self._encode([items[i] for i in todo], self._prompts.query, batch_size=32)
            out[todo] = fresh
        with self._lock:
            for i, v in hits.items():
                if v is not None:
                    out[i] = v
                    self._query_cache.move_to_end(items[i])
            for i in todo:
                self._query_cache[items[i]] = out[i].copy()
            while len(self._query_cache) > self._query_cache_size:
                self._query_cache.popitem(last=False)
        return out

    def encode_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 16,
        on_progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed passages in batches of similar length (less padding); rows keep the input order."""
        items = list(texts)
        out = np.empty((len(items), self._dim), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]), reverse=True)
        step = max(1, batch_size)
        for start in range(0, len(order), step):
            rows = order[start : start + step]
            out[rows] = self._encode([items[i] for i in rows], self._prompts.passage, batch_size=step)
            if on_progress is not None:
                on_progress(len(rows))
        return out

    def clear_query_cache(self) -> None:
        with self._lock:
            self._query_cache.clear()

    def count_tokens(self, text: str, *, query: bool) -> int:
        """Tokens the model would see without truncation: prompt and special tokens included."""
        prompt = self._prompts.query if query else self._prompts.passage
        with self._lock:
            encoded: Any = self._model.tokenizer(
                prompt + text, add_special_tokens=True, truncation=False, verbose=False
            )
        return len(encoded["input_ids"])

    def truncates(self, text: str, *, query: bool) -> bool:
        return self.count_tokens(text, query=query) > self._max_tokens

    def _encode(self, texts: list[str], prompt: str, *, batch_size: int) -> np.ndarray:
        if not texts:
            return np.empty((0, self._dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts,
                prompt=prompt,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
