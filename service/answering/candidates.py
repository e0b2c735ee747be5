"""The reader over the top passages: each span it finds becomes a candidate answer with the sentence(s) that
hold it (absolute offsets into the cleaned document, as citations need)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from corpus.sentences import sentence_spans
from service.retrieval import SearchResult

if TYPE_CHECKING:
    from index.reader.onnx_reader import OnnxReader

SPANS_PER_PASSAGE = 3
# A quantity is quoted whole, as written: the reader (trained on DRCD's conventions) often stops short of its
# qualifier or unit ("10万人次" for "逾10万人次", "80%" for "80%以上", "13" for "13支").
_QUALIFIER_BEFORE = re.compile(r"(?:超过|约|近|超|逾|各)$")
_UNITS = (r"%|％|人次|名|个|人|亿元|万元|元|平方米|平方公里|公里|亩|项|条|次|家|支|所|座|户|本|期|场|班次|艘|件|岁|级|天|"
          r"倍|辆|类|种|批|方面|层|成|小时|分钟|米|趟|年")
_REST_AFTER = re.compile(rf"(?:[万亿千百]+)?(?:多|余)?(?:{_UNITS})?(?:以上|左右|多|余)?")
_CN_QUANTITY = re.compile(rf"[零一二两三四五六七八九十百千万亿]+(?:多|余)?(?:{_UNITS})")  # 六成, 三千多名


@dataclass(frozen=True)
class Candidate:
    passage: SearchResult
    span: str  # the reader's answer, verbatim
    span_start: int  # absolute offsets in the cleaned document text
    span_end: int
    start: int  # the sentence(s) holding the span, absolute offsets
    end: int
    sentence: str
    margin: float  # reader: span score minus no-answer score

    @property
    def doc_id(self) -> str:
        return self.passage.doc_id


_CLAUSE_MARKS = "，。；：！？,;!?\n"


def clause_bounds(c: Candidate) -> tuple[int, int]:
    """Where in its passage's text the clause holding the candidate's span begins and ends (between ，。；：…)."""
    text, a, b = c.passage.text, c.span_start - c.passage.start, c.span_end - c.passage.start
    begin = max(text.rfind(mark, 0, a) for mark in _CLAUSE_MARKS) + 1
    ends = [i for i in (text.find(mark, b) for mark in _CLAUSE_MARKS) if i >= 0]
    return begin, min(ends, default=len(text))


def _holding(spans: list[tuple[int, int]], a: int, b: int) -> tuple[int, int]:
    """The sentence span(s) among a passage's `spans` that hold [a, b)."""
    inside = [(s, e) for s, e in spans if s < b and e > a]
    if not inside:
        return a, b
    return inside[0][0], inside[-1][1]


def whole_quantity(text: str, a: int, b: int) -> tuple[int, int]:
    """[a, b) widened to the whole quantity as written when the span is one: its qualifier and its unit."""
    span = text[a:b]
    if not re.search(r"\d", span) and not _CN_QUANTITY.fullmatch(span):
        return a, b
    if re.match(r"[\d零一二两三四五六七八九十]", span):
        before = _QUALIFIER_BEFORE.search(text[max(0, a - 2):a])
        if before:
            a -= len(before.group(0))
    rest = _REST_AFTER.match(text, b)
    if rest and (re.search(r"[\d万亿千百多余]$", span) or rest.group(0) in ("以上", "左右")):
        b = rest.end()
    return a, b


class PassageReader:
    """The assembled reader, loaded once per engine."""

    def __init__(self, folder: Path, *, threads: int = 1) -> None:
        from index.reader.onnx_reader import OnnxReader

        self.folder = folder
        self.reader: OnnxReader = OnnxReader(folder, threads=threads)
        # the weights decide the margins calibration is fitted on (the graph is the code's): their file's hash
        manifest = self.reader.manifest
        self.fingerprint = str(manifest.get("onnx_data_sha256") or manifest.get("onnx_sha256", ""))

    def candidates(self, question: str, passages: tuple[SearchResult, ...],
                   rank_prior: Sequence[float] = ()) -> list[Candidate]:
        """Every span the reader finds in the passages, best first: by margin less the passage rank's prior
        (``rank_prior[r - 1]``, the last value for lower ranks; see calibration.rank_prior)."""
        spans = self.reader.read_many(question, [p.text for p in passages], SPANS_PER_PASSAGE)
        out: list[Candidate] = []
        for p, found in zip(passages, spans, strict=True):
            sentences = sentence_spans(p.text)
            for sp in found:
                a, b = whole_quantity(p.text, sp.start, sp.end)
                s, e = _holding(sentences, a, b)
                out.append(Candidate(p, p.text[a:b], p.start + a, p.start + b, p.start + s, p.start + e,
                                     p.text[s:e], sp.margin))
        out.sort(key=lambda c: -adjusted(c, rank_prior))
        return out


def adjusted(c: Candidate, rank_prior: Sequence[float]) -> float:
    """A candidate's margin less its passage rank's prior (``rank_prior[r - 1]``, the last value for lower
    ranks): what candidates of different passages are ordered by."""
    rank = c.passage.rank
    return c.margin - (rank_prior[min(rank, len(rank_prior)) - 1] if rank_prior else 0.0)
