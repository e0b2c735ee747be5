"""What the reader cannot judge: whether the evidence holds what the question pins down (its year, period,
batch, quoted names, rate words such as 日均, the measure word a count is asked in, and places), and whether the
passage says the fact is not known yet (另行通知)."""

from __future__ import annotations

import re

from index.gazetteer import load_gazetteer
from index.store import StoredDocument
from service.answering.candidates import Candidate, clause_bounds
from service.answering.question import MEASURES, YEAR_RANGE_RE, QuestionInfo, year_range

# a year the passage's facts are about, not one they are compared with ("比2023年增加53个村")
_TOPIC_YEAR_RE = re.compile(r"(?<![比较])((?:19|20)\d{2})年(?!以来)")
_NOT_YET_RE = re.compile(r"另行通知|另行公布|尚未确定|尚未公布|暂未|待定")
# the measure word right after a span's last number (168个 → 个, 21万多名 → 名); 名, 人 and 位 count the same
_SPAN_UNIT_RE = re.compile(rf"[\d零一二两三四五六七八九十百千]+(?:\.\d+)?[万亿千百]*[多余]?({MEASURES})")
_SAME_UNIT = {"人": "名", "位": "名"}
_COUNTED_REACH = 5  # characters after a count where the thing it counts is named


def _year_mentions(text: str) -> list[set[str]]:
    """The years `text` dates facts with, in order: 2019年 is one, a period (1948-1956年, (1958-1964),
    2003/2004马季) is all of its years."""
    found: list[tuple[int, set[str]]] = []
    taken: list[tuple[int, int]] = []
    for m in YEAR_RANGE_RE.finditer(text):
        span = year_range(m)
        if span is not None and not (m.start() > 0 and text[m.start() - 1] in "比较"):
            found.append((m.start(), {str(y) for y in range(span[0], span[1] + 1)}))
            taken.append(m.span())
    for m in _TOPIC_YEAR_RE.finditer(text):
        if not any(a <= m.start(1) < b for a, b in taken):
            found.append((m.start(), {m.group(1)}))
    return [years for _pos, years in sorted(found, key=lambda f: f[0])]


def _year_supported(years: set[str], cand: Candidate) -> bool:
    """The sentence's facts are from one of `years`: it says so, or the passage's last year mention before it
    does, or (nothing dated) the article's own date does."""
    p = cand.passage
    stated = _year_mentions(cand.sentence)
    if stated:
        return any(years & m for m in stated)
    if any(y in p.title or any(y in s for s in p.section) for y in years):
        return True
    before = _year_mentions(p.text[: cand.start - p.start])
    if before:
        return bool(years & before[-1])
    if re.search(r"(?:19|20)\d{2}年", p.text):
        return False  # the passage dates its facts, and not with these years
    if not p.date[:4].isdigit():
        return False
    # an undated fact in a dated article ("今年"); an article from January or February may look back on
    # the year just ended (the 2025-01 review of 2024)
    doc_year = int(p.date[:4])
    early = len(p.date) >= 7 and p.date[5:7].isdigit() and int(p.date[5:7]) <= 2
    return any(int(y) == doc_year or (early and int(y) == doc_year - 1) for y in years)


def violation(info: QuestionInfo, cand: Candidate, doc: StoredDocument | None) -> str | None:
    """What the question pins down that this candidate's evidence lacks (in Chinese), or None."""
    return topic_violation(info, cand, doc) or _answer_violation(info, cand)


def topic_violation(info: QuestionInfo, cand: Candidate, doc: StoredDocument | None) -> str | None:
    """What the evidence is about that the question is not: another year, period, named thing, stated quantity
    or place. Unlike a count in another measure, this says the passage's facts are not the ones asked for."""
    p = cand.passage
    headings = f"{p.title} {' '.join(p.section)} {p.date} {doc.title if doc else ''} {doc.region if doc else ''}"
    for y in info.compared:  # 比2023年增加了多少: the sentence must compare with that year
        if y not in cand.sentence:
            return f"找到的段落没有与{y}年比较"
    for y in info.years:
        if not _year_supported({y}, cand):
            return f"找到的段落没有提到{y}年的情况"
    for first, last in info.year_ranges:
        if not _year_supported({str(y) for y in range(first, last + 1)}, cand):
            return f"找到的段落没有提到{first}—{last}年间的情况"
    for stated in info.stated:  # its number as written (3200, 3.5亿); the measure may differ (11名 … 11位)
        number = re.escape(re.sub(r"[^\d.万亿千百]+$", "", stated))
        if not re.search(rf"(?<![\d.]){number}(?![\d.])", f"{p.text} {headings}"):
            return f"找到的段落没有提到“{stated}”"
    for term in (*info.periods, *info.ordinals, *info.quoted):
        # a document's short title (《实施意见》) may be named anywhere in the article the sentence is from
        scope = doc.text if doc is not None and f"《{term}》" in info.text else p.text
        # 首 says 第一 (第一批 = 首批, 第一次 = 首次)
        also = "首" + term[2:] if term.startswith("第一") and term in info.ordinals else term
        if not any(t in scope or t in headings for t in (term, also)):
            return f"找到的段落没有提到“{term}”"
    cities = load_gazetteer().cities
    missing = []
    for pl in info.places:
        # a city named only in passing elsewhere in the passage is not where the sentence's facts are
        where = f"{cand.sentence} {headings}" if pl in cities else f"{p.text} {headings}"
        if pl not in where:
            missing.append(pl)
    # a question naming several places (compare 江海区 and 江城区) needs only one of them per sentence
    if missing and (len(missing) == len(info.places) or not info.any_place):
        return f"找到的段落没有关于“{missing[0]}”的内容"
    return None


def _answer_violation(info: QuestionInfo, cand: Candidate) -> str | None:
    """What this span lacks as an answer: the rate asked for (日均), a count of the thing asked in its measure,
    the post asked about."""
    p = cand.passage
    for group in info.rates:
        if not any(w in cand.sentence for w in group):
            return f"找到的段落没有提到“{group[0]}”的数字"
    if info.answer_type == "number" and info.unit is not None:
        # the count must be of what is asked (党员, not 志愿者 in the next words) and in its measure (名, not 个)
        begin, end = clause_bounds(cand)
        clause = p.text[begin:end]
        found = _SPAN_UNIT_RE.findall(cand.span)
        same_unit = bool(found) and _SAME_UNIT.get(found[-1], found[-1]) == _SAME_UNIT.get(info.unit, info.unit)
        # a word or its head (the last two characters: 共产党员 → 党员) names the thing counted; or, for a two-character
        # word, the count is in the asked measure and the words right after it share a character with it (几名队员 …
        # 五名球员, 几场赛事 … 两场分组赛). A longer word is specific (专职网格员): 428名党员义工 shares only 员
        after = p.text[cand.span_end - p.start: min(end, cand.span_end - p.start + _COUNTED_REACH)]
        if info.counted and not any(w in clause or w[-2:] in clause
                                    or (same_unit and len(w) <= 2 and any(ch in after for ch in w[-2:]))
                                    for w in info.counted):
            return f"找到的段落没有给出{info.counted[0]}的数字"
        if found and not same_unit:
            return f"找到的段落没有以“{info.unit}”计的数字"
    party = _party_violation(info, cand)
    if party is not None:
        return party
    if info.role is not None and info.role not in cand.sentence:
        # the name beside another post (市委书记陈岸明 for 组织部部长是谁) does not answer it
        return f"找到的段落没有说明谁是{info.role}"
    return None


def not_yet(info: QuestionInfo, cand: Candidate) -> bool:
    """The answer's sentence says the asked-for fact is not known yet ('具体恢复运营时间另行通知')."""
    for clause in re.split(r"[，。；,;]", cand.sentence):
        if _NOT_YET_RE.search(clause) and any(w in clause for w in info.keywords):
            return True
    return False


_PARTIES = ("单位", "个人")


def _party_violation(info: QuestionInfo, cand: Candidate) -> str | None:
    """A fine asked for one party (对个人 / 对单位) must not be the other's: the party named last before the span
    in its sentence is the one it applies to (对个人处五十元罚款，对单位处五百元罚款)."""
    asked = [p for p in _PARTIES if p in info.text]
    if len(asked) != 1 or "罚" not in cand.sentence:
        return None
    p = cand.passage
    sentence_start = cand.start - p.start
    before = p.text[sentence_start: cand.span_start - p.start]
    last = max(_PARTIES, key=before.rfind)
    if before.rfind(last) >= 0 and last != asked[0]:
        return f"找到的段落中这一罚款是对{last}的，不是对{asked[0]}的"
    return None
