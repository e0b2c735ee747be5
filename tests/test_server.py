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
from conftest import ADMIN_TOKEN, READER_DIR, REPO, LiveServer, Workspace, running


def _data_dir_server(root: Path, **extra: str) -> LiveServer:
    """A server configured by POLICYQA_DATA_DIR alone (plus the shared prepared model and reader)."""
    ws = Workspace(root, root / "data" / "documents", root / "data" / "index")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
    env.update({"POLICYQA_DATA_DIR": str(root / "data"), "POLICYQA_ADMIN_TOKEN": ADMIN_TOKEN,
                "POLICYQA_MODEL_DIR": str(REPO / "index" / "models" / "multilingual-e5-small"),
                "POLICYQA_READER_DIR": str(READER_DIR), "POLICYQA_REBUILD_DELAY_S": "0.5",
                "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra})
    return LiveServer(ws, env, name="data-dir-server")


def test_port_opens_at_once_and_reports_the_first_build(tmp_path: Path) -> None:
    """First start on an empty data directory: /healthz answers before any index exists, /readyz and the
    question routes answer 503 (one error shape, Retry-After) with the build's progress, then it is ready."""
    server = _data_dir_server(tmp_path)
    server.launch()
    seen: list[dict[str, object]] = []
    try:
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
            assert c.post("/v1/ask", json={"question": "江门市有多少名党员？"}).status_code == 200
        docs = sorted(p.name for p in (tmp_path / "data" / "documents").glob("*.md"))
        assert docs == sorted(p.name for p in (REPO / "corpus" / "seeds").glob("*.md"))  # seeded on first start
    finally:
        server.stop()
        server.workspace.kill_rebuild_children()


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


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def test_add_delete_rebuild_writes_nothing_into_the_checkout(tmp_path: Path) -> None:
    before = _git_status()
    with running(_data_dir_server(tmp_path)) as server, server.client(ADMIN_TOKEN) as admin:
        r = admin.post("/v1/documents", json={"title": "数据目录测试", "text": "2026年某社区新建议事亭3座。",
                                              "date": "2026-02-01", "doc_id": "data-dir-check"})
        assert r.status_code == 201, r.text
        assert admin.delete("/v1/documents/jiangmen-party-building-review-2025").status_code == 200
        job = admin.post("/v1/index/rebuild").json()
        deadline = time.monotonic() + 300
        while admin.get(f"/v1/jobs/{job['job_id']}").json()["state"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.3)
    data = tmp_path / "data"
    assert (data / "documents" / "data-dir-check.md").is_file()
    assert list((data / "documents" / ".trash").glob("jiangmen-party-building-review-2025.*.md"))
    assert (data / "index" / "CURRENT").is_file() and list((data / "index" / "jobs").glob("j*.json"))
    assert _git_status() == before


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


def test_documents_go_live_without_a_rebuild_call(tmp_path: Path) -> None:
    """POLICYQA_AUTO_REBUILD (default on): an add is searchable and a delete is gone with no admin call."""
    with running(_data_dir_server(tmp_path)) as server, server.client() as client, \
            server.client(ADMIN_TOKEN) as admin:
        _go_live(client, admin)


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
