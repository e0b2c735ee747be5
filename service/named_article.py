"""Questions that name a regulation's article ("江门市文明行为促进条例第三十条规定了什么", "第50条是怎么规定的"):
the chunks of that article, of the best-matching document, go to the top of the retrieved passages.

The best-matching document is the one whose title the question names (the longest such title), else the
highest-ranked retrieved document (among the first MAX_HITS passages) that has the article. Word overlap alone does not find an article by its
number: its chunks share "第三十条" with nothing but themselves, and many regulations copy the same text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from corpus.charforms import fold_text
from corpus.structure import articles_in, cn_int
from index.fusion import FusedHit
from index.store import LoadedIndex

_NAMED = re.compile(r"第\s*([零〇一二两三四五六七八九十百千\d]+)\s*条(?!例)")
MAX_HITS = 10  # the retrieved passages whose documents are looked at for the article when no title is named


def named_article(question: str) -> int | None:
    """The article number a question names (第三十条, 第30条, 第３０条), or None."""
    m = _NAMED.search(fold_text(question))
    n = cn_int(m.group(1)) if m else None
    return n or None


def article_rows(index: LoadedIndex, doc_id: str, number: int) -> list[int]:
    """The index rows of a document's chunks that hold article `number` (in reading order)."""
    doc = index.documents.get(doc_id)
    if doc is None:
        return []
    rows = []
    for i in range(doc.chunks):
        try:
            row = index.row_of(f"{doc_id}:{i:04d}")
        except KeyError:
            continue
        span = articles_in(index.chunks[row].section)
        if span is not None and span[0] <= number <= span[1]:
            rows.append(row)
    return rows


def _titled(question: str, index: LoadedIndex, exclude: frozenset[str]) -> list[str]:
    """Documents whose title the question names, longest title first."""
    q = fold_text(question)
    named = [(len(t), d.doc_id) for d in index.documents.values()
             if d.doc_id not in exclude and (t := fold_text(d.title).strip("《》 ")) and len(t) >= 4 and t in q]
    return [doc_id for _, doc_id in sorted(named, key=lambda x: -x[0])]


def promote_named_article(question: str, hits: Sequence[FusedHit], index: LoadedIndex, *,
                          exclude: frozenset[str] = frozenset(), query_vector: np.ndarray | None = None,
                          ) -> list[FusedHit]:
    """`hits` (best first) with the named article's chunks moved or added to the top; unchanged when the
    question names no article or no candidate document has it. An added chunk gets the top hit's fused score
    and, with the query vector, its own cosine score."""
    number = named_article(question)
    if number is None:
        return list(hits)
    ranked = list(dict.fromkeys(index.chunks[h.row].doc_id for h in hits[:MAX_HITS]))
    rows: list[int] = []
    for doc_id in _titled(question, index, exclude) + [d for d in ranked if d not in exclude]:
        rows = article_rows(index, doc_id, number)
        if rows:
            break
    if not rows:
        return list(hits)
    found = {h.row: h for h in hits}
    top = max((h.fused for h in hits), default=0.0)
    missing = [r for r in rows if r not in found]
    cosine: dict[int, float] = {}
    if missing and query_vector is not None:
        cosine = dict(zip(missing, (float(s) for s in index.dense.similarities(query_vector, missing)), strict=True))
    promoted = [found.get(r) or FusedHit(r, top, None, cosine.get(r), None, None) for r in rows]
    return promoted + [h for h in hits if h.row not in set(rows)]
