"""Documents as people have them — web pages, PDF and Word files, plain text — turned into document text
with provenance (for every character: the PDF page, or the section path in an HTML/DOCX file) and the
metadata found in them (title, date, source, and policy fields such as 发文字号 江府〔2024〕12号).

`extract(data, filename)` picks the format from the bytes (corpus/formats/sniff.py: PDF, Word 2007+ zip,
Word 97–2003 OLE2, Word's one-file XML, HTML, text; the extension only tells the text kinds apart), and
raises FormatError (a DocumentError: code + Chinese and English message naming the file) for anything it
cannot turn into a non-empty document. A local regulation (地方性法规) gets its name, meetings, dates and
place from its own text (corpus/formats/regulation.py). The project's own cleaning (corpus/cleaning.py) runs later, on the
stored text, as for every other document.
"""

from __future__ import annotations

import re

from corpus.formats.base import PROVENANCE_VERSION, Extracted, FormatError, Span, TextBuilder
from corpus.formats.policy import find_policy_metadata, iso_date
from corpus.formats.regulation import DOC_TYPE, NOT_FOR_REGULATIONS, cited_date, find_regulation_metadata
from corpus.formats.sniff import EXTENSIONS, detect

__all__ = ["EXTENSIONS", "PROVENANCE_VERSION", "Extracted", "FormatError", "Span", "TextBuilder", "detect",
           "document_date", "extract"]

MIN_TEXT_CHARS = 10  # fewer letters than this after extraction is "nothing extracted"
_LETTER = re.compile(r"[\w\u4e00-\u9fff]")


def extract(data: bytes, filename: str, kind: str | None = None) -> Extracted:
    """Extract one file. `kind` skips sniffing (the caller already ran detect)."""
    kind = kind or detect(data, filename)
    if kind == "html":
        from corpus.formats.web import extract_html

        out = extract_html(data, filename)
    elif kind == "pdf":
        from corpus.formats.pdftext import extract_pdf

        out = extract_pdf(data, filename)
    elif kind == "docx":
        from corpus.formats.word import extract_docx

        out = extract_docx(data, filename)
    elif kind == "doc":
        from corpus.formats.legacy_word import extract_doc

        out = extract_doc(data, filename)
    elif kind == "wordxml":
        from corpus.formats.wordxml import extract_wordxml

        out = extract_wordxml(data, filename)
    else:
        from corpus.formats.plain import extract_text

        out = extract_text(data, filename)
    if len(_LETTER.findall(out.text)) < MIN_TEXT_CHARS:
        raise FormatError("empty_extraction", filename, "没有提取到正文文字", "no text could be extracted")
    metadata = {**out.metadata, **find_policy_metadata(out.text)}
    regulation = find_regulation_metadata(out.text)
    if regulation:  # its name, meetings and dates from the text: never the file's properties or cover lines
        for key in NOT_FOR_REGULATIONS:
            metadata.pop(key, None)
        metadata.update(regulation)
    return Extracted(out.kind, out.text, out.spans, metadata)


def document_date(metadata: dict[str, str]) -> tuple[str | None, str]:
    """The date a document is cited with and the evidence: the issue date (成文日期) first, then the
    publication date, then a date in the page's metadata; for a regulation its 公布 date, else the date its
    version was passed (corpus.formats.regulation.cited_date). (None, "") when none is known."""
    if metadata.get("doc_type") == DOC_TYPE:
        return cited_date(metadata)
    for key, label in (("written_date", "成文日期"), ("published_date", "发布日期"), ("page_date", "网页元数据日期")):
        value = metadata.get(key)
        iso = iso_date(value) if value else None
        if iso:
            return iso, f"{label} {value}"
    return None, ""
