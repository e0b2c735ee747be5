"""Section-level chunks with exact offsets into the cleaned text (`text == cleaned[start:end]`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from corpus.cleaning import Block, CleanDocument
from corpus.sentences import sentence_spans


@dataclass(frozen=True)
class ChunkerConfig:
    max_chars: int = 450  # a section longer than this is split at sentence boundaries
    overlap_chars: int = 120  # the last sentence is repeated in the next chunk when at most this long
    version: int = 3  # bump when the chunking rules change, so saved indexes are rebuilt

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    chunk_id: str
    ordinal: int
    title: str  # the story title
    section: tuple[str, ...]
    date: str
    kind: str  # body | caption | byline
    text: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["section"] = list(self.section)
        return d

    @property
    def section_label(self) -> str:
        return " / ".join(self.section)


TEXT_KINDS = ("body", "subtitle")
STANDALONE_KINDS = ("caption", "byline")


def _runs(blocks: tuple[Block, ...]) -> list[list[Block]]:
    """Consecutive body blocks of one section; each caption and byline on its own.

    A byline ("■广东省阳江市江城区委书记 陈基文") names the author: a fact people ask about.

    Story subtitles ("3家企业共获4.7亿元授信额度") carry facts, so they join the lead's run like body text.
    """
    runs: list[list[Block]] = []
    current: list[Block] = []
    for b in blocks:
        if b.kind in TEXT_KINDS and current and (current[-1].story, current[-1].section) == (b.story, b.section):
            current.append(b)
            continue
        if current:
            runs.append(current)
            current = []
        if b.kind in TEXT_KINDS:
            current = [b]
        elif b.kind in STANDALONE_KINDS:
            runs.append([b])
    if current:
        runs.append(current)
    return runs


def _pack(spans: list[tuple[int, int]], config: ChunkerConfig) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    group: list[tuple[int, int]] = []
    for span in spans:
        if group and span[1] - group[0][0] > config.max_chars:
            out.append((group[0][0], group[-1][1]))
            last = group[-1]
            carry = len(group) > 1 and last[1] - last[0] <= config.overlap_chars
            group = [last] if carry and span[1] - last[0] <= config.max_chars else []
        group.append(span)
    if group:
        out.append((group[0][0], group[-1][1]))
    return out


def chunk_document(clean: CleanDocument, config: ChunkerConfig | None = None) -> list[Chunk]:
    config = config or ChunkerConfig()
    chunks: list[Chunk] = []
    for run in _runs(clean.blocks):
        first = run[0]
        if first.kind in STANDALONE_KINDS:
            pieces = [(first.start, first.end)]
        else:
            spans = [s for b in run for s in sentence_spans(clean.text, b.start, b.end)]
            pieces = _pack(spans, config)
        for start, end in pieces:
            n = len(chunks)
            chunks.append(Chunk(
                doc_id=clean.doc_id,
                chunk_id=f"{clean.doc_id}:{n:04d}",
                ordinal=n,
                title=clean.stories[first.story].title,
                section=first.section,
                date=clean.date,
                kind=first.kind if first.kind in STANDALONE_KINDS else "body",
                text=clean.text[start:end],
                start=start,
                end=end,
            ))
    return chunks
