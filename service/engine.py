"""The running system: settings → model → current index generation → retriever and answerer.

Workers hold one Engine each. `refresh()` notices a new generation (the CURRENT pointer moved) and swaps
it in; requests already running keep the LoadedIndex object they started with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from corpus.documents import StoredIds, seed_documents
from corpus.pipeline import ChunkedCorpus, load_chunked_corpus
from index.answergate import AnswerGate
from index.builder import BuildResult, ModelInfo, build_index
from index.encoders import TextEncoder, load_encoder
from index.generations import IndexMismatch, IndexNotFound, current_generation
from index.modelinfo import describe_model
from index.modelprep import ensure_model
from index.segmentation import Segmenter
from index.store import LoadedIndex, load_index
from service.answering import Answer, Answerer, Thresholds
from service.answering.candidates import PassageReader
from service.llm.client import LLMClient
from service.llm.generate import AnswerMode, Event, GenerativeAnswerer
from service.retrieval import Retriever, SearchResponse
from service.settings import Settings

log = logging.getLogger("policyqa")


def _check_calibration(reader: PassageReader, thresholds: Thresholds) -> bool:
    """Whether the confidence model was fitted with this reader. Its weights and threshold are read off this
    reader's margins; another reader's margins (new layers, another precision) make its refusals arbitrary, so
    say so where an operator looks, once per engine, and keep answering."""
    if not thresholds.reader or thresholds.reader == reader.fingerprint:
        return True
    log.warning("the answer calibration was fitted with reader %s, but the reader in %s is %s: refusals may be "
                "wrong until `policyqa calibrate` is run with this reader / 置信度校准与当前阅读模型不符，请运行 "
                "policyqa calibrate", thresholds.reader[:12], reader.folder, reader.fingerprint[:12])
    return False


Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


def _log_model(message: str) -> None:
    log.info("model: %s", message)


class Engine:
    def __init__(self, settings: Settings, *, encoder: TextEncoder | None = None) -> None:
        self.settings = settings
        self.segmenter = Segmenter()
        self._encoder = encoder
        self._index: LoadedIndex | None = None
        self._reader: PassageReader | None = None
        llm = settings.llm()
        self.llm = LLMClient(llm) if llm is not None else None
        self._lock = threading.RLock()  # the index
        self._encoder_lock = threading.Lock()  # one each, so that preload() loads the two models side by side
        self._reader_lock = threading.Lock()
        self._stored = StoredIds(settings.corpus_dir)
        self.gate = AnswerGate(settings.index_dir)  # answers hold it; a build on this index waits for them

    # --- model ---------------------------------------------------------------------------------------
    def model_dir(self) -> Path:
        if self.settings.embedding_model is not None:
            folder = self.settings.embedding_model
            if self.settings.encoder_backend != "torch":
                from index.onnxexport import ensure_onnx

                ensure_onnx(folder, progress=_log_model)  # any other sentence-transformers folder: export once
            return folder
        return ensure_model(self.settings.model_dir, progress=_log_model)

    def model_info(self) -> ModelInfo:
        return describe_model(self.model_dir(), self.settings.encoder_backend)

    @property
    def encoder(self) -> TextEncoder:
        with self._encoder_lock:
            if self._encoder is None:
                s = self.settings
                self._encoder = load_encoder(self.model_dir(), s.encoder_backend, threads=s.encoder_threads,
                                             build_threads=s.build_threads, query_cache=s.query_cache)
            return self._encoder

    @property
    def reader(self) -> PassageReader:
        """The assembled reader; assembled on first use from the prepared e5 folder and the shipped layers."""
        with self._reader_lock:
            if self._reader is None:
                from index.reader.assemble import ensure_reader, reader_complete

                folder = self.settings.reader_dir
                if not reader_complete(folder):  # the e5 folder is the reader's base, whatever encodes
                    e5 = ensure_model(self.settings.model_dir, progress=_log_model)
                    folder = ensure_reader(e5, folder, progress=_log_model)
                self._reader = PassageReader(folder, threads=self.settings.reader_threads)
                _check_calibration(self._reader, Thresholds.load())
            return self._reader

    def preload(self) -> list[threading.Thread]:
        """Load the encoder and the reader in background threads and return them (join to wait). ONNX Runtime
        builds its sessions without the GIL, so on two vCPUs a cold start overlaps them with loading the index
        and jieba's dictionary (a cold `policyqa ask`: ~5.3 s of CPU, most of it these loads). A failure here is
        left to the caller's own use of the property, which raises it where it is handled."""

        def load(what: str) -> None:
            try:
                getattr(self, what)
            except Exception:  # raised again, with its context, where the property is used
                log.debug("preloading the %s failed", what, exc_info=True)

        threads = [threading.Thread(target=load, args=(what,), name=f"preload-{what}", daemon=True)
                   for what in ("reader", "encoder")]
        for t in threads:
            t.start()
        return threads

    # --- index ---------------------------------------------------------------------------------------
    def corpus(self, pause: Callable[[], object] | None = None) -> ChunkedCorpus:
        if seed_documents(self.settings.corpus_dir):
            log.info("seeded %s with the embedded articles", self.settings.corpus_dir)
        return load_chunked_corpus(self.settings.corpus_dir, self.settings.chunker(), pause=pause)

    def removed(self, idx: LoadedIndex) -> frozenset[str]:
        """Documents of this generation whose files were deleted since: never cited again, even before the
        rebuild that drops them."""
        return frozenset(idx.documents) - self._stored()

    def build(self, progress: Progress = _quiet, corpus: ChunkedCorpus | None = None, *,
              ray_address: str | None = None, ray_actors: int | None = None) -> BuildResult:
        """Build a generation; with ``ray_address`` the new passages are embedded on that Ray cluster
        (index/raybuild.py, the `ray` extra) instead of by this process's encoder."""
        gate = AnswerGate(self.settings.index_dir, max_wait_s=self.settings.build_pause_s)
        pause = gate.wait_for_quiet if gate.max_wait_s > 0 else None
        # every stage gives way to questions, the start too: chunking 250 regulations and loading the encoder
        # are ~3 s of CPU that would otherwise meet the answers of a rebuild's first seconds (jieba loads after
        # the BM25 stage's first pause)
        corpus = corpus or self.corpus(pause)
        for p in corpus.problems:
            log.warning("skipped %s", p)
        info = self._model_info_for_build()
        embedder = None
        if ray_address:
            from index.raybuild import RayEmbedder

            embedder = RayEmbedder(ray_address, info, actors=ray_actors, threads=self.settings.build_threads)

        def encoder() -> TextEncoder:
            if pause is not None and self._encoder is None:
                pause()
            return self.encoder

        result = build_index(corpus, self.settings.index_dir, info, encoder,
                             segmenter=self.segmenter, hnsw_threshold=self.settings.hnsw_threshold,
                             progress=progress, milvus=self.settings.milvus(), embedder=embedder, pause=pause)
        if gate.waited_s >= 0.1:
            log.info("the build paused %.1f s for questions being answered", gate.waited_s)
        return result

    def _model_info_for_build(self) -> ModelInfo:
        if self._encoder is not None and self.settings.embedding_model is None and not (
                self.settings.model_dir / "modules.json").exists():
            # an injected encoder (tests) stands for its own model
            e = self._encoder
            return ModelInfo(e.model_name, "", e.fingerprint, e.dim, e.max_tokens, e.backend)
        return self.model_info()

    def _expected(self) -> tuple[str, str]:
        """(fingerprint, backend) the loaded index must have been built with."""
        if self._encoder is not None:
            return self._encoder.fingerprint, self._encoder.backend
        info = self.model_info()
        return info.fingerprint, info.backend

    def load(self) -> LoadedIndex:
        with self._lock:
            fingerprint, backend = self._expected()
            self._index = load_index(self.settings.index_dir, model_fingerprint=fingerprint,
                                     lexicon_hash=self.segmenter.hash, backend=backend,
                                     milvus=self.settings.milvus())
            return self._index

    def ensure_index(self, progress: Progress = _quiet) -> LoadedIndex:
        """Load the current generation; build one first if there is none (first start) or it was built with
        another model, encoder variant or lexicon (the embedding cache keeps that rebuild to new vectors)."""
        try:
            return self.load()
        except IndexNotFound:
            log.info("no index yet in %s: building one", self.settings.index_dir)
        except IndexMismatch as exc:
            log.warning("the current index cannot be used (%s): building a new generation", exc.message)
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
        idx = self.index
        return Retriever(idx, self.encoder, self.segmenter, rrf_k=self.settings.rrf_k,
                         max_k=self.settings.max_k, fusion=self.settings.fusion,
                         dense_weight=self.settings.dense_weight, exclude=self.removed(idx))

    def search(self, query: str, k: int | None = None, mode: str = "hybrid") -> SearchResponse:
        with self.gate.answering():
            return self.retriever().search(query, k or self.settings.default_k, mode)

    def answerer(self, thresholds: Thresholds | None = None) -> Answerer:
        return Answerer(self.retriever(), self.reader, thresholds, self.settings.read_passages,
                        default_place=self.settings.default_place or None, gate=self.gate.answering)

    def generative(self, answerer: Answerer | None = None) -> GenerativeAnswerer:
        return GenerativeAnswerer(answerer or self.answerer(), self.llm, passages=self.settings.llm_passages,
                                  timeout_s=self.settings.llm_timeout_s)

    def answer(self, question: str, k: int | None = None, mode: str = "hybrid",
               answer_mode: AnswerMode | None = None) -> Answer:
        return self.generative().answer(question, k or self.settings.default_k, mode,
                                        answer_mode or self.settings.answer_mode)

    def answer_events(self, question: str, k: int | None = None, mode: str = "hybrid",
                      answer_mode: AnswerMode | None = None) -> Iterator[Event]:
        return self.generative().events(question, k or self.settings.default_k, mode,
                                        answer_mode or self.settings.answer_mode)
