"""Deterministic cleaning of captured articles into structured, offset-mapped text.

The stored body is never changed. Cleaning builds a new text character by character and remembers,
for every cleaned character, where it came from in the stored body, so any quote can be traced back.

Steps: fold character forms to the ones people type and drop a text layer's layout spaces (corpus/charforms.py);
drop page chrome and site boilerplate; classify each line (title, subtitle, heading, byline, photo caption,
body); split a page of unrelated stories into stories; drop repeated headings and repeated sentences; join
paragraphs broken by page breaks; normalise whitespace. A regulation (corpus/structure.py) gets its
编/章/节/条 structure from its text instead: each block's section path ends in its article, its table of
contents is dropped, and its paragraphs are never joined or deduplicated (law repeats itself on purpose).

A document whose front matter says `cleaning: verbatim` (passages of external evaluation sets, which are
clean text rather than captured pages) skips all of that: each non-empty line is one body paragraph, kept
exactly as given apart from whitespace trimmed at its ends and ideograph forms folded (same length).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from corpus.charforms import NO_LAYOUT_SPACES, LayoutSpaces, fold_ideograph, fold_text, fold_typed
from corpus.documents import Document
from corpus.sentences import ends_sentence, sentence_spans
from corpus.structure import Role, find_structure

# --- patterns -----------------------------------------------------------------------------------

_WS = frozenset(" \t\r\u00a0\u3000\u2002\u2003\u2009\u200b\ufeff")

CHROME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("image_file", re.compile(r"\S+/\S+\.(?:jpe?g|png|gif|webp)\b", re.I)),
    ("page_label", re.compile(r"^第\s*\S+\s*版\s*[:：]")),
    ("page_nav", re.compile(r"上一版|下一版")),
    ("layout_nav", re.compile(r"^版面导航")),
    ("font_size", re.compile(r"放大\s*缩小\s*默认")),
    ("copyright", re.compile(r"copyright|all rights reserved|版权所有|未经授权.{0,6}(?:复制|转载)", re.I)),
    ("icp", re.compile(r"ICP\s*备|经营许可证", re.I)),
    ("contact", re.compile(r"联系电话|制作及维护")),
    ("related_news", re.compile(r"^[□■◆●]?\s*相关(?:新闻|阅读|链接)\s*$")),
    ("separator", re.compile(r"^[|｜\-—_=*·•\s]*$")),
)
_MD_HEADING = re.compile(r"^(#{1,6})[ \t\u3000\u00a0]*")
_LETTERED = re.compile(r"^[A-Z][ \u3000]+\S")
_BYLINE = re.compile(
    r"^(?:文[/／]|图[/／]|文图[/／]|■|◎|(?:[^\s，。]{0,6}日报)?(?:记者|通讯员)[\s/／]|本报记者)"
)
_CREDIT = re.compile(r"(?:供图|摄影?|图片来源[:：]?.{0,20})$")
_PHOTO_SAYS = re.compile(r"图为")
_NEWS_LEAD = re.compile(r"^[^，。\s]{2,12}讯[（(]")
_SENTENCE_PUNCT = re.compile(r"[，。！？；：,!?;:]")
_CJK = re.compile(r"[\u4e00-\u9fff]")

MAX_HEADING_CHARS = 32  # standalone title lines in the seeds are 6-28 characters
MAX_LEAD_CAPTION_CHARS = 60
MIN_DEDUP_SENTENCE = 12  # shorter repeats ("是的。") are normal prose
MIN_JOIN_CHARS = 8
VERBATIM = "verbatim"  # front-matter `cleaning:` value that keeps the text as given

LEVEL_PLAIN = 5  # lettered heads and standalone title lines, below any Markdown level in use
LEVEL_DASH = 9  # "——" subheads sit under the current section
LEVEL_REGULATION = 1  # 编 1, 分编 2, 章 3, 节 4 (a regulation's sections take their path from its text)


@dataclass(frozen=True)
class Block:
    kind: str  # title | subtitle | heading | byline | caption | body
    start: int
    end: int
    story: int
    section: tuple[str, ...]
    level: int = 0
    article: str = ""  # a regulation's article this block belongs to (第四十八条), "" elsewhere


@dataclass(frozen=True)
class Story:
    index: int
    title: str
    subtitles: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Removed:
    """Something cleaning dropped, with the reason; offsets are into the stored body."""

    reason: str
    raw_start: int
    raw_end: int
    text: str


@dataclass(frozen=True)
class CleanDocument:
    doc_id: str
    title: str
    date: str
    text: str
    blocks: tuple[Block, ...]
    stories: tuple[Story, ...]
    # (clean_start, raw_start, length): runs where cleaned text copies the stored body one to one
    segments: tuple[tuple[int, int, int], ...]
    removed: tuple[Removed, ...] = field(default=())

    def raw_spans(self, start: int, end: int) -> list[tuple[int, int]]:
        """The stored-body spans that cleaned[start:end] was built from (newlines we add map nowhere)."""
        out: list[tuple[int, int]] = []
        for cs, rs, n in self.segments:
            s, e = max(start, cs), min(end, cs + n)
            if s < e:
                a, b = rs + (s - cs), rs + (e - cs)
                if out and out[-1][1] == a:
                    out[-1] = (out[-1][0], b)
                else:
                    out.append((a, b))
        return out

    def sections(self) -> list[dict[str, object]]:
        """Distinct (story, section path) with the cleaned span they cover, in reading order."""
        seen: dict[tuple[int, tuple[str, ...]], dict[str, object]] = {}
        for b in self.blocks:
            if b.kind not in ("body", "caption"):
                continue
            key = (b.story, b.section)
            if key not in seen:
                seen[key] = {"story": b.story, "title": self.stories[b.story].title,
                             "section": list(b.section), "start": b.start, "end": b.end}
            else:
                seen[key]["end"] = b.end
        return list(seen.values())


# --- working representation -----------------------------------------------------------------------


@dataclass
class _Unit:
    chars: list[str]
    offs: list[int]
    indented: bool
    md_level: int = 0
    kind: str = "body"
    level: int = 0
    story_head: bool = False
    path: tuple[str, ...] | None = None  # a regulation's 编/章/节/条 path, read from its text (not the stack)
    article: str = ""
    role: Role | None = None  # what the line is in a regulation's structure (None: not in one)

    @property
    def text(self) -> str:
        return "".join(self.chars)

    @property
    def raw_start(self) -> int:
        return self.offs[0] if self.offs else 0

    @property
    def raw_end(self) -> int:
        return self.offs[-1] + 1 if self.offs else 0


def _normalise_line(line: str, base: int, spaces: LayoutSpaces = NO_LAYOUT_SPACES,
                    ) -> tuple[list[str], list[int], bool]:
    """Trim the line and collapse whitespace runs to one space, keeping each char's stored offset; fold character
    forms (a folded character keeps its source's offset) and drop layout spaces (they map nowhere)."""
    chars: list[str] = []
    offs: list[int] = []
    indented = bool(line) and line[0] in _WS
    pending_space = -1
    for i, raw_ch in enumerate(line):
        if raw_ch in _WS:
            if chars and pending_space < 0:
                pending_space = base + i
            continue
        ch = fold_typed(raw_ch)
        if pending_space >= 0 and not spaces.drops(chars[-1], ch):
            chars.append(" ")
            offs.append(pending_space)
        pending_space = -1
        chars.append(ch)
        offs.append(base + i)
    return chars, offs, indented


def _chrome_reason(text: str) -> str | None:
    for reason, pat in CHROME_PATTERNS:
        if pat.search(text):
            return reason
    return None


def _split_units(raw: str, removed: list[Removed]) -> list[_Unit]:
    """The document's non-empty lines as units, page chrome dropped. A regulation's lines from its structure on
    carry their role (corpus/structure.py) and are never chrome: its articles may well say 联系电话 or
    经营许可证, which on a news page mark the footer."""
    spaces = LayoutSpaces.measure(raw)
    lines: list[tuple[str, int, list[str], list[int], bool]] = []
    pos = 0
    for line in raw.split("\n"):
        lines.append((line, pos, *_normalise_line(line, pos, spaces)))
        pos += len(line) + 1
    texts = [_MD_HEADING.sub("", "".join(chars)) for _, _, chars, _, _ in lines if chars]
    structure = find_structure(texts)
    units: list[_Unit] = []
    prev_hard_break = False
    k = -1
    for line, base, chars, offs, indented in lines:
        if not chars:
            prev_hard_break = False
            continue
        k += 1
        role = structure.roles[k] if structure is not None else None
        text = "".join(chars)
        reason = _chrome_reason(_MD_HEADING.sub("", text)) if role is None else None
        if reason:
            removed.append(Removed(reason, offs[0], offs[-1] + 1, text))
            prev_hard_break = False
            continue
        # Markdown hard break ("  " at line end) after a full sentence: the next line belongs to the same
        # block (a photo caption followed by its credit line). Never in a regulation: it would glue articles.
        if (prev_hard_break and units and units[-1].md_level == 0 and not _MD_HEADING.match(text)
                and role is None and units[-1].role is None):
            last = units[-1]
            last.chars.append(" ")
            last.offs.append(base - 1)
            last.chars.extend(chars)
            last.offs.extend(offs)
        else:
            units.append(_Unit(chars, offs, indented, role=role))
        stripped = line.rstrip("\r")
        prev_hard_break = stripped.endswith("  ") and ends_sentence(text)
    for u in units:
        m = _MD_HEADING.match(u.text)
        if m:
            u.md_level = len(m.group(1))
            del u.chars[: m.end()], u.offs[: m.end()]
    return [u for u in units if u.chars]


def _looks_like_heading(text: str) -> bool:
    return (
        4 <= len(text) <= MAX_HEADING_CHARS
        and not _SENTENCE_PUNCT.search(text)
        and len(_CJK.findall(text)) >= 4
    )


def _classify(u: _Unit) -> None:
    text = u.text
    if u.md_level:
        u.kind, u.level = "heading", u.md_level
    elif text.startswith("——"):
        u.kind, u.level = "heading", LEVEL_DASH
    elif _BYLINE.match(text) and len(text) <= 60 and not ends_sentence(text):
        u.kind = "byline"
    elif _CREDIT.search(text) or (_PHOTO_SAYS.search(text) and len(text) <= 80):
        u.kind = "caption"
    elif (_LETTERED.match(text) and len(text) <= MAX_HEADING_CHARS and not ends_sentence(text)) or _looks_like_heading(text):
        u.kind, u.level = "heading", LEVEL_PLAIN
    else:
        u.kind = "body"


def _key(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _next_body(units: list[_Unit], i: int) -> _Unit | None:
    for u in units[i + 1:]:
        if u.kind == "body":
            return u
        if u.kind == "heading" and not u.story_head:
            return None
    return None


def _mark_structure(units: list[_Unit], title: str) -> None:
    """Title, subtitles, lead captions and story boundaries."""
    if not units:
        return
    first = units[0]
    if first.kind == "heading" or _key(first.text) == _key(title):
        first.kind, first.story_head = "title", True

    # A heading directly under a title or heading (nothing in between) is that heading's subtitle.
    prev_kind = None
    for u in units:
        if u.kind == "heading" and prev_kind in ("title", "heading", "subtitle") and (
            u.level > 0 or u.text.startswith("——")
        ):
            u.kind = "subtitle"
        if u.kind not in ("byline", "caption"):
            prev_kind = u.kind

    # Multi-story pages: when the first story's sections use a deeper Markdown level than some later
    # headings, those shallower headings start new stories (a newspaper page with several reports).
    md_heads = [u for u in units[1:] if u.kind == "heading" and u.md_level]
    if md_heads:
        section_level = md_heads[0].md_level
        story_level = min(u.md_level for u in md_heads)
        if story_level < section_level:
            for u in md_heads:
                if u.md_level == story_level:
                    u.story_head = True
    # A heading followed by a news lead ("江门日报讯（记者…）") starts a story whatever its level.
    for i, u in enumerate(units):
        if u.kind == "heading" and not u.story_head:
            nxt = _next_body(units, i)
            if nxt is not None and _NEWS_LEAD.match(nxt.text):
                u.story_head = True

    # Short one-sentence lines between a title and its first paragraph are photo captions.
    in_lead = True
    for u in units:
        if u.story_head or u.kind == "title":
            in_lead = True
            continue
        if u.kind == "body":
            if in_lead and len(u.text) <= MAX_LEAD_CAPTION_CHARS and len(sentence_spans(u.text)) == 1 \
                    and ends_sentence(u.text) and not _NEWS_LEAD.match(u.text):
                u.kind = "caption"
                continue
            in_lead = False


def _apply_regulation(units: list[_Unit], removed: list[Removed]) -> list[_Unit]:
    """A regulation's lines from its first division or article on take their kind and section path from its
    structure (found on its lines in _split_units); its table of contents is dropped."""
    out: list[_Unit] = []
    for u in units:
        role = u.role
        if role is not None and role.kind == "toc":
            removed.append(Removed("table_of_contents", u.raw_start, u.raw_end, u.text))
            continue
        if role is not None:
            u.kind = "heading" if role.kind == "division" else "body"
            u.level = LEVEL_REGULATION + role.level if role.kind == "division" else 0
            u.story_head, u.path, u.article = False, role.path, role.article
        out.append(u)
    return out


def _drop_repeated_headings(units: list[_Unit], removed: list[Removed]) -> list[_Unit]:
    seen: set[str] = set()
    out: list[_Unit] = []
    for u in units:
        if u.kind in ("title", "subtitle", "heading") and u.path is None:
            k = _key(u.text).lstrip("—")
            if k in seen:
                removed.append(Removed("repeated_heading", u.raw_start, u.raw_end, u.text))
                continue
            seen.add(k)
        out.append(u)
    return out


def _join_page_breaks(units: list[_Unit]) -> list[_Unit]:
    """A body paragraph that stops mid-sentence continues in the next body paragraph.

    The page break may have pushed the next story's heading in between (a continuation that does not
    open like a news lead); then the continuation is pulled back before that heading.
    """
    out: list[_Unit] = []
    i = 0
    units = list(units)
    while i < len(units):
        u = units[i]
        if u.kind == "body" and u.path is None:  # a regulation's paragraphs are whole (items end in "：")
            while len(u.text) >= MIN_JOIN_CHARS and not ends_sentence(u.text):
                nxt = units[i + 1] if i + 1 < len(units) else None
                if nxt is not None and nxt.path is not None:
                    break
                if nxt is not None and nxt.kind == "body":
                    u.chars += nxt.chars
                    u.offs += nxt.offs
                    del units[i + 1]
                    continue
                after = units[i + 2] if i + 2 < len(units) else None
                if (nxt is not None and nxt.story_head and after is not None and after.kind == "body"
                        and after.path is None and not _NEWS_LEAD.match(after.text)):
                    u.chars += after.chars
                    u.offs += after.offs
                    del units[i + 2]
                    continue
                break
        out.append(u)
        i += 1
    return out


def _drop_repeated_sentences(units: list[_Unit], removed: list[Removed]) -> list[_Unit]:
    """Drop a sentence that repeats an earlier one, or the tail of an earlier one (capture duplicates)."""
    seen: list[str] = []
    seen_set: set[str] = set()
    out: list[_Unit] = []
    for u in units:
        if u.kind != "body" or u.path is not None:  # law repeats its sentences on purpose
            out.append(u)
            continue
        text = u.text
        drop: list[tuple[int, int]] = []
        for s, e in sentence_spans(text):
            sent = text[s:e]
            if len(sent) >= MIN_DEDUP_SENTENCE and (
                sent in seen_set or any(len(p) > len(sent) and p.endswith(sent) for p in seen)
            ):
                drop.append((s, e))
                removed.append(Removed("repeated_sentence", u.offs[s], u.offs[e - 1] + 1, sent))
            else:
                seen.append(sent)
                seen_set.add(sent)
        if drop:
            keep = [True] * len(text)
            for s, e in drop:
                for k in range(s, e):
                    keep[k] = False
            u.chars = [c for c, k in zip(u.chars, keep, strict=True) if k]
            u.offs = [o for o, k in zip(u.offs, keep, strict=True) if k]
            while u.chars and u.chars[0] == " ":
                del u.chars[0], u.offs[0]
        if u.chars:
            out.append(u)
    return out


def _verbatim_units(raw: str) -> list[_Unit]:
    """Each non-empty line as given, only trimmed at both ends."""
    units: list[_Unit] = []
    pos = 0
    for line in raw.split("\n"):
        base = pos
        pos += len(line) + 1
        s, e = 0, len(line)
        while s < e and (line[s] in _WS or line[s].isspace()):
            s += 1
        while e > s and (line[e - 1] in _WS or line[e - 1].isspace()):
            e -= 1
        if s < e:
            units.append(_Unit([fold_ideograph(c) for c in line[s:e]], list(range(base + s, base + e)), s > 0))
    return units


def clean_document(doc: Document) -> CleanDocument:
    removed: list[Removed] = []
    if doc.extra.get("cleaning") == VERBATIM:
        return _assemble(doc, _verbatim_units(doc.raw), removed)
    units = _split_units(doc.raw, removed)
    for u in units:
        _classify(u)
    _mark_structure(units, fold_text(doc.title))
    units = _apply_regulation(units, removed)
    units = _drop_repeated_headings(units, removed)
    units = _join_page_breaks(units)
    units = _drop_repeated_sentences(units, removed)
    return _assemble(doc, units, removed)


def _assemble(doc: Document, units: list[_Unit], removed: list[Removed]) -> CleanDocument:
    text_parts: list[str] = []
    offsets: list[int] = []
    blocks: list[Block] = []
    stories: list[Story] = []
    story_title = fold_text(doc.title, verbatim=doc.extra.get("cleaning") == VERBATIM)
    subtitles: list[str] = []
    story_start = 0
    stack: list[tuple[int, str]] = []
    pos = 0

    def close_story(end: int) -> None:
        stories.append(Story(len(stories), story_title, tuple(subtitles), story_start, end))

    for idx, u in enumerate(units):
        if u.story_head and (idx > 0 or u.kind != "title"):
            if idx > 0:
                close_story(max(story_start, pos - 1))
                subtitles = []
                story_start = pos
            story_title = u.text
            stack = []
        if u.kind == "title" and idx == 0:
            story_title = u.text
        elif u.kind == "subtitle":
            subtitles.append(u.text)
        elif u.kind == "heading" and not u.story_head and u.path is None:
            while stack and stack[-1][0] >= u.level:
                stack.pop()
            stack.append((u.level, u.text))
        section = u.path if u.path is not None else tuple(t for _, t in stack)
        start = pos
        text_parts.append(u.text)
        offsets.extend(u.offs)
        pos += len(u.chars)
        kind = "title" if u.story_head else u.kind
        blocks.append(Block(kind, start, pos, len(stories), section, u.level, u.article))
        text_parts.append("\n")
        offsets.append(-1)
        pos += 1
    close_story(max(story_start, pos - 1))
    text = "".join(text_parts)
    return CleanDocument(doc.doc_id, doc.title, doc.date, text, tuple(blocks), tuple(stories),
                         _segments(offsets), tuple(removed))


def _segments(offsets: list[int]) -> tuple[tuple[int, int, int], ...]:
    segs: list[tuple[int, int, int]] = []
    for i, o in enumerate(offsets):
        if o < 0:
            continue
        if segs:
            cs, rs, n = segs[-1]
            if cs + n == i and rs + n == o:
                segs[-1] = (cs, rs, n + 1)
                continue
        segs.append((i, o, 1))
    return tuple(segs)
