"""The question log (service/logbook.py) and its report (service/questionreport.py): what is logged and what
never is, retention, the off switch, and that a full disk or a locked file never breaks answering."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from test_conversation import RecordingEngine, _app

from service.logbook import Asked, Logbook, new_answer_id
from service.questionreport import build_report, render_text, topic_of

TOKEN = "q" * 32


def _asked(question: str, *, refused: bool = False, reason: str | None = None, when: datetime | None = None,
           latency: float = 100.0) -> Asked:
    return Asked(new_answer_id(), (when or datetime.now(UTC)).isoformat(timespec="milliseconds"), question, question,
                 "" if refused else f"答：{question}", None, [], refused, reason, latency, "g1", "extractive")


def test_every_question_is_logged_without_ip_or_token(tmp_path: Path) -> None:
    client = _app(tmp_path, RecordingEngine(), admin_token=TOKEN)
    r = client.post("/v1/ask", json={"question": "江门市有多少名党员？"},
                    headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.9",
                             "Cookie": "session=secret-cookie"})
    assert r.status_code == 200
    book = Logbook(tmp_path / "logbook.sqlite3")
    row = book.asked(r.json()["answer_id"])
    assert row is not None and row.question == "江门市有多少名党员？" and row.generation == "g-test"
    assert row.latency_ms is not None and row.latency_ms >= 0 and not row.refused
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("logbook.sqlite3*"))
    for secret in (TOKEN, "203.0.113.9", "testclient", "secret-cookie", "Bearer"):
        assert secret.encode() not in raw, secret
    with sqlite3.connect(tmp_path / "logbook.sqlite3") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {r[1] for r in con.execute("PRAGMA table_info(asked)")}
    assert not columns & {"ip", "client", "host", "token", "user_agent", "headers"}


def test_retention_removes_old_questions_and_keeps_feedback(tmp_path: Path) -> None:
    book = Logbook(tmp_path / "log.sqlite3", retention_days=30)
    old = _asked("很久以前的问题", when=datetime.now(UTC) - timedelta(days=31))
    recent = _asked("最近的问题", when=datetime.now(UTC) - timedelta(days=29))
    for a in (recent, old):  # the first write of a process prunes (the next not within the hour)
        assert book.record(a)
    book.add_feedback(old.answer_id, "down", "正确答案")
    assert book.prune() == 1
    assert book.asked(old.answer_id) is None and book.asked(recent.answer_id) is not None
    fb = book.feedback()
    assert [f.question for f in fb] == ["很久以前的问题"]  # a rating keeps what it rated


def test_the_off_switch_logs_nothing_and_feedback_then_has_no_answer(tmp_path: Path) -> None:
    client = _app(tmp_path, RecordingEngine(), question_log=False, admin_token=TOKEN)
    r = client.post("/v1/ask", json={"question": "江门市有多少名党员？"})
    assert r.status_code == 200 and r.json()["answer_id"]
    fb = client.post("/v1/feedback", json={"answer_id": r.json()["answer_id"], "rating": "up"})
    assert fb.status_code == 404 and fb.json()["error"]["code"] == "answer_not_found"
    assert fb.json()["error"]["detail"]["question_log"] is False
    assert "POLICYQA_QUESTION_LOG" in fb.json()["error"]["message"]
    assert not (tmp_path / "logbook.sqlite3").exists()  # not even created


def test_a_locked_or_full_log_never_breaks_answering(tmp_path: Path, caplog: Any) -> None:
    engine = RecordingEngine()
    client = _app(tmp_path, engine, admin_token=TOKEN)
    assert client.post("/v1/ask", json={"question": "第一个问题"}).status_code == 200  # creates the file
    book: Logbook = client.app.state.ctx.logbook
    book.busy_timeout_s = 0.2
    # another process holds the write lock
    holder = sqlite3.connect(tmp_path / "logbook.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level("WARNING", logger="policyqa"):
            r = client.post("/v1/ask", json={"question": "锁住时的问题"})
        assert r.status_code == 200 and r.json()["answer"] == "回答：锁住时的问题"
        assert "could not log" in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # a full disk: SQLite says so on the write
    real = book._connect

    def full(write: bool = False) -> Any:
        if write:
            raise sqlite3.OperationalError("database or disk is full")
        return real(write)

    book._connect = full  # type: ignore[method-assign]
    r = client.post("/v1/ask", json={"question": "磁盘满时的问题"})
    assert r.status_code == 200 and r.json()["answer"] == "回答：磁盘满时的问题"
    answer_id = client.post("/v1/ask", json={"question": "再问一个"}).json()["answer_id"]
    book._connect = real  # type: ignore[method-assign]
    assert book.asked(answer_id) is None  # not logged, but answered


def test_the_report_lists_frequent_questions_refusals_by_reason_place_and_topic_and_down_votes(tmp_path: Path) -> None:
    book = Logbook(tmp_path / "log.sqlite3")
    rows = ([_asked("江门市有多少名党员？")] * 5 + [_asked("江门市有多少名党员")] * 2
            + [_asked(f"阳江遛狗不牵绳罚多少钱？{i}", refused=True, reason="no_regulation_for_place") for i in range(4)]
            + [_asked("阳江市文明行为促进条例什么时候施行？", refused=True, reason="no_regulation_for_place")] * 3
            + [_asked("湛江市2019年有多少名网格员？", refused=True, reason="no_evidence")] * 2)
    for i, a in enumerate(rows):
        assert book.record(Asked(f"a{i:04d}", *list(a.__dict__.values())[1:]))
    book.add_feedback("a0000", "down", "21万多名", "数字不对")
    book.add_feedback("a0001", "up")
    report = build_report(book.questions(), book.feedback())
    assert (report.questions, report.refused) == (16, 9)
    assert report.top_questions[0] == {"question": "江门市有多少名党员？", "count": 7, "refused": 0}
    assert report.refusals_by_reason == [{"reason": "no_regulation_for_place", "count": 7},
                                         {"reason": "no_evidence", "count": 2}]
    places = {g["place"]: g for g in report.gaps_by_place}
    assert places["阳江市"]["refused"] == 7 and places["阳江市"]["reasons"] == {"no_regulation_for_place": 7}
    assert places["湛江市"]["reasons"] == {"no_evidence": 2}
    topics = {g["topic"]: g["refused"] for g in report.gaps_by_topic}
    assert topics["遛狗不牵绳"] == 4 and topics["文明行为促进条例"] == 3
    assert [d["correct_answer"] for d in report.down_votes] == ["21万多名"]
    assert report.feedback == {"up": 1, "down": 1}
    text = render_text(report)
    assert "阳江市" in text and "no_regulation_for_place 7" in text and "21万多名" in text
    assert topic_of("2024年江门站暑运发送旅客多少人次？") == "暑运"


def test_the_report_over_http_is_admin_only(tmp_path: Path) -> None:
    client = _app(tmp_path, RecordingEngine(), admin_token=TOKEN)
    client.post("/v1/ask", json={"question": "阳江遛狗不牵绳罚多少钱？"})
    assert client.get("/v1/report/questions").status_code == 401
    r = client.get("/v1/report/questions", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["questions"] == 1 and r.json()["question_log"] is True
