"""The running system: settings → model → current index generation → retriever and answerer.

Workers hold one Engine each. `refresh()` notices a new generation (the CURRENT pointer moved) and swaps
it in; requests already running keep the LoadedIndex object they started with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from corpus.pipeline import ChunkedCorpus, load_chunked_corpus
from index.builder import BuildResult, ModelInfo, build_index
from index.encoder import Encoder, TextEncoder
from index.generations import IndexNotFound, current_generation
from index.modelinfo import describe_model
from index.modelprep import ensure_model
from index.segmentation import Segmenter
from index.store import LoadedIndex, load_index
from service.answering import Answer, Answerer, Thresholds
from service.retrieval import Retriever, SearchResponse
from service.settings import Settings

log = logging.getLogger("policyqa")
Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


class Engine:
    def __init__(self, settings: Settings, *, encoder: TextEncoder | None = None) -> None:
        self.settings = settings
        self.segmenter = Segmenter()
        self._encoder = encoder
        self._index: LoadedIndex | None = None
        self._lock = threading.RLock()

    # --- model ---------------------------------------------------------------------------------------
    def model_dir(self) -> Path:
        if self.settings.embedding_model is not None:
            return self.settings.embedding_model
        return ensure_model(self.settings.model_dir, progress=lambda msg: log.info("model: %s", msg))

    def model_info(self) -> ModelInfo:
        return describe_model(self.model_dir())

    @property
    def encoder(self) -> TextEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = Encoder(self.model_dir(), threads=self.settings.torch_threads,
                                        query_cache=self.settings.query_cache)
            return self._encoder

    # --- index ---------------------------------------------------------------------------------------
    def corpus(self) -> ChunkedCorpus:
        return load_chunked_corpus(self.settings.corpus_dir, self.settings.chunker())

    def build(self, progress: Progress = _quiet, corpus: ChunkedCorpus | None = None) -> BuildResult:
        corpus = corpus or self.corpus()
        for p in corpus.problems:
            log.warning("skipped %s", p)
        info = self._model_info_for_build()
        return build_index(corpus, self.settings.index_dir, info, lambda: self.encoder,
                           segmenter=self.segmenter, hnsw_threshold=self.settings.hnsw_threshold,
                           progress=progress)

    def _model_info_for_build(self) -> ModelInfo:
        if self._encoder is not None and self.settings.embedding_model is None and not (
                self.settings.model_dir / "modules.json").exists():
            # an injected encoder (tests) stands for its own model
            e = self._encoder
            return ModelInfo(e.model_name, "", e.fingerprint, e.dim, e.max_tokens)
        return self.model_info()

    def _expected_fingerprint(self) -> str:
        if self._encoder is not None:
            return self._encoder.fingerprint
        return self.model_info().fingerprint

    def load(self) -> LoadedIndex:
        with self._lock:
            self._index = load_index(self.settings.index_dir, model_fingerprint=self._expected_fingerprint(),
                                     lexicon_hash=self.segmenter.hash)
            return self._index

    def ensure_index(self, progress: Progress = _quiet) -> LoadedIndex:
        """Load the current generation; build one first if there is none (first start)."""
        try:
            return self.load()
        except IndexNotFound:
            log.info("no index yet in %s: building one", self.settings.index_dir)
            self.build(progress)
            return self.load()

    @property
    def index(self) -> LoadedIndex:
        idx = self._index
        if idx is None:
            idx = self.load()
        return idx

    def refresh(self) -> bool:
        """Switch to a newer generation if the pointer moved. Returns True when it switched."""
        current = current_generation(self.settings.index_dir)
        idx = self._index
        if current is None or (idx is not None and idx.path == current):
            return False
        with self._lock:
            if self._index is not None and self._index.path == current:
                return False
            self.load()
            log.info("switched to index generation %s", current.name)
            return True

    def retriever(self) -> Retriever:
        return Retriever(self.index, self.encoder, self.segmenter, rrf_k=self.settings.rrf_k,
                         max_k=self.settings.max_k, fusion=self.settings.fusion,
                         dense_weight=self.settings.dense_weight)

    def search(self, query: str, k: int | None = None, mode: str = "hybrid") -> SearchResponse:
        return self.retriever().search(query, k or self.settings.default_k, mode)

    def answerer(self, thresholds: Thresholds | None = None) -> Answerer:
        return Answerer(self.retriever(), thresholds)

    def answer(self, question: str, k: int | None = None, mode: str = "hybrid") -> Answer:
        return self.answerer().answer(question, k or self.settings.default_k, mode)
