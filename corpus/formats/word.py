"""Word 2007+ files (.docx, python-docx, MIT): heading styles → `#` sections, tables → one text row per table row,
list numbers Word draws (第一条, （一）) put before their paragraphs (corpus/formats/numbering.py).

The ZIP container is checked before python-docx opens it: at most MAX_ENTRIES members and
MAX_UNCOMPRESSED bytes after decompression in all (a zip bomb is refused, not unpacked), and a
word/document.xml part must be there. A package python-docx refuses is read from its document and styles
parts alone (minimal_package), as is Word's one-file XML (corpus/formats/wordxml.py).
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from corpus.formats.base import Extracted, FormatError, TextBuilder
from corpus.formats.numbering import Counter, Level

MAX_UNCOMPRESSED = 100 * 1024 * 1024
MAX_ENTRIES = 5000
MAX_RATIO = 200  # decompressed / compressed for one member; text XML compresses ~5-20x
_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_REL_CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
_PARTS = {  # the parts text extraction needs, with their content types
    "word/document.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "word/styles.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml",
    "word/numbering.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.numbering+xml",
    "docProps/core.xml": "application/vnd.openxmlformats-package.core-properties+xml"}


def check_zip(data: bytes, filename: str) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError("corrupt_docx", filename, f"不是有效的 .docx（ZIP 损坏）：{exc}",
                          f"not a valid .docx (broken ZIP): {exc}") from exc
    if len(infos) > MAX_ENTRIES:
        raise FormatError("docx_too_large", filename, f".docx 含有超过 {MAX_ENTRIES} 个部件",
                          f"the .docx holds over {MAX_ENTRIES} parts")
    total = sum(i.file_size for i in infos)
    worst = max((i.file_size / max(i.compress_size, 1) for i in infos if i.file_size > 1_000_000), default=0)
    if total > MAX_UNCOMPRESSED or worst > MAX_RATIO:
        raise FormatError("docx_too_large", filename,
                          f".docx 解压后过大（{total} 字节，上限 {MAX_UNCOMPRESSED}；疑似压缩炸弹）",
                          f"the .docx is too large once decompressed ({total} bytes, limit {MAX_UNCOMPRESSED}; "
                          "a zip bomb?)")
    if "word/document.xml" not in {i.filename for i in infos}:
        raise FormatError("corrupt_docx", filename, ".docx 中没有 word/document.xml", "the .docx has no word/document.xml")


def _heading_level(paragraph: Any, style: Any) -> int:
    names = []
    while style is not None:
        names.append(style.name or "")
        style = style.base_style
    for name in names:
        if name.lower() == "title":
            return 1
        m = _HEADING_STYLE.match(name.strip())
        if m:
            return max(1, int(m.group(1)))
    ppr = paragraph._p.pPr  # a direct outline level (w:outlineLvl) also makes a heading
    if ppr is not None:
        lvl = ppr.find(f"{_W}outlineLvl")
        if lvl is not None and (val := lvl.get(f"{_W}val", "")).isdigit() and int(val) < 9:
            return int(val) + 1
    return 0


def paragraph_text(p: Any) -> str:
    """The text of a w:p as Word shows it: python-docx's Paragraph.text reads only the runs directly under the
    paragraph or a hyperlink, and so loses those in smart tags (a 中文日期 chsdate tag around
    "2017年11月23日"), content controls, simple fields and tracked insertions. Text boxes (a w:p inside
    this one) are left out, as Paragraph.text does."""
    out: list[str] = []
    for el in p.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr", f"{_W}noBreakHyphen"):
        run = el.getparent()
        if run is None or run.tag != f"{_W}r":  # w:tab also defines tab stops in w:pPr/w:tabs
            continue
        owner = run.getparent()
        while owner is not None and owner.tag != f"{_W}p":
            owner = owner.getparent()
        if owner is not p:
            continue
        tag = el.tag[len(_W):]
        out.append(el.text or "" if tag == "t" else "\t" if tag == "tab" else "-" if tag == "noBreakHyphen" else "\n")
    return "".join(out)


def _val(parent: Any, tag: str) -> str | None:
    el = parent.find(f"{_W}{tag}") if parent is not None else None
    return None if el is None else el.get(f"{_W}val")


class _Numbering:
    """The numbering part: w:num → w:abstractNum levels, counted per abstract list (as Word does: w:num
    instances of one list continue it unless a w:startOverride restarts a level)."""

    def __init__(self, document: Any) -> None:
        self.counter = Counter({})
        self.abstract: dict[str, str] = {}
        self.overrides: dict[str, list[tuple[int, int]]] = {}
        self.seen: set[str] = set()
        try:
            numbering = document.part.numbering_part.element
        except Exception:  # no numbering part, or one python-docx cannot load: nothing is numbered
            return
        for a in numbering.iterfind(f"{_W}abstractNum"):
            levels: dict[int, Level] = {}
            for lvl in a.iterfind(f"{_W}lvl"):
                text = re.split(r"%([1-9])", _val(lvl, "lvlText") or "")
                pieces = tuple(int(t) - 1 if i % 2 else t for i, t in enumerate(text) if t)
                start = _val(lvl, "start") or "1"
                levels[int(lvl.get(f"{_W}ilvl") or 0)] = Level(
                    int(start) if start.lstrip("-").isdigit() else 1, _val(lvl, "numFmt") or "decimal", pieces,
                    _val(lvl, "suff") or "tab", lvl.find(f"{_W}isLgl") is not None)
            if levels:
                top = max(levels)
                self.counter.lists[a.get(f"{_W}abstractNumId") or ""] = tuple(
                    levels.get(i, Level(1, "none", ())) for i in range(top + 1))
        for num in numbering.iterfind(f"{_W}num"):
            num_id = num.get(f"{_W}numId") or ""
            self.abstract[num_id] = _val(num, "abstractNumId") or ""
            self.overrides[num_id] = [(int(o.get(f"{_W}ilvl") or 0), int(v))
                                      for o in num.iterfind(f"{_W}lvlOverride")
                                      if (v := _val(o, "startOverride")) and v.isdigit()]

    def label(self, paragraph: Any, style: Any) -> str:
        """The number Word draws before `paragraph` (its own w:numPr, else its style's); counts it."""
        if not self.counter.lists:
            return ""
        ppr = paragraph._p.pPr
        numpr = ppr.find(f"{_W}numPr") if ppr is not None else None
        num_id, ilvl = _val(numpr, "numId"), _val(numpr, "ilvl")
        style = style if num_id is None else None
        while style is not None and num_id is None:
            sppr = style.element.find(f"{_W}pPr")
            snum = sppr.find(f"{_W}numPr") if sppr is not None else None
            num_id, ilvl = _val(snum, "numId"), ilvl or _val(snum, "ilvl")
            style = style.base_style
        if not num_id or num_id == "0" or num_id not in self.abstract:
            return ""
        abstract = self.abstract[num_id]
        if num_id not in self.seen:  # a restarted instance of the list
            self.seen.add(num_id)
            counts = self.counter.counts.setdefault(abstract, [None] * 9)
            for level, start in self.overrides[num_id]:
                if level < 9:
                    counts[level] = start - 1
        return self.counter.label(abstract, int(ilvl) if ilvl and ilvl.isdigit() else 0)


class _Styles:
    """paragraph.style, looked up once per style id (python-docx searches the styles part on every call)."""

    def __init__(self) -> None:
        self.cache: dict[str | None, Any] = {}

    def of(self, paragraph: Any) -> Any:
        sid = paragraph._p.style
        if sid not in self.cache:
            self.cache[sid] = paragraph.style
        return self.cache[sid]


def _cell_text(cell: Any, numbering: _Numbering, styles: _Styles) -> str:
    texts = [numbering.label(p, styles.of(p)) + paragraph_text(p._p) for p in cell.paragraphs]
    return " ".join(" ".join(t.split()) for t in texts if t.strip())


def extract_docx(data: bytes, filename: str) -> Extracted:
    """A Word 2007+ zip. A package python-docx refuses (a dangling relationship, a macro-enabled main part)
    is read again from its own word/document.xml and styles, rebuilt into a minimal package."""
    check_zip(data, filename)
    try:
        document = _open(data)
    except Exception as exc:  # python-docx raises several kinds for a damaged package
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            parts = {name: zf.read(name) for name in _PARTS if name in names}
        try:
            document = _open(minimal_package(parts))
        except Exception:
            raise FormatError("corrupt_docx", filename, f".docx 无法读取：{exc}",
                              f"cannot read the .docx: {exc}") from exc
    return _extract_document(document, "docx")


def _open(package: bytes) -> Any:
    import docx

    return docx.Document(io.BytesIO(package))


def minimal_package(parts: dict[str, bytes]) -> bytes:
    """A .docx holding only the main document, its styles, numbering and core properties (those given)."""
    overrides = "".join(f'<Override PartName="/{name}" ContentType="{_PARTS[name]}"/>' for name in _PARTS
                        if name in parts)
    rels = {"_rels/.rels": [(_REL + "officeDocument", "word/document.xml")]
            + ([(_REL_CORE, "docProps/core.xml")] if "docProps/core.xml" in parts else []),
            "word/_rels/document.xml.rels": [(_REL + kind, f"{kind}.xml") for kind in ("styles", "numbering")
                                             if f"word/{kind}.xml" in parts]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns='
                    '"http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
                    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default '
                    f'Extension="xml" ContentType="application/xml"/>{overrides}</Types>')
        for name, targets in rels.items():
            body = "".join(f'<Relationship Id="rId{i}" Type="{t}" Target="{target}"/>'
                           for i, (t, target) in enumerate(targets, 1))
            zf.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
                        f'"http://schemas.openxmlformats.org/package/2006/relationships">{body}</Relationships>')
        for name in _PARTS:
            if name in parts:
                zf.writestr(name, parts[name])
    return buf.getvalue()


def _extract_document(document: Any, kind: str) -> Extracted:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    b = TextBuilder()
    first_heading = ""
    numbering = _Numbering(document)
    styles = _Styles()
    for child in document.element.body.iterchildren():
        if child.tag == f"{_W}p":
            p = Paragraph(child, document)
            style = styles.of(p)
            number = numbering.label(p, style)  # counted even when the paragraph is empty, as Word does
            text = paragraph_text(child).strip()
            if not text:
                continue
            text = number + text
            level = _heading_level(p, style)
            if level:
                first_heading = first_heading or text
                b.heading(text, level)
            else:
                b.block([("\n".join(ln.strip() for ln in text.splitlines() if ln.strip()), None)])
        elif child.tag == f"{_W}tbl":
            table = Table(child, document)
            read: dict[Any, str] = {}  # a merged cell is in row.cells once per grid column: read (count) it once
            for row in table.rows:
                cells: list[str] = []
                for cell in row.cells:  # merged cells repeat: keep each once per row
                    t = read.get(cell._tc)  # the w:tc element itself (held here, so its proxy stays the same)
                    if t is None:
                        t = read[cell._tc] = _cell_text(cell, numbering, styles)
                    if t and (not cells or cells[-1] != t):
                        cells.append(t)
                if cells:
                    b.block([(" | ".join(cells), None)])
    props = document.core_properties
    metadata: dict[str, str] = {}
    title = (props.title or "").strip() or first_heading
    if title:
        metadata["title"] = title
    if (props.author or "").strip() and props.author.strip() not in ("python-docx", "Administrator"):
        metadata["author"] = props.author.strip()
    return b.build(kind, metadata)
