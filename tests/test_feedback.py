"""Feedback on answers: the SQLite store (service/logbook.py) under two real uvicorn workers, the API's errors
(unknown answer 404, full disk 507), the export to an eval set (eval/feedbackset.py) and the round trip over
HTTP: ask → 👎 with a correction / 👍 → export → `policyqa eval run` shows the miss and the pass."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, LiveServer, make_workspace
from test_conversation import RecordingEngine, _app

from eval.feedbackset import ExportError, export_rows, write_set
from service.logbook import Asked, Feedback, Logbook, UnknownAnswer, new_answer_id, now_iso

TOKEN = "f" * 32
CONCURRENT_POSTS = 200


def _asked(question: str, *, refused: bool = False, short: str | None = "190个") -> Asked:
    return Asked(new_answer_id(), now_iso(), question, question, "" if refused else f"划分{short}网格。[1]",
                 None if refused else short,
                 [] if refused else [{"n": 1, "doc_id": "jianghai-party-building-2022-09-26", "quote": "划分190个网格"}],
                 refused, "no_evidence" if refused else None, 12.5, "g1", "extractive")


# --- the store -------------------------------------------------------------------------------------------


def test_feedback_is_stored_with_what_it_rates_and_listed_by_rating_and_date(tmp_path: Path) -> None:
    book = Logbook(tmp_path / "log.sqlite3")
    a, b = _asked("江海区划分了多少个网格？"), _asked("阳江有多少网格？", refused=True)
    book.record(a)
    book.record(b)
    down = book.add_feedback(a.answer_id, "down", "190个网格", "数字应带单位")
    up = book.add_feedback(b.answer_id, "up")
    assert (down.question, down.answer, down.generation, down.answer_mode) == (
        a.question, a.answer, "g1", "extractive")
    assert down.citations == a.citations and down.correct_answer == "190个网格"
    assert [f.feedback_id for f in book.feedback()] == [up.feedback_id, down.feedback_id]  # newest first
    assert [f.rating for f in book.feedback("down")] == ["down"]
    today = down.created_at[:10]
    assert len(book.feedback(since=today, until=today)) == 2 and book.feedback(until="2000-01-01") == []
    with pytest.raises(UnknownAnswer):
        book.add_feedback("a-no-such-answer", "up")


def test_the_api_answers_404_for_an_unknown_answer_and_507_on_a_full_disk(tmp_path: Path) -> None:
    client = _app(tmp_path, RecordingEngine(), admin_token=TOKEN)
    r = client.post("/v1/feedback", json={"answer_id": "a0123456789", "rating": "up"})
    assert r.status_code == 404 and set(r.json()) == {"error"}
    assert r.json()["error"]["code"] == "answer_not_found"
    for bad in ({"answer_id": "x", "rating": "meh"}, {"answer_id": "x"}, {"answer_id": "../x", "rating": "up"},
                {"answer_id": "x", "rating": "up", "correct_answer": "x" * 2001}, {"answer_id": "x", "rating": "up", "ip": 1}):
        assert client.post("/v1/feedback", json=bad).status_code == 422, bad
    answer_id = client.post("/v1/ask", json={"question": "江门市有多少名党员？"}).json()["answer_id"]
    book: Logbook = client.app.state.ctx.logbook
    real = book._connect

    def full(write: bool = False) -> Any:
        if write:
            raise sqlite3.OperationalError("database or disk is full")
        return real(write)

    book._connect = full  # type: ignore[method-assign]
    r = client.post("/v1/feedback", json={"answer_id": answer_id, "rating": "down", "correct_answer": "21万多名"})
    book._connect = real  # type: ignore[method-assign]
    assert r.status_code == 507 and r.json()["error"]["code"] == "insufficient_storage"
    assert book.feedback() == []  # nothing half-written
    ok = client.post("/v1/feedback", json={"answer_id": answer_id, "rating": "down", "correct_answer": "21万多名"})
    assert ok.status_code == 201
    listed = client.get("/v1/feedback?rating=down", headers={"Authorization": f"Bearer {TOKEN}"}).json()["feedback"]
    assert [f["correct_answer"] for f in listed] == ["21万多名"]
    assert client.get("/v1/feedback").status_code == 401
    assert 'policyqa_feedback_total{rating="down"} 1.0' in client.get("/metrics").text


# --- the export --------------------------------------------------------------------------------------------


def _fb(i: int, rating: str, question: str, *, correct: str | None = None, refused: bool = False,
        short: str | None = "190个") -> Feedback:
    a = _asked(question, refused=refused, short=short)
    return Feedback(i, a.answer_id, now_iso(), rating, correct, None, a.asked_at, question, question, a.answer,
                    a.short_answer, a.citations, refused, a.reason, "g1", "extractive")


def test_the_export_makes_corrections_and_up_votes_gold_and_unexplained_down_votes_must_not_answer(tmp_path: Path) -> None:
    newest_first = [_fb(6, "up", "江海区划分了多少个网格？"),
                    _fb(5, "down", "江海区划分了多少个网格", correct="200个"),  # older rating of the same question
                    _fb(4, "down", "江门有多少党员？", correct="21万多名"),
                    _fb(3, "down", "江门有多少网格员？", short="5个"),
                    _fb(2, "up", "阳江有多少网格？", refused=True),
                    _fb(1, "down", "佛山有多少党员？", refused=True)]
    export = export_rows(newest_first)
    assert (export.duplicates, export.skipped) == (1, 1)
    rows = {r["question"]: r for r in export.rows}
    assert rows["江海区划分了多少个网格？"]["answers"] == ["190个"] and rows["江海区划分了多少个网格？"]["answerable"]
    assert rows["江海区划分了多少个网格？"]["gold_docs"] == ["jianghai-party-building-2022-09-26"]
    assert rows["江门有多少党员？"]["answers"] == ["21万多名"] and "corrected" in rows["江门有多少党员？"]["tags"]
    must_not = rows["江门有多少网格员？"]
    assert not must_not["answerable"] and must_not["rejected"] == ["5个"] and "must_not_answer" in must_not["tags"]
    assert not rows["阳江有多少网格？"]["answerable"]
    path = tmp_path / "fb.jsonl"
    write_set(export, path)
    from eval.sets import load_set

    _, questions = load_set(str(path))
    assert len(questions) == 4 and all("feedback" in q.tags for q in questions)
    hand_written = tmp_path / "mine.jsonl"
    hand_written.write_text(json.dumps({"id": "x", "question": "q", "answers": ["a"], "tags": []}) + "\n")
    with pytest.raises(ExportError):
        write_set(export, hand_written)


# --- two real workers ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_feedback_across_two_workers_loses_nothing(tmp_path: Path) -> None:
    """200 ratings posted at once to `policyqa serve --workers 2`: every one acknowledged, every one stored."""
    ws = make_workspace(tmp_path)
    for p in ws.corpus_dir.iterdir():  # no documents: the service needs no index to take feedback
        p.unlink()
    book = Logbook(ws.root / "logbook.sqlite3")
    answers = [_asked(f"问题{i}") for i in range(CONCURRENT_POSTS)]
    for a in answers:
        assert book.record(a)
    live = LiveServer(ws, ws.env(POLICYQA_AUTO_REBUILD="false"), name="feedback2", workers=2)
    live.launch()
    try:
        _wait_ready(live)

        def post(i: int) -> int:
            rating = "up" if i % 2 else "down"
            with httpx.Client(base_url=live.url, timeout=60) as c:
                r = c.post("/v1/feedback", json={"answer_id": answers[i].answer_id, "rating": rating,
                                                 "correct_answer": None if i % 2 else f"答案{i}"})
            return r.status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(post, range(CONCURRENT_POSTS)))
        assert statuses.count(201) == CONCURRENT_POSTS, sorted(set(statuses))
        stored = book.feedback()
        assert len(stored) == CONCURRENT_POSTS
        assert len({f.answer_id for f in stored}) == CONCURRENT_POSTS
        assert {f.correct_answer for f in stored if f.rating == "down"} == {f"答案{i}" for i in range(0, 200, 2)}
        metrics = httpx.get(f"{live.url}/metrics", timeout=30).text
        assert 'policyqa_feedback_total{rating="up"} 100.0' in metrics
        assert 'policyqa_feedback_total{rating="down"} 100.0' in metrics
        print(f"\nconcurrency: {CONCURRENT_POSTS} posts, {statuses.count(201)} acknowledged, {len(stored)} rows stored")
    finally:
        live.stop()
        ws.kill_rebuild_children()


def _wait_ready(live: LiveServer, timeout: float = 300.0) -> None:
    """Ready on both workers: each has loaded the (empty) index and warmed its models up. A worker busy warming
    up can miss uvicorn's health check and be restarted, dropping the requests it held: not this test's
    subject."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while time.monotonic() < deadline and in_a_row < 10:
        assert live.proc is not None and live.proc.poll() is None, live.log_tail()
        try:
            ok = httpx.get(f"{live.url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            ok = False
        in_a_row = in_a_row + 1 if ok else 0
        time.sleep(0.3)
    assert in_a_row >= 10, f"not ready: {live.log_tail()}"


# --- the round trip over HTTP -----------------------------------------------------------------------------


@pytest.mark.slow
def test_feedback_round_trip_becomes_an_eval_set_that_shows_the_miss_and_the_pass(server: LiveServer,
                                                                                 tmp_path: Path) -> None:
    with server.client() as c:
        wrong = c.post("/v1/ask", json={"question": "江海区推进网格化管理，全区划分了多少个网格？"}).json()
        right = c.post("/v1/ask", json={"question": "江海区党建考核连续几年被市委组织部评为“好”的等次？"}).json()
        assert not wrong["refused"] and not right["refused"], (wrong, right)
        # 👎 with a correction the answer does not hold (a miss to show), 👍 on an answer (a pass to show)
        assert c.post("/v1/feedback", json={"answer_id": wrong["answer_id"], "rating": "down",
                                            "correct_answer": "一万个网格"}).status_code == 201
        assert c.post("/v1/feedback", json={"answer_id": right["answer_id"], "rating": "up"}).status_code == 201
    out = tmp_path / "prod-feedback.jsonl"
    env = server.env
    export = subprocess.run([sys.executable, "-m", "eval.cli", "feedback", "export", "--set", "prod-feedback",
                             "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert export.returncode == 0, export.stderr
    rows = {r["question"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert rows[wrong["resolved_question"]]["answers"] == ["一万个网格"]
    assert rows[right["resolved_question"]]["answers"] == [right["short_answer"] or right["citations"][0]["quote"]]
    run_dir = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "eval.cli", "eval", "run", "--set", str(out), "--out", str(run_dir),
                          "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    scored = {}
    for line in (run_dir / "run.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        a = row["answer"]
        text = "" if a["refused"] else f"{a['answer']}\n{a.get('short_answer') or ''}"
        scored[row["question"]] = any(g in text for g in row["answers"])
    assert scored == {wrong["resolved_question"]: False, right["resolved_question"]: True}
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["modes"]["hybrid"]["overall"]["accuracy"] == 0.5
