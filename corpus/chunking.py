"""Section-level chunks with exact offsets into the cleaned text (`text == cleaned[start:end]`).

A regulation's chunks follow its articles (条): an article is one chunk, or several split at sentence boundaries
when it is longer than max_chars, each keeping the article in its section path; short neighbouring articles of
one chapter share a chunk whose path names them ("第三条至第五条"). No chunk holds part of two articles."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from corpus.cleaning import Block, CleanDocument
from corpus.sentences import sentence_spans
from corpus.structure import article_range


@dataclass(frozen=True)
class ChunkerConfig:
    max_chars: int = 450  # a section longer than this is split at sentence boundaries
    overlap_chars: int = 120  # the last sentence is repeated in the next chunk when at most this long
    # whole neighbouring articles of one chapter share a chunk while it stays this short (half of the articles of
    # the 141 regulations measured are at most 100 characters: "第二条 本市行政区域内的……适用本条例。")
    article_merge_chars: int = 200
    version: int = 4  # bump when the chunking rules change, so saved indexes are rebuilt

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


@dataclass(frozen=True)
class _Piece:
    first: Block  # the first block of its run
    start: int
    end: int
    section: tuple[str, ...]
    whole_article: bool  # the piece is one whole article (it may share a chunk with its neighbours)


def _merge_articles(pieces: list[_Piece], config: ChunkerConfig) -> list[_Piece]:
    """Whole short articles next to each other in one chapter (same story, same path above the article) share a
    piece while it stays within article_merge_chars."""
    out: list[_Piece] = []
    group: list[_Piece] = []

    def flush() -> None:
        if len(group) == 1:
            out.append(group[0])
        elif group:
            a, b = group[0], group[-1]
            label = article_range(a.first.article, b.first.article)
            out.append(_Piece(a.first, a.start, b.end, (*a.section[:-1], label), False))
        group.clear()

    for p in pieces:
        if group and not (p.whole_article and p.first.story == group[0].first.story
                          and p.section[:-1] == group[0].section[:-1]
                          and p.end - group[0].start <= config.article_merge_chars):
            flush()
        if p.whole_article and p.end - p.start <= config.article_merge_chars:
            group.append(p)
        else:
            flush()
            out.append(p)
    flush()
    return out


def chunk_document(clean: CleanDocument, config: ChunkerConfig | None = None) -> list[Chunk]:
    config = config or ChunkerConfig()
    pieces: list[_Piece] = []
    for run in _runs(clean.blocks):
        first = run[0]
        if first.kind in STANDALONE_KINDS:
            spans = [(first.start, first.end)]
        else:
            spans = _pack([s for b in run for s in sentence_spans(clean.text, b.start, b.end)], config)
        whole = bool(first.article) and len(spans) == 1
        pieces.extend(_Piece(first, start, end, first.section, whole) for start, end in spans)
    chunks: list[Chunk] = []
    for p in _merge_articles(pieces, config):
        n = len(chunks)
        chunks.append(Chunk(
            doc_id=clean.doc_id,
            chunk_id=f"{clean.doc_id}:{n:04d}",
            ordinal=n,
            title=clean.stories[p.first.story].title,
            section=p.section,
            date=clean.date,
            kind=p.first.kind if p.first.kind in STANDALONE_KINDS else "body",
            text=clean.text[p.start:p.end],
            start=p.start,
            end=p.end,
        ))
    return chunks
