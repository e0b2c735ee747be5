"""Text encoders behind one protocol: ONNX Runtime (int8 or fp32) or torch via sentence-transformers.

``load_encoder`` picks the backend; callers never branch on it. Importing this package is cheap: torch
and onnxruntime are imported by the backend that is built.
"""

from __future__ import annotations

from pathlib import Path

from index.encoders.base import QUERY_CACHE_SIZE, BaseEncoder, EncoderPrompts, TextEncoder
from index.encoders.variants import BACKENDS, Backend, backend_fingerprint

__all__ = ["BACKENDS", "QUERY_CACHE_SIZE", "Backend", "BaseEncoder", "EncoderPrompts", "TextEncoder",
           "backend_fingerprint", "load_encoder"]


def load_encoder(model_dir: Path, backend: Backend | str = "onnx-int8", *, threads: int = 1, build_threads: int | None = None,
                 query_cache: int = QUERY_CACHE_SIZE) -> BaseEncoder:
    """An encoder for a prepared model folder. ONNX backends need the folder's onnx/ export
    (`policyqa model prepare` writes it; `index.onnxexport.ensure_onnx` for any other folder)."""
    if backend == "torch":
        from index.encoders.torch_st import TorchEncoder

        return TorchEncoder(model_dir, threads=threads, build_threads=build_threads, query_cache=query_cache)
    if backend in ("onnx", "onnx-int8"):
        from index.encoders.onnx_rt import OnnxEncoder

        return OnnxEncoder(model_dir, backend, threads=threads, build_threads=build_threads, query_cache=query_cache)
    raise ValueError(f"unknown encoder backend {backend!r} (one of {', '.join(BACKENDS)})")
