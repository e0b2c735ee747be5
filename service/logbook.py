"""The question log and the feedback on answers: one SQLite file in the data directory (POLICYQA_LOGBOOK_PATH,
default <data_dir>/logbook.sqlite3), shared by every worker.

WAL mode with a busy timeout: several worker processes write at once, each write is one short transaction,
readers never block writers. Every answer is logged under its `answer_id` (time, question, the standalone
question answered, the answer or its refusal reason, citations, latency, index generation, answer mode);
no IP address, header or token is ever stored. Feedback copies what it rates, so it outlives the log's
retention (POLICYQA_QUESTION_LOG_DAYS). With POLICYQA_QUESTION_LOG=false nothing is logged and an answer
cannot be rated.

Logging never breaks answering: `record` logs a warning on a full disk or a locked file and returns. Adding
feedback raises OSError(ENOSPC) on a full disk, which the API answers with 507.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("policyqa")

BUSY_TIMEOUT_S = 15.0
PRUNE_EVERY_S = 3600.0
Rating = Literal["up", "down"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS asked (
    answer_id TEXT PRIMARY KEY,
    asked_at TEXT NOT NULL,
    question TEXT NOT NULL,
    resolved_question TEXT NOT NULL,
    answer TEXT NOT NULL,
    short_answer TEXT,
    citations TEXT NOT NULL,
    refused INTEGER NOT NULL,
    reason TEXT,
    latency_ms REAL,
    generation TEXT,
    answer_mode TEXT
);
CREATE INDEX IF NOT EXISTS asked_at_idx ON asked (asked_at);
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    correct_answer TEXT,
    comment TEXT,
    asked_at TEXT NOT NULL,
    question TEXT NOT NULL,
    resolved_question TEXT NOT NULL,
    answer TEXT NOT NULL,
    short_answer TEXT,
    citations TEXT NOT NULL,
    refused INTEGER NOT NULL,
    reason TEXT,
    generation TEXT,
    answer_mode TEXT
);
CREATE INDEX IF NOT EXISTS feedback_created_idx ON feedback (created_at);
"""
_ASKED = ("answer_id", "asked_at", "question", "resolved_question", "answer", "short_answer", "citations",
          "refused", "reason", "latency_ms", "generation", "answer_mode")
_FEEDBACK = ("feedback_id", "answer_id", "created_at", "rating", "correct_answer", "comment", "asked_at", "question",
             "resolved_question", "answer", "short_answer", "citations", "refused", "reason", "generation",
             "answer_mode")


def new_answer_id() -> str:
    return "a" + secrets.token_hex(12)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Asked:
    """One question as answered."""

    answer_id: str
    asked_at: str
    question: str
    resolved_question: str
    answer: str
    short_answer: str | None
    citations: list[dict[str, Any]]
    refused: bool
    reason: str | None
    latency_ms: float | None
    generation: str | None
    answer_mode: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Feedback:
    feedback_id: int
    answer_id: str
    created_at: str
    rating: str
    correct_answer: str | None
    comment: str | None
    asked_at: str
    question: str
    resolved_question: str
    answer: str
    short_answer: str | None
    citations: list[dict[str, Any]]
    refused: bool
    reason: str | None
    generation: str | None
    answer_mode: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UnknownAnswer(KeyError):
    """No logged answer has this id (never given, past the retention, or the log is off)."""


def _full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "disk is full" in str(exc) or "No space" in str(exc)


def _row(cls: type[Any], names: tuple[str, ...], row: tuple[Any, ...]) -> Any:
    values = dict(zip(names, row, strict=True))
    values["citations"] = json.loads(values["citations"] or "[]")
    values["refused"] = bool(values["refused"])
    return cls(**values)


class Logbook:
    def __init__(self, path: Path, *, enabled: bool = True, retention_days: int = 90,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.enabled = enabled
        self.retention_days = retention_days
        self._ready = False
        self._lock = threading.Lock()
        self._pruned_at = 0.0

    # --- the connection ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection per call (threads and worker processes never share one); writes take the write lock
        at once (BEGIN IMMEDIATE) so two writers wait on the busy timeout instead of failing on upgrade."""
        self._ensure()
        con = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            if write:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            else:
                yield con
        finally:
            con.close()

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            try:
                con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                con.execute("PRAGMA journal_mode = WAL")
                con.executescript(_SCHEMA)
            finally:
                con.close()
            self._ready = True

    # --- the question log -------------------------------------------------------------------------------
    def record(self, asked: Asked) -> bool:
        """Log one answer; False (and a warning) when it could not be written. Never raises."""
        if not self.enabled:
            return False
        try:
            with self._connect(write=True) as con:
                con.execute(f"INSERT OR REPLACE INTO asked ({', '.join(_ASKED)}) VALUES ({', '.join('?' * len(_ASKED))})",
                            _asked_values(asked))
            self._maybe_prune()
            return True
        except (sqlite3.Error, OSError) as exc:
            log.warning("question log: could not log answer %s (%s); the answer was given all the same",
                        asked.answer_id, exc)
            return False

    def asked(self, answer_id: str) -> Asked | None:
        if not self.enabled:
            return None
        with self._connect() as con:
            row = con.execute(f"SELECT {', '.join(_ASKED)} FROM asked WHERE answer_id = ?", (answer_id,)).fetchone()
        return _row(Asked, _ASKED, row) if row else None

    def questions(self, since: str | None = None, until: str | None = None) -> list[Asked]:
        where, args = _between("asked_at", since, until)
        with self._connect() as con:
            rows = con.execute(f"SELECT {', '.join(_ASKED)} FROM asked{where} ORDER BY asked_at", args).fetchall()
        return [_row(Asked, _ASKED, r) for r in rows]

    def prune(self, now: datetime | None = None) -> int:
        """Delete logged questions older than the retention; returns how many."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=self.retention_days)).isoformat(timespec="milliseconds")
        with self._connect(write=True) as con:
            n = con.execute("DELETE FROM asked WHERE asked_at < ?", (cutoff,)).rowcount
        if n:
            log.info("question log: removed %d questions older than %d days", n, self.retention_days)
        return int(n)

    def _maybe_prune(self) -> None:
        t = time.monotonic()
        if self._pruned_at and t - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = t
        self.prune()

    # --- feedback ---------------------------------------------------------------------------------------
    def add_feedback(self, answer_id: str, rating: Rating, correct_answer: str | None = None,
                     comment: str | None = None) -> Feedback:
        """Store a rating of a logged answer. UnknownAnswer when there is none; OSError(ENOSPC) on a full disk."""
        if not self.enabled:
            raise UnknownAnswer(answer_id)
        try:
            with self._connect(write=True) as con:
                row = con.execute(f"SELECT {', '.join(_ASKED)} FROM asked WHERE answer_id = ?",
                                  (answer_id,)).fetchone()
                if row is None:
                    raise UnknownAnswer(answer_id)
                a = _row(Asked, _ASKED, row)
                created = now_iso()
                cur = con.execute(
                    f"INSERT INTO feedback ({', '.join(_FEEDBACK[1:])}) VALUES ({', '.join('?' * (len(_FEEDBACK) - 1))})",
                    (answer_id, created, rating, correct_answer, comment, a.asked_at, a.question, a.resolved_question,
                     a.answer, a.short_answer, json.dumps(a.citations, ensure_ascii=False), int(a.refused), a.reason,
                     a.generation, a.answer_mode))
                feedback_id = int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            if _full(exc):
                raise OSError(errno.ENOSPC, f"the feedback database is full: {exc}") from exc
            raise
        return Feedback(feedback_id, answer_id, created, rating, correct_answer, comment, a.asked_at, a.question,
                        a.resolved_question, a.answer, a.short_answer, a.citations, a.refused, a.reason,
                        a.generation, a.answer_mode)

    def feedback(self, rating: str | None = None, since: str | None = None, until: str | None = None,
                 limit: int | None = None) -> list[Feedback]:
        where, args = _between("created_at", since, until)
        if rating:
            where += (" AND" if where else " WHERE") + " rating = ?"
            args.append(rating)
        sql = f"SELECT {', '.join(_FEEDBACK)} FROM feedback{where} ORDER BY created_at DESC, feedback_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as con:
            rows = con.execute(sql, args).fetchall()
        return [_row(Feedback, _FEEDBACK, r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._connect() as con:
            asked = con.execute("SELECT COUNT(*) FROM asked").fetchone()[0]
            fb = dict(con.execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating").fetchall())
        return {"asked": int(asked), "up": int(fb.get("up", 0)), "down": int(fb.get("down", 0))}


def _asked_values(a: Asked) -> tuple[Any, ...]:
    return (a.answer_id, a.asked_at, a.question, a.resolved_question, a.answer, a.short_answer,
            json.dumps(a.citations, ensure_ascii=False), int(a.refused), a.reason, a.latency_ms, a.generation,
            a.answer_mode)


def _between(column: str, since: str | None, until: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause for ISO dates or times: `since` inclusive, `until` inclusive of its whole day."""
    parts, args = [], []
    if since:
        parts.append(f"{column} >= ?")
        args.append(since)
    if until:
        parts.append(f"{column} < ?")
        args.append(_after(until))
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


def _after(until: str) -> str:
    if len(until) == 10:  # a date: the whole day
        return (datetime.fromisoformat(until) + timedelta(days=1)).date().isoformat()
    return until


def from_answer(answer: dict[str, Any], *, answer_id: str, question: str, resolved: str,
                latency_ms: float | None) -> Asked:
    """The log row of an answer as the API returned it (Answer.to_dict())."""
    return Asked(answer_id=answer_id, asked_at=now_iso(), question=question, resolved_question=resolved,
                 answer=str(answer.get("answer") or ""), short_answer=answer.get("short_answer"),
                 citations=[{k: c.get(k) for k in ("n", "doc_id", "title", "quote", "start", "end")}
                            for c in answer.get("citations") or []],
                 refused=bool(answer.get("refused")), reason=answer.get("reason"), latency_ms=latency_ms,
                 generation=answer.get("generation"), answer_mode=answer.get("answer_mode_used"))
