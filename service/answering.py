"""Extractive cited answers without an LLM.

Retrieve passages, split them into sentences, score each sentence against the question (IDF-weighted
keyword coverage, answer-type match, the passage's retrieval scores), answer with the best sentence(s)
quoted verbatim, and cite the exact character span. Refuse when the evidence does not carry the question's
year/place, or when confidence is under thresholds calibrated on labelled unanswerable questions.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from corpus.sentences import sentence_spans
from index.store import LoadedIndex
from service.extraction import (
    DATE_RE,
    ORG_RE,
    PLACE_RE,
    QUOTED_RE,
    cn_number_value,
    counts,
    fits_constraint,
    is_rate,
    number_spans,
    role_names,
    short_answer,
    unit_of,
)
from service.questions import ALIASES, CITIES, FACTOID_TYPES, QuestionInfo, analyse, asks_future
from service.retrieval import Retriever, SearchResponse, SearchResult

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"
ANSWER_PASSAGES = 6
NON_FACTOID_FACTOR = 0.5  # share of the confidence threshold that why/how/list questions need
TOPIC_DROP = 0.75  # a consistent sentence this much less on topic than the best one does not answer
UNSEEN_WEIGHT = 0.25  # share of its IDF weight that a word the articles never use keeps in coverage
ANCHOR_WEIGHT = 0.4  # for number questions: the words right before a number say what it counts

MEASURE_ZH = {"rank": "名次", "percent": "比例", "money": "金额", "duration": "时长", "area": "面积",
              "person_times": "人次"}
# a year the passage's facts are about, not one they are compared with ("比2023年增加53个村")
_TOPIC_YEAR_RE = re.compile(r"(?<![比较])((?:19|20)\d{2})年(?!以来)")
_NOT_YET_RE = re.compile(r"另行通知|另行公布|尚未确定|尚未公布|暂未|待定")
REASONS_ZH = {
    "no_evidence": "所给文档没有提到问题中的关键内容",
    "low_confidence": "找到的段落不足以可靠回答",
    "out_of_scope": "问题超出本资料库的范围",
}


FEATURES = ("coverage", "type_match", "dense_top", "unit_match", "short_missing", "missing_rare", "anchor")


@dataclass(frozen=True)
class Thresholds:
    """Confidence model and refusal thresholds, fitted by `policyqa calibrate` (service/calibration.json).

    confidence = sigmoid(bias + Σ weight·signal); answer only when confidence >= min_confidence.
    """

    weights: tuple[tuple[str, float], ...] = (
        ("coverage", 6.0), ("type_match", 1.2), ("dense_top", 8.0), ("unit_match", 0.8),
        ("short_missing", -1.0), ("missing_rare", -1.0), ("anchor", 0.5))
    bias: float = -11.0
    min_confidence: float = 0.45
    out_of_scope_coverage: float = 0.2
    out_of_scope_dense: float = 0.80

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Thresholds:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        model = data["model"]
        return cls(weights=tuple((k, float(model["weights"][k])) for k in FEATURES if k in model["weights"]),
                   bias=float(model["bias"]), **{k: float(v) for k, v in data["thresholds"].items()
                                                 if k in ("min_confidence", "out_of_scope_coverage",
                                                          "out_of_scope_dense")})

    def confidence(self, signals: dict[str, float]) -> float:
        z = self.bias + sum(w * signals.get(name, 0.0) for name, w in self.weights)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    chunk_id: str
    title: str
    date: str
    section: tuple[str, ...]
    quote: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["section"] = list(self.section)
        return d


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

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "short_answer": self.short_answer,
                "answer_type": self.answer_type, "refused": self.refused, "reason": self.reason,
                "confidence": round(self.confidence, 4), "conflict": self.conflict,
                "citations": [c.to_dict() for c in self.citations],
                "passages": [p.to_dict() for p in self.passages], "timings_ms": self.timings_ms,
                "generation": self.generation, "signals": {k: round(v, 4) for k, v in self.signals.items()}}


class CitationError(AssertionError):
    """A citation's quote does not equal the cited span of the document: a bug, never shown as an answer."""


@dataclass(frozen=True)
class _Candidate:
    passage: SearchResult
    start: int  # absolute offsets in the cleaned document text
    end: int
    text: str
    score: float
    coverage: float
    type_match: float
    anchor: float


def threshold_share(answer_type: str) -> float:
    """Share of the confidence threshold a question of this type needs (the answerer and calibration agree)."""
    return 1.0 if answer_type in FACTOID_TYPES else NON_FACTOID_FACTOR


def verify_citation(index: LoadedIndex, c: Citation) -> None:
    doc = index.documents.get(c.doc_id)
    if doc is None or doc.text[c.start:c.end] != c.quote or not c.quote:
        raise CitationError(f"citation {c.n} does not match {c.doc_id}[{c.start}:{c.end}]")


def date_label(date: str) -> str:
    parts = date.split("-")
    label = f"{parts[0]}年"
    if len(parts) > 1:
        label += f"{int(parts[1])}月"
    if len(parts) > 2:
        label += f"{int(parts[2])}日"
    return label


class Answerer:
    def __init__(self, retriever: Retriever, thresholds: Thresholds | None = None) -> None:
        self.retriever = retriever
        self.index = retriever.index
        self.segmenter = retriever.segmenter
        self.thresholds = thresholds or Thresholds.load()

    # --- scoring ---------------------------------------------------------------------------------------
    def _weights(self, info: QuestionInfo) -> dict[str, float]:
        # A word the corpus never uses (歇脚, 乡亲) is the asker's own wording: it cannot tell passages apart
        # and would sink every sentence's coverage; `missing_rare` accounts for it separately.
        return {w: self._idf(w) * (UNSEEN_WEIGHT if self._unseen(w) else 1.0) for w in info.keywords}

    def _unseen(self, word: str) -> bool:
        return all(self.index.sparse.doc_freq(t) == 0 for t in (self.segmenter.tokens(word) or [word]))

    def _idf(self, word: str) -> float:
        toks = self.segmenter.tokens(word) or [word]
        return max(self.index.sparse.idf(t) for t in toks)

    @staticmethod
    def _present(word: str, text: str) -> bool:
        return word in text or any(alias in text for alias in ALIASES.get(word, ()))

    def _coverage(self, info: QuestionInfo, text: str, context: str, weights: dict[str, float]) -> float:
        total = sum(weights.values())
        if not total:
            return 0.0
        got = 0.0
        for w, wt in weights.items():
            if self._present(w, text):
                got += wt
            elif self._present(w, context):
                got += 0.5 * wt
            elif len(w) >= 3 and any(w[i:i + 2] in text for i in range(len(w) - 1)):
                got += 0.3 * wt  # a partial match of a long compound ("专职网格员" vs "网格员")
        return got / total

    def _type_match(self, info: QuestionInfo, text: str) -> float:
        kind = info.answer_type
        if info.role or info.measure or info.head:
            return 1.0 if fits_constraint(info, text) else 0.0
        if kind == "number":
            # "每个网格内配备1名…" is a rate; a question without 每 asks for a total
            spans = [m.group(0) for m in number_spans(text) if "每" in info.text or not is_rate(text, m)]
            if not spans:
                return 0.0
            if info.counted and any(counts(text, m, info.counted) for m in number_spans(text)):
                return 1.0
            if info.unit and any(info.unit in s or unit_of(s) == info.unit for s in spans):
                return 1.0
            return 0.6
        if kind == "date":
            return 1.0 if DATE_RE.search(text) else 0.0
        if kind == "person":
            return 1.0 if role_names(text, None) else 0.3
        if kind == "organization":
            return 1.0 if ORG_RE.search(text) else 0.3
        if kind == "place":
            return 1.0 if PLACE_RE.search(text) else 0.3
        if kind in ("name", "other"):
            return 1.0 if QUOTED_RE.search(text) or "——" in text else 0.5
        if kind == "list":
            return 1.0 if text.count("、") >= 2 or "；" in text or re.search(r"[一二三四五六七八]是", text) else 0.4
        return 0.5

    def _anchor(self, info: QuestionInfo, text: str, weights: dict[str, float]) -> float:
        """For number questions: how much of the question sits right next to a number ("发送旅客37.5万人次")."""
        if info.answer_type != "number" or not weights:
            return 0.0
        total = sum(weights.values())
        best = 0.0
        per_unit = "每" in info.text
        for m in number_spans(text):
            if not per_unit and is_rate(text, m):
                continue
            window = text[max(0, m.start() - 12): m.end() + 6]
            best = max(best, sum(wt for w, wt in weights.items() if self._present(w, window)) / total)
        return best

    def _candidates(self, info: QuestionInfo, passages: tuple[SearchResult, ...]) -> list[_Candidate]:
        weights = self._weights(info)
        best_dense = max((p.dense_score or 0.0) for p in passages) if passages else 0.0
        out: list[_Candidate] = []
        for p in passages[:ANSWER_PASSAGES]:
            context = f"{p.title} {' '.join(p.section)} {p.text}"
            prior = 1.0 / (1.0 + 0.35 * (p.rank - 1))
            dense_rel = (p.dense_score or best_dense - 0.05) - best_dense  # <= 0
            for s, e in sentence_spans(p.text):
                sent = p.text[s:e]
                if len(sent) < 6:
                    continue
                cov = self._coverage(info, sent, context, weights)
                tm = self._type_match(info, sent)
                anchor = self._anchor(info, sent, weights)
                score = 0.62 * cov + 0.18 * tm + 0.14 * prior + 0.6 * dense_rel + ANCHOR_WEIGHT * anchor
                out.append(_Candidate(p, p.start + s, p.start + e, sent, score, cov, tm, anchor))
        out.sort(key=lambda c: -c.score)
        return out

    def _short_answer(self, info: QuestionInfo, cand: _Candidate) -> str | None:
        return short_answer(info, cand.text)

    # --- main --------------------------------------------------------------------------------------------
    def answer(self, question: str, k: int = 5, mode: str = "hybrid") -> Answer:
        t0 = time.perf_counter()
        resp = self.retriever.search(question, max(k, ANSWER_PASSAGES), mode)
        info = analyse(resp.query, self.segmenter)
        # a quoted word the articles never use is the asker's own scare quote (“后进”), not a name to find
        info = replace(info, quoted=tuple(t for t in info.quoted if self.index.mentions(t)))
        passages = self._with_dense_scores(resp)
        timings = dict(resp.timings_ms)
        t1 = time.perf_counter()
        cands = self._candidates(info, passages)
        missing = None
        if cands:
            # Only sentences consistent with what the question pins down can answer it: its year, period,
            # batch and places, and the slot it names (区长, 利率, 哪家企业).
            consistent = [c for c in cands if self._violation(info, c) is None]
            if not consistent or consistent[0].coverage < TOPIC_DROP * cands[0].coverage:
                # the sentences about the question's topic are about another year or place
                missing = self._violation(info, cands[0])
            elif info.role or info.measure or info.head:
                fitting = [c for c in consistent if c.type_match >= 1.0]
                if not fitting:
                    slot = info.role or info.head or MEASURE_ZH.get(info.measure or "", "")
                    missing = f"找到的段落没有给出所问的{slot}"
                consistent = fitting or consistent
            cands = consistent or cands
        best = cands[0] if cands else None
        short = None
        if best is not None and (info.factoid or info.answer_type == "other"):
            short = self._short_answer(info, best)
        signals = self._signals(info, best, short, passages)
        confidence = self.thresholds.confidence(signals)
        reason, detail = self._refusal(info, best, signals, confidence, missing)
        shown = passages[:k]
        if reason is not None or best is None:
            timings["answer"] = round((time.perf_counter() - t1) * 1000, 3)
            timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
            why = detail or REASONS_ZH[reason or "no_evidence"]
            return Answer(resp.query, f"资料中没有找到可靠答案：{why}。以下是最相关的段落，供参考。",
                          None, info.answer_type, True, reason or "no_evidence", confidence, False, (), shown,
                          resp.generation, timings, signals)
        chosen = [best]
        conflict = False
        rival = self._conflicting(info, best, cands)
        if rival is not None:
            chosen.append(rival)
            conflict = True
        elif info.answer_type in ("list", "why", "how", "other") or best.type_match < 0.6:
            extra = self._second(best, cands)
            if extra is not None:
                chosen.append(extra)
        citations = tuple(
            Citation(n, c.passage.doc_id, c.passage.chunk_id, c.passage.title, c.passage.date, c.passage.section,
                     c.text, c.start, c.end)
            for n, c in enumerate(chosen, start=1))
        for c in citations:
            verify_citation(self.index, c)
        text = self._compose(chosen, citations, conflict, short, info)
        timings["answer"] = round((time.perf_counter() - t1) * 1000, 3)
        timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
        return Answer(resp.query, text, short, info.answer_type, False, None, confidence, conflict, citations,
                      shown, resp.generation, timings, signals)

    def _with_dense_scores(self, resp: SearchResponse) -> tuple[SearchResult, ...]:
        """Sparse mode has no dense scores; the confidence model needs them, so score the passages found."""
        results = resp.results
        if not results or any(r.dense_score is not None for r in results):
            return results
        qvec = self.retriever.query_vector(resp.query)
        rows = [self.index.row_of(r.chunk_id) for r in results]
        scores = self.index.dense.similarities(qvec, rows)
        return tuple(replace(r, dense_score=float(sc)) for r, sc in zip(results, scores, strict=True))

    def _signals(self, info: QuestionInfo, best: _Candidate | None, short: str | None,
                 passages: tuple[SearchResult, ...]) -> dict[str, float]:
        if best is None:
            return dict.fromkeys(FEATURES, 0.0)
        unit_match = 0.0
        if info.answer_type == "number" and info.unit:
            units = {unit_of(m.group(0)) for m in number_spans(best.text)}
            if any(info.unit in u or u == info.unit for u in units if u) or info.unit in best.text:
                unit_match = 1.0
            elif units and "" not in units:
                unit_match = -1.0  # every number there counts something else ("530多万" has no unit: neutral)
        seen = " ".join(f"{p.title} {p.text}" for p in passages[:ANSWER_PASSAGES])
        # question words the corpus has never seen and no retrieved passage contains: a sign it asks about
        # something the articles do not cover
        missing_rare = sum(1 for w in info.keywords
                           if len(w) >= 2 and not self._present(w, seen) and self._unseen(w))
        return {"coverage": best.coverage, "type_match": best.type_match,
                "dense_top": max((p.dense_score or 0.0) for p in passages),
                "unit_match": unit_match, "short_missing": 1.0 if info.factoid and short is None else 0.0,
                "missing_rare": float(min(missing_rare, 2)), "anchor": best.anchor}

    def _year_supported(self, year: str, cand: _Candidate) -> bool:
        """The sentence's facts are from `year`: it says so, or the passage's last year mention before it does,
        or (nothing dated) the article's own date does."""
        p = cand.passage
        stated = re.findall(r"((?:19|20)\d{2})年", cand.text)
        if stated:
            return year in stated
        if year in p.title or any(year in s for s in p.section):
            return True
        before = _TOPIC_YEAR_RE.findall(p.text[: cand.start - p.start])
        if before:
            return before[-1] == year
        if re.search(r"(?:19|20)\d{2}年", p.text):
            return False  # the passage dates its facts, and not with this year
        # an undated fact in a dated article ("今年"); an article from January or February may look back on
        # the year just ended (the 2025-01 review of 2024)
        doc_year = int(p.date[:4])
        early = len(p.date) >= 7 and int(p.date[5:7]) <= 2
        return int(year) == doc_year or (early and int(year) == doc_year - 1)

    def _violation(self, info: QuestionInfo, cand: _Candidate) -> str | None:
        """What the question pins down (year, period, batch, place) that this sentence's evidence lacks."""
        p = cand.passage
        doc = self.index.documents.get(p.doc_id)
        headings = f"{p.title} {' '.join(p.section)} {p.date} {doc.title if doc else ''} {doc.region if doc else ''}"
        for y in info.years:
            if not self._year_supported(y, cand):
                return f"找到的段落没有提到{y}年的情况"
        for term in (*info.periods, *info.ordinals, *info.quoted):
            # a document's short title (《实施意见》) may be named anywhere in the article the sentence is from
            scope = doc.text if doc is not None and f"《{term}》" in info.text else p.text
            if term not in scope and term not in headings:
                return f"找到的段落没有提到“{term}”"
        missing_places = []
        for pl in info.places:
            # a city named only in passing elsewhere in the passage is not where the sentence's facts are
            where = f"{cand.text} {headings}" if pl in CITIES else f"{p.text} {headings}"
            if pl not in where:
                missing_places.append(pl)
        # a question naming several places (compare 江海区 and 江城区) needs only one of them per sentence
        if missing_places and (len(missing_places) == len(info.places) or not info.any_place):
            return f"找到的段落没有关于“{missing_places[0]}”的内容"
        return None

    def _not_yet(self, info: QuestionInfo, text: str) -> bool:
        """The sentence says the asked-for fact is not known yet ('具体恢复运营时间另行通知')."""
        for clause in re.split(r"[，。；,;]", text):
            if _NOT_YET_RE.search(clause) and any(w in clause for w in info.keywords):
                return True
        return False

    def _refusal(self, info: QuestionInfo, best: _Candidate | None, signals: dict[str, float],
                 confidence: float, missing: str | None) -> tuple[str | None, str | None]:
        """(reason, what is missing in Chinese) or (None, None) to answer."""
        if best is None:
            return "no_evidence", None
        th = self.thresholds
        if signals["coverage"] < th.out_of_scope_coverage and signals["dense_top"] < th.out_of_scope_dense:
            return "out_of_scope", None
        if asks_future(info.text):
            return "out_of_scope", "资料库收录的是已发表的报道，不能回答关于今后几天的问题"
        if missing is not None:
            return "no_evidence", missing
        if self._not_yet(info, best.text):
            return "no_evidence", "资料只说明该信息尚未公布"
        # Explanatory questions (why/how/list) have no short fact to get wrong, and their best sentence
        # rarely covers the question's words, so they need only part of the confidence (calibrated alike).
        needed = th.min_confidence * threshold_share(info.answer_type)
        if confidence < needed:
            return "low_confidence", None
        return None, None

    def _conflicting(self, info: QuestionInfo, best: _Candidate, cands: list[_Candidate]) -> _Candidate | None:
        """Another document stating a different value for the same fact, about as relevant as the best."""
        if info.answer_type != "number":
            return None
        short = self._short_answer(info, best)
        if short is None:
            return None
        value, unit = cn_number_value(short), unit_of(short)
        for c in cands[1:12]:
            if c.passage.doc_id == best.passage.doc_id or c.coverage < 0.85 * best.coverage:
                continue
            other = self._short_answer(info, c)
            if other is None or unit_of(other) != unit:
                continue
            v2 = cn_number_value(other)
            if v2 is not None and value is not None and v2 != value:
                return c
        return None

    @staticmethod
    def _second(best: _Candidate, cands: list[_Candidate]) -> _Candidate | None:
        for c in cands[1:6]:
            if c.passage.chunk_id == best.passage.chunk_id and c.score >= 0.75 * best.score and c.text != best.text:
                return c
        return None

    @staticmethod
    def _compose(chosen: list[_Candidate], citations: tuple[Citation, ...], conflict: bool, short: str | None,
                 info: QuestionInfo) -> str:
        def src(c: Citation) -> str:
            return f"据《{c.title}》（{date_label(c.date)}）"

        if conflict:
            a, b = citations
            first, second = sorted((a, b), key=lambda c: c.date)
            return (f"不同报道说法不一：{src(first)}，{first.quote}[{first.n}]；"
                    f"{src(second)}，{second.quote}[{second.n}]（以日期较新的报道为准）。")
        first = citations[0]
        text = f"{src(first)}，{first.quote}[1]"
        if len(citations) > 1:
            second = citations[1]
            text += f"{second.quote}[{second.n}]"
        return text
