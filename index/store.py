"""Loading the current index generation, checked against its manifest before use."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from corpus.chunking import Chunk
from corpus.formats.policy import iso_date
from corpus.provenance import Origin
from corpus.versions import VersionInfo, version_status
from index.builder import FORMAT_VERSION
from index.dense import DenseIndex
from index.generations import EncoderMismatch, IndexCorrupt, IndexMismatch, IndexNotFound, current_generation
from index.sparse import SparseIndex
from index.stores import DenseStore, MilvusConfig, SparseStore

REQUIRED_FILES = ("manifest.json", "chunks.jsonl", "documents.jsonl", "dense.faiss", "sparse")
MILVUS_REQUIRED_FILES = ("manifest.json", "chunks.jsonl", "documents.jsonl")  # vectors + BM25 in Milvus


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    title: str
    date: str
    date_inferred: bool
    source: str
    region: str
    url: str | None
    text: str  # cleaned text: citation offsets index into it
    chunks: int
    content_hash: str
    # the other front-matter fields as stored: policy metadata (doc_number, issuer, written_date, ...),
    # original_format / original_name of an uploaded file
    extra: Mapping[str, str] = field(default_factory=dict)
    origin: Origin | None = None  # an uploaded file's provenance on cleaned-text offsets (None: Markdown)

    @property
    def issue_date(self) -> str:
        """The date the document is cited with: its issue date (成文日期, else 发布日期) when it has one,
        else its date; a regulation's date is already the one it is cited with (its 公布 date, else the date its
        version was passed). "" when the document has no date."""
        if self.extra.get("doc_type") == "regulation":
            return self.date
        for key in ("written_date", "published_date"):
            iso = iso_date(self.extra.get(key) or "")
            if iso:
                return iso
        return self.date

    def origin_at(self, start: int, end: int) -> dict[str, Any] | None:
        """Where cleaned text[start:end] is in the original file (PDF page, HTML/DOCX section path)."""
        return self.origin.at(start, end) if self.origin is not None else None


@dataclass(frozen=True)
class LoadedIndex:
    path: Path
    manifest: dict[str, Any]
    chunks: tuple[Chunk, ...]
    documents: dict[str, StoredDocument]
    dense: DenseStore  # FAISS (DenseIndex) or Milvus (index/stores/milvus.py)
    sparse: SparseStore  # bm25s (SparseIndex) or Milvus's BM25 function

    @property
    def generation(self) -> str:
        return str(self.manifest["generation"])

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {c.chunk_id: i for i, c in enumerate(self.chunks)}

    def row_of(self, chunk_id: str) -> int:
        return self._rows[chunk_id]

    @cached_property
    def versions(self) -> dict[str, VersionInfo]:
        """Which regulations of this generation are current and which a newer version supersedes."""
        return version_status(self.documents.values())

    @cached_property
    def _mentions(self) -> dict[str, bool]:
        return {}

    def mentions(self, term: str) -> bool:
        """Whether any stored article's text contains `term`; remembered, since a loaded index never changes
        (a scan of thousands of articles for the external sets)."""
        found = self._mentions.get(term)
        if found is None:
            found = self._mentions[term] = any(term in d.text for d in self.documents.values())
        return found


def _chunk(row: dict[str, Any]) -> Chunk:
    return Chunk(doc_id=row["doc_id"], chunk_id=row["chunk_id"], ordinal=row["ordinal"], title=row["title"],
                 section=tuple(row["section"]), date=row["date"], kind=row["kind"], text=row["text"],
                 start=row["start"], end=row["end"])


_DOCUMENT_KEYS = frozenset({"doc_id", "title", "date", "date_inferred", "source", "region", "url", "text", "chunks",
                            "content_hash", "origin"})


def _document(row: dict[str, Any]) -> StoredDocument:
    origin = row.get("origin")
    return StoredDocument(doc_id=row["doc_id"], title=row["title"], date=row["date"],
                          date_inferred=bool(row.get("date_inferred")), source=row["source"],
                          region=row.get("region", ""), url=row.get("url"), text=row["text"],
                          chunks=int(row["chunks"]), content_hash=row["content_hash"],
                          extra={k: v for k, v in row.items() if k not in _DOCUMENT_KEYS and isinstance(v, str)},
                          origin=Origin.from_json(origin) if isinstance(origin, dict) else None)


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"generation {folder.name} has no manifest (an unfinished build)") from exc
    except json.JSONDecodeError as exc:
        raise IndexCorrupt(f"generation {folder.name} has an unreadable manifest") from exc
    if not isinstance(data, dict):
        raise IndexCorrupt(f"generation {folder.name} has an unreadable manifest")
    return data


def store_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """Where a generation's two searches run, for GET /v1/index: ``kind`` faiss | milvus, ``bm25`` bm25s | milvus
    (a Milvus server without BM25 functions keeps bm25s files beside its collection), the dense index and,
    for Milvus, the collection, alias and URI (never the token)."""
    store = manifest.get("store") or {}
    if str(store.get("kind") or "faiss") != "milvus":
        return {"kind": "faiss", "bm25": "bm25s", "dense_index": (manifest.get("dense") or {}).get("kind")}
    from index.stores.milvus import bm25_engine

    return {"kind": "milvus", "bm25": bm25_engine(store), "dense_index": store.get("dense_index"),
            "collection": store.get("collection"), "alias": store.get("alias"), "uri": store.get("uri"),
            "db": store.get("db") or ""}


def built_backend(manifest: dict[str, Any]) -> str:
    """The encoder variant a generation's passages were embedded with (torch before variants were recorded)."""
    return str((manifest.get("encoder") or {}).get("backend") or "torch")


def load_index(root: Path, *, model_fingerprint: str | None = None, lexicon_hash: str | None = None,
               generation: Path | None = None, backend: str | None = None,
               milvus: MilvusConfig | None = None) -> LoadedIndex:
    """Load and verify the current generation (or the given one).

    Refuses a partial generation (missing files, counts that disagree) and one built with another model,
    encoder variant (``backend``) or lexicon than the caller will query it with. With ``milvus`` the
    generation must have been built into Milvus and its collection must exist with the manifest's row count;
    a FAISS generation is then refused (IndexMismatch, so the engine rebuilds), and the other way round.
    """
    if milvus is not None:
        from index.stores.milvus import require_pymilvus

        require_pymilvus()
    folder = generation or current_generation(root)
    if folder is None or not folder.is_dir():
        raise IndexNotFound(f"no index in {root}", "build one with `policyqa index build`")
    manifest = read_manifest(folder)
    built_store = str((manifest.get("store") or {}).get("kind") or "faiss")
    wanted_store = "faiss" if milvus is None else "milvus"
    if built_store != wanted_store:
        raise IndexMismatch(f"generation {folder.name} was built for the {built_store} store, "
                            f"the configured store is {wanted_store}")
    required = REQUIRED_FILES if milvus is None else MILVUS_REQUIRED_FILES
    missing = [f for f in required if not (folder / f).exists()]
    if missing:
        raise IndexCorrupt(f"generation {folder.name} lacks {', '.join(missing)}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}")
    built_model = manifest["model"]["fingerprint"]
    if backend is not None and built_backend(manifest) != backend:
        raise EncoderMismatch(
            f"index was built with encoder {built_backend(manifest)}, questions would be encoded with {backend}",
            f"rebuild with `policyqa index build`, or set POLICYQA_ENCODER_BACKEND={built_backend(manifest)}")
    if model_fingerprint is not None and built_model != model_fingerprint:
        raise IndexMismatch(
            f"index was built with model {manifest['model']['name']} ({built_model[:12]}), "
            f"not the configured one ({model_fingerprint[:12]})")
    if lexicon_hash is not None and manifest["lexicon"]["hash"] != lexicon_hash:
        raise IndexMismatch("index was built with another jieba lexicon (userdict/stopwords changed)")
    try:
        with (folder / "chunks.jsonl").open(encoding="utf-8") as f:
            chunks = tuple(_chunk(json.loads(line)) for line in f if line.strip())
        with (folder / "documents.jsonl").open(encoding="utf-8") as f:
            docs = {d.doc_id: d for d in (_document(json.loads(line)) for line in f if line.strip())}
        dense: DenseStore
        sparse: SparseStore
        if milvus is None:
            dense = DenseIndex.load(folder / "dense.faiss")
            sparse = SparseIndex.load(folder / "sparse")
        else:
            from index.stores.milvus import bm25_engine, open_store

            engine = bm25_engine(manifest["store"])
            if engine == "bm25s" and not (folder / "sparse").exists():
                raise IndexCorrupt(f"generation {folder.name} lacks sparse (its BM25 runs in bm25s)")
            dense, milvus_sparse = open_store(milvus, str(manifest["store"]["collection"]),
                                              int(manifest["counts"]["vectors"]), int(manifest["model"]["dim"]),
                                              manifest["store"].get("dense_index"), bm25=engine)
            sparse = milvus_sparse if milvus_sparse is not None else SparseIndex.load(folder / "sparse")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorrupt(f"generation {folder.name} cannot be read: {exc}") from exc
    counts = manifest["counts"]
    seen = {"chunks": len(chunks), "vectors": dense.size, "sparse_docs": sparse.size, "documents": len(docs)}
    bad = {k: (counts.get(k), v) for k, v in seen.items() if counts.get(k) != v}
    if bad:
        raise IndexCorrupt(f"generation {folder.name} is inconsistent (manifest vs files: {bad})")
    if milvus is None and isinstance(dense, DenseIndex) and dense.size and dense.dim != manifest["model"]["dim"]:
        raise IndexMismatch(f"vectors have dim {dense.dim}, manifest says {manifest['model']['dim']}")
    return LoadedIndex(folder, manifest, chunks, docs, dense, sparse)
