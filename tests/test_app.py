"""The HTTP service end to end: a real uvicorn server (subprocess, loopback), the real model and index.

One server is shared by the whole session (fixture `server` in tests/conftest.py, also used by
tests/test_openapi_fuzz.py): it starts on a temporary copy of the seed corpus with an empty index folder,
so its first start builds the index (the path `policyqa serve` takes on a new machine). Embeddings are
cached across runs in tests/artifacts (the index's own cache, through a symlink), so only new text is
embedded after the first run. A few tests run the app in process (Starlette's TestClient) instead.

Tests that change the corpus run in file order: add → rebuild → find, delete → rebuild → gone. Killing a
rebuild child and the server is tests/test_faults.py's (cases 1 and 2 of bench/faults.py at their quick size).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, FACTORY, SEED_CORPUS, LiveServer, make_workspace, running

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 600.0
UNIQUE_FACT = "2026年测试镇建成党群服务驿站17个。"


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(ADMIN_TOKEN) as c:
        yield c


# --- helpers -------------------------------------------------------------------------------------------


def assert_error(resp: Any, status: int | tuple[int, ...], code: str | None = None) -> dict[str, Any]:
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, (resp.status_code, resp.text[:1000])
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) <= {"code", "message", "detail"} and {"code", "message"} <= set(err), err
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"]), f"no Chinese in {err['message']!r}"
    assert any("a" <= ch.lower() <= "z" for ch in err["message"]), f"no English in {err['message']!r}"
    if code is not None:
        assert err["code"] == code, err
    return dict(err)


def wait_job(client: httpx.Client, job_id: str, *, timeout: float = JOB_TIMEOUT_S,
             during: Callable[[], None] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["state"] in ("queued", "running", "succeeded", "failed")
        if job["state"] in ("succeeded", "failed"):
            return dict(job)
        if during is not None:
            during()
        else:
            time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def wait_job_while_searching(client: httpx.Client, job_id: str) -> tuple[dict[str, Any], list[int], set[str]]:
    """Poll the job to its end, sending a search (and an ask) between polls."""
    statuses: list[int] = []
    generations: set[str] = set()
    n = 0

    def query() -> None:
        nonlocal n
        n += 1
        if n % 3 == 0:
            resp = client.post("/v1/ask", json={"question": "党群服务中心开展了哪些活动？"})
        else:
            resp = client.get("/v1/search", params={"q": "党群服务中心开展了哪些活动", "k": 3})
        statuses.append(resp.status_code)
        if resp.status_code == 200:
            generations.add(resp.json()["generation"])

    job = wait_job(client, job_id, during=query)
    return job, statuses, generations


def search_ids(client: httpx.Client, q: str, k: int = 5, mode: str = "hybrid") -> list[str]:
    r = client.get("/v1/search", params={"q": q, "k": k, "mode": mode})
    assert r.status_code == 200, r.text
    return [hit["doc_id"] for hit in r.json()["results"]]


def article(title: str, body: str, doc_id: str | None = None, date: str = "2026-03-01") -> bytes:
    head = [f"doc_id: {doc_id}"] if doc_id else []
    head += [f'title: "{title}"', f'date: "{date}"', 'source: "测试来源"', 'region: "测试市"']
    return ("---\n" + "\n".join(head) + "\n---\n" + body).encode("utf-8")


# --- in process: the last-resort handler (no route of the real app fails on purpose) -------------------


def test_unhandled_errors_become_500_in_the_error_shape(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from starlette.testclient import TestClient

    from service.api.app import create_app
    from service.settings import Settings

    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")  # type: ignore[call-arg]
    app = create_app(settings)  # no lifespan here: nothing is loaded

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/v1/boom-async")
    async def boom_async() -> None:
        raise KeyError("another secret")

    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/v1/boom", "/v1/boom-async"):
        with caplog.at_level("ERROR", logger="policyqa.http"):
            r = client.get(path)
        assert_error(r, 500, "internal_error")
        assert "secret" not in r.text and "Traceback" not in r.text
    assert "secret internal detail" in caplog.text and "Traceback" in caplog.text  # logged server-side only
    assert 'route="/v1/boom",status="500"' in client.get("/metrics").text
    ready = client.get("/readyz")  # the error shape with the build's progress beside it
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
    assert ready.json()["state"] == "starting" and ready.headers["retry-after"]
    assert client.get("/healthz").json() == {"status": "ok"}


def test_a_full_disk_is_507_in_the_error_shape_and_leaves_no_temporaries(tmp_path: Path) -> None:
    import errno

    from starlette.testclient import TestClient

    from service.docstore import DocumentStore
    from service.jobs import Job, JobStore

    app = _in_process_app(tmp_path)

    @app.get("/v1/full")
    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    @app.get("/v1/other-os-error")
    def other() -> None:
        raise OSError(errno.EACCES, "secret path /root/x")

    client = TestClient(app, raise_server_exceptions=False)
    body = assert_error(client.get("/v1/full"), 507, "insufficient_storage")
    assert "磁盘空间不足" in body["message"]
    r = client.get("/v1/other-os-error")
    assert_error(r, 500, "internal_error")
    assert "secret" not in r.text

    # a job file that cannot be written leaves no temporary file behind
    jobs = JobStore(tmp_path / "jobs")
    job = Job(job_id="j20260101t000000-0123abcd", state="queued")
    jobs.write(job)
    (tmp_path / "jobs" / f"{job.job_id}.json").chmod(0o444)
    real_dump = json.dump

    def failing_dump(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    json.dump = failing_dump  # type: ignore[assignment]
    try:
        with pytest.raises(OSError):
            jobs.write(job)
    finally:
        json.dump = real_dump
    assert not list((tmp_path / "jobs").glob(".*tmp*"))

    # temporaries of writes cut short by a kill are removed once they are old enough
    store = DocumentStore(tmp_path / "docs", tmp_path / "docs.lock")
    (tmp_path / "docs").mkdir()
    old = tmp_path / "docs" / ".x.md.tmp-0123"
    young = tmp_path / "docs" / ".y.md.tmp-4567"
    old.write_text("half")
    young.write_text("half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert store.remove_stale_temporaries() == [old.name]
    assert young.exists() and not old.exists()


def test_first_start_seeds_before_any_add_can_create_the_folder(tmp_path: Path) -> None:
    """The app seeds its documents folder at start, not when the first build reads it: an add arriving
    before that build would otherwise create the folder and the embedded articles would never be copied."""
    app = _in_process_app(tmp_path)
    ctx = app.state.ctx
    assert not ctx.settings.corpus_dir.exists()
    ctx.first_start()
    seeds = sorted(p.name for p in SEED_CORPUS.glob("*.md"))
    assert sorted(p.name for p in ctx.settings.corpus_dir.glob("*.md")) == seeds
    assert sorted(d.doc_id + ".md" for d in ctx.store.load().documents) == seeds


def _in_process_app(tmp_path: Path, **settings: Any) -> Any:
    """The app without its lifespan (no model, no index): for routes that need neither."""
    from service.api.app import create_app
    from service.settings import Settings

    return create_app(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", **settings))


ASSET_RE = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


def test_api_docs_need_no_network(tmp_path: Path) -> None:
    """/docs loads its script, style and icon from this server (no CDN); tests/test_web.py renders it in a
    browser and watches for requests that leave the server."""
    from starlette.testclient import TestClient

    client = TestClient(_in_process_app(tmp_path), raise_server_exceptions=False)
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", r.text, re.I), r.text  # no absolute URL
    urls = set(ASSET_RE.findall(r.text))
    assert {u.rsplit(".", 1)[-1] for u in urls} == {"js", "css", "png", "json"}, urls
    for url in urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, (url, asset.status_code)
        assert len(asset.content) > 100, url
    assert re.search(r'"validatorUrl":\s*null', r.text), "Swagger UI would ask swagger.io to validate the spec"
    assert_error(client.get("/docs/assets/no-such-file.js"), 404)
    assert_error(client.get("/redoc"), 404, "not_found")  # ReDoc's bundle loads its logo from a CDN


def test_document_limit_is_on_the_document_not_its_encoding(tmp_path: Path) -> None:
    """A document under the limit is accepted even when its JSON escapes every character (\\uXXXX makes
    the body twice the document); one over the limit is refused with 413 however it is sent."""
    from starlette.testclient import TestClient

    limit = 60_000
    client = TestClient(_in_process_app(tmp_path, admin_token="t", max_document_bytes=limit),
                        raise_server_exceptions=False, headers={"Authorization": "Bearer t"})
    json_headers = {"content-type": "application/json"}
    text = "基层治理网格化管理。" * (limit // 40)  # ~45 kB of UTF-8, ~90 kB as escaped JSON
    body = json.dumps({"title": "转义测试", "text": text, "date": "2026-01-01"}).encode()  # ensure_ascii
    assert len(text.encode()) < limit < len(body)
    r = client.post("/v1/documents", content=body, headers=json_headers)
    assert r.status_code == 201, r.text

    big = "测" * (limit // 3 + 10)
    for content, headers in (
            (json.dumps({"title": "过大", "text": big}).encode(), json_headers),
            (json.dumps({"title": "过大", "text": big}, ensure_ascii=False).encode(), json_headers),
            (article("过大", big), {"content-type": "text/markdown"})):
        err = assert_error(client.post("/v1/documents", content=content, headers=headers), 413, "payload_too_large")
        assert err["detail"] == {"limit_bytes": limit} and "document" in err["message"]
    err = assert_error(client.post("/v1/documents", files={"file": ("big.md", article("过大", big))}), 413)
    assert err["detail"] == {"limit_bytes": limit}
    assert sorted(p.name for p in (tmp_path / "corpus").glob("*.md")) == [f"{r.json()['doc_id']}.md"]


def test_oversize_bodies_get_the_413_shape_on_every_route(tmp_path: Path) -> None:
    """Bodies past the request limit, announced (Content-Length) or streamed (chunked), on any route."""
    from starlette.testclient import TestClient

    from service.api.middleware import request_body_limit

    limit = request_body_limit(10_000, 20_000)
    client = TestClient(_in_process_app(tmp_path, admin_token="t", max_document_bytes=10_000, max_file_bytes=20_000),
                        raise_server_exceptions=False, headers={"Authorization": "Bearer t"})
    payload = b"x" * (limit + 1)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 8192):
            yield payload[i:i + 8192]

    for path in ("/v1/ask", "/v1/documents"):
        for content in (payload, chunks()):
            r = client.post(path, content=content, headers={"content-type": "application/json"})
            err = assert_error(r, 413, "payload_too_large")
            assert err["detail"] == {"limit_bytes": limit}, err


def test_rebuild_progress_counts_chunks(tmp_path: Path) -> None:
    """A job's progress is chunks done / total in every stage, the dense stage (counted 0/1) included."""
    from service.jobs import Job, JobStore, new_job_id
    from service.rebuild import JobReporter

    store = JobStore(tmp_path / "jobs")
    job = Job(job_id=new_job_id(), state="running")
    store.write(job)
    reporter = JobReporter(store, job)
    seen = []
    for stage, done, total in [("embed", 10, 88), ("embed", 88, 88), ("dense", 0, 1), ("dense", 1, 1),
                               ("sparse", 0, 88), ("sparse", 88, 88)]:
        reporter(stage, done, total)
        p = reporter.job.progress
        seen.append((p.stage, p.done, p.total))
    assert seen == [("embed", 10, 88), ("embed", 88, 88), ("dense", 0, 88), ("dense", 88, 88),
                    ("sparse", 0, 88), ("sparse", 88, 88)]
    stored = store.read(job.job_id)
    assert stored is not None and stored.progress == reporter.job.progress


# --- reading -------------------------------------------------------------------------------------------


def test_health_ready_and_index(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = client.get("/v1/index").json()
    assert info["generation"] == ready.json()["generation"]
    assert info["model"]["dim"] == 384 and info["model"]["fingerprint"]
    assert info["encoder"]["backend"] == "onnx-int8" and info["encoder"]["precision"] == "int8"
    assert info["counts"]["chunks"] > 0 and info["counts"]["documents"] == len(list(SEED_CORPUS.glob("*.md")))
    assert info["corpus_fingerprint"] and info["chunker"]["max_chars"] > 0
    assert info["store"] == {"kind": "faiss", "bm25": "bm25s", "dense_index": "flat"}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_search_passages_quote_the_cleaned_text(client: httpx.Client, mode: str) -> None:
    r = client.get("/v1/search", params={"q": "党群服务中心", "k": 3, "mode": mode})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["mode"] == mode and data["k"] == 3 and 1 <= len(data["results"]) <= 3
    hit = data["results"][0]
    doc = client.get(f"/v1/documents/{hit['doc_id']}").json()
    assert doc["text"][hit["start"]:hit["end"]] == hit["text"]
    stages = {"hybrid": {"encode", "dense", "sparse"}, "dense": {"encode", "dense"}, "sparse": {"sparse"}}[mode]
    timings = data["timings_ms"]
    assert stages | {"fuse", "total"} == set(timings)
    assert timings["total"] >= sum(timings[s] for s in stages) and all(v >= 0 for v in timings.values())


def test_search_default_k(client: httpx.Client) -> None:
    data = client.get("/v1/search", params={"q": "基层治理"}).json()
    assert data["k"] == 5 and len(data["results"]) == 5


def test_ask(client: httpx.Client) -> None:
    r = client.post("/v1/ask", json={"question": "江门市镇村四级党群服务中心开展了哪些活动？", "k": 5})
    assert r.status_code == 200, r.text
    data = r.json()
    for key in ("question", "answer", "refused", "citations", "passages", "generation"):
        assert key in data
    for c in data["citations"]:
        doc = client.get(f"/v1/documents/{c['doc_id']}").json()
        assert doc["text"][c["start"]:c["end"]] == c["quote"]
    assert data["answer_mode_used"] == "extractive" and data["fallback_reason"] is None and data["llm"] is None


def _sse_events(client: httpx.Client, body: dict[str, Any]) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    with client.stream("POST", "/v1/ask", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[len("data: "):])))
    return events


def test_ask_streams_without_an_llm(client: httpx.Client) -> None:
    """No LLM configured: a streamed extractive answer (passages, the text, the answer object equal to the
    non-streamed one), and a generative request falls back and says why."""
    q = "江海区推进网格化管理，全区划分了多少个网格？"
    events = _sse_events(client, {"question": q, "stream": True})
    assert [k for k, _ in events] == ["passages", "delta", "answer"]
    final = events[-1][1]
    assert events[1][1]["text"] == final["answer"] and "190" in final["answer"]
    plain = client.post("/v1/ask", json={"question": q}).json()
    differ = ("timings_ms", "answer_id")  # each answer has its own id (POST /v1/feedback)
    assert {k: v for k, v in final.items() if k not in differ} == {k: v for k, v in plain.items()
                                                                   if k not in differ}
    assert final["answer_id"] != plain["answer_id"]
    gen = client.post("/v1/ask", json={"question": q, "answer_mode": "generative"}).json()
    assert gen["answer_mode_used"] == "extractive" and gen["fallback_reason"] == "llm_not_configured"
    assert gen["answer"] == plain["answer"]
    bad = client.post("/v1/ask", json={"question": q, "answer_mode": "creative"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_documents_list_and_detail(client: httpx.Client, server: LiveServer) -> None:
    data = client.get("/v1/documents").json()
    ids = {d["doc_id"] for d in data["documents"]}
    assert ids >= {p.stem for p in SEED_CORPUS.glob("*.md")}
    for d in data["documents"]:
        if d["doc_id"] in {p.stem for p in SEED_CORPUS.glob("*.md")}:
            assert d["indexed"] is True and d["chunks"] > 0 and d["stored"] is True
    doc_id = "jianghai-party-building-2022-09-26"
    doc = client.get(f"/v1/documents/{doc_id}").json()
    stored = (server.workspace.corpus_dir / f"{doc_id}.md").read_text(encoding="utf-8")
    assert doc["raw"] and stored.endswith(doc["raw"])
    assert doc["text"] and doc["title"] == "党建引领 奋进新程"
    assert_error(client.get("/v1/documents/no-such-document"), 404, "document_not_found")


def test_openapi_documents_every_route(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for route in ("/v1/ask", "/v1/search", "/v1/documents", "/v1/documents/{doc_id}", "/v1/index/rebuild",
                  "/v1/jobs/{job_id}", "/v1/index", "/healthz", "/readyz", "/metrics"):
        assert route in paths, route
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            assert "200" in op["responses"] or "201" in op["responses"] or "202" in op["responses"]
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = resp["content"]["application/json"]["schema"]
                    if (method, path, status) == ("get", "/readyz", "503"):  # the error shape + build progress
                        assert schema == {"$ref": "#/components/schemas/NotReady"}
                        not_ready = spec["components"]["schemas"]["NotReady"]["properties"]
                        assert not_ready["error"] == {"$ref": "#/components/schemas/ErrorBody"}
                        assert {"state", "done", "total"} <= set(not_ready)
                        continue
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_unknown_route_and_method_use_the_error_shape(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.get("/static/no-such-file.js"), 404)
    home = client.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert_error(client.put("/v1/search"), 405, "method_not_allowed")
    assert_error(client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert_error(client.post("/v1/ask", json={}), 422, "validation_error")
    assert_error(client.get("/v1/search", params={"q": "   "}), 422, "empty_query")
    assert_error(client.get("/v1/search", params={"q": "x", "mode": "fuzzy"}), 422)
    assert_error(client.get("/v1/jobs/not-a-job"), 422)
    assert_error(client.get("/v1/jobs/j20200101t000000-00000000"), 404, "job_not_found")


def test_limits(client: httpx.Client, admin: httpx.Client, server: LiveServer) -> None:
    long_q = "党" * 501
    assert_error(client.post("/v1/ask", json={"question": long_q}), 422)
    assert_error(client.get("/v1/search", params={"q": long_q}), 422)
    assert client.get("/v1/search", params={"q": "党" * 500, "k": 1}).status_code == 200
    assert_error(client.post("/v1/ask", json={"question": "党建", "k": 51}), 422)
    assert_error(client.get("/v1/search", params={"q": "党建", "k": 51}), 422)
    assert_error(client.get("/v1/search", params={"q": "党建", "k": 0}), 422)
    assert client.get("/v1/search", params={"q": "党建", "k": 50}).status_code == 200

    before = sorted(p.name for p in server.workspace.corpus_dir.iterdir())
    big = "测试" * 350_001 + "\n"  # 2.1 MB of UTF-8
    payload = json.dumps({"title": "过大的文档", "text": big}, ensure_ascii=False).encode()
    assert len(payload) > 2_000_000
    err = assert_error(admin.post("/v1/documents", content=payload, headers={"content-type": "application/json"}),
                       413, "payload_too_large")
    assert err["detail"]["limit_bytes"] == 2_000_000

    def chunks() -> Iterator[bytes]:  # no Content-Length: the actual size counts
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    assert_error(admin.post("/v1/documents", content=chunks(), headers={"content-type": "application/json"}),
                 413, "payload_too_large")
    files = {"file": ("big.md", article("过大的文档", big))}
    assert_error(admin.post("/v1/documents", files=files), 413)
    assert sorted(p.name for p in server.workspace.corpus_dir.iterdir()) == before


def test_invalid_uploads(admin: httpx.Client, server: LiveServer) -> None:
    before = sorted(p.name for p in server.workspace.corpus_dir.iterdir())
    bad_utf8 = article("编码错误", "正文") + b"\xff\xfe\xfa broken"
    assert_error(admin.post("/v1/documents", files={"file": ("bad.md", bad_utf8)}), (400, 422), "bad_encoding")
    assert_error(admin.post("/v1/documents", content=bad_utf8, headers={"content-type": "text/markdown"}),
                 (400, 422), "bad_encoding")
    assert_error(admin.post("/v1/documents", content=b'{"title": "\xff", "text": "x"}',
                            headers={"content-type": "application/json"}), (400, 422))
    assert_error(admin.post("/v1/documents", files={"file": ("x.md", b"no front matter")}), 422, "no_front_matter")
    assert_error(admin.post("/v1/documents", files={"file": ("x.md", article("空", "   \n"))}), 422, "empty_body")
    assert_error(admin.post("/v1/documents", json={"title": "日期", "text": "正文内容。", "date": "2026-02-30"}),
                 422, "bad_date")
    assert_error(admin.post("/v1/documents", json={"text": "没有标题"}), 422, "validation_error")
    assert_error(admin.post("/v1/documents", files={"other": ("x.md", b"x")}), 422, "missing_file")
    assert_error(admin.post("/v1/documents", content=b"x", headers={"content-type": "application/xml"}), 415)
    assert sorted(p.name for p in server.workspace.corpus_dir.iterdir()) == before


def _raw_request(server: LiveServer, method: str, raw_path: str, token: str | None = None) -> tuple[int, bytes]:
    """http.client sends the path exactly as given (no dot-segment normalisation, no re-encoding)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request(method, raw_path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


TRAVERSAL_IDS = ["..%2F..%2Fetc%2Fpasswd", "../x", "a/b", "..", "%2e%2e%2f%2e%2e%2fescape", "..%5C..%5Cescape",
                 "x%00y", "UPPER", ".hidden", "a..b"]


def test_path_traversal_ids_are_rejected(admin: httpx.Client, server: LiveServer) -> None:
    ws = server.workspace
    outside_before = sorted(str(p) for p in ws.root.rglob("*") if ws.corpus_dir not in p.parents)
    corpus_before = sorted(p.name for p in ws.corpus_dir.iterdir())
    for raw in TRAVERSAL_IDS:
        for method in ("GET", "DELETE"):
            status, body = _raw_request(server, method, f"/v1/documents/{raw}", ADMIN_TOKEN)
            assert 400 <= status < 500, (method, raw, status)
            err = json.loads(body)["error"]
            assert err["code"] and err["message"], body
    for bad in ("../escape", "../../escape", "a/b", "..", "Escape", "/etc/passwd", "x" * 200):
        r = admin.post("/v1/documents", json={"title": "逃逸", "text": f"路径穿越测试 {bad}", "doc_id": bad})
        assert_error(r, 422)
        r = admin.post("/v1/documents", files={"file": ("a.md", article("逃逸", f"路径穿越 {bad}", doc_id=f'"{bad}"'))})
        assert_error(r, 422)
        r = admin.post("/v1/documents", files={"file": ("../escape.md", article("逃逸", f"表单 {bad}"))},
                       data={"doc_id": bad})
        assert_error(r, 422)
    assert sorted(str(p) for p in ws.root.rglob("*") if ws.corpus_dir not in p.parents
                  and "escape" in p.name) == []
    assert sorted(p.name for p in ws.corpus_dir.iterdir()) == corpus_before
    after = sorted(str(p) for p in ws.root.rglob("*") if ws.corpus_dir not in p.parents)
    assert [p for p in after if p not in outside_before and not p.endswith(".log")
            and "/index/" not in p] == []
    assert not Path("/etc/escape.md").exists()


def admin_operations(client: httpx.Client) -> list[tuple[str, str]]:
    """Non-GET operations under /v1/documents and /v1/index, from the served OpenAPI document."""
    spec = client.get("/openapi.json").json()
    ops = []
    for path, methods in spec["paths"].items():
        if path.startswith(("/v1/documents", "/v1/index")):
            for method in methods:
                if method.upper() not in ("GET", "HEAD", "OPTIONS"):
                    ops.append((method.upper(), path.replace("{doc_id}", "jianghai-party-building-2022-09-26")))
    assert len(ops) >= 3, ops
    return ops


def test_admin_routes_need_the_token(server: LiveServer, client: httpx.Client) -> None:
    ops = admin_operations(client)
    corpus_before = sorted(p.name for p in server.workspace.corpus_dir.iterdir())
    jobs_before = len(server.workspace.jobs())
    body = {"title": "未授权", "text": "未授权的文档。"}
    for method, path in ops:
        assert_error(client.request(method, path, json=body), 401, "unauthorized")
        for headers in ({"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {ADMIN_TOKEN}"},
                        {"Authorization": f"Bearer {ADMIN_TOKEN}x"}):
            r = client.request(method, path, json=body, headers=headers)
            assert_error(r, 401, "unauthorized")
            assert r.headers.get("www-authenticate") == "Bearer"
    assert sorted(p.name for p in server.workspace.corpus_dir.iterdir()) == corpus_before
    assert len(server.workspace.jobs()) == jobs_before


def test_admin_routes_refused_when_no_token_is_configured(tmp_path: Path) -> None:
    """No POLICYQA_ADMIN_TOKEN: every admin operation is refused (403, with or without a token), read routes
    stay open. In process: the refusal is the app's auth, before any route runs."""
    from starlette.testclient import TestClient

    c = TestClient(_in_process_app(tmp_path, admin_token=None), raise_server_exceptions=False)
    ops = admin_operations(c)
    for method, path in ops:
        for headers in ({}, {"Authorization": "Bearer anything"}):
            err = assert_error(c.request(method, path, json={"title": "t", "text": "t"}, headers=headers), 403,
                               "admin_disabled")
            assert "POLICYQA_ADMIN_TOKEN" in err["message"]
    assert c.get("/v1/documents").status_code == 200  # read routes stay open
    assert_error(c.get("/v1/search", params={"q": "党建"}), 503, "not_ready")  # no index in process: not a 401/403
    assert not (tmp_path / "corpus").exists() or not list((tmp_path / "corpus").glob("*.md"))


def test_metrics_and_request_log(client: httpx.Client, server: LiveServer) -> None:
    client.get("/v1/documents/jianghai-party-building-2022-09-26")
    client.get("/v1/nothing-here")
    text = client.get("/metrics").text
    assert 'policyqa_http_requests_total{method="GET",route="/v1/documents/{doc_id}",status="200"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert 'policyqa_http_request_duration_seconds_bucket{le="0.1",route="/v1/search"}' in text
    # answers and refusals by reason, confidence, stage latencies, the loaded index
    client.post("/v1/ask", json={"question": "江门市有多少名党员？"})
    client.post("/v1/ask", json={"question": "明天江门会下雨吗？"})
    samples = {}
    for line in client.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples['policyqa_answers_total{reason="",result="answered"}'] >= 1
    assert sum(v for k, v in samples.items() if k.startswith('policyqa_answers_total{reason="out_of_scope"')) >= 1
    assert samples['policyqa_answer_confidence_count{result="answered"}'] >= 1
    for stage in ("encode", "retrieve", "read"):
        assert samples[f'policyqa_stage_duration_seconds_count{{stage="{stage}"}}'] >= 1
    generation = client.get("/v1/index").json()["generation"]
    assert samples[f'policyqa_index_generation_info{{generation="{generation}"}}'] == 1
    assert samples["policyqa_index_chunks"] == client.get("/v1/index").json()["counts"]["chunks"]
    deadline = time.monotonic() + 10
    while "GET /v1/nothing-here 404" not in server.log_tail(200_000) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "policyqa.http" in server.log_tail(200_000)
    assert "GET /v1/nothing-here 404" in server.log_tail(200_000)


def test_duplicates_are_refused(admin: httpx.Client) -> None:
    body = f"重复检测用的测试正文，编号 {secrets.token_hex(4)}。"
    r = admin.post("/v1/documents", json={"title": "重复检测", "text": body, "date": "2026-01", "source": "测试"})
    assert r.status_code == 201, r.text
    doc_id = r.json()["doc_id"]
    assert doc_id.startswith("doc-") and doc_id.isascii()
    assert r.headers["location"] == f"/v1/documents/{doc_id}"
    err = assert_error(admin.post("/v1/documents", json={"title": "另一个标题", "text": body}), 409, "duplicate_content")
    assert err["detail"]["doc_id"] == doc_id
    err = assert_error(admin.post("/v1/documents", files={"file": ("d.md", article("上传", body))}), 409,
                       "duplicate_content")
    assert err["detail"]["doc_id"] == doc_id
    err = assert_error(admin.post("/v1/documents", json={"title": "同名", "text": "完全不同的正文。", "doc_id": doc_id}),
                       409, "doc_id_exists")
    assert "different content" in err["message"]
    detail = admin.get(f"/v1/documents/{doc_id}").json()
    assert detail["indexed"] is False and detail["chunks"] == 0 and body in detail["text"]
    assert detail["date_inferred"] is False
    assert admin.delete(f"/v1/documents/{doc_id}").status_code == 200
    assert_error(admin.delete(f"/v1/documents/{doc_id}"), 404, "document_not_found")


def test_upload_without_date_or_doc_id(admin: httpx.Client, server: LiveServer) -> None:
    body = f"只给标题和正文的测试文档 {secrets.token_hex(4)}。"
    r = admin.post("/v1/documents", json={"title": "最少字段", "text": body})
    assert r.status_code == 201, r.text
    doc_id = r.json()["doc_id"]
    doc = admin.get(f"/v1/documents/{doc_id}").json()
    assert doc["date"] == "" and doc["date_inferred"] is False and doc["source"]  # no date made up
    stored = (server.workspace.corpus_dir / f"{doc_id}.md").read_bytes()
    from corpus.documents import load_document

    assert load_document(server.workspace.corpus_dir / f"{doc_id}.md").raw == body
    assert r.json()["content_hash"] == hashlib.sha256(stored).hexdigest()
    assert admin.delete(f"/v1/documents/{doc_id}").status_code == 200
    trash = list((server.workspace.corpus_dir / ".trash").glob(f"{doc_id}.*.md"))
    assert len(trash) == 1 and trash[0].read_bytes() == stored


def test_two_workers_build_once_and_switch_together(tmp_path: Path) -> None:
    """`uvicorn --factory service.api.app:app_from_env --workers 2` on an empty index folder: the workers start
    one build job between them, become ready when it is published, and both follow a later rebuild."""
    ws = make_workspace(tmp_path / "two-workers")
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection per request: both workers answer
    with running(LiveServer(ws, ws.env(), name="two-workers", workers=2, factory=FACTORY)) as srv, \
            srv.client(limits=fresh) as c, srv.client(ADMIN_TOKEN) as admin:
        jobs = ws.jobs()
        assert len(jobs) == 1 and jobs[0]["state"] == "succeeded", jobs
        # /readyz answered by one worker; on a loaded host the other may still be loading (503 meanwhile)
        deadline, ready = time.monotonic() + 120, 0
        while ready < 8 and time.monotonic() < deadline:
            ready = ready + 1 if c.get("/v1/index").status_code == 200 else 0
            time.sleep(0.05 if ready else 0.5)
        first = c.get("/v1/index").json()["generation"]
        assert first == jobs[0]["generation"]

        r = admin.post("/v1/index/rebuild")
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["job_id"])
        assert job["state"] == "succeeded", job
        assert job["generation"] != first
        seen = {c.get("/v1/search", params={"q": "党建", "k": 1}).json()["generation"] for _ in range(16)}
        seen |= {c.get("/v1/index").json()["generation"] for _ in range(8)}
        assert seen == {job["generation"]}


# --- lifecycle (runs in file order, changes the shared corpus) -----------------------------------------


def test_add_rebuild_find_while_serving(client: httpx.Client, admin: httpx.Client, server: LiveServer) -> None:
    gen_before = client.get("/v1/index").json()["generation"]
    text = UNIQUE_FACT + "驿站提供政策咨询、志愿服务和便民代办，由社区党组织统一管理。\n"
    r = admin.post("/v1/documents", files={"file": ("station.md", article("测试镇党群服务驿站建设", text,
                                                                          doc_id="test-town-stations"))})
    assert r.status_code == 201, r.text
    assert r.json()["doc_id"] == "test-town-stations"
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert listed["test-town-stations"]["indexed"] is False

    r = admin.post("/v1/index/rebuild")
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    again = admin.post("/v1/index/rebuild")
    assert again.status_code == 202
    if again.json()["state"] in ("queued", "running"):
        assert again.json()["job_id"] == job_id and again.json()["started"] is False

    job, statuses, generations = wait_job_while_searching(client, job_id)
    assert job["state"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"] > 0
    assert statuses and all(s == 200 for s in statuses), statuses
    assert generations <= {gen_before, job["generation"]}

    assert client.get("/v1/index").json()["generation"] == job["generation"]
    assert "test-town-stations" in search_ids(client, "测试镇建成了多少个党群服务驿站？", k=3)
    detail = client.get("/v1/documents/test-town-stations").json()
    assert detail["indexed"] is True and detail["chunks"] >= 1 and UNIQUE_FACT in detail["text"]
    ans = client.post("/v1/ask", json={"question": "2026年测试镇建成了多少个党群服务驿站？"}).json()
    assert any(c["doc_id"] == "test-town-stations" for c in ans["citations"]) or any(
        p["doc_id"] == "test-town-stations" for p in ans["passages"]), ans


def test_delete_gone_after_rebuild(client: httpx.Client, admin: httpx.Client) -> None:
    r = admin.delete("/v1/documents/test-town-stations")
    assert r.status_code == 200 and r.json() == {"doc_id": "test-town-stations", "deleted": True, "job_id": None}
    listing = client.get("/v1/documents").json()
    assert "test-town-stations" not in {d["doc_id"] for d in listing["documents"]}
    assert "test-town-stations" in listing["pending_removal"]
    still = client.get("/v1/documents/test-town-stations").json()  # citations may still point at it
    assert still["stored"] is False and still["raw"] is None and still["state"] == "removing"
    # never cited again from the moment the DELETE returned, though the rebuild has not run yet
    assert client.get("/v1/index").json()["generation"] == listing["generation"]
    for mode in ("hybrid", "dense", "sparse"):
        assert "test-town-stations" not in search_ids(client, "测试镇建成了多少个党群服务驿站？", k=10, mode=mode)
    ans = client.post("/v1/ask", json={"question": "2026年测试镇建成了多少个党群服务驿站？"}).json()
    assert "test-town-stations" not in {c["doc_id"] for c in ans["citations"]} | {
        p["doc_id"] for p in ans["passages"]}, ans

    r = admin.delete("/v1/documents/test-town-stations")
    assert_error(r, 404, "document_not_found")
    r = admin.post("/v1/index/rebuild")
    job = wait_job(client, r.json()["job_id"])
    assert job["state"] == "succeeded", job
    assert "test-town-stations" not in search_ids(client, "测试镇建成了多少个党群服务驿站？", k=10)
    assert_error(client.get("/v1/documents/test-town-stations"), 404, "document_not_found")
    assert client.get("/v1/documents").json()["pending_removal"] == []


UNDATED_ID = "test-undated-stations"
UNDATED_FACT = "测试乡修建新时代文明实践站9个，开展志愿服务和文明宣讲。"


def test_undated_upload_then_corrected_and_rebuilt(client: httpx.Client, admin: httpx.Client,
                                                   server: LiveServer) -> None:
    """A text without any date is stored without one and answered without one; a PATCH corrects its metadata
    (front matter only, the body byte for byte) and the rebuild it starts picks the new title up."""
    from corpus.documents import split_document

    r = admin.post("/v1/documents", json={"title": "测试乡文明实践站", "text": UNDATED_FACT + "\n",
                                          "doc_id": UNDATED_ID})
    assert r.status_code == 201, r.text
    detail = client.get(f"/v1/documents/{UNDATED_ID}").json()
    assert detail["date"] == "" and detail["date_inferred"] is False
    path = server.workspace.corpus_dir / f"{UNDATED_ID}.md"
    body = split_document(path.read_bytes())[1].encode("utf-8")

    assert_error(admin.patch("/v1/documents/no-such-doc", json={"title": "x"}), 404, "document_not_found")
    assert_error(admin.patch(f"/v1/documents/{UNDATED_ID}", json={"date": "2026-02-30"}), 422, "bad_date")
    assert_error(admin.patch(f"/v1/documents/{UNDATED_ID}", json={"doc_id": "other"}), 422, "protected_field")
    assert_error(admin.patch(f"/v1/documents/{UNDATED_ID}", json={"title": None}), 422, "missing_field")
    assert_error(client.patch(f"/v1/documents/{UNDATED_ID}", json={"title": "x"}), 401, "unauthorized")

    job = wait_job(client, admin.post("/v1/index/rebuild").json()["job_id"])
    assert job["state"] == "succeeded", job
    ans = client.post("/v1/ask", json={"question": "测试乡修建了多少个新时代文明实践站？"}).json()
    mine = [p for p in ans["passages"] if p["doc_id"] == UNDATED_ID]
    assert mine and all(p["date"] == "" for p in mine), ans["passages"]
    assert all(c["date"] == "" for c in ans["citations"] if c["doc_id"] == UNDATED_ID)
    assert "据《测试乡文明实践站》（" not in ans["answer"]  # no date in the answer text

    r = admin.patch(f"/v1/documents/{UNDATED_ID}?rebuild=true",
                    json={"title": "测试乡新时代文明实践站", "date": "2026-03", "place": "测试乡"})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == ["title", "date", "place"] and r.json()["job_id"]
    assert split_document(path.read_bytes())[1].encode("utf-8") == body
    assert list((server.workspace.corpus_dir / ".trash").glob(f"{UNDATED_ID}.*.corrected.md"))
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert listed[UNDATED_ID]["state"] == "indexing" and listed[UNDATED_ID]["corrected"]
    job = wait_job(client, r.json()["job_id"])
    assert job["state"] == "succeeded", job
    detail = client.get(f"/v1/documents/{UNDATED_ID}").json()
    assert detail["indexed"] is True and detail["title"] == "测试乡新时代文明实践站" and detail["date"] == "2026-03"
    assert detail["place"] == "测试乡" and detail["corrected_fields"] == "title,date,place"
    hits = client.get("/v1/search", params={"q": "测试乡新时代文明实践站", "k": 5}).json()["results"]
    assert any(h["doc_id"] == UNDATED_ID and h["title"] == "测试乡新时代文明实践站" and h["date"] == "2026-03"
               for h in hits), hits

    assert admin.delete(f"/v1/documents/{UNDATED_ID}").status_code == 200
    job = wait_job(client, admin.post("/v1/index/rebuild").json()["job_id"])
    assert job["state"] == "succeeded", job


def test_uploaded_regulations_know_their_dates_and_versions(client: httpx.Client, admin: httpx.Client) -> None:
    """Two versions of 贵阳市建设生态文明城市条例 uploaded as Word files: each is dated from its own text, the
    older one is listed as superseded by the newer, before any rebuild."""
    from corpus.formats.measure_regulations import RAW

    names = {"gy-2019": "贵州省__2019_贵阳市建设生态文明城市条例.docx", "gy-2021": "贵州省__2021_贵阳市建设生态文明城市条例.docx"}
    if not all((RAW / n).is_file() for n in names.values()):
        pytest.skip(f"the regulations corpus is not at {RAW} (set POLICYQA_REGULATIONS_DIR)")
    for doc_id, name in names.items():
        r = admin.post("/v1/documents", files={"file": ("条例.docx", (RAW / name).read_bytes())}, data={"doc_id": doc_id})
        assert r.status_code == 201, r.text
        assert r.json()["title"] == "贵阳市建设生态文明城市条例"
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    old, new = listed["gy-2019"], listed["gy-2021"]
    assert (old["version_current"], old["superseded_by"]) == (False, "gy-2021")
    assert (new["version_current"], new["superseded_by"]) == (True, None)
    assert old["version_group"] == new["version_group"] == "贵阳市|贵阳市建设生态文明城市条例"
    detail = client.get("/v1/documents/gy-2021").json()
    assert detail["doc_type"] == "regulation" and detail["date_inferred"] is False
    assert (detail["adopted_date"], detail["approved_date"]) == ("2013-02-04", "2013-03-30")
    assert detail["revised_date"] == "2021-05-27" and detail["date"] == "2021-05-27" and detail["version"] == "2021"
    assert (detail["place"], detail["province"]) == ("贵阳市", "贵州省")
    assert detail["effective_date"] == "2013-05-01" and detail["superseded_by"] is None
    for doc_id in names:
        assert admin.delete(f"/v1/documents/{doc_id}").status_code == 200
