"""What every format extractor returns: the document text, where each character came from, and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corpus.documents import DocumentError

PROVENANCE_VERSION = 1


class FormatError(DocumentError):
    """An uploaded file that cannot become a document (reported as 422 by the HTTP service)."""

    def __init__(self, code: str, filename: str, message_zh: str, message_en: str) -> None:
        super().__init__(code, f"文件“{filename}”：{message_zh}", f"file {filename!r}: {message_en}")
        self.filename = filename


@dataclass(frozen=True)
class Span:
    """text[start:end] came from this place in the original: a PDF page (1-based) and/or a section path."""

    start: int
    end: int
    page: int | None = None
    section: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end}
        if self.page is not None:
            out["page"] = self.page
        if self.section:
            out["section"] = list(self.section)
        return out


@dataclass(frozen=True)
class Extracted:
    kind: str  # html | pdf | docx | doc | wordxml | text
    text: str  # the document body: paragraphs separated by blank lines, headings as Markdown `#` lines
    spans: tuple[Span, ...]  # sorted, non-overlapping; characters between spans (blank lines) map nowhere
    metadata: dict[str, str] = field(default_factory=dict)  # title, date, source, url, policy fields

    def locate(self, offset: int) -> Span | None:
        for s in self.spans:
            if s.start <= offset < s.end:
                return s
        return None

    def provenance(self, shift: int = 0) -> list[dict[str, Any]]:
        """The span list as JSON, offsets moved by `shift` (0 when the body is stored as extracted)."""
        return [{**s.as_json(), "start": s.start + shift, "end": s.end + shift} for s in self.spans]


class TextBuilder:
    """Builds the body block by block, keeping the heading trail and the page of every character.

    A block is a list of (text, page) pieces joined without separator (a paragraph that runs across a
    page break is one block of two pieces). Headings become `#` lines so the chunker sees sections.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []
        self._trail: list[tuple[int, str]] = []

    @property
    def section(self) -> tuple[str, ...]:
        return tuple(t for _, t in self._trail)

    def heading(self, text: str, level: int, page: int | None = None) -> None:
        text = " ".join(text.split())
        if not text:
            return
        level = max(1, min(level, 6))
        self._trail = [(lv, t) for lv, t in self._trail if lv < level] + [(level, text)]
        self.block([("#" * level + " " + text, page)])

    def block(self, pieces: list[tuple[str, int | None]]) -> None:
        pieces = [(t, p) for t, p in pieces if t]
        if not "".join(t for t, _ in pieces).strip():
            return
        if self.parts:
            self._append("\n\n")
        section = self.section
        for text, page in pieces:
            start = self._append(text)
            self._span(Span(start, self.length, page, section))

    def _append(self, text: str) -> int:
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        return start

    def _span(self, span: Span) -> None:
        last = self.spans[-1] if self.spans else None
        if last is not None and last.page == span.page and last.section == span.section:
            self.spans[-1] = Span(last.start, span.end, span.page, span.section)  # blank lines join equal runs
        else:
            self.spans.append(span)

    def build(self, kind: str, metadata: dict[str, str]) -> Extracted:
        return Extracted(kind, "".join(self.parts), tuple(self.spans), dict(metadata))
