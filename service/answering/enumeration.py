"""A list question's short answer: the whole enumeration ("甲、乙、丙等") that the reader's span is part of.

The reader, trained on DRCD, tends to give one item of a list ("蓬江区" for "蓬江区、江海区、新会区"), or one item with
the words before it; shown alone as the short answer that item would read as the whole answer. So a list
question's short answer is the enumeration around the span; when the span is in none, the answerer shows the
span only if it joins items itself (甲和乙).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection

from corpus.sentences import PAIRED_MARKS

WordSpans = Callable[[str], list[tuple[int, int]]]

SEPARATOR = "、"
_CLAUSE_END = frozenset("，。；：！？,;:!?\n")
_ENDS_LIST = "等"  # "甲、乙、丙等行业": the list stops at 等
LONG_ITEM = 1.5  # an end item this much longer than the inner items holds words around the list


def whole_enumeration(text: str, a: int, b: int, word_spans: WordSpans,
                      stopwords: Collection[str]) -> tuple[int, int] | None:
    """``[a, b)`` widened to the run of 、-joined items it holds or touches within its clause; None when it
    touches no 、. An end item has no separator on its outer side, so there the reader's own boundary is kept
    when it falls inside that item and leaves it not much longer than the inner items; otherwise the item is
    cut to whole words about as long as the inner items (leading stopwords dropped). 等 closes the list."""
    if a > 0 and b < len(text) and PAIRED_MARKS.get(text[a - 1]) == text[b] and SEPARATOR not in text[a:b]:
        a, b = a - 1, b + 1  # the reader's span stops inside the marks: 朱学论集 of 《朱学论集》、《…》
    a, b = _balanced(text, a, b)  # "筑牢“红色堡垒" touches the 、 after its closing mark
    lo, hi = a, b
    while lo > 0 and text[lo - 1] not in _CLAUSE_END:
        lo -= 1
    while hi < len(text) and text[hi] not in _CLAUSE_END:
        hi += 1
    # inside a quotation the list is the quotation's own: 3种“从轻、减轻处理的情形” is one item of its clause
    quote_open = text.rfind("“", lo, a)
    if quote_open >= 0 and "”" not in text[quote_open:a]:
        quote_close = text.find("”", b, hi)
        lo, hi = quote_open + 1, quote_close if quote_close >= 0 else hi
    if not (SEPARATOR in text[a:b] or (a > lo and text[a - 1] == SEPARATOR) or (b < hi and text[b] == SEPARATOR)):
        return None
    cuts = [i for i in range(lo, hi) if text[i] == SEPARATOR]
    items = list(zip([lo, *(c + 1 for c in cuts)], [*cuts, hi], strict=True))
    k_a = next(k for k, (_s, e) in enumerate(items) if e > a or k == len(items) - 1)
    k_b = max(k_a, max(k for k, (s, _e) in enumerate(items) if s < b or k == 0))
    first, last = k_a, k_b
    while first > 0 and _ENDS_LIST not in text[items[first - 1][0]:items[first - 1][1]]:
        first -= 1
    while last < len(items) - 1 and _ENDS_LIST not in text[items[last][0]:items[last][1]]:
        last += 1
    if first == last:
        return None
    run = items[first:last + 1]
    inner = [e - s for s, e in run[1:-1]]
    ref = statistics.median(inner) if inner else max(1, b - a)
    (s0, e0), (s1, e1) = run[0], run[-1]
    start = a if k_a == first else s0
    if k_a != first or e0 - start > LONG_ITEM * ref:
        start = _words_from_end(text, start, e0, ref, word_spans, stopwords)
    closing = text.find(_ENDS_LIST, s1, e1)
    if closing >= 0:
        end = closing
    else:
        end = b if k_b == last else e1
        if k_b != last or end - s1 > LONG_ITEM * ref:
            end = _words_from_start(text, s1, end, ref, word_spans)
    return _balanced(text, start, end)


def _words_from_end(text: str, s: int, e: int, ref: float, word_spans: WordSpans,
                    stopwords: Collection[str]) -> int:
    """Where in [s, e) the trailing whole words whose length is closest to ``ref`` start (the longer on a tie),
    leading stopwords dropped."""
    words = [(s + x, s + y) for x, y in word_spans(text[s:e])]
    if not words:
        return s
    begin = min((x for x, _y in words), key=lambda x: (abs((e - x) - ref), x))
    kept = [(x, y) for x, y in words if x >= begin]
    while len(kept) > 1 and text[kept[0][0]:kept[0][1]] in stopwords:
        kept.pop(0)
    return kept[0][0]


def _words_from_start(text: str, s: int, e: int, ref: float, word_spans: WordSpans) -> int:
    """Where in (s, e] the leading whole words whose length is closest to ``ref`` end (the longer on a tie)."""
    ends = [s + y for _x, y in word_spans(text[s:e])]
    return min(ends, key=lambda y: (abs((y - s) - ref), -y)) if ends else e


def _balanced(text: str, start: int, end: int) -> tuple[int, int]:
    """Take in the closing (opening) mark of a pair whose other half the span holds: "“两馆一中心" → "“两馆一中心”"."""
    for open_, close in PAIRED_MARKS.items():
        part = text[start:end]
        if part.count(open_) > part.count(close) and end < len(text) and text[end] == close:
            end += 1
        elif part.count(close) > part.count(open_) and start > 0 and text[start - 1] == open_:
            start -= 1
    return start, end
