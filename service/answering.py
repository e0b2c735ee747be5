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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpus.sentences import sentence_spans
from index.store import LoadedIndex
from service.questions import QuestionInfo, analyse
from service.retrieval import Retriever, SearchResult

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"
ANSWER_PASSAGES = 6
NON_FACTOID_FACTOR = 0.5  # passages whose sentences compete for the answer

_CN_DIGITS = "零一二两三四五六七八九十百千万亿"
NUMBER_RE = re.compile(
    r"(?:约|近|超过|超|逾|达到|达|共|累计|全部|仅)?"
    r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+(?=[万亿千百]?[多余]?[名个项条次家支所座户种类批方面级人万亿]))"
    r"(?:[万亿千百]+)?(?:多|余)?"
    r"(?:%|％|名|个|人次|人|亿元|万元|元|平方米|公里|亩|项|条|次|家|支|所|座|户|本|期|场|班次|艘|件|岁|级|天|年|倍|辆|"
    r"类|种|批|方面|层|岁|小时|分钟|米|号)?"
    r"(?:以上|左右|多|余)?"
)
DATE_RE = re.compile(r"(?:\d{4}年)?\d{1,2}月(?:\d{1,2}日)?(?:\d{1,2}时)?|\d{4}年(?:\d{1,2}月)?|[上下]半年|今年|去年|年初|年底")
_ROLE_NAME_RE = re.compile(
    r"(?:书记|市长|副市长|区长|主任|负责人|代表|部长|局长|委员|经理|女士|先生|大叔|记者|专家|校长|院长)"
    r"([\u4e00-\u9fff]{2,3}?)(?=[，。、说表示指出强调介绍认为等]|$)")
_QUOTED_RE = re.compile(r"“([^”]{2,30})”|《([^》]{2,40})》")
_ORG_RE = re.compile(r"[\u4e00-\u9fff“”（）()]{2,24}?(?:党委|党支部|党组织|公司|中心|实验室|银行|分行|局|部门|协会|学校|"
                     r"委员会|工作专班|服务队|党校|驿站)")
_PLACE_RE = re.compile(r"[\u4e00-\u9fff]{2,8}?(?:区|镇|村|县|街道|社区|市|岛|站|公园|广场)")
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


def cn_number_value(text: str) -> float | None:
    """Numeric value of '21万多', '22.6亿', '三千', '两万' (for comparing values across documents)."""
    m = re.search(r"(\d+(?:\.\d+)?)([万亿千百]*)", text)
    if m:
        value = float(m.group(1))
        for ch in m.group(2):
            value *= {"万": 1e4, "亿": 1e8, "千": 1e3, "百": 1e2}[ch]
        return value
    m2 = re.search(f"[{_CN_DIGITS}]+", text)
    if not m2:
        return None
    digits = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
    units = {"十": 10, "百": 100, "千": 1000}
    total, section, num = 0.0, 0.0, 0.0
    for ch in m2.group(0):
        if ch in digits:
            num = digits[ch]
        elif ch in units:
            section += (num or 1) * units[ch]
            num = 0
        elif ch in ("万", "亿"):
            total += (section + num) * (1e4 if ch == "万" else 1e8)
            section, num = 0, 0
    return total + section + num


def _unit_of(span: str) -> str:
    m = re.search(r"(%|％|人次|名|个|人|亿元|万元|元|平方米|公里|亩|项|条|次|家|支|所|座|户|本|期|场|班次|艘|件|岁|级|天|"
                  r"倍|辆|类|种|批|方面|层)", span)
    return m.group(1) if m else ""


class Answerer:
    def __init__(self, retriever: Retriever, thresholds: Thresholds | None = None) -> None:
        self.retriever = retriever
        self.index = retriever.index
        self.segmenter = retriever.segmenter
        self.thresholds = thresholds or Thresholds.load()

    # --- scoring ---------------------------------------------------------------------------------------
    def _weights(self, info: QuestionInfo) -> dict[str, float]:
        return {w: self._idf(w) for w in info.keywords}

    def _idf(self, word: str) -> float:
        toks = self.segmenter.tokens(word) or [word]
        return max(self.index.sparse.idf(t) for t in toks)

    def _coverage(self, info: QuestionInfo, text: str, context: str, weights: dict[str, float]) -> float:
        total = sum(weights.values())
        if not total:
            return 0.0
        got = 0.0
        for w, wt in weights.items():
            if w in text:
                got += wt
            elif w in context:
                got += 0.5 * wt
            elif len(w) >= 3 and any(w[i:i + 2] in text for i in range(len(w) - 1)):
                got += 0.3 * wt  # a partial match of a long compound ("专职网格员" vs "网格员")
        return got / total

    def _type_match(self, info: QuestionInfo, text: str) -> float:
        kind = info.answer_type
        if kind == "number":
            spans = [m.group(0) for m in NUMBER_RE.finditer(text) if re.search(r"[\d一二两三四五六七八九十]", m.group(0))]
            if not spans:
                return 0.0
            if info.unit and any(info.unit in s or _unit_of(s) == info.unit for s in spans):
                return 1.0
            return 0.6
        if kind == "date":
            return 1.0 if DATE_RE.search(text) else 0.0
        if kind == "person":
            return 1.0 if _ROLE_NAME_RE.search(text) else 0.3
        if kind == "organization":
            return 1.0 if _ORG_RE.search(text) else 0.3
        if kind == "place":
            return 1.0 if _PLACE_RE.search(text) else 0.3
        if kind in ("name", "other"):
            return 1.0 if _QUOTED_RE.search(text) else 0.5
        if kind == "list":
            return 1.0 if text.count("、") >= 2 or "；" in text or re.search(r"[一二三四五六七八]是", text) else 0.4
        return 0.5

    def _anchor(self, info: QuestionInfo, text: str, weights: dict[str, float]) -> float:
        """For number questions: how much of the question sits right next to a number ("发送旅客37.5万人次")."""
        if info.answer_type != "number" or not weights:
            return 0.0
        total = sum(weights.values())
        best = 0.0
        for m in NUMBER_RE.finditer(text):
            if not re.search(r"[\d一二两三四五六七八九十]", m.group(0)):
                continue
            window = text[max(0, m.start() - 12): m.end() + 6]
            best = max(best, sum(wt for w, wt in weights.items() if w in window) / total)
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
                score = 0.62 * cov + 0.18 * tm + 0.14 * prior + 0.6 * dense_rel + 0.2 * anchor
                out.append(_Candidate(p, p.start + s, p.start + e, sent, score, cov, tm, anchor))
        out.sort(key=lambda c: -c.score)
        return out

    # --- short answers ---------------------------------------------------------------------------------
    def _short_answer(self, info: QuestionInfo, cand: _Candidate) -> str | None:
        text = cand.text
        q = info.text
        kind = info.answer_type
        if kind == "number":
            spans = [m for m in NUMBER_RE.finditer(text)
                     if re.search(r"[\d一二两三四五六七八九十]", m.group(0)) and m.group(0) not in q
                     and not re.fullmatch(r"(?:19|20)\d{2}年?", m.group(0))]
            if not spans:
                return None
            anchors = [text.find(w) for w in info.keywords if w in text]

            def rank(m: re.Match[str]) -> tuple[float, int]:
                unit_ok = 1.0 if info.unit and (info.unit in m.group(0) or _unit_of(m.group(0)) == info.unit) else 0.0
                dist = min((abs(a - m.start()) for a in anchors), default=50)
                return (-unit_ok, dist)

            return min(spans, key=rank).group(0)
        if kind == "date":
            dates = [m.group(0) for m in DATE_RE.finditer(text) if m.group(0) not in q]
            return dates[0] if dates else None
        if kind == "person":
            for m in _ROLE_NAME_RE.finditer(text):
                if m.group(1) not in q:
                    return m.group(1)
            return None
        pattern = {"organization": _ORG_RE, "place": _PLACE_RE}.get(kind)
        if pattern is not None:
            for m in pattern.finditer(text):
                span = m.group(0).strip("“”（）()")
                if span not in q and len(span) >= 3:
                    return span
            return None
        if kind in ("name", "other"):
            for m in _QUOTED_RE.finditer(text):
                span = m.group(0)
                inner = m.group(1) or m.group(2)
                if inner and inner not in q:
                    return span
        return None

    # --- main --------------------------------------------------------------------------------------------
    def answer(self, question: str, k: int = 5, mode: str = "hybrid") -> Answer:
        t0 = time.perf_counter()
        resp = self.retriever.search(question, max(k, ANSWER_PASSAGES), mode)
        info = analyse(resp.query, self.segmenter)
        passages = resp.results
        timings = dict(resp.timings_ms)
        t1 = time.perf_counter()
        cands = self._candidates(info, passages)
        best = cands[0] if cands else None
        short = None
        if best is not None and (info.factoid or info.answer_type == "other"):
            short = self._short_answer(info, best)
        signals = self._signals(info, best, short, passages)
        confidence = self.thresholds.confidence(signals)
        reason = self._refusal(info, best, signals, confidence)
        shown = passages[:k]
        if reason is not None or best is None:
            timings["answer"] = round((time.perf_counter() - t1) * 1000, 3)
            timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
            return Answer(resp.query, f"资料中没有找到可靠答案：{REASONS_ZH[reason or 'no_evidence']}。以下是最相关的段落，供参考。",
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

    def _signals(self, info: QuestionInfo, best: _Candidate | None, short: str | None,
                 passages: tuple[SearchResult, ...]) -> dict[str, float]:
        if best is None:
            return dict.fromkeys(FEATURES, 0.0)
        unit_match = 0.0
        if info.answer_type == "number" and info.unit:
            units = {_unit_of(m.group(0)) for m in NUMBER_RE.finditer(best.text)}
            unit_match = 1.0 if any(info.unit in u or u == info.unit for u in units if u) or info.unit in best.text \
                else -1.0
        seen = " ".join(f"{p.title} {p.text}" for p in passages[:ANSWER_PASSAGES])
        # question words the corpus has never seen and no retrieved passage contains: a sign it asks about
        # something the articles do not cover
        missing_rare = sum(1 for w in info.keywords
                           if len(w) >= 2 and w not in seen and all(self.index.sparse.doc_freq(t) == 0
                                                                    for t in (self.segmenter.tokens(w) or [w])))
        return {"coverage": best.coverage, "type_match": best.type_match,
                "dense_top": max((p.dense_score or 0.0) for p in passages),
                "unit_match": unit_match, "short_missing": 1.0 if info.factoid and short is None else 0.0,
                "missing_rare": float(min(missing_rare, 2)), "anchor": best.anchor}

    def _year_supported(self, year: str, best: _Candidate) -> bool:
        p = best.passage
        stated = re.findall(r"((?:19|20)\d{2})年", best.text)
        if stated and year not in stated:
            return False  # the sentence is explicitly about another year
        if year in best.text or year in p.text or year in p.title:
            return True
        if re.search(r"(?:19|20)\d{2}年", p.text):
            return False  # the passage dates its facts, and not with this year
        # a dated article's "今年"/"这一年" (a year review looks back at the year before its date)
        doc_year = int(p.date[:4])
        return int(year) in (doc_year, doc_year - 1) and not re.search(r"(?:19|20)\d{2}年", best.text)

    def _refusal(self, info: QuestionInfo, best: _Candidate | None, signals: dict[str, float],
                 confidence: float) -> str | None:
        if best is None:
            return "no_evidence"
        th = self.thresholds
        if signals["coverage"] < th.out_of_scope_coverage and signals["dense_top"] < th.out_of_scope_dense:
            return "out_of_scope"
        # The question's year and places must be in the evidence (its passage, title or date), otherwise the
        # passage is about another year or another place.
        p = best.passage
        evidence = f"{p.title} {' '.join(p.section)} {p.text} {p.date}"
        doc = self.index.documents.get(p.doc_id)
        if doc is not None:
            evidence += f" {doc.title} {doc.region}"
        if any(not self._year_supported(y, best) for y in info.years):
            return "no_evidence"
        if any(pl not in evidence for pl in info.places):
            return "no_evidence"
        # Explanatory questions (why/how/list) have no short fact to get wrong and the calibration set is
        # factoid-heavy, so they need only half the confidence.
        needed = th.min_confidence if info.factoid else th.min_confidence * NON_FACTOID_FACTOR
        if confidence < needed:
            return "low_confidence"
        return None

    def _conflicting(self, info: QuestionInfo, best: _Candidate, cands: list[_Candidate]) -> _Candidate | None:
        """Another document stating a different value for the same fact, about as relevant as the best."""
        if info.answer_type != "number":
            return None
        short = self._short_answer(info, best)
        if short is None:
            return None
        value, unit = cn_number_value(short), _unit_of(short)
        for c in cands[1:12]:
            if c.passage.doc_id == best.passage.doc_id or c.coverage < 0.85 * best.coverage:
                continue
            other = self._short_answer(info, c)
            if other is None or _unit_of(other) != unit:
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
