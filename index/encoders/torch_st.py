"""The torch backend: the folder loaded by sentence-transformers, fp32 on CPU (the reference the ONNX
variants are checked against)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.encoders.base import QUERY_CACHE_SIZE, BaseEncoder
from index.encoders.variants import backend_fingerprint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def load_sentence_transformer(model_dir: Path) -> SentenceTransformer:
    # Offline before the hub libraries are touched: the folder is local and the hubs are unreachable.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    # fp32 compute whatever the storage dtype: transformers 5 would otherwise keep an fp16 checkpoint
    # in fp16, which is slow on CPU.
    return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True,
                               model_kwargs={"dtype": "float32"})


class TorchEncoder(BaseEncoder):
    backend_name = "torch"

    def __init__(self, model_dir: Path, *, threads: int = 1, build_threads: int | None = None,
                 query_cache: int = QUERY_CACHE_SIZE) -> None:
        model_dir = self._folder(model_dir)
        super().__init__(model_dir, fingerprint=backend_fingerprint(model_dir, "torch"), threads=threads,
                         build_threads=build_threads, query_cache=query_cache)
        self._model = load_sentence_transformer(self._model_dir)
        self._dim = int(self._model.get_embedding_dimension() or 0)
        self._max_tokens = int(self._model.max_seq_length or self._max_tokens)

    def _embed(self, texts: list[str], *, batch_size: int, build: bool) -> np.ndarray:
        import torch

        # torch's thread count is process-wide, so it is set for each call (cheap).
        torch.set_num_threads(self._build_threads if build else self._threads)
        return np.asarray(self._model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                             normalize_embeddings=True, show_progress_bar=False))

    def _token_count(self, text: str) -> int:
        encoded: Any = self._model.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)
        return len(encoded["input_ids"])
