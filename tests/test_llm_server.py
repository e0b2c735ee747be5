"""Generated answers against a real LLM server: llama.cpp's OpenAI-compatible server (xllamacpp, in this
process) serving Qwen2.5-Coder-1.5B-Instruct Q4_K_M from the `llm-test` extra, and a real policyqa server
over HTTP. About 20-30 s per generated answer on two vCPUs: two are generated (one streamed over
HTTP, one by the web page).

Order matters: the server is stopped by the last test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, LiveServer, make_workspace, running

pytest.importorskip("xllamacpp", reason="the llm-test extra is not installed")
pytestmark = pytest.mark.slow

from bench.llm_server import LocalLLM  # noqa: E402

HOW = "江海区是怎样推进党建引领基层治理的？"
LLM_TIMEOUT_S = 240  # generous: two vCPUs shared with the policyqa server and the test process


@pytest.fixture(scope="module")
def llm() -> Iterator[LocalLLM]:
    server = LocalLLM(cache=ARTIFACTS / "llm")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llm_app(llm: LocalLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ws = make_workspace(tmp_path_factory.mktemp("llm-http"))
    env = ws.env(POLICYQA_AUTO_REBUILD="false", POLICYQA_LLM_BASE_URL=llm.base_url,
                 POLICYQA_LLM_TIMEOUT_S=str(LLM_TIMEOUT_S))
    with running(LiveServer(ws, env, name="llm-server")) as live:
        yield live


def _ask(app: LiveServer, **body: Any) -> dict[str, Any]:
    with app.client(timeout=LLM_TIMEOUT_S + 60) as c:
        r = c.post("/v1/ask", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_streamed_generated_answer_every_citation_verifies(llm_app: LiveServer) -> None:
    """One generation, streamed: passages, then the statements' text as it is written, then the answer object,
    whose kept statements each cite a quote that is the cited document's text at [start:end]. (The JSON
    route gives the same object: engine.answer is the same event stream consumed; tests/test_app.py compares
    the two routes' answers, tests/test_llm.py the events with a scripted LLM.)"""
    events: list[tuple[str, Any]] = []
    with llm_app.client(timeout=LLM_TIMEOUT_S + 60) as c, c.stream(
            "POST", "/v1/ask", json={"question": HOW, "answer_mode": "generative", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((str(kind), json.loads(line[len("data: "):])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "passages" and kinds[-1] == "answer" and kinds.count("answer") == 1
    assert set(kinds[1:-1]) == {"delta"}, kinds
    a = events[-1][1]
    streamed = "".join(d["text"] for k, d in events if k == "delta")
    shown = "".join(s["text"] for s in a["statements"])  # the text shown as it was written
    assert "".join(streamed.split()) == "".join(shown.split())
    assert [p["chunk_id"] for p in events[0][1]["passages"]] == [p["chunk_id"] for p in a["passages"]]

    assert a["answer_mode_used"] == "generative", (a["fallback_reason"], a["statements"])
    assert a["fallback_reason"] is None and not a["refused"]
    kept = [s for s in a["statements"] if s["verified"]]
    assert kept and a["llm"]["statements_kept"] == len(kept)
    by_n = {c["n"]: c for c in a["citations"]}
    assert {s["citation"] for s in kept} == set(by_n)
    with llm_app.client() as c:
        for cite in a["citations"]:
            doc = c.get(f"/v1/documents/{cite['doc_id']}").json()
            assert doc["text"][cite["start"]:cite["end"]] == cite["quote"]
            assert f"[{cite['n']}]" in a["answer"]
    for s in a["statements"]:
        if not s["verified"]:
            assert s["dropped"] and s["citation"] is None


def test_auto_mode_keeps_short_facts_extractive(llm_app: LiveServer) -> None:
    t0 = time.monotonic()
    a = _ask(llm_app, question="江海区推进网格化管理，全区划分了多少个网格？", answer_mode="auto")
    assert a["answer_mode_used"] == "extractive" and a["llm"] is None and a["fallback_reason"] is None
    assert "190" in a["answer"]
    assert time.monotonic() - t0 < 30  # no LLM call: the reader's answer alone


def test_timeout_falls_back_to_the_extractive_answer(llm: LocalLLM, real_engine) -> None:  # type: ignore[no-untyped-def]
    from service.engine import Engine

    settings = real_engine.settings.model_copy(update={"llm_base_url": llm.base_url, "llm_timeout_s": 1.0})
    engine = Engine(settings, encoder=real_engine.encoder)
    engine.load()
    t0 = time.monotonic()
    a = engine.answer(HOW, answer_mode="generative")
    took = time.monotonic() - t0
    assert a.fallback_reason == "llm_timeout" and a.answer_mode_used == "extractive"
    assert a.citations and not a.refused
    assert took < 15, took  # the deadline, plus the reader, plus closing the stream


def test_web_page_streams_the_text_then_marks_verified_statements(llm_app: LiveServer) -> None:
    import re

    from playwright.sync_api import expect
    from test_web import browser_session, watched_page

    with browser_session() as browser, watched_page(browser, llm_app.url) as (page, problems):
        page.goto(f"{llm_app.url}/")
        page.select_option("#answer-mode", "generative")
        page.locator("#question").fill(HOW)
        page.locator("#question").press("Enter")
        wait_ms = (LLM_TIMEOUT_S + 60) * 1000
        expect(page.locator("#answer-live")).to_contain_text(re.compile(r"\S"), timeout=wait_ms)  # while streaming
        expect(page.locator(".statement-list li.verified").first).to_be_visible(timeout=wait_ms)
        assert page.locator("#answer-live").count() == 0  # the streamed text gave way to the verified answer
        assert page.locator(".citation-item").count() >= 1
        assert page.locator(".answer-text .cite-marker").count() >= 1
        assert not problems, problems


def test_fallback_when_the_server_is_stopped(llm: LocalLLM, llm_app: LiveServer) -> None:
    llm.stop()
    t0 = time.monotonic()
    a = _ask(llm_app, question=HOW, answer_mode="generative")
    assert a["fallback_reason"] == "llm_unavailable" and a["answer_mode_used"] == "extractive"
    assert a["citations"] and time.monotonic() - t0 < 30
    with llm_app.client() as c:
        metrics = c.get("/metrics").text
    assert 'policyqa_answer_fallbacks_total{reason="llm_unavailable"} 1.0' in metrics
    assert 'policyqa_llm_calls_total{outcome="ok"}' in metrics
    assert "policyqa_llm_duration_seconds_count" in metrics
    assert 'policyqa_llm_statements_total{reason="",result="kept"}' in metrics


def test_model_is_assembled_and_checked(llm: LocalLLM) -> None:
    from bench.llm_server import MODELS, assemble

    path = assemble(llm.name, ARTIFACTS / "llm")
    assert path.stat().st_size > MODELS[llm.name].size_mb * 1_000_000 * 0.99
    assert Path(str(path).replace(".gguf", ".ok")).read_text().strip() == MODELS[llm.name].sha256
