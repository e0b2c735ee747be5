"""Cited answers from a trained reader: retrieve passages, let the reader find the answer span in the best of
them, keep the spans whose evidence holds what the question pins down (filters), refuse below the calibrated
confidence, and cite the exact sentence that holds the span."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from index.gazetteer import load_gazetteer
from index.synonyms import expand_terms
from service.answering.calibration import NO_MARGIN, Thresholds
from service.answering.candidates import Candidate, PassageReader, adjusted
from service.answering.compose import (
    Citation,
    Statement,
    answer_text,
    citations_for,
    passage_article,
    rival_value,
    verify_citation,
    without_article_label,
)
from service.answering.enumeration import whole_enumeration
from service.answering.filters import not_yet, topic_violation, violation
from service.answering.question import QuestionInfo, analyse, asks_future, fits_type, reader_question
from service.answering.regfacts import ASKS_FINE, Fact, behaviour_terms, fact_for, fine_short
from service.answering.scope import Scope, decide, regulation_view
from service.retrieval import Retriever, SearchResponse, SearchResult

READ_PASSAGES = 3  # passages the reader reads (measured: see the reader issue's closing note)
EXTRA_GAP = 1.5  # for why/how/list: a second sentence of the same passage this close to the best is cited too
_JOINS_ITEMS = re.compile(r"[和及与、]|以及")  # a span naming several items of a list ("甲和乙", "甲及乙")
REASONS_ZH = {
    "no_evidence": "所给文档没有提到问题中的关键内容",
    "low_confidence": "找到的段落不足以可靠回答",
    "out_of_scope": "问题超出本资料库的范围",
    "no_regulation_for_place": "找到的资料中没有所问地方的条例",
    "no_such_version": "找到的资料中没有所问的版本",
    "needs_place": "各地规定不同，请说明是哪个地方",
}
MAX_PLACES_SHOWN = 3  # a question naming no place, over regulations that differ by place: answers from this many


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    short_answer: str | None
    answer_type: str
    refused: bool
    reason: str | None
    confidence: float
    conflict: bool
    citations: tuple[Citation, ...]
    passages: tuple[SearchResult, ...]
    generation: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)
    # generated answers (service/llm): the mode that made this answer, why a generated one was not given, the
    # model's statements (kept and dropped) and the call's figures
    answer_mode_used: str = "extractive"
    fallback_reason: str | None = None
    statements: tuple[Statement, ...] = ()
    llm: dict[str, Any] | None = None
    # which documents it could come from: the places named (or the default place), versions, differs by place
    scope: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"answer_mode_used": self.answer_mode_used, "fallback_reason": self.fallback_reason,
                "scope": self.scope,
                "statements": [s.to_dict() for s in self.statements], "llm": self.llm,
                "question": self.question, "answer": self.answer, "short_answer": self.short_answer,
                "answer_type": self.answer_type, "refused": self.refused, "reason": self.reason,
                "confidence": round(self.confidence, 4), "conflict": self.conflict,
                "citations": [c.to_dict() for c in self.citations],
                "passages": [p.to_dict() for p in self.passages], "timings_ms": self.timings_ms,
                "generation": self.generation, "signals": {k: round(v, 4) for k, v in self.signals.items()}}


class Answerer:
    def __init__(self, retriever: Retriever, reader: PassageReader, thresholds: Thresholds | None = None,
                 read_passages: int = READ_PASSAGES, *, default_place: str | None = None,
                 gate: Callable[[], AbstractContextManager[object]] | None = None) -> None:
        self.retriever = retriever
        self.gate = gate or contextlib.nullcontext  # held while answering (index/answergate.py)
        self.default_place = default_place
        self.reader = reader
        self.index = retriever.index
        self.segmenter = retriever.segmenter
        self.thresholds = thresholds or Thresholds.load()
        self.read_passages = read_passages

    def with_thresholds(self, thresholds: Thresholds) -> Answerer:
        return Answerer(self.retriever, self.reader, thresholds, self.read_passages,
                        default_place=self.default_place, gate=self.gate)

    def answer(self, question: str, k: int = 5, mode: str = "hybrid") -> Answer:
        """The answer from the documents the question's scope allows (scope.py): the named place's regulations,
        the version asked about; a refusal naming the place when it has none; a few places' answers when the
        question names none and their regulations differ."""
        with self.gate():
            return self._scoped_answer(question, k, mode)

    def _scoped_answer(self, question: str, k: int, mode: str) -> Answer:
        t0 = time.perf_counter()
        scope = decide(question, self.index, self.default_place)
        if scope.refusal is not None:
            if self._about_regulations(question, mode):
                return self._scope_refusal(question, k, mode, scope, t0)
            scope = Scope(denied=scope.denied, places=scope.places)  # a place's news, not its regulation
        if not scope.places:
            several = self._by_place(question, k, mode, scope, t0)
            if several is not None:
                return several
        return replace(self._answer(question, k, mode, scope), scope=_scope_dict(scope))

    def _fact_answer(self, resp: SearchResponse, info: QuestionInfo, fact: Fact, shown: tuple[SearchResult, ...],
                     timings: dict[str, float], t0: float) -> Answer:
        """A regulation's effective date or passing meeting, found by rule (regfacts.py), cited like any answer."""
        doc = self.index.documents[fact.doc_id]
        chunk = next(c for c in self.index.chunks if c.doc_id == fact.doc_id and c.start <= fact.start < c.end)
        article = passage_article(chunk.section, chunk.text, chunk.start, fact.start)
        quote, start = without_article_label(doc.text[fact.start:fact.end], fact.start, article)
        citation = Citation(1, doc.doc_id, chunk.chunk_id, chunk.title, doc.issue_date, chunk.section, quote, start,
                            fact.end, doc.origin_at(start, fact.end), article)
        verify_citation(self.index, citation)
        timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
        kind = "number" if fact.kind == "fine" else "date"
        return Answer(resp.query, answer_text((citation,), False), fact.short + fact.note, kind, False, None, 1.0,
                      False, (citation,), shown, resp.generation, timings, {"rule": 1.0})

    def _about_regulations(self, question: str, mode: str) -> bool:
        """Whether the best passage for the question, from any place, is a regulation's."""
        top = self.retriever.search(question, 1, mode).results
        return bool(top) and top[0].doc_id in regulation_view(self.index).regulations

    def _scope_refusal(self, question: str, k: int, mode: str, scope: Scope, t0: float) -> Answer:
        """No regulation of the place (or version) asked about: say so, with the related regulation's passages (the
        province's) when there is one, never another place's clause as the answer."""
        regs = frozenset(regulation_view(self.index).regulations)
        deny = regs - frozenset(scope.related) if scope.related else scope.denied
        resp = self.retriever.search(question, k, mode, deny=deny)
        info = analyse(resp.query, self.segmenter)
        shown = self._with_dense_scores(resp)[:k] if scope.related else ()
        reason = scope.refusal or "no_evidence"
        refusal = self._refusal(resp, info, reason, scope.refusal_text, 0.0, {}, shown, dict(resp.timings_ms), t0)
        return replace(refusal, scope=_scope_dict(scope))

    def _by_place(self, question: str, k: int, mode: str, scope: Scope, t0: float) -> Answer | None:
        """A question naming no place whose best passages are regulations of several places: each place's answer
        (up to MAX_PLACES_SHOWN), saying that it differs by place. None when one place's texts lead."""
        view = regulation_view(self.index)
        if not view.regulations:
            return None
        resp = self.retriever.search(question, max(k, self.read_passages, 5), mode, deny=scope.denied)
        top = resp.results[: max(self.read_passages, 5)]
        if not top or top[0].doc_id not in view.regulations:
            return None
        places = list(dict.fromkeys(view.regulations[r.doc_id].place for r in top if r.doc_id in view.regulations))
        places = [p for p in places if p]
        if len(places) < 2:
            return None
        answers: list[Answer] = []
        for place in places[:MAX_PLACES_SHOWN]:
            keep = frozenset(d for d in view.current if view.regulations[d].place == place)
            sub = Scope(denied=frozenset(view.regulations) - keep, places=(place,))
            a = self._answer(question, k, mode, sub)
            if not a.refused:
                answers.append(a)
        info = analyse(resp.query, self.segmenter)
        timings = dict(resp.timings_ms)
        differs = {"places": [], "default_place": False, "versions": [], "differs_by_place": places[:MAX_PLACES_SHOWN]}
        if not answers:
            refusal = self._refusal(resp, info, "needs_place", "各地规定不同，找到的段落不足以可靠回答，请说明是哪个地方",
                                    0.0, {}, self._with_dense_scores(resp)[:k], timings, t0)
            return replace(refusal, scope=differs)
        citations: list[Citation] = []
        parts: list[str] = []
        shorts: list[str] = []
        for a in answers:
            shifted = tuple(replace(c, n=c.n + len(citations)) for c in a.citations)
            citations += shifted
            parts.append(answer_text(shifted, a.conflict).rstrip("。"))
            if a.short_answer:
                shorts.append(a.short_answer)
        text = "各地规定不同（问题没有说明是哪个地方），例如：" + "；".join(parts) + "。"
        timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
        first = answers[0]
        return Answer(resp.query, text, "；".join(shorts) or None, first.answer_type, False, None,
                      min(a.confidence for a in answers), False, tuple(citations),
                      tuple(p for a in answers for p in a.passages[:2])[:k], resp.generation, timings,
                      first.signals, scope=differs)

    def _answer(self, question: str, k: int, mode: str, scope: Scope) -> Answer:
        t0 = time.perf_counter()
        resp = self.retriever.search(question, max(k, self.read_passages), mode, deny=scope.denied)
        info = analyse(resp.query, self.segmenter)
        if scope.consumed_years:  # the year chose the version: the passage need not state it
            info = replace(info, years=tuple(y for y in info.years if y not in scope.consumed_years))
        # a quoted word the articles never use is the asker's own scare quote (“后进”), not a name to find
        info = replace(info, quoted=tuple(t for t in info.quoted if self.index.mentions(t)))
        passages = self._with_dense_scores(resp)
        timings = dict(resp.timings_ms)
        shown = passages[:k]
        if asks_future(info.text):  # no reading: no article can know it
            return self._refusal(resp, info, "out_of_scope", "资料库收录的是已发表的报道，不能回答关于今后几天的问题",
                                 0.0, {}, shown, timings, t0)
        terms = behaviour_terms(self.segmenter.content_words(expand_terms(resp.query)), list(info.places))
        fact = fact_for(question, [p.doc_id for p in passages[: self.read_passages]], self.index,
                        regulation_view(self.index).regulations.keys(), terms)
        if fact is not None:
            return self._fact_answer(resp, info, fact, shown, timings, t0)
        t1 = time.perf_counter()
        judged, read = self._read(info, reader_question(resp.query, self.segmenter), passages[: self.read_passages])
        timings["read"] = round((time.perf_counter() - t1) * 1000, 3)
        consistent = [c for c, v in judged if v is None]
        best = consistent[0] if consistent else None
        signals = self._signals(info, judged, best, passages)
        signals["passages_read"] = float(read)
        confidence = self.thresholds.confidence(signals)
        first_violation = judged[0][1] if judged else None
        if best is None:
            return self._refusal(resp, info, "no_evidence", first_violation, confidence, signals, shown, timings, t0)
        if not_yet(info, best):
            return self._refusal(resp, info, "no_evidence", "资料只说明该信息尚未公布", confidence, signals, shown,
                                 timings, t0)
        if confidence < self.thresholds.min_confidence:
            if first_violation is not None:
                # the spans about the question's topic are about another year/place; or the evidence holds no
                # answer of the kind asked (no count in 元): unless the span kept is one, which the higher span's
                # failing does not explain (135万人次 kept below a count in 个)
                top = judged[0][0]
                if not fits_type(info.answer_type, best.span) or topic_violation(
                        info, top, self.index.documents.get(top.doc_id)) is not None:
                    return self._refusal(resp, info, "no_evidence", first_violation, confidence, signals, shown,
                                         timings, t0)
            reason = "out_of_scope" if signals["dense_top"] < self.thresholds.out_of_scope_dense else "low_confidence"
            return self._refusal(resp, info, reason, None, confidence, signals, shown, timings, t0)
        chosen, conflict = self._choose(info, best, consistent)
        short = self._list_answer(best) if info.answer_type == "list" else best.span
        if short and ASKS_FINE.search(info.text) and "元" in best.span:
            p = best.passage
            short = fine_short(p.text, best.span_start - p.start, best.span_end - p.start)
        citations = citations_for(chosen, self.index)  # dated by each document's issue date
        if conflict:  # the newest document's value prevails
            short = max(zip(citations, chosen, strict=True), key=lambda pair: pair[0].date)[1].span
        for c in citations:
            verify_citation(self.index, c)
        timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
        return Answer(resp.query, answer_text(citations, conflict), short, info.answer_type, False, None, confidence,
                      conflict, citations, shown, resp.generation, timings, signals)

    def _read(self, info: QuestionInfo, query: str,
              passages: tuple[SearchResult, ...]) -> tuple[list[tuple[Candidate, str | None]], int]:
        """The reader's candidates with each one's filter verdict (None: consistent), best first, and how many
        passages were read. The first passage is read alone first; the others only when its best consistent span
        is below the calibrated sure margin (above any lower passage's best span, after its rank prior, on the
        calibration set), or when the question asks for a number that another document there might state
        differently (conflicts)."""
        prior = self.thresholds.rank_prior
        judged = self._judge(info, self.reader.candidates(query, passages[:1], prior))
        if len(passages) < 2 or (
                _rank1_margin(judged) >= self.thresholds.sure_margin
                and (info.answer_type != "number" or all(p.doc_id == passages[0].doc_id for p in passages[1:]))):
            return judged, min(1, len(passages))
        judged += self._judge(info, self.reader.candidates(query, passages[1:], prior))
        judged.sort(key=lambda cv: -adjusted(cv[0], prior))  # stable: ties keep passage order, as in one read
        return judged, len(passages)

    def _judge(self, info: QuestionInfo, cands: list[Candidate]) -> list[tuple[Candidate, str | None]]:
        return [(c, violation(info, c, self.index.documents.get(c.doc_id))) for c in cands]

    @staticmethod
    def _choose(info: QuestionInfo, best: Candidate, consistent: list[Candidate]) -> tuple[list[Candidate], bool]:
        """The candidates to cite: the best; a rival document's different value (conflict); or, for why/how/list
        questions, a second sentence of the same passage that the reader rates nearly as high."""
        if info.answer_type == "number":
            rival = rival_value(best, consistent[1:])
            if rival is not None:
                return [best, rival], True
        if info.explanatory:
            for c in consistent[1:]:
                if c.margin < best.margin - EXTRA_GAP:
                    continue  # candidates are in rank-adjusted order, not by raw margin
                if c.passage.chunk_id == best.passage.chunk_id and (c.end <= best.start or c.start >= best.end):
                    return sorted([best, c], key=lambda x: x.start), False
        return [best], False

    def _list_answer(self, best: Candidate) -> str | None:
        """A list question's short answer: the whole enumeration holding the reader's span, else the span itself
        when it joins items ("白银乡河和鹿地塘河"); none for one item alone, which would read as the whole answer
        (the cited sentences answer it)."""
        text = best.passage.text
        found = whole_enumeration(text, best.span_start - best.passage.start, best.span_end - best.passage.start,
                                  self.segmenter.word_spans, self.segmenter.stopwords)
        if found:
            return text[found[0]:found[1]]
        return best.span if _JOINS_ITEMS.search(best.span[1:-1]) else None

    def _refusal(self, resp: SearchResponse, info: QuestionInfo, reason: str, detail: str | None, confidence: float,
                 signals: dict[str, float], shown: tuple[SearchResult, ...], timings: dict[str, float],
                 t0: float) -> Answer:
        timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
        why = detail or REASONS_ZH[reason]
        return Answer(resp.query, f"资料中没有找到可靠答案：{why}。以下是最相关的段落，供参考。", None, info.answer_type,
                      True, reason, confidence, False, (), shown, resp.generation, timings, signals)

    def _with_dense_scores(self, resp: SearchResponse) -> tuple[SearchResult, ...]:
        """Sparse mode has no dense scores; the confidence model needs them, so score the passages found."""
        results = resp.results
        if not results or any(r.dense_score is not None for r in results):
            return results
        qvec = self.retriever.query_vector(resp.query)
        rows = [self.index.row_of(r.chunk_id) for r in results]
        scores = self.index.dense.similarities(qvec, rows)
        return tuple(replace(r, dense_score=float(sc)) for r, sc in zip(results, scores, strict=True))

    def _unseen(self, word: str) -> bool:
        return all(self.index.sparse.doc_freq(t) == 0 for t in (self.segmenter.tokens(word) or [word]))

    def _signals(self, info: QuestionInfo, judged: list[tuple[Candidate, str | None]], best: Candidate | None,
                 passages: tuple[SearchResult, ...]) -> dict[str, float]:
        aliases = load_gazetteer().aliases
        seen = " ".join(f"{p.title} {p.text}" for p in passages[: self.read_passages])
        # question words the corpus has never seen and no passage read contains: a sign it asks about something
        # the articles do not cover
        missing_rare = sum(1 for w in info.keywords if len(w) >= 2 and w not in seen
                           and not any(a in seen for a in aliases.get(w, ())) and self._unseen(w))
        top = judged[0][0].margin if judged else NO_MARGIN
        margin = best.margin if best is not None else NO_MARGIN
        lower = max((adjusted(c, self.thresholds.rank_prior) for c, v in judged if v is None and c.passage.rank > 1),
                    default=NO_MARGIN)
        return {"margin": margin, "gap": min(20.0, max(0.0, top - margin)),
                "type_fit": 1.0 if best is not None and fits_type(info.answer_type, best.span) else 0.0,
                "explanatory": 1.0 if info.explanatory or info.answer_type == "yesno" else 0.0,
                "dense_top": max((p.dense_score or 0.0) for p in passages) if passages else 0.0,
                "missing_rare": float(min(missing_rare, 2)),
                # not in the confidence model: what calibration reads the sure margin off
                "rank1_margin": _rank1_margin(judged), "lower_margin": lower}


def _scope_dict(scope: Scope) -> dict[str, Any] | None:
    return scope.to_dict() if scope.denied or scope.places or scope.refusal else None


def _rank1_margin(judged: list[tuple[Candidate, str | None]]) -> float:
    """The best consistent span's margin in the first passage: what the sure margin is compared with, when
    answering (is reading the first passage enough?) and when calibrating it."""
    return max((c.margin for c, v in judged if v is None and c.passage.rank == 1), default=NO_MARGIN)
