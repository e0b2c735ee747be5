"""Which format a file is: what its bytes say (magic numbers, the OLE2 directory, the XML root); the extension
is only a hint. A `.doc` holding a Word 2007+ zip is read as docx, a `.pdf` holding a web page as HTML, and
so on. The extension still has to be one people upload documents with (EXTENSIONS), and among the text
kinds (HTML, Markdown, plain text) it decides, since text carries no reliable magic."""

from __future__ import annotations

import re
from pathlib import PurePath

from corpus.formats.base import FormatError

EXTENSIONS = {".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf", ".docx": "docx", ".doc": "doc",
              ".md": "markdown", ".markdown": "markdown", ".txt": "text"}
TEXT_KINDS = ("html", "markdown", "text")
DOCUMENT_KINDS = ("pdf", "docx", "doc", "wordxml", *TEXT_KINDS)  # what extract() reads
# the suffix an original is stored under when its own extension names another kind
KIND_SUFFIX = {"pdf": ".pdf", "docx": ".docx", "doc": ".doc", "wordxml": ".xml", "html": ".html", "markdown": ".md",
               "text": ".txt"}
_ALLOWED = ".html、.htm、.pdf、.doc、.docx、.md 或 .txt"
_ALLOWED_EN = ".html, .htm, .pdf, .doc, .docx, .md or .txt"
_HTML_START = re.compile(rb"<\s*(?:!doctype\s+html|html|head|body|meta|title|div|p|article|table)\b", re.I)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

NAMES = {"pdf": ("PDF", "PDF"), "docx": ("Word 2007+ 文档（.docx）", "a Word 2007+ document (.docx)"),
         "doc": ("Word 97–2003 文档（.doc）", "a Word 97-2003 document (.doc)"),
         "wordxml": ("Word XML 文档", "a Word XML document"), "html": ("网页（HTML）", "a web page (HTML)"),
         "markdown": ("Markdown", "Markdown"), "text": ("纯文本", "plain text"),
         "zip": ("ZIP 压缩包（不是 Word 文档）", "a ZIP archive (not a Word document)"),
         "xlsx": ("Excel 表格（.xlsx）", "an Excel workbook (.xlsx)"),
         "pptx": ("PowerPoint 演示文稿（.pptx）", "a PowerPoint presentation (.pptx)"),
         "odf": ("OpenDocument 文件（.odt 等）", "an OpenDocument file (.odt etc.)"),
         "xls": ("Excel 97–2003 表格（.xls）", "an Excel 97-2003 workbook (.xls)"),
         "ppt": ("PowerPoint 97–2003 演示文稿（.ppt）", "a PowerPoint 97-2003 presentation (.ppt)"),
         "ole": ("其他 Office 97–2003 文件（不是 Word 文档）", "another Office 97-2003 file (not a Word document)"),
         "rtf": ("RTF 文档", "an RTF document"), "image": ("图片", "an image"),
         "binary": ("二进制数据", "binary data")}


def ole_damaged(ole: object) -> bool:
    """Whether olefile met a damaged FAT or directory (sectors past the end: a truncated file). A wrong CLSID
    in the header, which some writers (WPS) leave, is harmless."""
    issues = getattr(ole, "parsing_issues", ())
    return any("CLSID" not in str(message) for _, message in issues)


def _ole_kind(data: bytes) -> str:
    """doc for an OLE2 file with a WordDocument stream (or one too damaged to list: the Word reader then
    says corrupt_doc), xls / ppt / ole for the other Office files."""
    import olefile

    try:
        ole = olefile.OleFileIO(data)
        try:
            streams = {"/".join(s).lower() for s in ole.listdir()}
            damaged = ole_damaged(ole)
        finally:
            ole.close()
    except Exception:  # olefile raises OSError and others on a damaged container
        return "doc"
    if "worddocument" in streams or damaged:  # a container cut short lists only some of its streams
        return "doc"
    if "workbook" in streams or "book" in streams:
        return "xls"
    if "powerpoint document" in streams:
        return "ppt"
    return "ole"


def _zip_kind(data: bytes) -> str:
    head = data[:65536]
    if b"word/" in head:
        return "docx"
    if b"xl/" in head:
        return "xlsx"
    if b"ppt/" in head:
        return "pptx"
    if b"mimetypeapplication/vnd.oasis.opendocument" in head:
        return "odf"
    return "docx" if b"[Content_Types].xml" in head else "zip"


def content_kind(data: bytes) -> str:
    """What the bytes are: one of DOCUMENT_KINDS (markdown aside: text is text), or zip, xlsx, pptx, odf, xls,
    ppt, ole, rtf, image, binary (none of them readable)."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    if data.startswith(_OLE_MAGIC):
        return _ole_kind(data)
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*")):
        return "image"
    if data.startswith(b"{\\rtf"):
        return "rtf"
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16 and b"\x00" in data[:8192]:
        return "binary"
    probe = data[:4096].decode("utf-16", "ignore").encode("utf-8") if utf16 else data[:4096]
    probe = probe.lstrip(b"\xef\xbb\xbf \t\r\n")
    if probe.startswith(b"<?xml") and (b":package" in probe or b":wordDocument" in probe):
        return "wordxml"  # Word's one-file XML: Flat OPC (<pkg:package>) or Word 2003 XML (<w:wordDocument>)
    return "html" if _HTML_START.search(probe) else "text"


def detect(data: bytes, filename: str) -> str:
    """The format to extract with, from the bytes: pdf, docx, doc, wordxml, html, markdown or text. Raises
    FormatError naming the file for an extension nobody uploads documents with, an empty file, and bytes
    that are no readable kind (naming what they are)."""
    ext = PurePath(filename).suffix.lower()
    hint = EXTENSIONS.get(ext)
    if hint is None:
        raise FormatError("unsupported_format", filename,
                          f"不支持的文件类型“{ext or '（无扩展名）'}”：请上传 {_ALLOWED}",
                          f"unsupported file type {ext or '(no extension)'!r}: upload {_ALLOWED_EN}")
    if not data.strip():
        raise FormatError("empty_file", filename, "文件为空", "the file is empty")
    found = content_kind(data)
    if found in TEXT_KINDS:  # a .txt holding markup is still read as text; a .pdf holding a page as HTML
        return hint if hint in TEXT_KINDS else found
    if found in DOCUMENT_KINDS:
        return found
    zh, en = NAMES.get(found, (found, found))
    raise FormatError("unsupported_content", filename,
                      f"文件内容是{zh}，无法读取：支持 PDF、Word（.doc/.docx）、网页和文本文件",
                      f"the content is {en}, which cannot be read: PDF, Word (.doc/.docx), web pages and text "
                      "files are supported")
