"""The ONNX Runtime backends (fp32 export or its int8 dynamic quantisation) with the folder's
tokenizer.json through the `tokenizers` library. Neither torch nor transformers is imported here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.encoders.base import QUERY_CACHE_SIZE, BaseEncoder, folder_window
from index.encoders.variants import backend_fingerprint, onnx_path

if TYPE_CHECKING:
    import onnxruntime


class OnnxEncoder(BaseEncoder):
    def __init__(self, model_dir: Path, backend: str = "onnx-int8", *, threads: int = 1,
                 build_threads: int | None = None, query_cache: int = QUERY_CACHE_SIZE) -> None:
        model_dir = self._folder(model_dir)
        super().__init__(model_dir, fingerprint=backend_fingerprint(model_dir, backend), threads=threads,
                         build_threads=build_threads, query_cache=query_cache)
        from index.tokenizer_files import load_tokenizer

        self.backend_name = backend
        self._path = onnx_path(self._model_dir, backend)
        self._max_tokens = folder_window(self._model_dir)
        self._sessions: dict[int, onnxruntime.InferenceSession] = {}
        self._dim = int(self._session(self._threads).get_outputs()[0].shape[-1])
        # no padding, no truncation: cut here, the way sentence-transformers cuts (keeps </s>); shared with the
        # reader, which ships the same file
        self._tokenizer = load_tokenizer(self._model_dir / "tokenizer.json")

    def _session(self, threads: int) -> onnxruntime.InferenceSession:
        """One session per thread count (ONNX Runtime fixes it at creation): serving and building may differ."""
        session = self._sessions.get(threads)
        if session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads > 1:
                # Spinning worker threads steal the other vCPU from the web server on a shared 2-vCPU box.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            session = self._sessions[threads] = ort.InferenceSession(
                str(self._path), options, providers=["CPUExecutionProvider"])
        return session

    def _embed(self, texts: list[str], *, batch_size: int, build: bool) -> np.ndarray:
        # One text per run, whatever batch_size says: measured faster here than padded batches (int8 36 vs 25
        # passages/s at batch 16, fp32 19 vs 13), and int8's dynamic activation scales then depend on the text
        # alone, so a text's vector never depends on what it was batched with (the embedding cache relies on it).
        session = self._session(self._build_threads if build else self._threads)
        window = self._max_tokens
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(texts)):
            ids = encoding.ids if len(encoding.ids) <= window else [*encoding.ids[: window - 1], encoding.ids[-1]]
            feed = np.asarray([ids], dtype=np.int64)
            out[row] = session.run(None, {"input_ids": feed, "attention_mask": np.ones_like(feed)})[0][0]
        return out

    def _token_count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

