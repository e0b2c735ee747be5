"""Versions of the same regulation: which stored document is current and which a newer one supersedes.

Two regulations are versions of each other when they are of the same place and have the same name
(珠海经济特区生态文明建设促进条例 of 2013, 2019 and 2020). The newest — by the date that made the version (its
latest revision, else its approval, else its passing), then its 公布 and 施行 dates — is current; every older
one is superseded by it. Two files of the same version are both current. Only regulations
(`doc_type: regulation`) are grouped; any other document is its own current version with no group.

    version_status(docs) -> {doc_id: VersionInfo(current, superseded_by, group, version)}

It is pure (documents in, statuses out): the HTTP service runs it on the stored documents for the documents list
and on a loaded index generation's documents (index/store.py, LoadedIndex.versions) for answers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

REGULATION = "regulation"
_SPACE = re.compile(r"\s+")


class Versioned(Protocol):
    @property
    def doc_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def date(self) -> str: ...
    @property
    def extra(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class VersionInfo:
    current: bool
    superseded_by: str | None  # the current version's doc_id, for an older one
    group: str  # "<place>|<name>" shared by the versions; "" for a document that is no regulation
    version: str  # the version's year as stored ("" when unknown)


def group_key(doc: Versioned) -> str:
    """`<place>|<name>`, or "" for a document that is no regulation."""
    if doc.extra.get("doc_type") != REGULATION:
        return ""
    name = _SPACE.sub("", doc.title)
    place = _SPACE.sub("", doc.extra.get("place") or "")
    return f"{place}|{name}"


def version_order(doc: Versioned) -> tuple[str, str, str, str]:
    extra = doc.extra
    made = max((extra.get(k) or "" for k in ("revised_date", "approved_date", "adopted_date")), default="")
    return (made or extra.get("version") or doc.date, extra.get("published_date") or "",
            extra.get("effective_date") or "", doc.date)


def version_status(docs: Iterable[Versioned]) -> dict[str, VersionInfo]:
    groups: dict[str, list[Versioned]] = defaultdict(list)
    out: dict[str, VersionInfo] = {}
    for doc in docs:
        key = group_key(doc)
        if key:
            groups[key].append(doc)
        else:
            out[doc.doc_id] = VersionInfo(True, None, "", doc.extra.get("version") or "")
    for key, members in groups.items():
        newest = max(version_order(d) for d in members)
        current = sorted(d.doc_id for d in members if version_order(d) == newest)
        for d in members:
            is_current = version_order(d) == newest
            out[d.doc_id] = VersionInfo(is_current, None if is_current else current[0], key,
                                        d.extra.get("version") or "")
    return out
