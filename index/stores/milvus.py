"""The Milvus store: one collection per index generation, an alias as the current pointer.

Schema (one entity per chunk row): ``row`` INT64 primary key = the chunk's line in the generation's
chunks.jsonl, ``chunk_id``, ``doc_id``, the citation fields ``title``, ``section`` (heading path joined by
" > "), ``date``, ``start``/``end`` (offsets in the cleaned document), ``text`` (the passage text that
FAISS/bm25s index too, punctuation as spaces (bm25_text), analysed by Milvus's jieba tokenizer, lower-cased,
our stopwords dropped), ``dense`` FLOAT_VECTOR (the e5 passage vectors, normalised, metric IP = cosine) and
``sparse`` SPARSE_FLOAT_VECTOR, the output of a BM25 function over ``text`` (k1=1.5, b=0.75 as bm25s).

The engine is real Milvus: Milvus Lite 2.5 (a local file path as the URI: pymilvus starts milvus-lite's
``milvus`` binary, knowhere + tantivy, on a unix socket) or a Milvus server or cluster (http://host:19530),
with the same calls. What a collection gets depends on what the engine accepts, tried in this order when the
collection is created and recorded in the generation's manifest (``store``):

- dense index: FLAT (exact) below POLICYQA_HNSW_THRESHOLD rows; from it HNSW, or FLAT still where the engine
  refuses HNSW (Milvus Lite: "local mode only support FLAT IVF_FLAT AUTOINDEX"; its IVF_FLAT is no option:
  recall@10 0.79 at 10^5 whatever nlist and nprobe, docs/scaling.md).
- BM25: a BM25 function in Milvus (``bm25: "milvus"``); where the engine has none (Milvus before 2.5 refuses
  the SPARSE_FLOAT_VECTOR field's index) the collection holds no ``sparse`` field and BM25 stays in bm25s
  files in the generation folder, as with the FAISS store (``bm25: "bm25s"``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from corpus.chunking import Chunk
from index.dense import DenseHits
from index.generations import IndexCorrupt, StoreUnavailable
from index.segmentation import STOPWORDS
from index.sparse import SparseHits
from index.stores import MilvusConfig

log = logging.getLogger(__name__)

INSTALL_HINT = "install the Milvus extra: pip install 'policyqa[milvus]'"
DENSE_INDEX = {"index_type": "FLAT", "metric_type": "IP"}  # exact: below the HNSW threshold
# From POLICYQA_HNSW_THRESHOLD rows on, HNSW as FAISS does (ef 256: bench/bench_scale.py measured recall@10
# 1.000 at 10^6 on HNSW M 32 / efConstruction 100). Milvus Lite builds no HNSW and its IVF_FLAT found 79% of
# the true top 10 at 10^5 rows with nlist 128 or 1,265 and any nprobe from 8 to all lists (the search parameter
# changes nothing), so Lite stays exact (FLAT: recall 1.000, p50 20 ms at 10^5; docs/scaling.md section 1b).
HNSW_INDEX = {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 32, "efConstruction": 100}}
HNSW_EF = 256
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}
MAX_TOPK = 16384  # Milvus's limit on one search
INSERT_BATCH = 512
TEXT_MAX_BYTES = 65535

# Runs of punctuation (a dot between digits excepted: 3.5) become one space before text reaches Milvus's
# analyzer, for passages and queries alike: index/segmentation.py drops punctuation tokens, Milvus's jieba
# analyzer keeps them and Milvus 2.5's analyzer has no removepunct filter.
_PUNCT = re.compile(r"(?:(?!(?<=\d)\.(?=\d))[^\w%％])+")


def bm25_text(text: str) -> str:
    """The text Milvus's BM25 analyzer is given (stored passages and queries): punctuation as spaces."""
    return _PUNCT.sub(" ", text).strip()


def pymilvus_missing() -> bool:
    try:
        import pymilvus  # noqa: F401
    except ImportError:
        return True
    return False


def require_pymilvus() -> None:
    """StoreUnavailable (the CLI's one-line error, HTTP 503 store_unavailable) when pymilvus is not installed."""
    if pymilvus_missing():
        raise StoreUnavailable("POLICYQA_STORE=milvus but pymilvus is not installed", INSTALL_HINT)


# Every call gets a deadline (pymilvus retries a call to an unreachable server for ~3.5 min otherwise; only an
# int timeout bounds its retries). Generous: a flush or load of a large collection takes minutes.
CALL_TIMEOUT_S = 300
# Calls that only read: retried once on a fresh connection after a failure (a server that restarted)
_READS = frozenset({"has_collection", "list_collections", "list_aliases", "describe_alias", "describe_collection",
                    "describe_index", "query", "search", "get", "load_collection"})
_LOCAL_ONLY = frozenset({"create_schema", "prepare_index_params", "close"})


class _Client:
    """A MilvusClient with a deadline on every call and a fresh connection after a failed one.

    pymilvus shares one gRPC channel per URI between clients; after the server went away the channel waits
    out gRPC's reconnect backoff (up to 2 minutes) even once the server is back. Each client here has a
    connection of its own, and a call that fails replaces it, so the next call (or, for reads, the retry)
    reaches a restarted server at once."""

    def __init__(self, cfg: MilvusConfig) -> None:
        self.cfg = cfg
        self._client: Any = self._connect()

    def _connect(self) -> Any:
        from pymilvus import MilvusClient

        kwargs: dict[str, Any] = {"uri": self.cfg.uri, "timeout": min(30, CALL_TIMEOUT_S), "alias": f"policyqa-{uuid.uuid4().hex}"}
        if self.cfg.token:
            kwargs["token"] = self.cfg.token
        if self.cfg.db:
            kwargs["db_name"] = self.cfg.db
        return MilvusClient(**kwargs)

    def _reconnect(self) -> None:
        """Drop the connection; the next call makes a new one."""
        with contextlib.suppress(Exception):
            self._client.close()
        self._client = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._client is not None:
                self._client.close()

    def __getattr__(self, name: str) -> Any:
        if name in _LOCAL_ONLY:
            if self._client is None:
                self._client = self._connect()
            return getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", CALL_TIMEOUT_S)
            for attempt in (0, 1):
                if self._client is None:
                    self._client = self._connect()
                try:
                    return getattr(self._client, name)(*args, **kwargs)
                except Exception as exc:
                    if not _connection_error(exc):
                        raise
                    self._reconnect()
                    if attempt or name not in _READS:
                        raise
            raise AssertionError("unreachable")

        return call


def _connection_error(exc: BaseException) -> bool:
    """A failure of the connection (server gone, deadline passed), not a refusal by a server that answered."""
    import grpc
    from pymilvus import MilvusException

    if isinstance(exc, grpc.RpcError):
        return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    if isinstance(exc, MilvusException):
        text = str(exc)
        return any(w in text for w in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "Retry timeout", "Retry run out",
                                       "Fail connecting", "server unavailable"))
    return isinstance(exc, OSError | TimeoutError)


_clients: dict[tuple[str, str, str], _Client] = {}
_clients_lock = threading.Lock()
_alias_support: dict[tuple[str, str, str], bool] = {}


def client(cfg: MilvusConfig) -> Any:
    """One client per (uri, token, db) per process (Milvus Lite: one binary per file, held by it)."""
    require_pymilvus()
    key = (cfg.uri, cfg.token, cfg.db)
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            c = _clients[key] = _Client(cfg)
        return c


def close_clients() -> None:
    with _clients_lock:
        for c in _clients.values():
            c.close()
        _clients.clear()
        _alias_support.clear()


def collection_name(cfg: MilvusConfig, generation: str) -> str:
    """Milvus names take letters, digits and underscores: g20261130T161440.123456-42 -> <prefix>_g2026..._42."""
    return f"{cfg.prefix}_" + re.sub(r"[^0-9A-Za-z_]", "_", generation)


def _stopwords() -> list[str]:
    words = (w.strip() for w in STOPWORDS.read_text(encoding="utf-8").splitlines())
    return sorted(w for w in words if w and not w.startswith("#"))


def analyzer_params() -> dict[str, Any]:
    """Milvus's jieba (jieba-rs, its own dictionary), then lower-case and our stopwords dropped. Milvus 2.5.1
    accepts no more than this: a tokenizer given as {"type": "jieba", "dict": [...], "mode", "hmm"} (our user
    dictionary's words) or a "removepunct" filter are refused when the first row is analysed (the insert
    fails), so punctuation goes before the analyzer (bm25_text) and our user dictionary is not passed."""
    return {"tokenizer": "jieba", "filter": ["lowercase", {"type": "stop", "stop_words": _stopwords()}]}


def ivf_index(rows: int) -> dict[str, Any]:
    """IVF_FLAT with nlist 4·sqrt(rows) (bench/bench_scale.py --milvus-index IVF_FLAT measures it; not used)."""
    nlist = max(1, min(65536, round(4 * math.sqrt(max(rows, 1)))))
    return {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": nlist}}


def dense_indexes(rows: int, hnsw_threshold: int) -> list[dict[str, Any]]:
    """The dense indexes a collection of `rows` vectors may get, best first: exact (FLAT) below the threshold;
    from it HNSW, then FLAT for an engine that builds no HNSW (Milvus Lite)."""
    if rows < hnsw_threshold:
        return [dict(DENSE_INDEX)]
    return [dict(HNSW_INDEX), dict(DENSE_INDEX)]


@dataclass(frozen=True)
class Written:
    """What create_collection made: the row count Milvus reports, the dense index the engine accepted and
    where BM25 runs ("milvus": the collection's BM25 function; "bm25s": the caller builds SparseIndex files)."""

    rows: int
    dense_index: dict[str, Any]
    bm25: str


def _create(cfg: MilvusConfig, name: str, dim: int, index: dict[str, Any], bm25: bool) -> None:
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
    if bm25:
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, enable_analyzer=True,
                         analyzer_params=analyzer_params())
    else:
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    params = c.prepare_index_params()
    params.add_index("dense", **index)
    if bm25:
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                         params=dict(BM25_PARAMS))
    try:
        c.create_collection(name, schema=schema, index_params=params)
    except Exception:
        with contextlib.suppress(Exception):  # a server may have made the collection before refusing an index
            if c.has_collection(name):
                c.drop_collection(name)
        raise


def create_schema_for(cfg: MilvusConfig, name: str, dim: int, indexes: Sequence[dict[str, Any]]
                      ) -> tuple[dict[str, Any], str]:
    """Create the empty collection with the best schema the engine accepts: BM25 in Milvus where it can,
    the first dense index it builds. The engine is asked, not guessed from a version: a refusal of the BM25
    function (or of its sparse index) means bm25s, a refusal of an index type the next one."""
    from pymilvus import MilvusException

    errors: list[str] = []
    for bm25 in (True, False):
        for index in indexes:
            try:
                _create(cfg, name, dim, index, bm25)
            except MilvusException as exc:
                errors.append(f"{index['index_type']}{' + BM25' if bm25 else ''}: {exc}")
                continue
            if errors:
                log.info("Milvus at %s refused %s", cfg.uri, "; ".join(errors))
            return index, "milvus" if bm25 else "bm25s"
    raise IndexCorrupt(f"Milvus at {cfg.uri} accepts none of the collection's schemas: {'; '.join(errors)}",
                       "check the Milvus server (see docs/scaling.md)")


def create_collection(cfg: MilvusConfig, name: str, dim: int, chunks: Sequence[Chunk], texts: Sequence[str],
                      vectors: np.ndarray, indexes: Sequence[dict[str, Any]] | None = None) -> Written:
    """Write one generation's collection: its chunks in chunks.jsonl order with the passage texts BM25 indexes.
    Replaces a leftover of the same name (an interrupted build).

    Each entity carries the chunk's citation fields too (title, section path, date, offsets in the cleaned
    document), so a Milvus cluster shared by several services can be read and filtered without the generation
    folder; the service itself cites from chunks.jsonl, which the row number points into."""
    c = client(cfg)
    index, bm25 = create_schema_for(cfg, name, dim, list(indexes or [DENSE_INDEX]))
    vectors = np.asarray(vectors, dtype=np.float32)
    for s in range(0, len(chunks), INSERT_BATCH):
        batch = [{"row": i, "chunk_id": ch.chunk_id, "doc_id": ch.doc_id, "title": _fit(ch.title, 2048),
                  "section": _fit(" > ".join(ch.section), 4096), "date": ch.date[:32], "start": ch.start,
                  "end": ch.end, "text": _fit(bm25_text(texts[i])), "dense": vectors[i].tolist()}
                 for i, ch in enumerate(chunks[s:s + INSERT_BATCH], start=s)]
        c.insert(name, batch)
    c.flush(name)
    return Written(row_count(cfg, name), index, bm25)


def _fit(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def row_count(cfg: MilvusConfig, name: str) -> int:
    res = client(cfg).query(name, filter="", output_fields=["count(*)"])
    return int(res[0]["count(*)"])


def pointer_collection(cfg: MilvusConfig) -> str:
    return f"{cfg.prefix}_pointer"


def has_aliases(cfg: MilvusConfig) -> bool:
    """Whether the engine implements collection aliases (a server does; Milvus Lite 2.5 answers UNIMPLEMENTED
    to every alias call). Asked once per (uri, token, db) per process."""
    import grpc

    key = (cfg.uri, cfg.token, cfg.db)
    if key not in _alias_support:
        handler = logging.getLogger("pymilvus.decorators")
        before = handler.level
        handler.setLevel(logging.CRITICAL)  # the probe's expected failure is not an error to log
        try:
            client(cfg).list_aliases()
            _alias_support[key] = True
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            _alias_support[key] = False
        finally:
            handler.setLevel(before)
    return _alias_support[key]


def _pointer(cfg: MilvusConfig) -> str:
    """Milvus Lite's stand-in for the alias: a collection <prefix>_pointer holding one row per alias name
    (primary key) with the collection it points at; an upsert replaces the row in one call."""
    from pymilvus import DataType

    c = client(cfg)
    name = pointer_collection(cfg)
    if not c.has_collection(name):
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("alias", DataType.VARCHAR, is_primary=True, max_length=255)
        schema.add_field("target", DataType.VARCHAR, max_length=255)
        schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
        params = c.prepare_index_params()
        params.add_index("unused", index_type="FLAT", metric_type="L2")
        c.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
    return name


def switch_alias(cfg: MilvusConfig, name: str) -> None:
    """Point the alias at `name` (alter_alias is atomic on the server; the first build creates it). Without
    aliases (Milvus Lite) the pointer collection's row for the alias is upserted."""
    c = client(cfg)
    if not has_aliases(cfg):
        c.upsert(_pointer(cfg), [{"alias": cfg.alias, "target": name, "unused": [0.0, 0.0]}])
        return
    if cfg.alias in c.list_aliases().get("aliases", []):
        c.alter_alias(name, cfg.alias)
    else:
        c.create_alias(name, cfg.alias)


def alias_target(cfg: MilvusConfig) -> str | None:
    c = client(cfg)
    if not has_aliases(cfg):
        if not c.has_collection(pointer_collection(cfg)):
            return None
        rows = c.query(_pointer(cfg), filter=f'alias == "{cfg.alias}"', output_fields=["target"],
                       consistency_level="Strong")
        return str(rows[0]["target"]) if rows else None
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


def bm25_engine(store: dict[str, Any]) -> str:
    """Where a Milvus generation's BM25 runs: "milvus" or "bm25s" (manifests before the fallback: milvus)."""
    value = store.get("bm25")
    return value if isinstance(value, str) else "milvus"


def open_store(cfg: MilvusConfig, name: str, expected_rows: int, dim: int,
               index: dict[str, Any] | None = None, *, bm25: str = "milvus") -> tuple[MilvusDense, MilvusSparse | None]:
    """The generation's collection, loaded, and its BM25 side when it runs in Milvus (None: bm25s files);
    IndexCorrupt when the collection is missing or its row count is not the manifest's."""
    c = client(cfg)
    if not c.has_collection(name):
        raise IndexCorrupt(f"Milvus collection {name} does not exist at {cfg.uri}")
    c.load_collection(name)
    rows = row_count(cfg, name)
    if rows != expected_rows:
        raise IndexCorrupt(f"Milvus collection {name} holds {rows} rows, the manifest says {expected_rows}")
    sparse = MilvusSparse(cfg, name, rows) if bm25 == "milvus" else None
    return MilvusDense(cfg, name, rows, dim, index), sparse
