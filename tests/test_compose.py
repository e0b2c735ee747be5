"""Composition rules on hand-made candidates: which value rivals the best one."""

from __future__ import annotations

from service.answering.candidates import Candidate
from service.answering.compose import per_unit, rival_value
from service.retrieval import SearchResult


def candidate(doc: str, text: str, span: str, margin: float, nth: int = 0) -> Candidate:
    a = -1
    for _ in range(nth + 1):
        a = text.index(span, a + 1)
    p = SearchResult(1, doc, f"{doc}#0", doc, (), "2022-05-01", "article", text, 100, 100 + len(text), 1.0, None,
                     None, None, None, None)
    return Candidate(p, span, 100 + a, 100 + a + len(span), 100, 100 + len(text), text, margin)


OLD = "“每个网格内配备1名网格长、1名专职网格员以及若干名兼职网格员。目前全区190名专职网格员均已到位。"
NEW = "全区383名专职网格员定期巡查。"


def test_a_value_per_unit_is_not_a_total() -> None:
    assert per_unit(candidate("old", OLD, "1名", 11.0, nth=1))
    assert not per_unit(candidate("old", OLD, "190名", 11.0))
    assert not per_unit(candidate("new", NEW, "383名", 15.0))


def test_the_rival_is_the_other_documents_total() -> None:
    best = candidate("new", NEW, "383名", 15.0)
    per_grid = candidate("old", OLD, "1名", 11.2, nth=1)  # rated a little above the total, as the reader did
    total = candidate("old", OLD, "190名", 11.0)
    assert rival_value(best, [per_grid, total]) is total
    assert rival_value(best, [per_grid]) is None
    assert rival_value(best, [candidate("old", OLD, "190名", 9.0)]) is None  # too unsure to be a disagreement
