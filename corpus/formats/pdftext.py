"""PDF files: the text layer (pypdf, BSD), page by page, with the page number of every character.

Printed lines are joined back into paragraphs (a line that fills the measure and does not end a sentence
continues on the next line, also across a page break); lines repeated on most pages (running headers and
footers, page numbers) are dropped. A PDF with no text layer is OCRed when `rapidocr_onnxruntime` is
installed, else refused as a scanned PDF; encrypted and corrupt (e.g. truncated) files are refused.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter

from corpus.formats.base import Extracted, FormatError, TextBuilder

log = logging.getLogger(__name__)

MAX_PAGES = 2000
MIN_CHARS_PER_PAGE = 5  # below this on every page there is no usable text layer
_PAGE_NUMBER = re.compile(r"^(?:[-—–]?\s*\d{1,4}\s*[-—–]?|\d{1,4}\s*/\s*\d{1,4}|第\s*\d{1,4}\s*页(?:\s*共\s*\d{1,4}\s*页)?|"
                          r"page\s+\d{1,4}(?:\s+of\s+\d{1,4})?)$", re.I)
_ENDS_PARAGRAPH = re.compile(r"[。！？!?：:；;」』”\"）)]$")
_DIGITS = re.compile(r"\d+")
_CJK_PAIR = re.compile(r"[\u4e00-\u9fff](?=[\u4e00-\u9fff])")
_CJK_SPACE = re.compile(r"(?<=[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]) +(?=[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef])")


def _lines(text: str) -> list[str]:
    """The page's lines, whitespace collapsed. Spaces between Chinese characters are dropped only on a page
    that spaces most of them (letter-spaced text); a title like "抓基层 强基础" keeps its spaces."""
    spaced = len(_CJK_SPACE.findall(text))
    tight = len(_CJK_PAIR.findall(text))
    strip = spaced > 0.3 * (spaced + tight)
    out = []
    for ln in text.replace("\r", "\n").split("\n"):
        ln = " ".join(ln.split())
        if strip:
            ln = _CJK_SPACE.sub("", ln)
        if ln:
            out.append(ln)
    return out


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Lines (digits masked) that recur on at least half the pages: running headers and footers."""
    if len(pages) < 2:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({_DIGITS.sub("#", ln) for ln in lines[:3] + lines[-3:]})
    return {k for k, n in counts.items() if n >= max(2, (len(pages) + 1) // 2)}


def _width(s: str) -> float:
    return sum(1.0 if ord(c) > 0x2E80 else 0.5 for c in s)


def extract_pdf(data: bytes, filename: str) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    if b"%%EOF" not in data[-2048:]:
        raise FormatError("corrupt_pdf", filename, "PDF 文件不完整（缺少文件结尾标记 %%EOF，可能被截断）",
                          "the PDF is incomplete (no %%EOF end marker: truncated?)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:  # an empty user password opens many "protected" PDFs
                ok = bool(reader.decrypt(""))
            except Exception:  # a missing crypto backend or a bad key: both mean "encrypted"
                ok = False
            if not ok:
                raise FormatError("encrypted_pdf", filename, "PDF 已加密，无法读取内容：请上传未加密的文件",
                                  "the PDF is encrypted: upload an unencrypted copy")
        n_pages = len(reader.pages)
        if n_pages == 0:
            raise FormatError("corrupt_pdf", filename, "PDF 没有页面", "the PDF has no pages")
        if n_pages > MAX_PAGES:
            raise FormatError("too_many_pages", filename, f"PDF 超过 {MAX_PAGES} 页", f"the PDF has over {MAX_PAGES} pages")
        raw_pages = [reader.pages[i].extract_text() or "" for i in range(n_pages)]
        info = reader.metadata
        meta_title = str(info.title).strip() if info is not None and info.title else ""
    except FormatError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError) as exc:
        raise FormatError("corrupt_pdf", filename, f"PDF 文件损坏，无法读取：{exc}", f"the PDF is corrupt: {exc}") from exc

    pages = [_lines(t) for t in raw_pages]
    if all(len(re.sub(r"\s", "", t)) < MIN_CHARS_PER_PAGE for t in raw_pages):
        pages = _ocr(data, filename, n_pages)
    running = _running_lines(pages)
    pages = [[ln for ln in lines if _DIGITS.sub("#", ln) not in running and not _PAGE_NUMBER.match(ln)]
             for lines in pages]
    measure = max((_width(ln) for lines in pages for ln in lines), default=0.0)

    b = TextBuilder()
    para: list[tuple[str, int | None]] = []
    for page_no, lines in enumerate(pages, start=1):
        for ln in lines:
            para.append((ln, page_no))
            full = _width(ln) >= 0.85 * measure
            if not full or _ENDS_PARAGRAPH.search(ln):
                b.block(_merge(para))
                para = []
    b.block(_merge(para))
    metadata = {"title": meta_title} if meta_title and not meta_title.lower().endswith((".html", ".htm")) else {}
    metadata["pages"] = str(n_pages)
    first = next((ln for lines in pages for ln in lines), "")
    if "title" not in metadata and first:
        metadata["title"] = first[:120]
    return b.build("pdf", metadata)


def _merge(pieces: list[tuple[str, int | None]]) -> list[tuple[str, int | None]]:
    """Join a paragraph's lines: no space between CJK characters, one space between Latin words."""
    out: list[tuple[str, int | None]] = []
    for text, page in pieces:
        if out:
            prev_text, prev_page = out[-1]
            sep = " " if prev_text[-1:].isascii() and text[:1].isascii() and prev_text[-1:].isalnum() else ""
            if prev_page == page:
                out[-1] = (prev_text + sep + text, page)
                continue
            text = sep + text
        out.append((text, page))
    return out


def _ocr(data: bytes, filename: str, n_pages: int) -> list[list[str]]:
    """Text of a scanned PDF by OCR, when an offline OCR engine is installed; else a clear refusal."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise FormatError("scanned_pdf", filename,
                          "扫描版 PDF：没有文字层（本服务未安装 OCR），请上传带文字层的 PDF 或 Word 文件",
                          "scanned PDF: no text layer (no OCR engine installed here); upload a PDF with a text "
                          "layer or a Word file") from None
    raise FormatError("scanned_pdf", filename, "扫描版 PDF：没有文字层（OCR 尚未接入）",  # pragma: no cover
                      f"scanned PDF: no text layer (OCR via {RapidOCR.__name__} not wired in yet)")
