"""Which format a file is: its extension, checked against its first bytes (magic numbers)."""

from __future__ import annotations

import re
from pathlib import PurePath

from corpus.formats.base import FormatError

EXTENSIONS = {".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf", ".docx": "docx",
              ".md": "markdown", ".markdown": "markdown", ".txt": "text"}
TEXT_KINDS = ("html", "markdown", "text")
_HTML_START = re.compile(rb"<\s*(?:!doctype\s+html|html|head|body|meta|title|div|p|article|table)\b", re.I)

_NAMES = {"pdf": "PDF", "docx": "Word (.docx)", "html": "HTML", "markdown": "Markdown", "text": "text",
          "zip": "ZIP", "ole": "legacy Office (.doc/.xls)", "image": "image", "binary": "binary"}


def content_kind(data: bytes) -> str:
    """What the bytes look like: pdf, docx, zip, ole, image, binary, html or text."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "docx" if b"word/" in data[:65536] or b"[Content_Types].xml" in data[:65536] else "zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*")):
        return "image"
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16 and b"\x00" in data[:8192]:
        return "binary"
    probe = data[:4096].decode("utf-16", "ignore").encode("utf-8") if utf16 else data[:4096]
    return "html" if _HTML_START.search(probe.lstrip(b"\xef\xbb\xbf \t\r\n")) else "text"


def detect(data: bytes, filename: str) -> str:
    """The format to extract with: html, pdf, docx, markdown or text. Raises FormatError naming the file."""
    ext = PurePath(filename).suffix.lower()
    kind = EXTENSIONS.get(ext)
    if kind is None:
        raise FormatError("unsupported_format", filename,
                          f"不支持的文件类型“{ext or '（无扩展名）'}”：请上传 .html、.htm、.pdf、.docx、.md 或 .txt",
                          f"unsupported file type {ext or '(no extension)'!r}: upload .html, .htm, .pdf, "
                          ".docx, .md or .txt")
    if not data.strip():
        raise FormatError("empty_file", filename, "文件为空", "the file is empty")
    found = content_kind(data)
    # a text format accepts any text (a .txt holding HTML markup is still read as text)
    ok = found == kind if kind in ("pdf", "docx") else found in TEXT_KINDS
    if not ok:
        raise FormatError("extension_mismatch", filename,
                          f"扩展名是 {ext}，但文件内容是{_NAMES.get(found, found)}",
                          f"the extension is {ext} but the content is {_NAMES.get(found, found)}")
    return kind
