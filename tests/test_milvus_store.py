"""The Milvus store against a real embedded Milvus Lite 2.5 (the real engine's ``milvus`` binary, started by
pymilvus for a local file): build, dense / sparse / hybrid search agreeing with the FAISS store, the alias as the
current pointer across rebuilds, a deleted document, and the load checks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("milvus_lite", reason="milvus-lite (embedded Milvus) is not installed: pip install 'policyqa[milvus]'")
pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install 'policyqa[milvus]'")

from eval.runner import index_fingerprint
from index.generations import IndexCorrupt, IndexMismatch, current_generation
from index.store import load_index
from index.stores import milvus as mv
from service.engine import Engine
from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "corpus" / "seeds"
DEV = REPO / "eval" / "sets" / "seeds-dev.jsonl"
DELETED = "jianghai-party-building-2022-09-26"


def _questions(n: int = 8) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r.get("answerable") and r.get("gold_docs")][:n]


@pytest.fixture(scope="module")
def milvus_engine(tmp_path_factory: pytest.TempPathFactory, model_dir: Path,
                  real_engine: Engine) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("milvus")
    docs = tmp / "docs"
    shutil.copytree(SEEDS, docs)
    index_dir = tmp / "index"
    cache = real_engine.settings.index_dir / "cache" / "embeddings.sqlite"
    if cache.exists():  # the FAISS engine's vectors: this build embeds nothing new
        (index_dir / "cache").mkdir(parents=True)
        shutil.copy2(cache, index_dir / "cache" / cache.name)
    settings = Settings(store="milvus", milvus_uri=str(tmp / "milvus.db"), index_dir=index_dir, corpus_dir=docs,
                        model_dir=model_dir)
    engine = Engine(settings)
    engine.build()
    engine.load()
    yield engine
    mv.close_clients()


def test_build_writes_a_collection_and_the_alias(milvus_engine: Engine) -> None:
    idx = milvus_engine.index
    cfg = milvus_engine.settings.milvus()
    assert cfg is not None
    store = idx.manifest["store"]
    assert store["kind"] == "milvus" and store["collection"] == mv.collection_name(cfg, idx.generation)
    assert store["bm25"] == "milvus" and store["dense_index"] == {"index_type": "FLAT", "metric_type": "IP"}
    # an eval run over this index records where it searched (eval/runner.py)
    assert index_fingerprint(idx.manifest)["store"] == {"kind": "milvus", "bm25": "milvus",
                                                        "dense_index": store["dense_index"]}
    assert not (idx.path / "dense.faiss").exists() and not (idx.path / "sparse").exists()
    assert (idx.path / "chunks.jsonl").exists() and (idx.path / "documents.jsonl").exists()
    assert idx.dense.size == idx.sparse.size == len(idx.chunks) == idx.manifest["counts"]["chunks"]
    assert mv.alias_target(cfg) == store["collection"]
    assert not mv.has_aliases(cfg)  # Milvus Lite 2.5 has none: the alias is a row of the pointer collection
    assert mv.row_count(cfg, store["collection"]) == len(idx.chunks)
    # each entity carries its chunk's citation fields
    rows = mv.client(cfg).query(store["collection"], filter="row in [0, 7]",
                                output_fields=["row", "chunk_id", "doc_id", "title", "section", "date", "start", "end"])
    assert len(rows) == 2
    for r in rows:
        ch = idx.chunks[r["row"]]
        assert (r["chunk_id"], r["doc_id"], r["title"], r["date"], r["start"], r["end"]) == (
            ch.chunk_id, ch.doc_id, ch.title, ch.date, ch.start, ch.end)
        assert r["section"] == " > ".join(ch.section)


def test_exact_from_the_threshold_in_local_mode(milvus_engine: Engine, tmp_path: Path) -> None:
    """A collection at/above POLICYQA_HNSW_THRESHOLD asks for HNSW; Milvus Lite (the real engine's local mode)
    refuses it, so it stays FLAT (exact), recorded in the manifest, and finds what the FLAT store finds."""
    cache = milvus_engine.settings.index_dir / "cache"
    shutil.copytree(cache, tmp_path / "index" / "cache")
    settings = milvus_engine.settings.model_copy(update={
        "index_dir": tmp_path / "index", "milvus_uri": str(tmp_path / "big.db"), "hnsw_threshold": 1})
    assert mv.dense_indexes(94, 1)[0]["index_type"] == "HNSW"  # what a server would get
    engine = Engine(settings, encoder=milvus_engine.encoder)
    engine.build()
    idx = engine.load()
    assert idx.manifest["store"]["dense_index"] == {"index_type": "FLAT", "metric_type": "IP"}
    assert idx.manifest["dense"]["kind"] == idx.dense.kind == "milvus-flat"
    cfg = settings.milvus()
    assert cfg is not None
    assert mv.client(cfg).describe_index(idx.manifest["store"]["collection"], "dense")["index_type"] == "FLAT"
    for q in _questions():
        h = engine.search(str(q["question"]), k=50, mode="dense").results
        f = milvus_engine.search(str(q["question"]), k=50, mode="dense").results
        assert len(h) == 50 and [r.chunk_id for r in h[:10]] == [r.chunk_id for r in f[:10]]
    mv.close_clients()


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_same_top_document_as_faiss(milvus_engine: Engine, real_engine: Engine, mode: str) -> None:
    agree = []
    for q in _questions():
        question = str(q["question"])
        m = milvus_engine.search(question, k=5, mode=mode)
        f = real_engine.search(question, k=5, mode=mode)
        assert m.results and f.results
        agree.append(m.results[0].doc_id == f.results[0].doc_id)
        if mode == "dense":  # FLAT / IP is exact search, as FAISS's flat index
            assert m.results[0].chunk_id == f.results[0].chunk_id
            assert m.results[0].score == pytest.approx(f.results[0].score, abs=1e-4)
    assert all(agree), f"{mode}: top documents differ on {agree.count(False)} of {len(agree)} questions"


def test_answerer_helpers(milvus_engine: Engine) -> None:
    idx = milvus_engine.index
    qvec = milvus_engine.retriever().query_vector("住房公积金")
    sims = idx.dense.similarities(qvec, [0, 1])
    top = idx.dense.search(qvec[None, :], len(idx.chunks))
    by_row = dict(zip(top.ids[0].tolist(), top.scores[0].tolist(), strict=True))
    assert sims.tolist() == pytest.approx([by_row[0], by_row[1]], abs=1e-4)
    assert idx.sparse.doc_freq("江海区") > 0
    assert idx.sparse.doc_freq("火星殖民") == 0


def test_faiss_generation_is_refused_by_the_milvus_store(milvus_engine: Engine, real_engine: Engine) -> None:
    with pytest.raises(IndexMismatch):
        load_index(real_engine.settings.index_dir, milvus=milvus_engine.settings.milvus())
    with pytest.raises(IndexMismatch):
        load_index(milvus_engine.settings.index_dir)


def test_rebuild_switches_the_alias_and_keeps_the_previous_collection(milvus_engine: Engine) -> None:
    cfg = milvus_engine.settings.milvus()
    assert cfg is not None
    before = milvus_engine.index.manifest["store"]["collection"]
    result = milvus_engine.build()
    assert milvus_engine.refresh()
    after = milvus_engine.index.manifest["store"]["collection"]
    assert after == mv.collection_name(cfg, result.generation) != before
    assert mv.alias_target(cfg) == after
    assert mv.client(cfg).has_collection(before)
    assert milvus_engine.search("江海区划分了多少个网格", k=3).generation == result.generation


def test_deleted_document_disappears_after_a_rebuild(milvus_engine: Engine) -> None:
    cfg = milvus_engine.settings.milvus()
    assert cfg is not None
    question = "高新区（江海区）党建引领基层治理领导小组的组长是谁？"
    assert DELETED in {r.doc_id for r in milvus_engine.search(question, k=5).results}
    (milvus_engine.settings.corpus_dir / f"{DELETED}.md").unlink()
    milvus_engine.build()
    milvus_engine.refresh()
    idx = milvus_engine.index
    assert DELETED not in idx.documents
    collection = idx.manifest["store"]["collection"]
    gone = mv.client(cfg).query(collection, filter=f'doc_id == "{DELETED}"', output_fields=["count(*)"])
    assert int(gone[0]["count(*)"]) == 0
    for mode in ("dense", "sparse", "hybrid"):
        assert DELETED not in {r.doc_id for r in milvus_engine.search(question, k=10, mode=mode).results}
    # three builds, two generations kept: the first build's collection went with its folder
    names = [n for n in mv.client(cfg).list_collections() if n.startswith(f"{cfg.prefix}_g")]
    folders = sorted(p.name for p in (milvus_engine.settings.index_dir / "generations").iterdir())
    assert sorted(names) == sorted(mv.collection_name(cfg, f) for f in folders)


def test_load_checks_the_collection(milvus_engine: Engine) -> None:
    cfg = milvus_engine.settings.milvus()
    assert cfg is not None
    root = milvus_engine.settings.index_dir
    folder = current_generation(root)
    assert folder is not None
    collection = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["store"]["collection"]
    c = mv.client(cfg)
    c.delete(collection, ids=[0])
    c.flush(collection)
    with pytest.raises(IndexCorrupt, match="rows"):
        load_index(root, milvus=cfg)
    c.drop_collection(collection)
    with pytest.raises(IndexCorrupt, match="does not exist"):
        load_index(root, milvus=cfg)


_BUILD = """
import os, signal, sys
from service.engine import Engine
from service.settings import Settings

kill = sys.argv[1] == "kill"

def progress(stage, done, total):
    # the collection is written and the folder not yet published: the worst moment to die
    if kill and stage == "sparse" and done == total:
        os.kill(os.getpid(), signal.SIGKILL)

print(Engine(Settings()).build(progress=progress).generation)
"""


def test_killed_build_leaves_the_alias_on_the_last_good_collection(tmp_path: Path, model_dir: Path,
                                                                    real_engine: Engine) -> None:
    import subprocess
    import sys

    from service.jobs import settings_env

    index_dir = tmp_path / "index"
    cache = real_engine.settings.index_dir / "cache" / "embeddings.sqlite"
    if cache.exists():
        (index_dir / "cache").mkdir(parents=True)
        shutil.copy2(cache, index_dir / "cache" / cache.name)
    settings = Settings(store="milvus", milvus_uri=str(tmp_path / "milvus.db"), index_dir=index_dir,
                        corpus_dir=SEEDS, model_dir=model_dir)
    env = settings_env(settings)

    def build(how: str) -> subprocess.CompletedProcess[str]:
        # its own process: Milvus Lite's file is locked by the process that opened it
        return subprocess.run([sys.executable, "-c", _BUILD, how], env=env, capture_output=True, text=True,
                              timeout=600, cwd=REPO)

    good = build("ok")
    assert good.returncode == 0, good.stderr[-2000:]
    first = good.stdout.strip().splitlines()[-1]
    killed = build("kill")
    assert killed.returncode == -9
    cfg = settings.milvus()
    assert cfg is not None
    assert current_generation(index_dir) == index_dir / "generations" / first
    assert mv.alias_target(cfg) == mv.collection_name(cfg, first)
    leftovers = [n for n in mv.client(cfg).list_collections()
                 if n not in (mv.collection_name(cfg, first), mv.pointer_collection(cfg))]
    assert len(leftovers) == 1  # the killed build's collection, never pointed at
    idx = load_index(index_dir, milvus=cfg)
    assert idx.generation == first and idx.dense.size == len(idx.chunks)
    # the next build (here: this process holds Lite's file now; close() does not release it) drops the leftover
    second = Engine(settings).build().generation
    assert mv.alias_target(cfg) == mv.collection_name(cfg, second)
    names = set(mv.client(cfg).list_collections()) - {mv.pointer_collection(cfg)}
    assert names == {mv.collection_name(cfg, first), mv.collection_name(cfg, second)}  # leftover dropped
    assert not any(p.name.startswith(".tmp-") for p in index_dir.iterdir())
