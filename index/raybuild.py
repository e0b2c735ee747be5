"""Embedding an index build's new passages on a Ray cluster (`policyqa index build --ray ADDRESS`).

The builder (index/builder.py) still decides what to embed (the passages missing from the embedding cache),
writes every vector into the cache as its part arrives, and writes the generation; only the encoder runs
elsewhere: a Ray Data ``map_batches`` over a pool of actors, each an ONNX Runtime encoder (int8 by default)
of the same model file. A passage's vector depends on its text alone (the ONNX encoder runs one text per
session call), so a cluster build and a local build of one corpus write the same generation.

**The model goes with the job.** The driver puts the files the encoder reads (the ONNX file of the variant,
its export record, tokenizer.json and two small configs: ~127 MB for int8) into the object store once per
build; each node writes them once into ``<tmp>/policyqa-ray-models/<variant>-<fingerprint>/`` (checked
against the fingerprint, kept for later builds) and its actors load that. Nodes need no shared filesystem
and no model folder of their own, only the same policyqa install (``pip install 'policyqa[ray]'``).

Ray is imported only here, and only when a build is run: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.builder import ModelInfo
from index.modelfiles import ONNX_DIR, ONNX_FILES, ONNX_MANIFEST

__all__ = ["RayEmbedder"]

# what OnnxEncoder reads from a model folder besides the variant's ONNX file
_FOLDER_FILES = ("tokenizer.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                 f"{ONNX_DIR}/{ONNX_MANIFEST}")
_READY = ".complete"
DEFAULT_BATCH = 32  # passages per map_batches call: small enough to balance ~2 actors per node, large enough
#                     that Ray's per-batch overhead (~ms) is noise against ~30 ms per passage


def model_files(model_dir: Path, backend: str) -> dict[str, bytes]:
    """The files an ONNX encoder of ``backend`` loads, relative path → bytes (what is shipped to the nodes)."""
    names = [*(n for n in _FOLDER_FILES if (model_dir / n).is_file()), f"{ONNX_DIR}/{ONNX_FILES[backend]}"]
    return {n: (model_dir / n).read_bytes() for n in names}


def node_model_dir(backend: str, fingerprint: str, files: Any) -> Path:
    """This node's copy of the shipped model folder, written on first use. ``files`` is a one-element list
    holding the object ref of ``model_files`` (fetched only when the copy is missing). The ONNX file is
    checked against the fingerprint (its sha256); concurrent actors of one node race safely (atomic rename)."""
    root = Path(tempfile.gettempdir()) / "policyqa-ray-models" / f"{backend}-{fingerprint[:16]}"
    if (root / _READY).is_file():
        return root
    import ray

    data: dict[str, bytes] = ray.get(files[0])
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, blob in data.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(blob)
    got = hashlib.sha256(data[f"{ONNX_DIR}/{ONNX_FILES[backend]}"]).hexdigest()
    if got != fingerprint:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"the shipped {backend} model is {got[:12]}, expected {fingerprint[:12]}")
    (tmp / _READY).write_text(fingerprint, encoding="utf-8")
    try:
        os.rename(tmp, root)
    except OSError:  # another actor of this node was first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


class PassageActor:
    """One Ray Data actor: an ONNX encoder of the shipped model, embedding batches of passages."""

    def __init__(self, backend: str, fingerprint: str, dim: int, files: Any, threads: int = 1) -> None:
        from index.encoders import load_encoder

        folder = node_model_dir(backend, fingerprint, files)
        self.encoder = load_encoder(folder, backend, threads=threads, build_threads=threads, query_cache=0)
        if self.encoder.fingerprint != fingerprint or self.encoder.dim != dim:
            raise RuntimeError(f"actor model {self.encoder.fingerprint[:12]} (dim {self.encoder.dim}) is not "
                               f"{fingerprint[:12]} (dim {dim})")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.encoder.encode_passages(texts, batch_size=max(1, len(texts)))
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": vectors}


class RayEmbedder:
    """index.builder.PassageEmbedder on a Ray cluster: ``address`` as ``ray.init`` takes it (``auto``,
    ``HOST:6379`` from a node of the cluster, ``ray://HOST:10001`` from outside it). ``actors`` defaults to the
    cluster's CPUs divided by ``threads`` (ONNX Runtime threads per actor)."""

    def __init__(self, address: str, model: ModelInfo, *, actors: int | None = None, threads: int = 1,
                 batch_size: int = DEFAULT_BATCH) -> None:
        if model.backend not in ONNX_FILES:
            raise ValueError(f"--ray embeds with ONNX Runtime; the encoder backend is {model.backend!r} "
                             "(set POLICYQA_ENCODER_BACKEND=onnx-int8 or onnx)")
        self.address = address
        self.model = model
        self.actors = actors
        self.threads = max(1, threads)
        self.batch_size = max(1, batch_size)
        self._ran: dict[str, Any] = {}

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    @property
    def dim(self) -> int:
        return self.model.dim

    def describe(self) -> dict[str, Any]:
        """What the manifest's build record says about where the vectors were made."""
        return {"kind": "ray", "address": self.address, **self._ran}

    def __call__(self, texts: Sequence[str]) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        if not texts:
            return
        import ray

        owned = not ray.is_initialized()  # a caller's own connection is left open
        if owned:
            ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
        try:
            import ray.data

            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False  # the builder reports progress itself
            logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plan and timing lines
            cpus = int(ray.cluster_resources().get("CPU", 0))
            actors = self.actors or max(1, cpus // self.threads)
            files = ray.put(model_files(Path(self.model.path), self.model.backend))
            items = [{"row": i, "text": t} for i, t in enumerate(texts)]
            blocks = -(-len(items) // self.batch_size)  # about one batch a block: actors pull evenly
            ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
                PassageActor,
                fn_constructor_kwargs={"backend": self.model.backend, "fingerprint": self.model.fingerprint,
                                       "dim": self.model.dim, "files": [files], "threads": self.threads},
                batch_size=self.batch_size, batch_format="numpy", num_cpus=self.threads,
                compute=ray.data.ActorPoolStrategy(size=actors))
            self._ran = {"ray": ray.__version__, "nodes": sum(1 for n in ray.nodes() if n.get("Alive")),
                         "cluster_cpus": cpus, "actors": actors, "threads_per_actor": self.threads,
                         "batch_size": self.batch_size}
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                yield batch["row"].tolist(), np.asarray(batch["vector"], dtype=np.float32)
        finally:
            if owned:
                ray.shutdown()
