"""The Milvus store over a URI (POLICYQA_MILVUS_URI=http://127.0.0.1:PORT) against real Milvus server processes
started here (tests/milvus_servers.py):

- ``standalone``: Milvus 2.3.5, no BM25 functions: the store detects it when the collection is created and keeps
  BM25 in bm25s files beside the collection (/v1/index: store.bm25 == "bm25s"); it has aliases.
- ``lite``: the Milvus 2.5 engine (milvus-lite's binary) on a TCP port: BM25 in Milvus, no aliases.

Each: build over the seed corpus, add a document, rebuild, ask. Then (the 2.5 engine) the server is killed
(kill -9) in the middle of a build: the build fails, the folder and the alias stay on the last good generation, and once the
server is back the index loads and answers and the next build succeeds.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install 'policyqa[milvus]'")

from index.generations import current_generation
from index.store import load_index, store_summary
from index.stores import milvus as mv
from service.engine import Engine
from service.settings import Settings
from tests.milvus_servers import MilvusServer, ServerUnavailable

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "corpus" / "seeds"
NEW_DOC = "jiangmen-lychee-subsidy-2026-01-05"
NEW_TEXT = f"""---
doc_id: {NEW_DOC}
title: "江门市荔枝种植补贴实施细则"
date: "2026-01-05"
source: "测试文档"
region: "广东省江门市"
---
江门市荔枝种植补贴实施细则

为扶持荔枝产业，江门市对新种植荔枝树的农户给予补贴，每亩荔枝补贴标准为一千二百元。补贴资金由市农业农村局统一发放，
申请人须在每年三月三十一日前向所在镇人民政府提交荔枝种植补贴申请表。
"""
QUESTION = "江门市新种植荔枝每亩补贴多少钱？"


@pytest.fixture(scope="module", params=["standalone", "lite"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    srv = MilvusServer(request.param, tmp_path_factory.mktemp(f"milvus-{request.param}"))
    try:
        srv.start()
    except ServerUnavailable as exc:
        pytest.skip(f"a {request.param} Milvus server cannot start on this platform: {exc}")
    yield srv
    mv.close_clients()
    srv.stop()


@pytest.fixture(scope="module")
def engine(server: MilvusServer, tmp_path_factory: pytest.TempPathFactory, model_dir: Path,
           real_engine: Engine) -> Engine:
    tmp = tmp_path_factory.mktemp(f"milvus-{server.kind}-index")
    docs = tmp / "docs"
    shutil.copytree(SEEDS, docs)
    cache = real_engine.settings.index_dir / "cache" / "embeddings.sqlite"
    if cache.exists():  # the FAISS engine's vectors: the seed build embeds nothing new
        (tmp / "index" / "cache").mkdir(parents=True)
        shutil.copy2(cache, tmp / "index" / "cache" / cache.name)
    settings = Settings(store="milvus", milvus_uri=server.uri, index_dir=tmp / "index", corpus_dir=docs,
                        model_dir=model_dir)
    engine = Engine(settings, encoder=real_engine.encoder)
    engine._reader = real_engine.reader  # the session's reader: answers here need no second copy
    engine.build()
    engine.load()
    return engine


def test_add_a_document_rebuild_and_ask_over_the_uri(server: MilvusServer, engine: Engine) -> None:
    cfg = engine.settings.milvus()
    assert cfg is not None and cfg.uri.startswith("http://127.0.0.1:")
    idx = engine.index
    summary = store_summary(idx.manifest)
    if server.kind == "standalone":  # Milvus 2.3: no BM25 function, bm25s files in the generation folder
        assert summary["bm25"] == "bm25s" and (idx.path / "sparse").is_dir()
        assert type(idx.sparse).__name__ == "SparseIndex" and mv.has_aliases(cfg)
    else:
        assert summary["bm25"] == "milvus" and not (idx.path / "sparse").exists()
        assert isinstance(idx.sparse, mv.MilvusSparse) and not mv.has_aliases(cfg)
    assert summary["kind"] == "milvus" and summary["uri"] == server.uri
    assert summary["dense_index"] == {"index_type": "FLAT", "metric_type": "IP"}
    assert not (idx.path / "dense.faiss").exists()
    before = idx.manifest["store"]["collection"]
    assert mv.alias_target(cfg) == before
    assert NEW_DOC not in {r.doc_id for r in engine.search(QUESTION, k=5).results}

    (engine.settings.corpus_dir / f"{NEW_DOC}.md").write_text(NEW_TEXT, encoding="utf-8")
    result = engine.build()
    assert engine.refresh()
    after = engine.index.manifest["store"]["collection"]
    assert after == mv.collection_name(cfg, result.generation) != before
    assert mv.alias_target(cfg) == after
    for mode in ("hybrid", "dense", "sparse"):
        assert engine.search(QUESTION, k=3, mode=mode).results[0].doc_id == NEW_DOC, mode
    answer = engine.answer(QUESTION)
    assert not answer.refused and answer.citations[0].doc_id == NEW_DOC
    assert "一千二百元" in answer.answer


# On the Milvus 2.5 engine only: Milvus 2.3.5 standalone, restarted after a kill -9 (or a SIGTERM), answered
# again only once its dead coordinators' etcd sessions expired: 40 s in some runs, over 90 s in others.
@pytest.mark.parametrize("server", ["lite"], indirect=True)
def test_server_killed_mid_build(server: MilvusServer, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mv, "CALL_TIMEOUT_S", 3)  # a dead server fails the build in seconds, not minutes
    cfg = engine.settings.milvus()
    assert cfg is not None
    root = engine.settings.index_dir
    good = current_generation(root)
    assert good is not None
    good_collection = mv.collection_name(cfg, good.name)

    def kill_the_server(stage: str, done: int, total: int) -> None:
        # the passages are embedded, the new collection not yet written: the server dies under the build
        if stage == "dense" and done == 0 and server.proc is not None:
            server.stop(signal.SIGKILL)

    with pytest.raises(Exception, match=r"(?i)unavailable|connect|timeout|deadline"):
        engine.build(progress=kill_the_server)
    assert server.proc is None
    assert current_generation(root) == good  # nothing published

    monkeypatch.undo()  # a restarted server takes a while to load a collection again
    server.start()
    assert mv.alias_target(cfg) == good_collection
    idx = load_index(root, milvus=cfg)
    assert idx.generation == good.name and idx.dense.size == len(idx.chunks)
    assert engine.refresh() is False  # the served generation is still the current one
    res = engine.search("江海区划分了多少个网格", k=3)
    assert res.generation == good.name and res.results[0].doc_id.startswith("jianghai")

    result = engine.build()  # the next build works and drops the interrupted one's folder
    assert mv.alias_target(cfg) == mv.collection_name(cfg, result.generation)
    assert not any(p.name.startswith(".tmp-") for p in root.iterdir())
    assert engine.refresh() and engine.search("江海区划分了多少个网格", k=3).generation == result.generation


def test_without_pymilvus_the_milvus_store_asks_for_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """POLICYQA_STORE=milvus on an installation without the `milvus` extra: the CLI says what to install, and
    the HTTP API answers in its error shape (503 store_unavailable), not with a traceback."""
    from starlette.testclient import TestClient

    from index.generations import StoreUnavailable
    from service import cli
    from service.api.app import create_app

    monkeypatch.setitem(__import__("sys").modules, "pymilvus", None)  # `import pymilvus` raises ImportError
    assert mv.pymilvus_missing()
    monkeypatch.setenv("POLICYQA_STORE", "milvus")
    monkeypatch.setenv("POLICYQA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("POLICYQA_CORPUS_DIR", str(SEEDS))
    rc = cli.main(["index", "build"])
    err = capsys.readouterr().err
    assert rc != 0 and "policyqa[milvus]" in err and "Traceback" not in err

    settings = Settings(store="milvus", index_dir=tmp_path / "index", corpus_dir=SEEDS)
    app = create_app(settings)  # no lifespan: the route below is the store's first use

    @app.get("/v1/store-check")
    def store_check() -> None:
        load_index(settings.index_dir, milvus=settings.milvus())

    r = TestClient(app, raise_server_exceptions=False).get("/v1/store-check")
    assert r.status_code == 503 and set(r.json()) == {"error"}
    assert r.json()["error"]["code"] == StoreUnavailable.code == "store_unavailable"
    assert "policyqa[milvus]" in r.json()["error"]["message"]
