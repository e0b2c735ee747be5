"""What every encoder shares: the TextEncoder protocol, e5 prompts, the query-vector LRU, length-sorted
passage batches and token counting. A backend supplies only `_embed` and `_token_count`."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from index.modelprep import PROMPTS

__all__ = ["QUERY_CACHE_SIZE", "BaseEncoder", "EncoderPrompts", "TextEncoder"]

# Used when the folder has no sentence-transformers config to say otherwise.
DEFAULT_WINDOW = 512
QUERY_CACHE_SIZE = 256
_ST_CONFIG = "config_sentence_transformers.json"
_SBERT_CONFIG = "sentence_bert_config.json"


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

    @property
    def backend(self) -> str: ...

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


def folder_window(model_dir: Path) -> int:
    """The folder's max_seq_length (sentence_bert_config.json), else 512."""
    try:
        value = json.loads((model_dir / _SBERT_CONFIG).read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        value = None
    return int(value or DEFAULT_WINDOW)


class BaseEncoder:
    """Embeds queries and passages; output rows are float32 and L2-normalised (dot product = cosine).

    Subclasses check the folder with ``_folder`` before computing its fingerprint, set ``_dim``/``_max_tokens``
    and implement ``_embed`` (prompted texts of one batch) and
    ``_token_count``. Calls are serialised by one lock: the fast tokenizer is stateful and there is no speed
    to gain from parallel calls on a small CPU.
    """

    backend_name = "base"

    def __init__(self, model_dir: Path, *, fingerprint: str, threads: int = 1, build_threads: int | None = None,
                 query_cache: int = QUERY_CACHE_SIZE) -> None:
        self._threads = max(1, threads)  # questions
        self._build_threads = max(1, build_threads or threads)  # passages of an index build
        self._name = model_dir.name  # as given: a symlinked folder keeps the name it is known by
        self._model_dir = model_dir.resolve()
        self._prompts = EncoderPrompts.from_folder(self._model_dir)
        self._fingerprint = fingerprint
        self._dim = 0
        self._max_tokens = DEFAULT_WINDOW
        self._lock = threading.Lock()
        # The same question is often encoded twice in a row (search, then answer; an eval run's search and
        # answer calls; a retried request): a small LRU of query vectors skips the repeat.
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
        return self._fingerprint

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def backend(self) -> str:
        return self.backend_name

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
            out[todo] = self._run([self._prompts.query + items[i] for i in todo], batch_size=32, build=False)
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
            out[rows] = self._run([self._prompts.passage + items[i] for i in rows], batch_size=step, build=True)
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
            return self._token_count(prompt + text)

    def truncates(self, text: str, *, query: bool) -> bool:
        return self.count_tokens(text, query=query) > self._max_tokens

    def _run(self, texts: list[str], *, batch_size: int, build: bool) -> np.ndarray:
        if not texts:
            return np.empty((0, self._dim), dtype=np.float32)
        with self._lock:
            vectors = self._embed(texts, batch_size=batch_size, build=build)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @staticmethod
    def _folder(model_dir: Path) -> Path:
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise FileNotFoundError(f"embedding model folder not found: {model_dir}")
        return model_dir

    # --- what a backend implements -------------------------------------------------------------------
    def _embed(self, texts: list[str], *, batch_size: int, build: bool) -> np.ndarray:
        """Normalised vectors of already-prompted texts; ``build`` = passages of an index build."""
        raise NotImplementedError

    def _token_count(self, text: str) -> int:
        raise NotImplementedError
