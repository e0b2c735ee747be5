"""What a sentence-transformers folder is, read from its files without loading the weights."""

from __future__ import annotations

import json
from pathlib import Path

from index.builder import ModelInfo
from index.encoders.variants import backend_description, backend_fingerprint
from index.generations import IndexError_


class ModelNotFound(IndexError_):
    code = "model_not_found"


def describe_model(model_dir: Path, backend: str = "onnx-int8") -> ModelInfo:
    """The model and encoder variant an index built with ``backend`` is tied to (weights not loaded)."""
    if not (model_dir / "modules.json").is_file():
        raise ModelNotFound(f"{model_dir} is not a sentence-transformers folder",
                            "run `policyqa model prepare` or set POLICYQA_EMBEDDING_MODEL to one")
    dim = 0
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.is_file():
        dim = int(json.loads(pooling.read_text())["word_embedding_dimension"])
    else:
        dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
    max_tokens = 512
    sbert = model_dir / "sentence_bert_config.json"
    if sbert.is_file():
        max_tokens = int(json.loads(sbert.read_text()).get("max_seq_length") or max_tokens)
    return ModelInfo(name=model_dir.name, path=str(model_dir), fingerprint=backend_fingerprint(model_dir, backend),
                     dim=dim, max_tokens=max_tokens, backend=backend,
                     encoder=backend_description(model_dir, backend))
