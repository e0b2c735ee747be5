"""Domain words kept as data (index/lexicon/places.tsv, aliases.tsv, roles.txt): the places a question may name,
the other names a question may use for them, and the posts whose holder it may ask for."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from index.segmentation import LEXICON_DIR

PLACES = LEXICON_DIR / "places.tsv"
ALIASES = LEXICON_DIR / "aliases.tsv"
ROLES = LEXICON_DIR / "roles.txt"
DIVISIONS = LEXICON_DIR / "divisions.tsv"
# Suffixes a place is named without in speech (江门市 → 江门, 延边朝鲜族自治州 → 延边); longest first
_DIVISION_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "自治州", "自治县", "地区",
                      "省", "市", "盟")
_PEOPLES = tuple(sorted((f"{p}族" for p in ["朝鲜", "蒙古", "藏", "羌", "彝", "傣", "景颇", "傈僳", "白", "哈尼", "苗", "侗", "布依", "土家", "壮", "哈萨克", "柯尔克孜", "回", "黎", "纳西", "普米", "怒", "独龙", "瑶", "仡佬", "水", "畲", "达斡尔", "鄂温克", "鄂伦春", "锡伯", "土", "撒拉", "东乡", "保安", "裕固", "塔吉克", "维吾尔", "满", "拉祜", "佤", "仫佬", "毛南", "京", "基诺", "布朗", "德昂", "阿昌", "门巴", "珞巴", "俄罗斯", "乌孜别克", "塔塔尔", "赫哲"]), key=len, reverse=True))


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class Gazetteer:
    places: tuple[str, ...]  # in file order
    cities: frozenset[str]
    aliases: dict[str, tuple[str, ...]]  # alias -> names it stands for
    place_aliases: tuple[str, ...]  # aliases of places (searched with the name appended)

    def expand(self, question: str) -> str:
        """'侨都农民收入…' → '侨都农民收入…（江门）': appended, so names like 侨都质量贷 stay whole."""
        names = [n for a in self.place_aliases if a in question for n in self.aliases[a] if n not in question]
        if not names:
            return question
        return f"{question}（{'、'.join(dict.fromkeys(names))}）"


@lru_cache(maxsize=4)
def load_gazetteer(places: Path = PLACES, aliases: Path = ALIASES) -> Gazetteer:
    rows = _rows(places)
    amap: dict[str, list[str]] = {}
    place_aliases: list[str] = []
    for alias, name, kind in _rows(aliases):
        amap.setdefault(alias, []).append(name)
        if kind == "place" and alias not in place_aliases:
            place_aliases.append(alias)
    return Gazetteer(places=tuple(r[0] for r in rows), cities=frozenset(r[0] for r in rows if r[1] == "city"),
                     aliases={a: tuple(n) for a, n in amap.items()}, place_aliases=tuple(place_aliases))


@lru_cache(maxsize=4)
def load_roles(path: Path = ROLES) -> tuple[str, ...]:
    """The posts, longest first (副市长 before 市长)."""
    return tuple(sorted((r[0].strip() for r in _rows(path)), key=len, reverse=True))


@dataclass(frozen=True)
class Division:
    """A province, city or county (index/lexicon/divisions.tsv)."""

    name: str  # 江门市
    level: str  # province | city | county
    city: str  # the city a county belongs to ("" otherwise)
    province: str  # the province of a city or county ("" for a province)

    @property
    def short(self) -> str:
        """The name as said without its suffix (江门, 延边, 内蒙古); the full name when that leaves one character."""
        for suffix in _DIVISION_SUFFIXES:
            if self.name.endswith(suffix) and len(self.name) - len(suffix) >= 2:
                stem = self.name[: -len(suffix)]
                # 延边朝鲜族自治州 → 延边, 黔东南苗族侗族自治州 → 黔东南: the peoples named before 自治 go too
                while suffix.startswith("自治") and (people := next(
                        (p for p in _PEOPLES if stem.endswith(p) and len(stem) > len(p) + 1), None)):
                    stem = stem[: -len(people)]
                return stem
        return self.name


@dataclass(frozen=True)
class Divisions:
    by_name: dict[str, Division]  # full names
    by_short: dict[str, Division]  # short names of provinces and cities (counties only by full name)

    def find(self, text: str) -> list[Division]:
        """The divisions `text` names, longest match first at each position, in order of appearance."""
        found: list[Division] = []
        i = 0
        while i < len(text):
            for n in range(min(12, len(text) - i), 1, -1):
                word = text[i:i + n]
                d = self.by_name.get(word) or self.by_short.get(word)
                if d is not None:
                    if d not in found:
                        found.append(d)
                    i += n
                    break
            else:
                i += 1
        return found

    def lookup(self, name: str) -> Division | None:
        return self.by_name.get(name) or self.by_short.get(name)


@lru_cache(maxsize=2)
def load_divisions(path: Path = DIVISIONS) -> Divisions:
    rows = [Division(*([*r, "", "", ""])[:4]) for r in _rows(path)]
    by_name = {d.name: d for d in rows}
    by_short: dict[str, Division] = {}
    for d in rows:
        if d.level in ("province", "city") and d.short != d.name:
            by_short.setdefault(d.short, d)
    return Divisions(by_name, by_short)
