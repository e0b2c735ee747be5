"""Which encoder variants a prepared model folder offers, and what identifies each one.

A variant's fingerprint is what index manifests and the embedding cache are keyed by, so vectors made by
one variant are never mixed with another's: torch = the safetensors weights hash; onnx / onnx-int8 = the
hash of the ONNX file itself (recorded in onnx/policyqa_onnx.json when it was exported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from index.modelfiles import ONNX_DIR, ONNX_FILES, ModelPrepError, onnx_manifest
from index.modelprep import model_fingerprint

Backend = Literal["onnx-int8", "onnx", "torch"]
BACKENDS: tuple[str, ...] = get_args(Backend)


def onnx_path(model_dir: Path, backend: str) -> Path:
    return Path(model_dir) / ONNX_DIR / ONNX_FILES[backend]


def backend_fingerprint(model_dir: Path, backend: str) -> str:
    if backend == "torch":
        return model_fingerprint(model_dir)
    if backend not in ONNX_FILES:
        raise ValueError(f"unknown encoder backend {backend!r} (one of {', '.join(BACKENDS)})")
    manifest = onnx_manifest(model_dir)
    entry = (manifest or {}).get("variants", {}).get(backend)
    if not isinstance(entry, dict) or not entry.get("sha256") or not onnx_path(model_dir, backend).is_file():
        raise ModelPrepError(f"{model_dir} has no {backend} export: run `policyqa model prepare`")
    return str(entry["sha256"])


def backend_description(model_dir: Path, backend: str) -> dict[str, Any]:
    """What an index manifest records about the encoder variant (backend, file, quantisation)."""
    if backend == "torch":
        return {"backend": "torch", "precision": "fp32", "runtime": "sentence-transformers"}
    entry = dict(((onnx_manifest(model_dir) or {}).get("variants") or {}).get(backend) or {})
    entry.pop("sha256", None)
    return {"backend": backend, "runtime": "onnxruntime", **entry}
