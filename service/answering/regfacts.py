"""Facts every regulation states in the same words, read by rule rather than by the reader: when it takes effect
(本条例自2021年5月1日起施行; 自公布之日起施行 → its 公布 date) and when and by which meeting it was passed or
approved (the line under its title: 2020年10月29日江门市第十五届人民代表大会常务委员会第三十九次会议通过).

The reader, trained on encyclopaedia and news questions, splits such dates (2019年 | 9月20日起) and scores them
below its no-answer; the sentences are formulaic, so a pattern finds them exactly and the citation is the sentence
itself, sliced from the cleaned text like every other citation.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from corpus.sentences import sentence_spans
from index.gazetteer import load_divisions
from index.store import LoadedIndex, StoredDocument

_DATE = r"(?:(?:19|20)\d{2}|[〇○零一二三四五六七八九]{4})年[\d一二三四五六七八九十]{1,3}月[\d一二三四五六七八九十]{1,3}日"
# 本条例自2021年5月1日起施行 in the last article, or 自2017年10月1日起施行 in the line under the title
_EFFECTIVE = re.compile(rf"(本(?:条例|规定|办法|细则|决定)\s*)?(?:自|从)\s*({_DATE}|公布之日|发布之日|颁布之日)\s*起(?:施行|实施|执行|生效)")
_MEETING = re.compile(rf"({_DATE})\s*([^，。；（）()\n]{{4,60}}?会议)\s*(通过|批准|修订|修正|审议通过)")
_ASKS_WHEN = re.compile(r"什么时[候间]|何时|哪[一]?天|哪年|几号|几月|日期|时间|哪一?日|多会儿|啥时")
_ASKS_EFFECTIVE = re.compile(r"施行|生效|实施|执行|起效|开始用|开始适用")
_ASKS_MEETING = re.compile(r"通过|批准|审议|制定|出台|颁布")
_ASKS_WHICH_MEETING = re.compile(r"哪[个次一]?(?:次)?会议|什么会议|哪个(?:机关|部门|单位)|由谁|谁(?:通过|批准)")
_NAMES_ARTICLE = re.compile(r"第[一二三四五六七八九十百零〇\d]+条")


@dataclass(frozen=True)
class Fact:
    """A fact's answer: `short` is doc.text[short_start:short_end], `quote` is doc.text[start:end]."""

    doc_id: str
    kind: str  # effective | passed | approved
    short: str
    start: int
    end: int
    note: str = ""  # added to the short answer (the 公布 date behind 自公布之日起施行)


def asked_fact(question: str) -> str | None:
    """effective | meeting | None: what regulation fact a question asks for."""
    if _NAMES_ARTICLE.search(question):
        return None
    if _ASKS_EFFECTIVE.search(question) and _ASKS_WHEN.search(question):
        return "effective"
    if _ASKS_MEETING.search(question) and (_ASKS_WHEN.search(question) or _ASKS_WHICH_MEETING.search(question)):
        return "meeting"
    return None


def _sentence(text: str, at: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    line_end = len(text) if line_end < 0 else line_end
    for s, e in sentence_spans(text, line_start, line_end):
        if s <= at < e:
            return s, e
    return line_start, line_end


def find_fact(question: str, doc: StoredDocument) -> Fact | None:
    kind = asked_fact(question)
    if kind is None:
        return None
    text = doc.text
    if kind == "effective":
        found = list(_EFFECTIVE.finditer(text))
        if not found:
            return None
        own = [m for m in found if m.group(1)]
        m = own[-1] if own else found[0]  # the last article's 本条例自…; else the line under the title
        start, end = _sentence(text, m.start())
        note = ""
        if m.group(2).endswith("之日"):
            published = doc.extra.get("published_date") or doc.extra.get("approved_date") or ""
            note = f"（{published}公布）" if published else ""
        short = m.group(2) if not m.group(2).endswith("之日") else f"自{m.group(2)}起施行"
        return Fact(doc.doc_id, "effective", short, start, end, note)
    meetings = list(_MEETING.finditer(text[:3000]))
    if not meetings:
        return None
    wants_approval = "批准" in question
    chosen = next((m for m in meetings if (m.group(3) == "批准") == wants_approval), meetings[-1])
    start, end = chosen.start(), chosen.end()
    short = chosen.group(2) if _ASKS_WHICH_MEETING.search(question) and not _ASKS_WHEN.search(question) \
        else chosen.group(1)
    return Fact(doc.doc_id, "approved" if chosen.group(3) == "批准" else "passed", short, start, end)


def fact_for(question: str, doc_ids: list[str], index: LoadedIndex, regulations: Collection[str],
             terms: list[str] | None = None) -> Fact | None:
    """The fact from the first regulation among the retrieved documents (already restricted to the place and
    version the question is about): its effective date, passing meeting, or the fine for a named behaviour."""
    for doc_id in doc_ids:
        if doc_id in regulations and (doc := index.documents.get(doc_id)) is not None:
            if asked_fact(question) is not None:
                return find_fact(question, doc)
            return find_fine(question, doc, terms or [])
    return None


_AMOUNT = r"[\d一二两三四五六七八九十百千万零〇.]+元"
_FINE_RANGE = re.compile(rf"(?:每[只条次人户辆件]\s*)?{_AMOUNT}(?:\s*(?:以上|至|到|-|—|～)\s*{_AMOUNT}(?:以下)?)?")
ASKS_FINE = re.compile(r"罚|处罚|多少钱")


def fine_short(text: str, start: int, end: int) -> str:
    """A fine as the short answer: the whole range the reader's span is part of (二百元以上五百元以下, not 二百元的),
    per unit when the text says so (每只五百元). `text[start:end]` is the reader's span."""
    line_start = max(text.rfind(ch, 0, start) for ch in "，。；\n") + 1
    for m in _FINE_RANGE.finditer(text, line_start, min(len(text), end + 40)):
        if m.start() < end and m.end() > start:
            return m.group(0)
    return text[start:end].rstrip("的")


_CN_NUM = "一二三四五六七八九十百零〇两"
_ARTICLE_AT = re.compile(rf"^\s*第([{_CN_NUM}\d]+)条", re.M)
_ITEM_AT = re.compile(rf"^\s*[（(]([{_CN_NUM}\d]+)[）)]", re.M)
_SEGMENT = re.compile(r"[^。；;\n]+[。；;]?")
# words of a fine question that say nothing of the behaviour it is about
_GENERIC = frozenset(["罚款", "处罚", "罚钱", "多少", "多少钱", "条例", "文明", "行为", "促进", "规定", "违反", "怎么", "怎么样", "如何", "什么", "会", "被", "要", "的", "了", "吗", "呢", "罚", "钱", "处", "元", "市", "省", "个人", "单位", "不文明", "管理", "规定", "一下"])


def behaviour_terms(words: list[str], places: list[str]) -> list[str]:
    """The question's words that name the behaviour a fine is asked for (随地吐痰, 犬只, 牵引带)."""
    divisions = load_divisions()
    return list(dict.fromkeys(w for w in words if len(w) >= 2 and w not in _GENERIC and divisions.lookup(w) is None
                              and not any(w in p or p in w for p in places)))


def _segments(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SEGMENT.finditer(text) if m.group(0).strip()]


def _unique_best(scored: list[tuple[int, int, int]], text: str) -> tuple[int, int] | None:
    """The (start, end) with the most hits, when no other segment has as many; between equals, the one that cites
    the article it punishes (违反本条例第八条第一项规定，…吸烟的，处五十元罚款 before the manager's fine)."""
    if not scored:
        return None
    ranked = sorted(scored, key=lambda x: (-x[0], "违反本" not in text[x[1]:x[2]]))
    if len(ranked) > 1 and ranked[1][0] == ranked[0][0] and (
            ("违反本" in text[ranked[1][1]:ranked[1][2]]) == ("违反本" in text[ranked[0][1]:ranked[0][2]])):
        return None
    return ranked[0][1], ranked[0][2]


def _hits(terms: list[str], segment: str) -> int:
    """How much of the behaviour a segment names: a whole term counts its length, else each of its character pairs
    found (随地吐痰 in 不随地便溺、吐痰: 随地, 吐痰)."""
    total = 0
    for t in terms:
        if t in segment:
            total += len(t)
        else:
            total += sum(1 for i in range(len(t) - 1) if t[i:i + 2] in segment)
    return total


def _amount(text: str, start: int, end: int, party: str | None) -> re.Match[str] | None:
    found = list(_FINE_RANGE.finditer(text, start, end))
    if party is not None:
        other = "单位" if party == "个人" else "个人"
        own = [m for m in found if text.rfind(party, start, m.start()) > text.rfind(other, start, m.start())]
        return own[0] if own else None
    return found[0] if found else None


def find_fine(question: str, doc: StoredDocument, terms: list[str]) -> Fact | None:
    """The fine for the behaviour the question names: a clause that names it and its fine (…随地吐痰的，处五十元
    罚款), else the fine clause citing the article (and item) that names the behaviour (违反本条例第十条第三项规定…).
    None unless exactly one clause matches best: a fine from another clause must not be given."""
    if not terms or not ASKS_FINE.search(question):
        return None
    text = doc.text
    party = next((p for p in ("个人", "单位") if p in question), None)
    segs = _segments(text)
    hits = {(s, e): _hits(terms, text[s:e]) for s, e in segs}
    direct = [(h, s, e) for (s, e), h in hits.items() if h and "罚" in text[s:e] and _FINE_RANGE.search(text, s, e)]
    found = _unique_best(direct, text)
    if found is None and not direct:
        behaviour = _unique_best([(h, s, e) for (s, e), h in hits.items() if h], text)
        if behaviour is None:
            return None
        articles = [m for m in _ARTICLE_AT.finditer(text, 0, behaviour[0] + 1)]
        if not articles:
            return None
        article = articles[-1]
        items = [m for m in _ITEM_AT.finditer(text, article.start(), behaviour[0] + 8) if m.start() <= behaviour[0]]
        ref = f"第{article.group(1)}条"
        citing = [(s, e) for s, e in segs if ref in text[s:e] and "违反本" in text[s:e]
                  and "罚" in text[s:e] and _FINE_RANGE.search(text, s, e) and not (s <= behaviour[0] < e)]
        if items:
            item_ref = f"第{items[-1].group(1)}项"
            narrowed = [(s, e) for s, e in citing if item_ref in text[s:e]]
            citing = narrowed or [(s, e) for s, e in citing if "项" not in text[s:e]]
        if len(citing) != 1:
            return None
        found = citing[0]
    if found is None:
        return None
    m = _amount(text, found[0], found[1], party)
    if m is None:
        return None
    start, end = _sentence(text, found[0])
    return Fact(doc.doc_id, "fine", m.group(0), min(start, found[0]), max(end, m.end()))
