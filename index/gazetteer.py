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
