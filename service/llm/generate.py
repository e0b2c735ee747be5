"""The answer modes: extractive (the reader, the default), generative (the LLM's verified statements) and
auto (generative for why/how/which-ones questions, extractive for short facts).

The extractive answer is always made first: it picks the passages the LLM reads, tells which questions are
hopeless before any LLM is paid for (another city or year, the future, nothing on the topic), and is the
answer given whenever the LLM fails or nothing it wrote verifies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from service.answering import Answer, Answerer
from service.answering.compose import Citation, Statement
from service.answering.question import EXPLANATORY_TYPES
from service.llm import prompt
from service.llm.client import LLMClient, LLMFailure
from service.llm.parse import MalformedOutput, StatementStream, parse_answer
from service.llm.verify import verify

AnswerMode = Literal["extractive", "generative", "auto"]
# another place or year, the future, off topic; no regulation of the place or version asked about
HARD_REFUSALS = frozenset({"no_evidence", "out_of_scope", "no_regulation_for_place", "no_such_version"})
_CLOSING = "。；;！!？?"


@dataclass(frozen=True)
class Event:
    """One step of an answer as it is made: passages (retrieved), delta (text as the LLM writes it) and
    answer (the final, verified Answer)."""

    kind: Literal["passages", "delta", "answer"]
    data: Any


def wants_llm(answer_type: str, answer_mode: AnswerMode) -> bool:
    """Whether a question of this answer type (service/answering/question.py) goes to the LLM."""
    if answer_mode != "auto":
        return answer_mode == "generative"
    return answer_type in EXPLANATORY_TYPES


def answer_text(statements: tuple[Statement, ...]) -> str:
    """The kept statements, each with its citation marker before its closing punctuation."""
    parts = []
    for s in statements:
        text = s.text.strip()
        body = text.rstrip(_CLOSING)
        parts.append(f"{body}[{s.citation}]{text[len(body):] or '。'}")
    return "".join(parts)


class GenerativeAnswerer:
    def __init__(self, answerer: Answerer, client: LLMClient | None, *, passages: int = 3,
                 timeout_s: float = 60.0) -> None:
        self.answerer = answerer
        self.client = client
        self.passages = passages
        self.timeout_s = timeout_s

    def answer(self, question: str, k: int = 5, mode: str = "hybrid",
               answer_mode: AnswerMode = "extractive") -> Answer:
        final = None
        for event in self.events(question, k, mode, answer_mode):
            if event.kind == "answer":
                final = event.data
        assert final is not None
        return final

    def events(self, question: str, k: int = 5, mode: str = "hybrid",
               answer_mode: AnswerMode = "extractive") -> Iterator[Event]:
        extractive = self.answerer.answer(question, k, mode)
        yield Event("passages", extractive.passages)
        if not wants_llm(extractive.answer_type, answer_mode):
            yield Event("delta", extractive.answer)
            yield Event("answer", extractive)
            return
        if self.client is None:
            yield from self._fallback(extractive, "llm_not_configured")
            return
        if extractive.refused and extractive.reason in HARD_REFUSALS:
            yield from self._fallback(extractive, "hard_refusal")
            return
        yield from self._generate(question, extractive, self.client)

    def _generate(self, question: str, extractive: Answer, client: LLMClient) -> Iterator[Event]:
        index = self.answerer.index
        passages = extractive.passages[: self.passages]
        dates = [d.issue_date if (d := index.documents.get(p.doc_id)) is not None else p.date for p in passages]
        stream = StatementStream()
        t0 = time.perf_counter()
        llm: dict[str, Any] = {"model": None, "statements_kept": 0, "statements_dropped": 0}
        try:
            llm["model"] = client.model()
            deadline = time.monotonic() + self.timeout_s
            for delta in client.stream(prompt.messages(question, passages, dates), prompt.schema(len(passages)),
                                       deadline):
                shown = stream.feed(delta)
                if shown:
                    yield Event("delta", shown)
            raw = parse_answer(stream.buffer)
        except LLMFailure as exc:
            yield from self._fallback(extractive, exc.reason, llm, t0)
            return
        except MalformedOutput:
            yield from self._fallback(extractive, "llm_malformed", llm, t0)
            return
        if not raw.answerable or not raw.statements:
            yield from self._fallback(extractive, "llm_no_answer", llm, t0)
            return
        checked = verify(raw, passages, index)
        llm.update(statements_kept=len(checked.kept), statements_dropped=len(checked.dropped))
        if not checked.kept:
            yield from self._fallback(extractive, "llm_unverified", llm, t0, checked.statements)
            return
        timings = dict(extractive.timings_ms)
        timings["llm"] = round((time.perf_counter() - t0) * 1000, 3)
        timings["total"] = round(timings.get("total", 0.0) + timings["llm"], 3)
        citations: tuple[Citation, ...] = checked.citations
        yield Event("answer", replace(
            extractive, answer=answer_text(checked.kept), short_answer=None, refused=False, reason=None,
            conflict=False, citations=citations, timings_ms=timings, answer_mode_used="generative",
            fallback_reason=None, statements=checked.statements, llm=llm))

    @staticmethod
    def _fallback(extractive: Answer, reason: str, llm: dict[str, Any] | None = None, t0: float | None = None,
                  statements: tuple[Statement, ...] = ()) -> Iterator[Event]:
        timings = dict(extractive.timings_ms)
        if t0 is not None:
            timings["llm"] = round((time.perf_counter() - t0) * 1000, 3)
            timings["total"] = round(timings.get("total", 0.0) + timings["llm"], 3)
        yield Event("answer", replace(extractive, fallback_reason=reason, statements=statements, llm=llm,
                                      timings_ms=timings))
