"""Checking what the model wrote against the passages it was given.

A statement is kept only when (1) it is a statement (not the question echoed) citing passages that exist,
(2) its quote occurs in one of them — that occurrence becomes an exact character-span citation, like an
extractive answer's; when the whole quote is not there, at least 75 % of it must be, verbatim, and only that
part is cited (match "partial") — and (3) every number, date, 《title》, quoted term and place name in its text
also occurs in its cited passages (with their titles and dates). Anything else is dropped with the reason,
and counted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from index.gazetteer import load_gazetteer
from index.store import LoadedIndex
from service.answering.compose import (
    Citation,
    Statement,
    cn_number_value,
    date_label,
    passage_article,
    verify_citation,
)
from service.llm.parse import RawAnswer, RawStatement
from service.retrieval import SearchResult

MIN_QUOTE_CHARS = 5  # a shorter "quote" (的, 江门市) proves nothing
NEAR_SHARE, NEAR_MIN_CHARS = 0.75, 10  # a partial quote: this share of the model's quote, verbatim, at least
_OPEN, _CLOSE = "\"'“‘「『", "\"'”’」』"
_TRAIL = "。；;，,、！!？?"
_ARABIC = re.compile(r"\d+(?:\.\d+)?")
_CN_NUMBER = re.compile(r"[零一二两三四五六七八九十百千万亿]{2,}")
_CN_UNITS = set("十百千万亿")
_TITLE = re.compile(r"《([^《》]{2,60})》")
_QUOTED = re.compile(r"[“「]([^“”「」]{2,30})[”」]")



@dataclass(frozen=True)
class Verified:
    statements: tuple[Statement, ...]
    citations: tuple[Citation, ...]

    @property
    def kept(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.verified)

    @property
    def dropped(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if not s.verified)


_SAME_QUOTE = str.maketrans({c: '"' for c in "“”‘’「」『』'＂＇"})


def _fold(ch: str) -> str:
    """One character as compared: full-width forms folded to ASCII (，→, （→( ３→3), every quote mark alike.
    One character in, one out, so offsets in the folded text are offsets in the original."""
    folded = unicodedata.normalize("NFKC", ch)
    return (folded if len(folded) == 1 else ch).translate(_SAME_QUOTE)


def _squeeze(text: str) -> tuple[str, list[int]]:
    """Text folded (_fold) without whitespace, and where each kept character was."""
    keep = [(i, _fold(ch)) for i, ch in enumerate(text) if not ch.isspace()]
    return "".join(ch for _, ch in keep), [i for i, _ in keep]


def find_quote(passage: str, quote: str) -> tuple[int, int] | None:
    """Where the model's quote is in the passage (offsets in the passage): exactly, or with the quote marks
    around it and its closing punctuation set aside and full-width/half-width punctuation and whitespace taken as
    the same (the seeds write "," where a model writes "，")."""
    q = quote.strip().strip("…")
    if len(q) >= 2 and q[0] in _OPEN and q[-1] in _CLOSE:  # the model's own quote marks around the quote
        q = q[1:-1]
    for candidate in (quote, q, q.rstrip(_TRAIL)):
        if len(candidate) >= MIN_QUOTE_CHARS:
            at = passage.find(candidate)
            if at >= 0:
                return at, at + len(candidate)
    sq, _ = _squeeze(q.rstrip(_TRAIL))
    if len(sq) < MIN_QUOTE_CHARS:
        return None
    sp, where = _squeeze(passage)
    at = sp.find(sq)
    if at < 0:
        return None
    return where[at], where[at + len(sq) - 1] + 1


def near_quote(passage: str, quote: str) -> tuple[int, int] | None:
    """The longest run of the quote that the passage holds verbatim (compared as in find_quote), when it is most
    of the quote: small models copy a sentence with a word changed or dropped. The citation is that run only,
    never the model's wording."""
    sq, _ = _squeeze(quote)
    sp, where = _squeeze(passage)
    need = max(NEAR_MIN_CHARS, int(len(sq) * NEAR_SHARE + 0.999))
    if len(sq) < need:
        return None
    m = SequenceMatcher(None, sp, sq, autojunk=False).find_longest_match(0, len(sp), 0, len(sq))
    if m.size < need:
        return None
    return where[m.a], where[m.a + m.size - 1] + 1


def _numbers(text: str) -> tuple[set[str], set[float]]:
    literal = {m.group(0) for m in _ARABIC.finditer(text)}
    values = {float(x) for x in literal}
    for m in _CN_NUMBER.finditer(text):
        v = cn_number_value(m.group(0))
        if v is not None:
            values.add(v)
    return literal, values


def unsupported_number(statement: str, evidence: str) -> str | None:
    """A number of the statement that its evidence does not contain (digits compared as values: 05 = 5)."""
    _, values = _numbers(evidence)
    for m in _ARABIC.finditer(statement):
        if m.group(0) not in evidence and float(m.group(0)) not in values:
            return m.group(0)
    for m in _CN_NUMBER.finditer(statement):
        word = m.group(0)
        if not (_CN_UNITS & set(word)) or word in evidence:
            continue  # 一是, 统一: words, not quantities
        v = cn_number_value(word)
        if v is not None and v not in values:
            return word
    return None


def unsupported_name(statement: str, evidence: str) -> str | None:
    """A 《title》, quoted term or place of the statement that its evidence does not contain."""
    for m in (*_TITLE.finditer(statement), *_QUOTED.finditer(statement)):
        if m.group(1) not in evidence:
            return m.group(1)
    gaz = load_gazetteer()
    for place in gaz.places:
        if place in statement and place not in evidence:
            aliases = [a for a, names in gaz.aliases.items() if place in names]
            if not any(a in evidence for a in aliases):
                return place
    return None


def verify(raw: RawAnswer, passages: Sequence[SearchResult], index: LoadedIndex) -> Verified:
    statements: list[Statement] = []
    citations: dict[tuple[str, int, int], Citation] = {}
    for s in raw.statements:
        st, cite = _check(s, passages, index, len(citations) + 1)
        if cite is not None:
            key = (cite.doc_id, cite.start, cite.end)
            if key in citations:
                cite = citations[key]
            else:
                verify_citation(index, cite)
                citations[key] = cite
            st = Statement(st.text, st.passages, st.quote, True, cite.n, None, st.match)
        statements.append(st)
    return Verified(tuple(statements), tuple(citations.values()))


def _check(s: RawStatement, passages: Sequence[SearchResult], index: LoadedIndex,
           n: int) -> tuple[Statement, Citation | None]:
    def dropped(reason: str) -> tuple[Statement, None]:
        return Statement(s.text, s.passages, s.quote, False, None, reason), None

    if not s.text:
        return dropped("empty")
    if s.text.rstrip()[-1] in "？?":  # small models echo the question as a "statement"
        return dropped("not_a_statement")
    cited = [passages[i - 1] for i in dict.fromkeys(s.passages) if 1 <= i <= len(passages)]
    if not cited or len(cited) != len(set(s.passages)):
        return dropped("bad_passage")
    # the quote is looked for in the passages the statement cites first, then in the others the model was given
    # (small models misnumber passages): the citation is where the quote really is, and that passage joins the
    # evidence the statement's facts are checked against
    order = cited + [p for p in passages if p not in cited]
    match = "exact"
    hit = next(((p, span) for p in order if (span := find_quote(p.text, s.quote)) is not None), None)
    if hit is None:
        match = "partial"
        hit = next(((p, span) for p in order if (span := near_quote(p.text, s.quote)) is not None), None)
    if hit is None:
        return dropped("quote_not_in_passage")
    if hit[0] not in cited:
        cited.append(hit[0])
    docs = [index.documents.get(p.doc_id) for p in cited]
    dates = [d.issue_date if d is not None else p.date for d, p in zip(docs, cited, strict=True)]
    evidence = "\n".join(f"{p.title} {' '.join(p.section)} {d} {date_label(d)}\n{p.text}"
                         for p, d in zip(cited, dates, strict=True))
    if unsupported_number(s.text, evidence) is not None:
        return dropped("unsupported_number")
    if unsupported_name(s.text, evidence) is not None:
        return dropped("unsupported_name")
    p, (a, b) = hit
    doc = index.documents.get(p.doc_id)
    start, end = p.start + a, p.start + b
    date = doc.issue_date if doc is not None else p.date
    origin = doc.origin_at(start, end) if doc is not None else None
    quote = doc.text[start:end] if doc is not None else p.text[a:b]
    return (Statement(s.text, s.passages, s.quote, True, n, None, match),
            Citation(n, p.doc_id, p.chunk_id, p.title, date, p.section, quote, start, end, origin,
                     passage_article(p.section, p.text, p.start, start)))
