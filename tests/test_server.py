"""`policyqa serve` on a new machine: the port opens before the index exists, and everything written goes to
the data directory (real server subprocesses, the real model and reader)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from conftest import ADMIN_TOKEN, READER_DIR, REPO, LiveServer, Workspace, share_embedding_cache


def _data_dir_server(root: Path, **extra: str) -> LiveServer:
    """A server configured by POLICYQA_DATA_DIR alone (plus the shared prepared model and reader)."""
    ws = Workspace(root, root / "data" / "documents", root / "data" / "index")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
    env.update({"POLICYQA_DATA_DIR": str(root / "data"), "POLICYQA_ADMIN_TOKEN": ADMIN_TOKEN,
                "POLICYQA_MODEL_DIR": str(REPO / "index" / "models" / "multilingual-e5-small"),
                "POLICYQA_READER_DIR": str(READER_DIR), "POLICYQA_REBUILD_DELAY_S": "0.5",
                "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra})
    return LiveServer(ws, env, name="data-dir-server")


def test_first_start_then_live_documents_write_only_to_the_data_dir(tmp_path: Path) -> None:
    """One server on an empty data directory, the path `policyqa serve` takes on a new machine: the port opens
    before any index exists and reports the first build; documents then go live without a rebuild call
    (POLICYQA_AUTO_REBUILD, default on); an explicit rebuild; and everything written goes to the data
    directory, nothing into the checkout."""
    before = _git_status()
    server = _data_dir_server(tmp_path)
    share_embedding_cache(tmp_path / "data" / "index")  # the seeds' vectors: the first build embeds nothing new
    server.launch()
    try:
        _first_start(server, tmp_path)
        with server.client() as client, server.client(ADMIN_TOKEN) as admin:
            _go_live(client, admin)
            _add_delete_rebuild(admin)
    finally:
        server.stop()
        server.workspace.kill_rebuild_children()
    data = tmp_path / "data"
    assert (data / "documents" / "data-dir-check.md").is_file()
    assert list((data / "documents" / ".trash").glob("jiangmen-party-building-review-2025.*.md"))
    assert (data / "index" / "CURRENT").is_file() and list((data / "index" / "jobs").glob("j*.json"))
    assert _git_status() == before


def _first_start(server: LiveServer, tmp_path: Path) -> None:
    """/healthz answers before any index exists, /readyz and the question routes answer 503 (one error shape,
    Retry-After) with the start's stage and the build's progress, then it is ready."""
    seen: list[dict[str, object]] = []
    with httpx.Client(base_url=server.url, timeout=10) as c:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                health = c.get("/healthz")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            assert health.status_code == 200
            ready = c.get("/readyz")
            if ready.status_code == 200:
                break
            assert ready.status_code == 503 and ready.headers["retry-after"], ready.text
            body = ready.json()
            assert body["error"]["code"] == "not_ready" and body["state"] in ("starting", "building"), body
            seen.append(body)
            ask = c.post("/v1/ask", json={"question": "江门市有多少名党员？"})
            if ask.status_code == 503:
                assert ask.json()["error"]["code"] == "not_ready" and ask.headers["retry-after"]
            time.sleep(0.1)
        else:
            raise AssertionError(f"not ready in 300 s:\n{server.log_tail()}")
        assert seen, "the server was ready before its port answered anything else"
        building = [b for b in seen if b["state"] == "building"]
        assert building, seen
        assert all(b["job_id"] for b in building)
        # stages in first-start order, counts only while the index is built (the model and reader are prepared
        # already here: test_readyz_names_each_stage_with_its_own_progress covers their stages)
        from service.api.state import STAGES

        order = [STAGES.index(str(b["stage"])) for b in seen]
        assert order == sorted(order), [b["stage"] for b in seen]
        assert "building_index" in {b["stage"] for b in seen} and "warming_up" in {b["stage"] for b in seen}
        for b in seen:
            if b["stage"] == "building_index":
                assert 0 <= int(b["done"]) <= int(b["total"]), b  # type: ignore[call-overload]
            else:
                assert b["done"] == b["total"] == 0, b
        assert c.post("/v1/ask", json={"question": "江门市有多少名党员？"}).status_code == 200
    docs = sorted(p.name for p in (tmp_path / "data" / "documents").glob("*.md"))
    assert docs == sorted(p.name for p in (REPO / "corpus" / "seeds").glob("*.md"))  # seeded on first start


def test_a_request_leaves_the_first_load_and_its_warm_up_to_the_watcher(monkeypatch: Any, tmp_path: Path) -> None:
    """A question that arrives once the first build is done gets 503 at once rather than doing the warm-up (the
    reader's session, a first answer: seconds) itself; a later generation is still switched to by requests."""
    from types import SimpleNamespace

    from service.api import state

    calls: list[str] = []
    current = [tmp_path / "g1"]

    class Engine:
        settings = SimpleNamespace(index_dir=tmp_path)
        _index: Any = None

        def refresh(self) -> None:
            calls.append("refresh")
            self._index = SimpleNamespace(path=current[0], generation=current[0].name, chunks=())

        def answer(self, *_a: Any, **_k: Any) -> None:
            calls.append("warm-up")

    monkeypatch.setattr(state, "current_generation", lambda _d: current[0])
    watcher = state.IndexWatcher(Engine(), jobs=None, metrics=SimpleNamespace(index_loaded=lambda *_a: None))  # type: ignore[arg-type]
    watcher.started = True
    watcher.check(first=False)
    assert calls == [] and watcher.loaded() is None
    watcher.check()  # the background watcher
    assert calls == ["refresh", "warm-up"] and watcher.generation == "g1"
    current[0] = tmp_path / "g2"
    watcher.check(first=False)
    assert calls == ["refresh", "warm-up", "refresh"] and watcher.generation == "g2"


def test_readyz_names_each_stage_with_its_own_progress(monkeypatch: Any, tmp_path: Path) -> None:
    """A first start goes preparing_model → building_index (chunks done/total) → loading_index →
    assembling_reader → warming_up → ready, each reported as it happens, with counts only where they mean
    something (a 94/94 of the finished build is not shown while the reader is assembled)."""
    from types import SimpleNamespace

    from index.reader import assemble
    from service.api import state
    from service.jobs import Job, JobProgress

    seen: list[tuple[str, str, int, int]] = []
    job = [Job("j1", "running", JobProgress(0, 0, "preparing_model"))]
    current: list[Path | None] = [None]

    def look() -> None:
        r = watcher.readiness()
        seen.append((r["state"], r["stage"], r["done"], r["total"]))

    class Jobs:
        def start(self) -> tuple[Job, bool]:
            return job[0], True

        def get(self, _job_id: str) -> Job:
            return job[0]

        def active(self) -> Job | None:
            return None

    class Engine:
        settings = SimpleNamespace(index_dir=tmp_path, reader_dir=tmp_path / "reader", embedding_model=None,
                                   model_dir=tmp_path / "e5")
        _index: Any = None

        def refresh(self) -> None:
            look()
            self._index = SimpleNamespace(path=current[0], generation="g1", chunks=())

        @property
        def reader(self) -> None:
            look()

        def answer(self, *_a: Any, **_k: Any) -> None:
            look()

    monkeypatch.setattr(state, "current_generation", lambda _d: current[0])
    monkeypatch.setattr(assemble, "reader_complete", lambda _d: False)
    watcher = state.IndexWatcher(Engine(), jobs=Jobs(), metrics=SimpleNamespace(index_loaded=lambda *_a: None))  # type: ignore[arg-type]
    look()
    watcher.startup()  # no index: starts the job that builds one
    look()
    for progress in (JobProgress(0, 0, "prepare"), JobProgress(10, 94, "embed"), JobProgress(94, 94, "sparse")):
        job[0] = Job("j1", "running", progress)
        look()
    job[0] = Job("j1", "succeeded", JobProgress(94, 94, "done"), generation="g1")
    look()  # published, not yet picked up
    current[0] = tmp_path / "g1"
    watcher.check()
    assert seen == [("starting", "starting", 0, 0), ("building", "preparing_model", 0, 0),
                    ("building", "building_index", 0, 0), ("building", "building_index", 10, 94),
                    ("building", "building_index", 94, 94), ("starting", "loading_index", 0, 0),
                    ("starting", "loading_index", 0, 0), ("starting", "assembling_reader", 0, 0),
                    ("starting", "warming_up", 0, 0)]
    assert watcher.readiness() == {"status": "ready", "state": "ready", "generation": "g1"}
    assert [state.stage_message({"stage": s, "done": d, "total": t})[0] for _, s, d, t in seen[1:4]] == [
        "正在准备模型", "正在建立索引（0/0）", "正在建立索引（10/94）"]
    assert {s for _, s, _, _ in seen} <= set(state.STAGES)

    job[0] = Job("j2", "failed", JobProgress(3, 94, "embed"), error={"message": "索引重建失败 / failed"})
    watcher.generation = None
    body = watcher.readiness()
    assert (body["state"], body["stage"], body["reason"]) == ("failed", "failed", "索引重建失败 / failed")


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def _add_delete_rebuild(admin: httpx.Client) -> None:
    r = admin.post("/v1/documents", json={"title": "数据目录测试", "text": "2026年某社区新建议事亭3座。",
                                          "date": "2026-02-01", "doc_id": "data-dir-check"})
    assert r.status_code == 201, r.text
    assert admin.delete("/v1/documents/jiangmen-party-building-review-2025").status_code == 200
    job = admin.post("/v1/index/rebuild").json()
    deadline = time.monotonic() + 300
    while (state := admin.get(f"/v1/jobs/{job['job_id']}").json()["state"]) not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert state == "succeeded"


def search_ids(client: httpx.Client, q: str, k: int = 5) -> list[str]:
    r = client.get("/v1/search", params={"q": q, "k": k})
    assert r.status_code == 200, r.text
    return [hit["doc_id"] for hit in r.json()["results"]]


def wait_documents(client: httpx.Client, done: Callable[[dict[str, Any]], bool],
                   timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing: dict[str, Any] = client.get("/v1/documents").json()
        if done(listing):
            return listing
        time.sleep(0.5)
    raise AssertionError(f"documents did not settle in {timeout}s: {listing}")


def _go_live(client: httpx.Client, admin: httpx.Client) -> None:
    fact = "2026年试点村建成共享菜园9处，由村党支部牵头管理。"
    r = admin.post("/v1/documents", json={"title": "试点村共享菜园", "text": fact + "\n菜园由党员志愿者轮流照看。",
                                          "date": "2026-05-01", "doc_id": "auto-live-garden"})
    assert r.status_code == 201 and r.json()["job_id"] is None, r.text
    states = {d["doc_id"]: d["state"] for d in client.get("/v1/documents").json()["documents"]}
    assert states["auto-live-garden"] in ("indexing", "indexed")

    def indexed(listing: dict[str, Any]) -> bool:
        return any(d["doc_id"] == "auto-live-garden" and d["state"] == "indexed" for d in listing["documents"])

    wait_documents(client, indexed)
    assert "auto-live-garden" in search_ids(client, "试点村建成了多少处共享菜园？", k=3)
    assert any(j["state"] == "succeeded" for j in client.get("/v1/jobs").json()["jobs"])

    assert admin.delete("/v1/documents/auto-live-garden").status_code == 200
    assert "auto-live-garden" not in search_ids(client, "试点村建成了多少处共享菜园？", k=10)
    listing = wait_documents(client, lambda d: "auto-live-garden" not in d["pending_removal"])
    assert "auto-live-garden" not in search_ids(client, "试点村建成了多少处共享菜园？", k=10)
    assert "auto-live-garden" not in {d["doc_id"] for d in listing["documents"]}
    assert client.get("/v1/documents/auto-live-garden").json()["error"]["code"] == "document_not_found"
