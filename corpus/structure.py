"""The structure of a regulation read from its text: 编/分编/章/节 divisions and 第X条 articles.

Word styles are not trusted (an extractor may give `#` heading lines or plain paragraphs): a line is a division
when it is a short `第X章 名称` line, an article start when it begins `第X条` followed by a space or the article's
text and its number continues the sequence (so "第三十条规定的……" at a paragraph start, a cross-reference, is
not one). A document is a regulation only when at least MIN_ARTICLES articles 第一条, 第二条, … start lines in
order (from 第二条 or 第三条 when the first labels were lost: Word numbering an extractor did not render). Division lines before the first article's own heading chain (the 目录, table of contents) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MIN_ARTICLES = 3
MAX_ARTICLE_GAP = 3  # an extraction may lose an article or two; a larger jump is a reference, not the next article
MAX_DIVISION_CHARS = 40
MAX_UNLABELLED_LINES = 12  # paragraphs of first articles whose labels were lost, looked through for their chapter

_NUM = r"[零〇一二两三四五六七八九十百千\d]+"
_ARTICLE_START = re.compile(rf"^第({_NUM})条(?:之({_NUM}))?")
# after 第X条 a reference goes on with these ("第三十条规定的", "第十条第二款", "第五条之一的", "第七条、第八条")
_REFERENCE_NEXT = frozenset("规的第款项中至、，,和或及所之以（(")
_DIVISION = re.compile(rf"^第({_NUM})(分编|编|章|节)(?:[\s\u3000]*(.*))?$")
_DIVISION_RANK = {"编": 0, "分编": 1, "章": 2, "节": 3}
_SENTENCE_END = re.compile(r"[。；;！？!?]$")
_TOC_TITLE = re.compile(r"^目[\s\u3000]*录$")
_TOC_FILLER = re.compile(r"[.．…·\-—\s\d]+$")  # dot leaders and page numbers at a TOC line's end
_ARTICLE_LABEL = re.compile(rf"^第{_NUM}条(?:之{_NUM})?$")
_ARTICLE_RANGE = re.compile(rf"^(第{_NUM}条(?:之{_NUM})?)(?:至|、)(第{_NUM}条(?:之{_NUM})?)$")
_LINE_ARTICLE = re.compile(rf"(?m)^第{_NUM}条(?:之{_NUM})?")

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}


def cn_int(text: str) -> int | None:
    """一 → 1, 十二 → 12, 四十八 → 48, 一百零五 → 105, 二〇 → 20, "48" → 48; None when it is no number."""
    if text.isdigit():
        return int(text)
    if any(c not in _DIGITS and c not in _UNITS for c in text) or not text:
        return None
    if not any(c in _UNITS for c in text):  # 二〇二一 style: digit by digit
        return int("".join(str(_DIGITS[c]) for c in text))
    total, num = 0, 0
    for c in text:
        if c in _DIGITS:
            num = _DIGITS[c]
        else:
            total += (num or 1) * _UNITS[c]
            num = 0
    return total + num


_CN = "零一二三四五六七八九"


def cn_label(n: int) -> str:
    """48 → 四十八 (the way regulations number their articles), for 1..9999."""
    if n < 10:
        return _CN[n]
    out = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = (n // value) % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += ("" if (d == 1 and unit == "十" and not out) else _CN[d]) + unit
    return out


def article_label(n: int, sub: int | None = None) -> str:
    return f"第{cn_label(n)}条" + (f"之{cn_label(sub)}" if sub else "")


@dataclass(frozen=True)
class ArticleStart:
    number: int
    sub: int | None  # 第十条之一 → 1
    label: str  # as written: 第四十八条


def article_start(line: str) -> ArticleStart | None:
    """The article a line starts, read from its first characters, or None (a reference or no 第X条 at all)."""
    m = _ARTICLE_START.match(line)
    if m is None:
        return None
    rest = line[m.end():]
    if rest and rest[0] in _REFERENCE_NEXT:
        return None
    n = cn_int(m.group(1))
    sub = cn_int(m.group(2)) if m.group(2) else None
    if n is None or n == 0:
        return None
    return ArticleStart(n, sub, m.group(0))


@dataclass(frozen=True)
class Division:
    kind: str  # 编 | 分编 | 章 | 节
    label: str  # "第五章 法律责任"


def division(line: str) -> Division | None:
    text = " ".join(line.split())
    if len(text) > MAX_DIVISION_CHARS or _SENTENCE_END.search(text):
        return None
    m = _DIVISION.match(text)
    if m is None or cn_int(m.group(1)) is None:
        return None
    name = re.sub(r"\s+", "", _TOC_FILLER.sub("", m.group(3) or "")) if m.group(3) else ""  # "总　则" → 总则
    head = f"第{m.group(1)}{m.group(2)}"
    return Division(m.group(2), f"{head} {name}" if name else head)


@dataclass(frozen=True)
class Role:
    """What a line of a regulation is: "toc" (a table-of-contents line, to drop), "division" (a 编/章/节 heading)
    or "text" (a paragraph of an article, or under a division before its first article)."""

    kind: str
    path: tuple[str, ...] = ()  # the divisions above and the line's own division or article
    article: str = ""  # the article a "text" line belongs to
    level: int = 0  # a division's depth: 编 0, 分编 1, 章 2, 节 3


@dataclass(frozen=True)
class Structure:
    roles: tuple[Role | None, ...]  # per line; None for the lines before the structure (title, meetings, cover)
    articles: int


def _article_starts(lines: Sequence[str]) -> dict[int, ArticleStart]:
    """The lines that start articles 第一条, 第二条, … in order (a later 第X条 out of order is a reference)."""
    starts: dict[int, ArticleStart] = {}
    last = (0, 0)
    for i, line in enumerate(lines):
        a = article_start(line)
        if a is None:
            continue
        key = (a.number, a.sub or 0)
        # the first label may be lost (Word numbering the extractor did not render): 第二条 can open the sequence
        if (not starts and a.number <= MAX_ARTICLE_GAP and not a.sub) or (
                starts and key > last and a.number - last[0] <= MAX_ARTICLE_GAP):
            starts[i] = a
            last = key
    return starts


def _is_toc_title(line: str) -> bool:
    return bool(_TOC_TITLE.match(" ".join(line.split())))


def find_structure(lines: Sequence[str]) -> Structure | None:
    """The regulation structure of a document's lines, or None when it is not clearly a regulation."""
    starts = _article_starts(lines)
    if len(starts) < MIN_ARTICLES:
        return None
    chain = min(starts)  # the first article's heading chain (第一编, 第一章, 第一节: one of each rank) starts here
    if starts[chain].number > 1:  # the unlabelled first articles lie between it and its chapter
        back = next((j for j in range(chain - 1, max(-1, chain - 1 - MAX_UNLABELLED_LINES), -1)
                     if division(lines[j]) is not None), None)
        chain = back + 1 if back is not None else chain
    rank = len(_DIVISION_RANK)
    while chain > 0 and (d := division(lines[chain - 1])) is not None and _DIVISION_RANK[d.kind] < rank:
        rank = _DIVISION_RANK[d.kind]
        chain -= 1
    roles: list[Role | None] = [None] * len(lines)
    toc_from = next((i for i in range(chain) if _is_toc_title(lines[i])), None)
    for i in range(chain):
        short = len(lines[i]) <= MAX_DIVISION_CHARS and not _SENTENCE_END.search(lines[i])
        # a real division has articles under it: one before the first article's chain only lists them
        if division(lines[i]) is not None or (toc_from is not None and i >= toc_from and short):
            roles[i] = Role("toc")
    divisions: list[tuple[int, str]] = []
    article = ""
    for i in range(chain, len(lines)):
        d = division(lines[i])
        if d is not None:
            rank = _DIVISION_RANK[d.kind]
            divisions = [(r, t) for r, t in divisions if r < rank] + [(rank, d.label)]
            article = ""
            roles[i] = Role("division", tuple(t for _, t in divisions), level=rank)
            continue
        if i in starts:
            article = starts[i].label
        head = tuple(t for _, t in divisions)
        roles[i] = Role("text", (*head, article) if article else head, article)
    return Structure(tuple(roles), len(starts))


# --- article labels in section paths -----------------------------------------------------------------------------


def is_article_label(label: str) -> bool:
    return bool(_ARTICLE_LABEL.match(label))


def article_range(first: str, last: str) -> str:
    """The label of a chunk holding several whole articles: 第三条、第四条 or 第三条至第五条."""
    if first == last:
        return first
    a, b = article_start(first), article_start(last)
    adjacent = a is not None and b is not None and b.number - a.number <= 1 and not b.sub
    return f"{first}、{last}" if adjacent else f"{first}至{last}"


def article_at(section: Sequence[str], text: str, offset: int) -> str:
    """The article of the character at `offset` of a chunk's text with this section path ("" when the chunk is no
    article): the path's own article, or for a chunk of several articles the last one starting at or before."""
    if not section:
        return ""
    last = section[-1]
    if is_article_label(last):
        return last
    m = _ARTICLE_RANGE.match(last)
    if m is None:
        return ""
    found = m.group(1)
    for hit in _LINE_ARTICLE.finditer(text):
        if hit.start() > offset:
            break
        if article_start(text[hit.start():]) is not None:
            found = hit.group(0)
    return found


def articles_in(section: Sequence[str]) -> tuple[int, int] | None:
    """The article numbers a chunk's section path covers (first, last), or None when it is no article."""
    if not section:
        return None
    last = section[-1]
    m = _ARTICLE_RANGE.match(last)
    labels = (m.group(1), m.group(2)) if m else (last, last) if is_article_label(last) else None
    if labels is None:
        return None
    a, b = article_start(labels[0]), article_start(labels[1])
    return (a.number, b.number) if a and b else None
