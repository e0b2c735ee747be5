"""Word 2007+ files (.docx, python-docx, MIT): heading styles → `#` sections, tables → one text row per table row.

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


def _heading_level(paragraph: Any) -> int:
    style = paragraph.style
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


def _cell_text(cell: Any) -> str:
    return " ".join(" ".join(p.text.split()) for p in cell.paragraphs if p.text.strip())


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
    """A .docx holding only the main document, its styles and the core properties (those given)."""
    overrides = "".join(f'<Override PartName="/{name}" ContentType="{_PARTS[name]}"/>' for name in _PARTS
                        if name in parts)
    rels = {"_rels/.rels": [(_REL + "officeDocument", "word/document.xml")]
            + ([(_REL_CORE, "docProps/core.xml")] if "docProps/core.xml" in parts else []),
            "word/_rels/document.xml.rels": [(_REL + "styles", "styles.xml")] if "word/styles.xml" in parts else []}
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
    for child in document.element.body.iterchildren():
        if child.tag == f"{_W}p":
            p = Paragraph(child, document)
            text = p.text.strip()
            if not text:
                continue
            level = _heading_level(p)
            if level:
                first_heading = first_heading or text
                b.heading(text, level)
            else:
                b.block([("\n".join(ln.strip() for ln in text.splitlines() if ln.strip()), None)])
        elif child.tag == f"{_W}tbl":
            table = Table(child, document)
            for row in table.rows:
                cells: list[str] = []
                for cell in row.cells:  # merged cells repeat: keep each once per row
                    t = _cell_text(cell)
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
