"""Where the characters of a document's cleaned text came from in the uploaded original.

An extracted document (corpus.formats) is stored with a provenance map beside its original,
`<documents folder>/.originals/<doc_id>.provenance.json`, whose spans index the stored body (Document.raw).
Citations index the cleaned text (corpus.cleaning), which drops and rejoins parts of that body; cleaning
keeps the one-to-one runs between the two (CleanDocument.segments). `cleaned_origins` composes the two maps
once per document, so that looking up a citation's origin is a search in a short sorted list.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.cleaning import CleanDocument
from corpus.documents import Document

ORIGINALS_DIR = ".originals"  # beside the stored documents: originals and provenance maps


@dataclass(frozen=True)
class Origin:
    """An uploaded document's original file and its provenance spans, as offsets into the CLEANED text."""

    format: str  # html | pdf | docx | doc | wordxml | text
    name: str  # the uploaded file name
    spans: tuple[tuple[int, int, int | None, tuple[str, ...]], ...]  # (start, end, page, section), sorted

    def at(self, start: int, end: int | None = None) -> dict[str, Any]:
        """Where cleaned[start:end] comes from: `{"format", "page"}` (PDF; `pages: [a, b]` when the quote
        runs over a page break) or `{"format", "section"}`; the span holding `start` decides the section."""
        end = start + 1 if end is None or end <= start else end
        out: dict[str, Any] = {"format": self.format}
        i = bisect.bisect_right([s[0] for s in self.spans], start) - 1
        first = self.spans[i] if i >= 0 and self.spans[i][0] <= start < self.spans[i][1] else None
        if first is None:  # a character cleaning added (a joining newline): the next span that starts inside
            first = next((s for s in self.spans[max(i, 0):] if start <= s[0] < end), None)
        if first is None:
            return out
        page, section = first[2], first[3]
        if page is not None:
            out["page"] = page
            pages = [s[2] for s in self.spans if s[0] < end and s[1] > start and s[2] is not None]
            if pages and max(pages) != min(pages):
                out["pages"] = [min(pages), max(pages)]
        if section:
            out["section"] = list(section)
        return out

    def as_json(self) -> dict[str, Any]:
        return {"format": self.format, "name": self.name,
                "spans": [[s, e, p, list(sec)] for s, e, p, sec in self.spans]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Origin:
        return cls(str(data["format"]), str(data.get("name") or ""),
                   tuple((int(s), int(e), None if p is None else int(p), tuple(str(x) for x in sec))
                         for s, e, p, sec in data.get("spans") or ()))


def _in_originals(doc: Document, key: str) -> Path | None:
    """The file the front-matter field `key` names, only when it lies inside the originals folder."""
    rel = doc.extra.get(key)
    if not rel:
        return None
    folder = (doc.path.parent / ORIGINALS_DIR).resolve()
    path = (doc.path.parent / rel).resolve()
    return path if path.parent == folder else None  # never a path outside .originals/


def provenance_path(doc: Document) -> Path | None:
    """The document's provenance file, when its front matter names one inside the originals folder."""
    return _in_originals(doc, "provenance")


def original_path(doc: Document) -> Path | None:
    """The stored original bytes of an uploaded document (None for a Markdown document or a missing file)."""
    path = _in_originals(doc, "original")
    return path if path is not None and path.is_file() else None


def raw_provenance(doc: Document) -> list[tuple[int, int, int | None, tuple[str, ...]]] | None:
    """The stored provenance spans (offsets into doc.raw), or None when the document has none or its map is
    missing, unreadable or written for other content (its sha256 differs from the front matter's)."""
    path = provenance_path(doc)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("original_sha256") != doc.extra.get("original_sha256"):
            return None
        spans = [(int(s["start"]), int(s["end"]), None if s.get("page") is None else int(s["page"]),
                  tuple(str(x) for x in s.get("section") or ())) for s in data["spans"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return sorted(sp for sp in spans if 0 <= sp[0] < sp[1] <= len(doc.raw))


def cleaned_origins(doc: Document, clean: CleanDocument) -> Origin | None:
    """The document's provenance moved onto cleaned-text offsets (None when it was not uploaded as a file).

    A cleaned run (clean_start, raw_start, n) copies raw[raw_start:raw_start+n]; its overlap with a raw span
    is the same characters in the cleaned text. Neighbouring pieces from the same page and section merge."""
    fmt = doc.extra.get("original_format")
    if not fmt:
        return None
    raw = raw_provenance(doc) or []
    starts = [s[0] for s in raw]
    pieces: list[tuple[int, int, int | None, tuple[str, ...]]] = []
    for cs, rs, n in clean.segments:
        re_ = rs + n
        i = max(bisect.bisect_right(starts, rs) - 1, 0)
        while i < len(raw) and raw[i][0] < re_:
            a, b, page, section = raw[i]
            lo, hi = max(a, rs), min(b, re_)
            if lo < hi:
                start, end = cs + lo - rs, cs + hi - rs
                last = pieces[-1] if pieces else None
                if last is not None and last[2] == page and last[3] == section and start - last[1] <= 2:
                    pieces[-1] = (last[0], end, page, section)  # across the newline(s) cleaning put between
                else:
                    pieces.append((start, end, page, section))
            i += 1
    return Origin(fmt, doc.extra.get("original_name", ""), tuple(pieces))
