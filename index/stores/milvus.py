"""The Milvus store: one collection per index generation, an alias as the current pointer.

Schema (one entity per chunk row): ``row`` INT64 primary key = the chunk's line in the generation's
chunks.jsonl, ``chunk_id``, ``doc_id``, the citation fields ``title``, ``section`` (heading path joined by
" > "), ``date``, ``start``/``end`` (offsets in the cleaned document), ``text`` (the passage text that FAISS/bm25s index too, punctuation as spaces (bm25_text), analysed by
Milvus's jieba tokenizer with our user dictionary words, lower-casing and our stopwords), ``dense``
FLOAT_VECTOR (the e5 passage vectors, normalised; FLAT index, metric IP = cosine) and ``sparse``
SPARSE_FLOAT_VECTOR, the output of a BM25 function over ``text`` (k1=1.5, b=0.75 as bm25s).

Milvus Lite (a local file path as the URI) and a Milvus server or cluster (http://host:19530) take the same
calls. Milvus Lite reports BM25 search distances negated; scores are returned positive here.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from corpus.chunking import Chunk
from index.dense import DenseHits
from index.generations import IndexCorrupt
from index.segmentation import STOPWORDS, USERDICT
from index.sparse import SparseHits
from index.stores import MilvusConfig

DENSE_INDEX = {"index_type": "FLAT", "metric_type": "IP"}  # exact: below the HNSW threshold
# From POLICYQA_HNSW_THRESHOLD rows on, HNSW as FAISS does. bench/bench_scale.py, 10^6 vectors, M 32 /
# efConstruction 100: Milvus Lite's recall@10 0.979 at ef 64 and 1.000 at ef 256 (FAISS's HNSW 0.955 at 256)
HNSW_INDEX = {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 32, "efConstruction": 100}}
HNSW_EF = 256
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}
MAX_TOPK = 16384  # Milvus's limit on one search
INSERT_BATCH = 512
TEXT_MAX_BYTES = 65535

# Runs of punctuation (a dot between digits excepted: 3.5) become one space before text reaches Milvus's
# analyzer, for passages and queries alike: index/segmentation.py drops punctuation tokens, Milvus Lite's jieba
# analyzer keeps them (it has no removepunct filter). On the seed passages this made 61 of 94 token lists equal
# to ours instead of 1, and 167 of 179 seeds-dev questions instead of 0.
_PUNCT = re.compile(r"(?:(?!(?<=\d)\.(?=\d))[^\w%％])+")


def bm25_text(text: str) -> str:
    """The text Milvus's BM25 analyzer is given (stored passages and queries): punctuation as spaces."""
    return _PUNCT.sub(" ", text).strip()


_clients: dict[tuple[str, str, str], Any] = {}
_clients_lock = threading.Lock()


def client(cfg: MilvusConfig) -> Any:
    """One MilvusClient per (uri, token, db) per process (Milvus Lite holds its file open)."""
    from pymilvus import MilvusClient

    key = (cfg.uri, cfg.token, cfg.db)
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            # Milvus Lite analyses text with the process's global jieba: its "Building prefix dict" chatter is
            # not ours to print (index/segmentation.py keeps its own private jieba Tokenizer)
            import jieba

            jieba.setLogLevel(logging.WARNING)
            kwargs: dict[str, Any] = {"uri": cfg.uri}
            if cfg.token:
                kwargs["token"] = cfg.token
            if cfg.db:
                kwargs["db_name"] = cfg.db
            c = _clients[key] = MilvusClient(**kwargs)
        return c


def close_clients() -> None:
    with _clients_lock:
        for c in _clients.values():
            with contextlib.suppress(Exception):  # closing is best effort
                c.close()
        _clients.clear()


@contextlib.contextmanager
def _quiet_lite(cfg: MilvusConfig) -> Iterator[None]:
    """pymilvus waits for index creation with an AllocTimestamp call that Milvus Lite (an in-process gRPC
    server) does not implement; the call's failure is handled, but grpc's server logs a traceback for it."""
    if "://" in cfg.uri:
        yield
        return
    grpc_log = logging.getLogger("grpc._server")
    before = grpc_log.level
    grpc_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        grpc_log.setLevel(before)


def collection_name(cfg: MilvusConfig, generation: str) -> str:
    """Milvus names take letters, digits and underscores: g20261130T161440.123456-42 -> <prefix>_g2026..._42."""
    return f"{cfg.prefix}_" + re.sub(r"[^0-9A-Za-z_]", "_", generation)


def _userdict_words() -> list[str]:
    words = []
    for line in USERDICT.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            words.append(parts[0])
    return words


def _stopwords() -> list[str]:
    words = (w.strip() for w in STOPWORDS.read_text(encoding="utf-8").splitlines())
    return sorted(w for w in words if w and not w.startswith("#"))


def analyzer_params() -> dict[str, Any]:
    """Milvus's jieba (jieba-rs) in search mode with our user dictionary's words added to its default one,
    then lower-case, punctuation removed and our stopwords dropped: as close to index/segmentation.py as
    Milvus's analyzer can be told (word frequencies and part-of-speech tags of the user dictionary are not
    passed)."""
    return {"tokenizer": {"type": "jieba", "dict": ["_default_", *_userdict_words()], "mode": "search",
                          "hmm": True},
            "filter": ["lowercase", "removepunct", {"type": "stop", "stop_words": _stopwords()}]}


def dense_index(rows: int, hnsw_threshold: int) -> dict[str, Any]:
    """The dense index a collection of `rows` vectors gets: exact (FLAT) below the threshold, HNSW from it."""
    return dict(HNSW_INDEX if rows >= hnsw_threshold else DENSE_INDEX)


def create_collection(cfg: MilvusConfig, name: str, dim: int, chunks: Sequence[Chunk], texts: Sequence[str],
                      vectors: np.ndarray, index: dict[str, Any] | None = None) -> int:
    """Write one generation's collection: its chunks in chunks.jsonl order with the passage texts BM25 indexes.
    Replaces a leftover of the same name (an interrupted build). Returns the row count Milvus reports.

    Each entity carries the chunk's citation fields too (title, section path, date, offsets in the cleaned
    document), so a Milvus cluster shared by several services can be read and filtered without the generation
    folder; the service itself cites from chunks.jsonl, which the row number points into."""
    from pymilvus import DataType, Function, FunctionType

    c = client(cfg)
    if c.has_collection(name):
        c.drop_collection(name)
    schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("chunk_id", DataType.VARCHAR, max_length=512)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    schema.add_field("title", DataType.VARCHAR, max_length=2048)
    schema.add_field("section", DataType.VARCHAR, max_length=4096)  # the heading path, joined by " > "
    schema.add_field("date", DataType.VARCHAR, max_length=32)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, enable_analyzer=True,
                     analyzer_params=analyzer_params())
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    params = c.prepare_index_params()
    params.add_index("dense", **(index or DENSE_INDEX))
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=dict(BM25_PARAMS))
    with _quiet_lite(cfg):
        c.create_collection(name, schema=schema, index_params=params)
    vectors = np.asarray(vectors, dtype=np.float32)
    for s in range(0, len(chunks), INSERT_BATCH):
        batch = [{"row": i, "chunk_id": ch.chunk_id, "doc_id": ch.doc_id, "title": _fit(ch.title, 2048),
                  "section": _fit(" > ".join(ch.section), 4096), "date": ch.date[:32], "start": ch.start,
                  "end": ch.end, "text": _fit(bm25_text(texts[i])), "dense": vectors[i].tolist()}
                 for i, ch in enumerate(chunks[s:s + INSERT_BATCH], start=s)]
        c.insert(name, batch)
    c.flush(name)
    return row_count(cfg, name)


def _fit(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def row_count(cfg: MilvusConfig, name: str) -> int:
    res = client(cfg).query(name, filter="", output_fields=["count(*)"])
    return int(res[0]["count(*)"])


def switch_alias(cfg: MilvusConfig, name: str) -> None:
    """Point the alias at `name` (alter_alias is atomic on the server; the first build creates it)."""
    c = client(cfg)
    if cfg.alias in c.list_aliases().get("aliases", []):
        c.alter_alias(name, cfg.alias)
    else:
        c.create_alias(name, cfg.alias)


def alias_target(cfg: MilvusConfig) -> str | None:
    c = client(cfg)
    if cfg.alias not in c.list_aliases().get("aliases", []):
        return None
    return str(c.describe_alias(cfg.alias)["collection_name"])


def prune_collections(cfg: MilvusConfig, keep: set[str]) -> list[str]:
    """Drop this prefix's generation collections other than `keep` and the alias's target."""
    c = client(cfg)
    target = alias_target(cfg)
    dropped = []
    for name in c.list_collections():
        if name.startswith(f"{cfg.prefix}_g") and name not in keep and name != target:
            c.drop_collection(name)
            dropped.append(name)
    return dropped


class MilvusDense:
    def __init__(self, cfg: MilvusConfig, name: str, size: int, dim: int,
                 index: dict[str, Any] | None = None) -> None:
        self.cfg, self.name, self._size, self._dim = cfg, name, size, dim
        self.index = index or DENSE_INDEX

    @property
    def kind(self) -> str:
        return "milvus-" + str(self.index["index_type"]).lower()

    def _search_params(self, k: int) -> dict[str, Any]:
        params: dict[str, Any] = {"metric_type": self.index["metric_type"]}
        if self.index["index_type"] == "HNSW":
            params["params"] = {"ef": max(k, HNSW_EF)}  # ef below k is refused
        return params

    @property
    def size(self) -> int:
        return self._size

    @property
    def dim(self) -> int:
        return self._dim

    def search(self, vectors: np.ndarray, k: int) -> DenseHits:
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        n = queries.shape[0]
        k = min(k, self._size, MAX_TOPK)
        if k <= 0:
            return DenseHits(np.full((n, 0), -1, dtype=np.int64), np.zeros((n, 0), dtype=np.float32))
        res = client(self.cfg).search(self.name, data=[q.tolist() for q in queries], anns_field="dense", limit=k,
                                      search_params=self._search_params(k),
                                      output_fields=["row"])
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.zeros((n, k), dtype=np.float32)
        for qi, hits in enumerate(res):
            for j, h in enumerate(hits[:k]):
                ids[qi, j] = int(h["row"]) if "row" in h else int(h["id"])
                scores[qi, j] = float(h["distance"])
        return DenseHits(ids, scores)

    def similarities(self, vector: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        wanted = [int(r) for r in rows]
        got = client(self.cfg).get(self.name, ids=wanted, output_fields=["dense"])
        by_row = {int(g["row"]): np.asarray(g["dense"], dtype=np.float32) for g in got}
        stored = np.vstack([by_row[r] for r in wanted])
        return np.asarray(stored @ np.asarray(vector, dtype=np.float32), dtype=np.float32)


class MilvusSparse:
    def __init__(self, cfg: MilvusConfig, name: str, size: int) -> None:
        self.cfg, self.name, self._size = cfg, name, size

    @property
    def size(self) -> int:
        return self._size

    def search(self, tokens: list[str], k: int, *, text: str | None = None) -> SparseHits:
        query = bm25_text(text if text is not None else " ".join(tokens))
        k = min(k, self._size, MAX_TOPK)
        if not query.strip() or k <= 0:
            return SparseHits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        res = client(self.cfg).search(self.name, data=[query], anns_field="sparse", limit=k,
                                      search_params={"metric_type": "BM25"}, output_fields=["row"])
        pairs = [(int(h["row"]) if "row" in h else int(h["id"]), abs(float(h["distance"]))) for h in res[0]]
        pairs = [p for p in pairs if p[1] > 0]
        pairs.sort(key=lambda p: (-p[1], p[0]))
        return SparseHits(np.asarray([p[0] for p in pairs], dtype=np.int64),
                          np.asarray([p[1] for p in pairs], dtype=np.float32))

    def doc_freq(self, token: str) -> int:
        """Passages the token (as Milvus's analyzer splits it) matches, counted up to Milvus's top-k limit;
        the answerer only asks whether it is 0."""
        return len(self.search([token], MAX_TOPK, text=token).ids)


def open_store(cfg: MilvusConfig, name: str, expected_rows: int, dim: int,
               index: dict[str, Any] | None = None) -> tuple[MilvusDense, MilvusSparse]:
    """The generation's collection, loaded; IndexCorrupt when it is missing or its row count is not the
    manifest's."""
    c = client(cfg)
    if not c.has_collection(name):
        raise IndexCorrupt(f"Milvus collection {name} does not exist at {cfg.uri}")
    c.load_collection(name)
    rows = row_count(cfg, name)
    if rows != expected_rows:
        raise IndexCorrupt(f"Milvus collection {name} holds {rows} rows, the manifest says {expected_rows}")
    return MilvusDense(cfg, name, rows, dim, index), MilvusSparse(cfg, name, rows)
