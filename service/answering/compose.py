"""From the chosen candidates to what the user reads: citations of the exact sentences, the answer text with
its sources, and the newest document's value when two documents disagree."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.structure import article_at
from index.store import LoadedIndex
from service.answering.candidates import Candidate, clause_bounds

# A rival value this close to the best (reader margin) is a disagreement, not noise: the margins of right answers
# on the calibration set spread over about this much (interquartile range ~5).
CONFLICT_GAP = 5.0
_CN_DIGITS = "零一二两三四五六七八九十百千万亿"
_NUMBER_RE = re.compile(rf"\d+(?:\.\d+)?[万亿千百]*|[{_CN_DIGITS}]+")


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
    # where the quote's start is in the uploaded original: {"format": "pdf", "page": n[, "pages": [a, b]]} or
    # {"format": "html"|"docx"|"doc"|"wordxml", "section": [heading trail]}; None for a Markdown document
    origin: dict[str, Any] | None = field(default=None, compare=False)
    article: str = ""  # the regulation article the quote is in (第五十条); "" for other text

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["section"] = list(self.section)
        return d


DROP_REASONS = ("empty", "not_a_statement", "bad_passage", "quote_not_in_passage", "unsupported_number",
                "unsupported_name")


@dataclass(frozen=True)
class Statement:
    """A statement of a generated answer (service/llm) and whether it was verified against its passages."""

    text: str
    passages: tuple[int, ...]
    quote: str
    verified: bool
    citation: int | None  # the n of its citation when verified
    dropped: str | None  # why it was dropped (one of DROP_REASONS)
    match: str | None = None  # verified: "exact" (the whole quote is in the passage) or "partial"

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "passages": list(self.passages), "quote": self.quote,
                "verified": self.verified, "citation": self.citation, "dropped": self.dropped,
                "match": self.match}


class CitationError(AssertionError):
    """A citation's quote does not equal the cited span of the document: a bug, never shown as an answer."""


def verify_citation(index: LoadedIndex, c: Citation) -> None:
    doc = index.documents.get(c.doc_id)
    if doc is None or doc.text[c.start:c.end] != c.quote or not c.quote:
        raise CitationError(f"citation {c.n} does not match {c.doc_id}[{c.start}:{c.end}]")


def date_label(date: str) -> str:
    parts = [p for p in date.split("-") if p.isdigit()]
    if not parts:
        return ""
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


def _unit(span: str) -> str:
    """What a quantity counts: the text after its last number ('383名' → '名')."""
    found = list(_NUMBER_RE.finditer(span))
    return span[found[-1].end():].strip() if found else ""


def per_unit(c: Candidate) -> bool:
    """Whether the span counts per unit ("每个网格内配备1名专职网格员"): 每 earlier in its clause."""
    begin, _end = clause_bounds(c)
    return "每" in c.passage.text[begin:c.span_start - c.passage.start]


def rival_value(best: Candidate, others: list[Candidate]) -> Candidate | None:
    """Another document stating a different value of the same kind about as confidently as the best. A value
    per unit (每…) is not of the same kind as a total."""
    value = cn_number_value(best.span)
    if value is None or not re.search(r"\d", best.span):
        return None
    for c in others:
        if c.doc_id == best.doc_id or c.margin < best.margin - CONFLICT_GAP or per_unit(c) != per_unit(best):
            continue
        v2 = cn_number_value(c.span)
        if v2 is not None and re.search(r"\d", c.span) and v2 != value and _unit(c.span) == _unit(best.span):
            return c
    return None


def passage_article(section: tuple[str, ...], passage_text: str, passage_start: int, offset: int) -> str:
    """The article (第五十条) holding document offset `offset` of a passage: its section path's article, or for a
    passage of several articles the one the offset is in; "" for a passage that is no regulation's article."""
    return article_at(section, passage_text, offset - passage_start)


def without_article_label(quote: str, start: int, article: str, keep_from: int | None = None) -> tuple[str, int]:
    """A quote that opens with its article's label ("第五十条 文明行为……") without it: the answer names the article.
    The label stays when the answer span starts inside it (keep_from: the span's start; "哪一条规定了……")."""
    if not article or not quote.startswith(article):
        return quote, start
    cut = len(article)
    while cut < len(quote) and quote[cut].isspace():
        cut += 1
    if cut >= len(quote) or (keep_from is not None and keep_from < start + cut):
        return quote, start
    return quote[cut:], start + cut


def citations_for(chosen: list[Candidate], index: LoadedIndex | None = None) -> tuple[Citation, ...]:
    """One citation per chosen candidate, naming the regulation article its quote is in. With the index, each is
    dated by its document's issue date (成文日期, else 发布日期, else the document's date) and says where its quote
    starts in the uploaded original."""
    out = []
    for n, c in enumerate(chosen, start=1):
        p = c.passage
        article = passage_article(p.section, p.text, p.start, c.start)
        quote, start = without_article_label(c.sentence, c.start, article, c.span_start)
        doc = index.documents.get(c.doc_id) if index is not None else None
        date = doc.issue_date if doc is not None else p.date
        origin = doc.origin_at(start, c.end) if doc is not None else None
        out.append(Citation(n, p.doc_id, p.chunk_id, p.title, date, p.section, quote, start, c.end, origin, article))
    return tuple(out)


def _source(c: Citation) -> str:
    """据《标题》（日期）第五十条: the date only when the document has one, the article only for a regulation."""
    when = date_label(c.date)
    return f"据《{c.title}》" + (f"（{when}）" if when else "") + c.article


def answer_text(citations: tuple[Citation, ...], conflict: bool) -> str:
    if conflict:
        first, second = sorted(citations, key=lambda c: c.date)
        return (f"不同报道说法不一：{_source(first)}，{first.quote}[{first.n}]；"
                f"{_source(second)}，{second.quote}[{second.n}]（以日期较新的报道为准）。")
    first = citations[0]
    text = f"{_source(first)}，{first.quote}[1]"
    for c in citations[1:]:
        text += f"{c.quote}[{c.n}]"
    return text
