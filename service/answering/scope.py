"""Which documents a question may be answered from, when the corpus holds near-identical regulations of many
places and several versions of some: the named place's regulations only (never another city's clause), the
current version unless the question asks about an older one's time, the operator's default place when the
question names none.

A regulation is a document whose metadata says `doc_type: regulation` (corpus/formats/regulation.py reads it from
the text); its place is its `place` field, else the place its title starts with; its versions are grouped by
corpus/versions.py. Documents that are not regulations (news articles) are never restricted here: the answering
filters judge them.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corpus.versions import REGULATION, version_order, version_status
from index.gazetteer import Division, load_divisions
from index.store import LoadedIndex, StoredDocument

_SPECIAL_ZONE = "经济特区"
# words that make a question one about a regulation (asked of a place with no regulation here: refused so)
_ASKS_REGULATION = re.compile(
    r"条例|规定|办法|法规|罚款|罚多少|处罚|罚钱|施行|生效|实施|执行|违反|主管部门|负责|第[一二三四五六七八九十百零〇\d]+条"
    r"|文明行为|不文明|鼓励|禁止|适用")
_OLDER = re.compile(r"修订前|修改前|修正前|旧版|老版|原来的?(?:条例|规定)|之前的版本|上一版|前一版")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
_VERSION_ASKED = re.compile(r"((?:19|20)\d{2})\s*年(?:版|的版本|修订|修正|制定|颁布|通过|出台|的(?:条例|规定|办法))")


@dataclass(frozen=True)
class Regulation:
    doc_id: str
    title: str
    place: str  # 江门市 ("" when unknown)
    province: str  # 广东省 ("" when unknown or itself a province)
    name: str  # the title without its place: 文明行为促进条例
    version: str  # ISO date that made the version (its latest revision, approval or passing), "" unknown
    effective: str  # ISO 施行 date, "" unknown
    year: str  # the version's year as stored ("" unknown)
    group: str  # corpus/versions.py's group: the versions of one regulation share it


@dataclass(frozen=True)
class RegulationView:
    """The regulations of one index generation, with their version groups."""

    regulations: Mapping[str, Regulation]
    current: frozenset[str]  # doc ids of the version in force of each group (every ungrouped one too)
    superseded_by: Mapping[str, str]  # older version → the current one

    def of_place(self, division: Division) -> list[Regulation]:
        names = {division.name, division.short}
        return [r for r in self.regulations.values() if r.place in names]


@dataclass(frozen=True)
class Scope:
    """What a question may be answered from. `denied` regulations are left out of retrieval."""

    denied: frozenset[str] = frozenset()
    places: tuple[str, ...] = ()  # the places the answer is restricted to (named, or the default place)
    default_place: bool = False  # restricted to the operator's default place (the question named none)
    consumed_years: tuple[str, ...] = ()  # years that chose a version (not facts to find in the passage)
    refusal: str | None = None  # no_regulation_for_place | no_such_version
    refusal_text: str | None = None  # the refusal in Chinese, naming the place / version
    related: tuple[str, ...] = ()  # doc ids worth pointing to after a refusal (the province's regulation)
    versions: tuple[str, ...] = ()  # notes on which version answers ("现行版本：2020年")

    def to_dict(self) -> dict[str, object]:
        return {"places": list(self.places), "default_place": self.default_place,
                "versions": list(self.versions), "excluded_documents": len(self.denied),
                "refusal": self.refusal}


_VIEWS: dict[Path, RegulationView] = {}
_VIEWS_LOCK = threading.Lock()


def regulation_view(index: LoadedIndex) -> RegulationView:
    """Computed once per generation (a loaded generation never changes)."""
    with _VIEWS_LOCK:
        view = _VIEWS.get(index.path)
        if view is None:
            if len(_VIEWS) > 8:
                _VIEWS.clear()
            view = _VIEWS[index.path] = build_view(index.documents)
        return view


def _iso(value: str) -> str:
    m = re.match(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", value or "")
    return m.group(0) if m else ""


def _place_of(doc: StoredDocument) -> tuple[str, str, str]:
    """(place, province, name) of a regulation: metadata first, else the place its title starts with."""
    divisions = load_divisions()
    title = doc.title.strip()
    place = doc.extra.get("place", "")
    division = divisions.lookup(place) if place else None
    if division is None:
        found = divisions.find(title[:12])
        division = found[0] if found and title.startswith((found[0].name, found[0].short)) else None
    if division is None:
        return place, doc.extra.get("province", ""), title
    name = title
    for prefix in (division.name, division.short):
        if title.startswith(prefix):
            name = title[len(prefix):]
            break
    name = name.removeprefix(_SPECIAL_ZONE) or title
    return division.name, doc.extra.get("province") or division.province, name


def is_regulation(doc: StoredDocument) -> bool:
    return doc.extra.get("doc_type", "") == REGULATION


def build_view(documents: Mapping[str, StoredDocument]) -> RegulationView:
    status = version_status(documents.values())
    regs: dict[str, Regulation] = {}
    for doc_id, doc in documents.items():
        if not is_regulation(doc):
            continue
        place, province, name = _place_of(doc)
        version = _iso(version_order(doc)[0])
        year = doc.extra.get("version", "")[:4] or version[:4]
        regs[doc_id] = Regulation(doc_id, doc.title, place, province, name, version,
                                  _iso(doc.extra.get("effective_date", "")), year, status[doc_id].group)
    current = frozenset(d for d in regs if status[d].current)
    superseded = {d: s for d in regs if (s := status[d].superseded_by) is not None}
    return RegulationView(regs, current, superseded)


def _versions_for(view: RegulationView, docs: list[Regulation], question: str) -> tuple[set[str], list[str],
                                                                                      list[str], str | None]:
    """The versions of `docs`' groups that answer: (doc ids, consumed years, notes, refusal text)."""
    asked_version = _VERSION_ASKED.search(question)
    years = {m.group(1) for m in _YEAR.finditer(question)}
    older = bool(_OLDER.search(question))
    keep: set[str] = set()
    consumed: set[str] = set()
    notes: list[str] = []
    groups: dict[str, list[Regulation]] = {}
    for r in docs:
        groups.setdefault(r.group, []).append(r)
    for members in groups.values():
        members.sort(key=lambda r: (r.version, r.effective, r.doc_id))
        current = [r for r in members if r.doc_id in view.current]
        newest = current[-1] if current else members[-1]
        # the version of that year; else the first whose 施行 date is in it (a revision keeps the original's 施行
        # date: 贵阳's 2021 text still says 自2013年5月1日起施行)
        by_year = [r for r in members if r.year in years] or [r for r in members if r.version[:4] in years] or \
            [r for r in members if r.effective[:4] in years][:1]
        if len(members) > 1 and by_year:
            chosen = by_year[-1]
            consumed |= {y for y in years if y in (chosen.year, chosen.effective[:4])}
        elif older and len(members) > 1:
            chosen = members[-2] if members[-1] is newest else members[-1]
        else:
            if asked_version and asked_version.group(1) not in {r.year for r in members}:
                label = f"{members[0].place}{members[0].name}" if members[0].place else members[0].title
                have = "、".join(f"{r.year}年" for r in members if r.year)
                text = f"找到的资料中没有{label}的{asked_version.group(1)}年版本" + (f"（资料中的版本：{have}）" if have else "")
                return set(), [], [], text
            chosen = newest
        keep.add(chosen.doc_id)
        if len(members) > 1:
            status = "现行版本" if chosen is newest else "旧版本（已被新版本取代）"
            notes.append(f"《{chosen.title}》{status}：{chosen.year}年" if chosen.year else f"《{chosen.title}》{status}")
    return keep, sorted(consumed), notes, None


def decide(question: str, index: LoadedIndex, default_place: str | None = None) -> Scope:
    """The scope of one question over this generation."""
    view = regulation_view(index)
    if not view.regulations:
        return Scope()
    everyone = frozenset(view.regulations)
    divisions = load_divisions()
    named = [d for d in divisions.find(question) if d.level in ("province", "city", "county")]
    default = False
    if not named and default_place:
        d = divisions.lookup(default_place)
        if d is not None and view.of_place(d):
            named, default = [d], True
    if named:
        docs = _named_regulations([r for d in named for r in _regulations_in_force_at(view, d)], question)
        if not docs:
            if not _ASKS_REGULATION.search(question):
                return Scope(denied=everyone)  # another city's regulation says nothing about this place
            place = named[0]
            name = _likely_name(view, question)
            related = [r for r in view.regulations.values()
                       if r.doc_id in view.current and place.province and r.place == place.province]
            text = f"找到的资料中没有{place.name}的{name}"
            if related:
                text += "，可参考" + "、".join(f"《{r.title}》" for r in related[:2])
            return Scope(denied=everyone, places=(place.name,), refusal="no_regulation_for_place", refusal_text=text,
                         related=tuple(r.doc_id for r in related))
        keep, consumed, notes, refusal = _versions_for(view, docs, question)
        places = tuple(dict.fromkeys(r.place for r in docs))
        if refusal is not None:
            return Scope(denied=everyone, places=places, default_place=default, refusal="no_such_version",
                         refusal_text=refusal)
        return Scope(denied=everyone - keep, places=places, default_place=default, consumed_years=tuple(consumed),
                     versions=tuple(notes))
    # no place: older versions never answer unless asked for
    return Scope(denied=frozenset(view.superseded_by))


def _common_run(a: str, b: str) -> int:
    """Length of the longest run of characters `a` and `b` share."""
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] not in b:
                break
            best = j - i
    return best


def _named_regulations(docs: list[Regulation], question: str) -> list[Regulation]:
    """Of a place's regulations, the ones the question names (东莞's 文明行为促进条例, not its 生态文明建设促进与保障
    条例); all of them when it names none (东莞遛狗不牵绳罚多少钱)."""
    if len({r.name for r in docs}) < 2:
        return docs
    named = {r.name: _common_run(re.sub(r"(?:若干规定|条例|规定|办法)$", "", r.name), question) for r in docs}
    best = max(named.values())
    return [r for r in docs if named[r.name] == best] if best >= 3 else docs


def _regulations_in_force_at(view: RegulationView, division: Division) -> list[Regulation]:
    """The place's own regulations; for a county without any, its city's (台山市 is under 江门市's)."""
    own = view.of_place(division)
    if own or division.level != "county" or not division.city:
        return own
    city = load_divisions().lookup(division.city)
    return view.of_place(city) if city is not None else []


def _likely_name(view: RegulationView, question: str) -> str:
    """The regulation a question about an absent place most likely means: the most common name sharing the most
    characters with the question (文明行为促进条例 for 阳江遛狗不牵绳罚多少)."""
    counts = Counter(r.name for r in view.regulations.values() if r.place)
    if not counts:
        return "相关条例"
    qchars = set(question)
    # named outright; else one sharing most of its characters with the question (生态文明 …); else the commonest
    return max(counts, key=lambda n: (n in question, len(set(n) & qchars) / max(len(n), 1) >= 0.5, counts[n]))
