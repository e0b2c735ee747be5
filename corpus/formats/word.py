"""Word files (.docx, python-docx, MIT): heading styles → `#` sections, tables → one text row per table row.

The ZIP container is checked before python-docx opens it: at most MAX_ENTRIES members and
MAX_UNCOMPRESSED bytes after decompression in all (a zip bomb is refused, not unpacked), and a
word/document.xml part must be there.
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
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_zip(data, filename)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several kinds for a damaged package
        raise FormatError("corrupt_docx", filename, f".docx 无法读取：{exc}", f"cannot read the .docx: {exc}") from exc

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
    return b.build("docx", metadata)
