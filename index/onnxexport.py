"""Export a prepared sentence-transformers folder to ONNX (pooling and normalisation inside the graph) and
quantise it to int8, into ``<folder>/onnx/``.

Why this path: sentence-transformers' own ONNX backend needs `optimum-onnx`, whose releases require
transformers < 4.58 and so do not install beside transformers 5. A plain ``torch.onnx.export`` (the
TorchScript exporter, opset 17) of the model plus mean pooling and L2 normalisation, then ONNX Runtime's
``quantize_dynamic``, works offline with what the project already installs. Torch is needed only here, at
preparation time; the ONNX encoders run with onnxruntime + tokenizers alone.

Quantisation, chosen by measurement (docs/benchmarks.md "Encoder variants"): int8 weights, signed, per output channel, with
7-bit range (``reduce_range``), every MatMul and the word-embedding Gather; activations quantised per call.
Measured against torch fp32 on this project's texts and three question sets (AMD EPYC, AVX-512 VNNI):

    variant                          cosine min   seeds-dev h@1   CMRC h@1 / h@5    ChronoQA h@1 / h@5
    torch fp32 (reference)           1            0.986           0.9851 / 0.9963   0.8991 / 0.9733
    per-channel, 8-bit               0.9948       0.979 (-1 q.)   0.9842 / 0.9963   0.8982 / 0.9739
    per-channel, reduce_range        0.9944       0.986           0.9845 / 0.9966   0.8993 / 0.9730
    per-channel, FFN-out fp32        -            0.986           0.9854 / 0.9963   (1.35x slower builds)
    per-tensor, 8-bit / reduce_range 0.982 / 0.941 -              -                 -

reduce_range passes the gate on every set at the speed of full 8-bit, and it is what ONNX Runtime advises
for CPUs without VNNI, where full-range signed int8 can saturate (such hosts run this project too). Fusing
attention with onnxruntime.transformers' optimizer first made per-channel int8 ~2.5x slower here.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from index.generations import fsync_dir
from index.modelfiles import (
    ONNX_DIR,
    ONNX_FILES,
    ONNX_MANIFEST,
    ModelPrepError,
    onnx_manifest,
    sha256_file,
    swap_into_place,
)

__all__ = ["OPSET", "QUANTIZATION", "ensure_onnx", "export_module", "export_onnx", "quantise"]

OPSET = 17
# quantize_dynamic arguments (see the module docstring and docs/benchmarks.md for the measurements behind them).
QUANTIZATION: dict[str, Any] = {
    "method": "dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    "reduce_range": True,
    "op_types": ["MatMul", "Gather"],
}
Progress = Callable[[str], None]


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "transformers", "onnx", "onnxruntime"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _pooling(model_dir: Path) -> tuple[str, bool]:
    """("mean" | "cls", normalise?) from the folder's sentence-transformers modules."""
    try:
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pooling = {"pooling_mode_mean_tokens": True}
    if pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    elif pooling.get("pooling_mode_mean_tokens"):
        mode = "mean"
    else:
        raise ValueError(f"{model_dir}: only mean or CLS pooling can be exported to ONNX; use the torch backend")
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        modules = []
    normalise = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    return mode, normalise


def _export_fp32(model_dir: Path, out: Path, pooling: str, normalise: bool) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    # eager attention: plain MatMul/Softmax ops, which quantize_dynamic quantises and every CPU runs
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32,
                                      add_pooling_layer=False, attn_implementation="eager")
    model.eval()

    class Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(vec, p=2.0, dim=1) if normalise else vec

    export_module(Embed(), out, {"embedding": {0: "batch"}})


def export_module(module: Any, out: Path, outputs: dict[str, dict[int, str]]) -> None:
    """``torch.onnx.export`` (TorchScript exporter, OPSET) of a module taking input_ids and attention_mask of
    any batch size and length; ``outputs`` names its outputs with their dynamic axes."""
    import warnings

    import torch

    ids = torch.tensor([[0, 100, 200, 2], [0, 300, 2, 1]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    tokens = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python-side shape checks (verified by tests)
        torch.onnx.export(module, (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
                          output_names=list(outputs), opset_version=OPSET, do_constant_folding=True,
                          dynamo=False, dynamic_axes={"input_ids": tokens, "attention_mask": tokens, **outputs})


def quantise(src: Path, out: Path, config: dict[str, Any] | None = None) -> None:
    """``quantize_dynamic`` with ``config`` (default: the encoder's QUANTIZATION); nodes whose names match the
    config's ``fp32_nodes`` regex stay fp32."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    q = QUANTIZATION if config is None else config
    keep_fp32: list[str] = []
    if q.get("fp32_nodes"):  # a regex over MatMul node names left in fp32 (the reader's FFN outputs)
        import re

        import onnx

        pattern = re.compile(q["fp32_nodes"])
        graph = onnx.load(str(src), load_external_data=False).graph
        keep_fp32 = [n.name for n in graph.node if pattern.search(n.name)]
        if not keep_fp32:
            raise ValueError(f"fp32_nodes {q['fp32_nodes']!r} names no node of {src.name}")
    # quantize_dynamic logs a "consider pre-processing" advice on the root logger at every call: quiet it
    # for the call only
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(str(src), str(out), weight_type=getattr(QuantType, q["weight_type"]),
                         per_channel=q["per_channel"], reduce_range=q["reduce_range"],
                         op_types_to_quantize=list(q["op_types"]), nodes_to_exclude=keep_fp32)
    finally:
        root.setLevel(level)


def export_onnx(model_dir: Path, *, progress: Progress | None = None) -> Path:
    """Write ``model_dir/onnx/`` (model.onnx, model_int8.onnx, policyqa_onnx.json) and return it.

    Written into a temporary sibling folder and renamed into place, so a killed export never leaves a
    half-written ``onnx/``; the manifest is written last.
    """
    report = progress or (lambda _msg: None)
    model_dir = Path(model_dir)
    pooling, normalise = _pooling(model_dir)
    target = model_dir / ONNX_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{ONNX_DIR}.tmp-", dir=model_dir))
    try:
        tmp.chmod(0o755)
        started = time.perf_counter()
        report("exporting to ONNX (fp32)")
        fp32 = tmp / ONNX_FILES["onnx"]
        _export_fp32(model_dir, fp32, pooling, normalise)
        report(f"quantising to int8 ({'per-channel' if QUANTIZATION['per_channel'] else 'per-tensor'})")
        int8 = tmp / ONNX_FILES["onnx-int8"]
        quantise(fp32, int8)
        for path in (fp32, int8):
            with path.open("rb+") as fh:
                os.fsync(fh.fileno())
        int8_bytes = int8.stat().st_size
        manifest = {
            "format": 1,
            "opset": OPSET,
            "pooling": pooling,
            "normalised": normalise,
            "inputs": ["input_ids", "attention_mask"],
            "output": "embedding",
            "variants": {
                "onnx": {"file": f"{ONNX_DIR}/{fp32.name}", "sha256": sha256_file(fp32), "precision": "fp32",
                         "bytes": fp32.stat().st_size},
                "onnx-int8": {"file": f"{ONNX_DIR}/{int8.name}", "sha256": sha256_file(int8), "precision": "int8",
                              "quantization": dict(QUANTIZATION), "bytes": int8_bytes},
            },
            "versions": _versions(),
            "exported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        fsync_dir(tmp)
        swap_into_place(tmp, target)
        report(f"ONNX export done in {manifest['seconds']} s (int8 {int8_bytes / 1e6:.0f} MB)")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_onnx(model_dir: Path, *, progress: Progress | None = None) -> Path:
    """The folder's onnx/ export, made first when it is missing or incomplete (any sentence-transformers
    folder given as POLICYQA_EMBEDDING_MODEL)."""
    model_dir = Path(model_dir)
    if onnx_complete(model_dir):
        return model_dir / ONNX_DIR
    import fcntl

    with (model_dir / f".{ONNX_DIR}.lock").open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        for leftover in model_dir.glob(f".{ONNX_DIR}.*-*"):  # .onnx.tmp-* / .onnx.old-* of a killed export
            shutil.rmtree(leftover, ignore_errors=True)
        if onnx_complete(model_dir):
            return model_dir / ONNX_DIR
        try:
            return export_onnx(model_dir, progress=progress)
        except (OSError, ValueError, RuntimeError) as exc:  # read-only folder, unsupported pooling, bad weights
            raise ModelPrepError(f"cannot export {model_dir} to ONNX ({exc}); "
                                 "use POLICYQA_ENCODER_BACKEND=torch for this folder") from exc


def onnx_complete(model_dir: Path) -> bool:
    manifest = onnx_manifest(model_dir)
    return manifest is not None and all((model_dir / ONNX_DIR / f).is_file() for f in ONNX_FILES.values())
