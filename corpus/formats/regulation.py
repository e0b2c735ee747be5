"""A local regulation (地方性法规) knows what it is: its name, the meetings that passed, approved and revised it,
when it was published and takes effect, who issued it, and the place it is of — all read from its text.

A regulation opens with its name and a note in brackets:

    江门市文明行为促进条例
    （2020年10月29日江门市第十五届人民代表大会常务委员会第三十九次会议通过　2021年1月22日广东省第十三届
    人民代表大会常务委员会第二十八次会议批准）

sometimes after a cover (广东省人大常委会文件, a 公告 with its number, a 决议 approving it, 附件1, 目录), and
usually ends with `本条例自2021年5月1日起施行`. The file's own properties (title, author) are never used: they
hold `No:0000001`, `Microsoft Office User` or the cover's first line.

Front-matter keys (flat strings, dates ISO): doc_type (`regulation`), title, adopted_date / adopted_by,
approved_date / approved_by, revised_date / revised_by (the latest revision: it defines the version),
revisions (every revision, `2019-01-19 修正；2020-03-31 修正`), published_date (a 公布 stated in the text),
effective_date, issuer, doc_number (a 公告's number), place, province, version (the version's year).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from corpus.formats.policy import iso_date

REGIONS_FILE = Path(__file__).resolve().parent / "data" / "regions.yaml"
DOC_TYPE = "regulation"
# what the front matter may hold for a regulation, in the order it is written
KEYS = ("doc_type", "adopted_date", "adopted_by", "approved_date", "approved_by", "revised_date", "revised_by",
        "revisions", "published_date", "effective_date", "issuer", "doc_number", "place", "province", "version")
DATE_KEYS = ("adopted_date", "approved_date", "revised_date", "published_date", "effective_date")
# policy-notice fields read for any text, replaced for a regulation by what its note says (a signature date on a
# cover is not its 成文日期, the first `自…起施行` in the text need not be its own)
NOT_FOR_REGULATIONS = ("written_date", "validity", "doc_number", "issuer", "published_date", "effective_date")

_SUFFIX = r"(?:条例|规定|办法|细则|规则)"
_CJK = r"\u4e00-\u9fff"
_TITLE = re.compile(rf"^[{_CJK}（）()、·]{{2,60}}{_SUFFIX}$")
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\ufeff]")
_SPACE = re.compile(r"\s+")
_DATE = re.compile(r"(?:19|20)\d{2}年\d{1,2}月\d{1,2}日|[〇○零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,3}月"
                   r"[一二三四五六七八九十]{1,3}日")
_NUM = r"[一二三四五六七八九十百零〇\d]+"
_MEETING = re.compile(rf"([{_CJK}]{{2,24}}?)(第?{_NUM}届)?(人民代表大会常务委员会?|人民代表大会常委会|人民代表大会|人大常委会)"
                      rf"(?:第{_NUM}次)?会议")
_ACTIONS = re.compile(r"通过|批准|公布|施行|实施|修订|修正|修改|制定")
_FUNCTION_WORDS = re.compile(r"^(?:[（(]|已由|已经|并经|经由|经|由|于|根据|在|是|的|，|、)+")
_STOP = re.compile(r"^(?:目录|第[一二三四五六七八九十]+[章条节]|总则|1\.)")
_EFFECTIVE = re.compile(r"(本(?:条例|规定|办法|细则|规则))?\s*自\s*((?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
                        r"|[〇○零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,3}月[一二三四五六七八九十]{1,3}日"
                        r"|公布之日|发布之日)\s*起?\s*(?:施行|实施|生效)")
_ANNOUNCEMENT_NO = re.compile(r"公\s*告\s*[（(]?\s*第\s*(\d{1,4})\s*号")
_HEAD_LINES = 120  # a cover is at most this many lines before the regulation's own name


@dataclass(frozen=True)
class Event:
    kind: str  # adopted | approved | revised | published | effective
    date: str  # ISO
    by: str  # the meeting as written ("江门市第十五届人民代表大会常务委员会第三十九次会议"), or ""
    word: str  # the word the text uses (通过, 批准, 修正, …; for a revision the kind: 修正, 第二次修订, 修改)
    group: int = 0  # revisions: events of the same revision share a number


@cache
def regions() -> tuple[frozenset[str], dict[str, str]]:
    data = yaml.safe_load(REGIONS_FILE.read_text(encoding="utf-8"))
    return frozenset(data["provinces"]), dict(data["special_zones"])


def _lines(text: str) -> list[str]:
    """The head's non-empty lines, Markdown heading marks, zero-width characters and inner spaces removed."""
    out = []
    for raw in text.splitlines()[:2000]:
        line = _SPACE.sub("", _ZERO_WIDTH.sub("", raw)).lstrip("#")
        if line:
            out.append(line)
    return out


def _is_title(line: str) -> bool:
    return bool(_TITLE.match(line)) and not line.startswith("关于")


def _note_after(lines: list[str], i: int) -> str:
    """The bracketed note after the name on line i (the passing/approving meetings), as one string."""
    joined = "".join(lines[i + 1:i + 12])
    if joined[:1] in "（(":
        depth = 0
        for k, ch in enumerate(joined):
            depth += ch in "（("
            depth -= ch in "）)"
            if depth == 0:
                return joined[:k + 1]
        return joined[:800]
    out: list[str] = []
    for line in lines[i + 1:i + 12]:  # a note without brackets: its lines up to 目录 / 第一章 / 第一条
        if _STOP.match(line) or (not _DATE.search(line) and not out):
            break
        out.append(line)
    return "".join(out)[:800]


def _is_note(note: str) -> bool:
    return bool(_MEETING.search(note)) and bool(re.search(r"通过|批准|制定", note))


def find_title(text: str) -> tuple[str, int] | None:
    """The regulation's name and its line (in `_lines`): the first name-like line (a name wrapped over two lines
    joined) followed by its note of the 人民代表大会 meetings that passed it. Cover lines (公告, 文件, 附件1, a
    决议 naming 《…条例》) are passed over; a text without such a note is no regulation (None)."""
    lines = _lines(text)
    head = lines[:_HEAD_LINES]
    skip = -1
    for i, line in enumerate(head):
        if i == skip:
            continue
        nxt = head[i + 1] if i + 1 < len(head) else ""
        if not _is_title(line) and len(nxt) <= 8 and _is_title(line + nxt):
            name, at = line + nxt, i + 1
            skip = i + 1
        elif _is_title(line):
            name, at = line, i
        else:
            continue
        if _is_note(_note_after(lines, at)):
            return name, at
    return None


def _meeting_place(meeting: str) -> str:
    m = _MEETING.search(meeting)
    return _FUNCTION_WORDS.sub("", m.group(1)) if m else ""


def _clean_meeting(m: re.Match[str]) -> str:
    return _FUNCTION_WORDS.sub("", m.group(0))


def parse_events(note: str) -> list[Event]:
    """The dated events of a note, in the order written. A `根据 …修正` clause is one revision (`group`), whatever
    meetings passed and approved it; a 批准 after the first one approves the latest revision."""
    dates = list(_DATE.finditer(note))
    events: list[Event] = []
    in_revision = False
    group = 0
    prev_end = 0
    for k, d in enumerate(dates):
        iso = iso_date(d.group(0))
        seg_end = dates[k + 1].start() if k + 1 < len(dates) else len(note)
        seg = note[d.end():seg_end]
        before = note[prev_end:d.start()]
        action = _ACTIONS.search(seg)
        prev_end = d.end() + action.end() if action else d.end()
        if "根据" in before:
            in_revision, group = True, group + 1
        if iso is None or action is None:
            continue
        word = action.group(0)
        meeting = _MEETING.search(seg[:action.start()])
        if meeting is None and word in ("通过", "批准"):  # "…会议于2019年12月26日通过"
            found = list(_MEETING.finditer(before))
            meeting = found[-1] if found else None
        by = _clean_meeting(meeting) if meeting else ""
        kinds = {e.kind for e in events}
        if in_revision or word in ("修订", "修正", "修改"):
            if not in_revision:
                group += 1
            closing = re.search(r"(?:第[一二三四五六七八九十]+次)?(?:修正|修订)(?!案)", seg)
            word = closing.group(0) if closing else word
            in_revision = in_revision and closing is None  # "…的决定》修正" closes the clause
            events.append(Event("revised", iso, by, word, group))
            continue
        if word in ("通过", "制定"):
            adopted = next((e for e in events if e.kind == "adopted"), None)
            if adopted is None:
                kind = "adopted"
            elif "approved" not in kinds and _meeting_place(by) != _meeting_place(adopted.by):
                kind = "approved"  # "…省…会议通过" written for the approval
            else:
                kind = "revised"
        elif word == "批准":
            kind = "approved" if "approved" not in kinds else "revised"
        elif word == "公布":
            if "施行" in seg[action.end():action.end() + 3]:  # 于2021年4月6日公布施行
                events.append(Event("published", iso, by, word))
                kind, word = "effective", "公布施行"
            else:
                kind = "published"
        else:  # 施行 / 实施: "自2017年1月1日起施行"
            kind = "effective"
        if kind == "revised":
            group = max(group, 1)
            previous = [e for e in events if e.kind == "revised"]
            word = previous[-1].word if previous else word  # the approval of the revision just named
        events.append(Event(kind, iso, by, word, group if kind == "revised" else 0))
    return events


def _first(events: list[Event], kind: str) -> Event:
    return next(e for e in events if e.kind == kind)


def _last(events: list[Event], kind: str) -> Event | None:
    found = [e for e in events if e.kind == kind]
    return found[-1] if found else None


def _issuer(meeting: str) -> str:
    """江门市第十五届人民代表大会常务委员会第三十九次会议 → 江门市人民代表大会常务委员会."""
    m = _MEETING.search(meeting)
    if not m:
        return ""
    body = "人民代表大会" if m.group(3) == "人民代表大会" else "人民代表大会常务委员会"
    return _FUNCTION_WORDS.sub("", m.group(1)) + body


_PLACE = re.compile(r"^(.{2,12}?(?:自治区|自治州|自治县|特别行政区|省|市|盟|地区|县))")


def find_place(title: str, adopted_by: str) -> str:
    """The city or province a regulation is of: its name's opening place, which the adopting body confirms
    (珠海经济特区… passed by 珠海市… → 珠海市)."""
    body = _meeting_place(adopted_by)
    if body and title.startswith(body):
        return body
    _, zones = regions()
    for city in zones:
        if title.startswith(city + "经济特区"):
            return city + "市"
    m = _PLACE.match(title)
    if m:
        return m.group(1)
    if body and body[:2] == title[:2]:
        return body
    return ""


def find_province(place: str, events: list[Event]) -> str:
    provinces, zones = regions()
    if place in provinces:
        return place
    for kind in ("approved", "revised"):
        for e in events:
            if e.kind == kind and (p := _meeting_place(e.by)) in provinces:
                return p
    for city, province in zones.items():
        if place.startswith(city):
            return province
    return ""


def _announcement(cover: list[str]) -> dict[str, str]:
    """A 公告 before the regulation: its number, issuer (the line before the date that closes it) and date."""
    text = "\n".join(cover)
    m = _ANNOUNCEMENT_NO.search(text)
    if not m or "公布" not in text[m.end():]:
        return {}
    out = {"doc_number": f"公告第{m.group(1)}号"}
    rest = cover[text[:m.end()].count("\n"):]
    for k, line in enumerate(rest):
        d = _DATE.fullmatch(line)
        if d and iso_date(line):
            out["published_date"] = iso_date(line) or ""
            if k and re.search(r"人民代表大会常务委员会|人大常委会$", rest[k - 1]):
                out["issuer"] = rest[k - 1]
            break
    return out


def find_regulation_metadata(text: str) -> dict[str, str]:
    """The regulation's front-matter fields (see the module docstring); {} when the text is no regulation."""
    found = find_title(text)
    if found is None:
        return {}
    title, at = found
    lines = _lines(text)
    note = _note_after(lines, at)
    events = parse_events(note)
    out: dict[str, str] = {"doc_type": DOC_TYPE, "title": title}
    adopted = _last(events, "adopted")
    if adopted is None:  # "（抚州市第四届人民代表大会常务委员会第八次会议通过 2018年4月2日…批准）"
        m = _MEETING.search(note)
        if m and note.find("通过", m.end()) == m.end():
            out["adopted_by"] = _clean_meeting(m)
    for kind in ("adopted", "approved"):
        e = next((e for e in events if e.kind == kind), None)
        if e is not None:
            out[f"{kind}_date"] = e.date
            if e.by:
                out[f"{kind}_by"] = e.by
    revisions = [e for e in events if e.kind == "revised"]
    if revisions:
        last = max(revisions, key=lambda e: e.date)
        out["revised_date"] = last.date
        if last.by:
            out["revised_by"] = last.by
        groups: dict[int, Event] = {}
        for e in revisions:  # one entry a revision: its last date
            groups[e.group] = e if e.group not in groups or e.date >= groups[e.group].date else groups[e.group]
        out["revisions"] = "；".join(f"{e.date} {e.word}" for e in sorted(groups.values(), key=lambda e: e.date))
    cover = _announcement(lines[:at])
    published = _last(events, "published")
    if published is not None:
        out["published_date"] = published.date
    elif cover.get("published_date"):
        out["published_date"] = cover["published_date"]
    if cover.get("doc_number"):
        out["doc_number"] = cover["doc_number"]
    out.update(_effective(text, events, out))
    issuer = cover.get("issuer") or _issuer(out.get("adopted_by", ""))
    if issuer:
        out["issuer"] = issuer
    place = find_place(title, out.get("adopted_by", ""))
    if place:
        out["place"] = place
    province = find_province(place, events)
    if province:
        out["province"] = province
    version = version_date(out)
    if version:
        out["version"] = version[:4]
    return out


def _effective(text: str, events: list[Event], found: dict[str, str]) -> dict[str, str]:
    """The note's 施行 when it follows the latest revision, else the regulation's own last `本条例自…起施行`,
    else any such statement. `自公布之日起施行` is the 公布 date (nothing when that is not stated)."""
    note_eff = [k for k, e in enumerate(events) if e.kind == "effective"]
    last_rev = max((k for k, e in enumerate(events) if e.kind == "revised"), default=-1)
    if note_eff and note_eff[-1] > last_rev:
        return {"effective_date": events[note_eff[-1]].date}
    stated = list(_EFFECTIVE.finditer(text))
    own = [m for m in stated if m.group(1)] or stated
    if own:
        when = own[-1].group(2)
        if when in ("公布之日", "发布之日"):
            return {"effective_date": found["published_date"]} if found.get("published_date") else {}
        iso = iso_date(_SPACE.sub("", when))
        return {"effective_date": iso} if iso else {}
    if note_eff:
        return {"effective_date": events[note_eff[-1]].date}
    return {}


def version_date(meta: Any) -> str:
    """The date that defines a regulation's version: its latest revision, else its approval, else its passing."""
    dates = [str(meta.get(k) or "") for k in ("revised_date", "approved_date", "adopted_date")]
    return max((d for d in dates if d), default="")


def cited_date(meta: Any) -> tuple[str | None, str]:
    """The date a regulation is cited with and the evidence: its 公布 date when it belongs to this version, else
    the date the version was passed or approved. (None, "") when the text gives none."""
    version = version_date(meta)
    published = str(meta.get("published_date") or "")
    if published and published >= version:
        return published, f"公布日期 {published}"
    if version:
        label = {str(meta.get("revised_date")): "修改日期", str(meta.get("approved_date")): "批准日期"}.get(
            version, "通过日期")
        return version, f"{label} {version}"
    return None, ""
