"""HTML pages: charset detection, main content (trafilatura decides which text is the article), the
page's own structure kept (headings → `#` sections, data tables → text rows), metadata from the page.

trafilatura is good at telling article text from navigation, footers and link lists, but its output loses
headings on some page layouts (measured on a seed article wrapped in `<div class="article">`). So the page
is walked here in document order and each line is kept when trafilatura kept it; the headings and data
tables inside the container that holds the kept text are kept as well, so sections survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from corpus.formats.base import Extracted, FormatError, TextBuilder
from corpus.formats.plain import decode

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_WS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
DROP_TAGS = {"script", "style", "noscript", "template", "iframe", "svg", "button", "select", "option", "form",
             "nav", "aside", "footer", "input", "textarea", "object", "embed", "canvas", "map"}
BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "li", "ul", "ol", "dl", "dt", "dd",
              "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "td", "th", "tbody",
              "thead", "tfoot", "caption", "figure", "figcaption", "center", "hr", "address", "body", "html"}
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# meta names used by Chinese government sites (and the common Open Graph / Dublin Core ones)
_META_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("articletitle", "og:title", "dc.title", "title"),
    "date": ("pubdate", "publishdate", "article:published_time", "dc.date", "firstpublishedtime", "date"),
    "source": ("contentsource", "source", "og:site_name", "sitename", "author"),
    "url": ("og:url", "url"),
}


@dataclass
class _Line:
    text: str
    heading: int  # 1-6, or 0 for body text
    element: Any  # the nearest block element (for the content container)
    table_row: bool = False
    links: int = 0  # characters inside <a>


def _norm(text: str) -> str:
    return _WS.sub("", text)


def _is_data_table(table: Any) -> bool:
    return not table.xpath(".//table|.//p|.//div|.//ul|.//h1|.//h2|.//h3|.//h4")


class _Walker:
    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self._buf: list[str] = []
        self._links = 0

    def flush(self, element: Any, heading: int = 0, table_row: bool = False) -> None:
        text = " ".join("".join(self._buf).split())
        if text:
            self.lines.append(_Line(text, heading, element, table_row, self._links))
        self._buf.clear()
        self._links = 0

    def text(self, s: str | None, in_link: bool) -> None:
        if s:
            self._buf.append(s)
            if in_link:
                self._links += len(_norm(s))

    def walk(self, el: Any, block: Any, in_link: bool = False) -> None:
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if not tag:  # a comment or processing instruction: only its tail is text
            self.text(el.tail, in_link)
            return
        if tag in DROP_TAGS:
            self.text(el.tail, in_link)
            return
        if tag == "br":
            self.flush(block)
            self.text(el.tail, in_link)
            return
        if tag == "table" and _is_data_table(el):
            self.flush(block)
            for tr in el.iter("tr"):
                cells = [" ".join(td.text_content().split()) for td in tr if isinstance(td.tag, str)
                         and td.tag.lower() in ("td", "th")]
                cells = [c for c in cells if c]
                if cells:
                    self._buf.append(" | ".join(cells))
                    self.flush(el, table_row=True)
            self.text(el.tail, in_link)
            return
        is_block = tag in BLOCK_TAGS
        if is_block:
            self.flush(block)
            block = el
        link = in_link or tag == "a"
        self.text(el.text, link)
        for child in el:
            self.walk(child, block, link)
        if is_block:
            self.flush(block, HEADINGS.get(tag, 0))
        self.text(el.tail, in_link)


def _meta(root: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for m in root.iter("meta"):
        name = (m.get("name") or m.get("property") or m.get("itemprop") or "").strip().lower()
        content = " ".join((m.get("content") or "").split())
        if name and content and name not in found:
            found[name] = content
    out: dict[str, str] = {}
    for key, names in _META_KEYS.items():
        for n in names:
            if found.get(n):
                out[key] = found[n]
                break
    return out


def _common_ancestor(elements: list[Any]) -> Any:
    paths = []
    for el in elements:
        chain = [el, *el.iterancestors()]
        paths.append(chain[::-1])
    common = None
    for level in zip(*paths, strict=False):
        if all(x is level[0] for x in level):
            common = level[0]
        else:
            break
    return common


def _inside(el: Any, container: Any) -> bool:
    return el is container or any(a is container for a in el.iterancestors())


def extract_html(data: bytes, filename: str) -> Extracted:
    import lxml.html
    import trafilatura

    m = _META_CHARSET.search(data[:4096])
    text, _ = decode(data, filename, m.group(1).decode("ascii", "ignore") if m else None)
    text = _XML_DECL.sub("", text)
    try:
        root = lxml.html.document_fromstring(text)
    except Exception as exc:  # lxml raises ParserError / ValueError on pages with no elements
        raise FormatError("bad_html", filename, f"HTML 无法解析：{exc}", f"cannot parse the HTML: {exc}") from exc

    meta = _meta(root)
    page_title = " ".join((root.findtext(".//title") or "").split())
    kept_text = trafilatura.extract(text, output_format="txt", include_tables=True, include_comments=False,
                                    favor_recall=True, deduplicate=False) or ""
    try:
        tmeta = trafilatura.extract_metadata(text)
    except Exception:  # pragma: no cover - metadata is a bonus, never a reason to refuse the page
        tmeta = None

    body = root.find("body")
    walker = _Walker()
    walker.walk(body if body is not None else root, body if body is not None else root)
    walker.flush(root)
    lines = walker.lines

    kept_lines = {_norm(ln) for ln in kept_text.splitlines() if _norm(ln)}
    kept_all = _norm(kept_text)

    def trafilatura_kept(line: _Line) -> bool:
        n = _norm(line.text)
        return n in kept_lines or (len(n) >= 12 and n in kept_all)

    kept = [ln for ln in lines if trafilatura_kept(ln)]
    if kept:
        container = _common_ancestor([ln.element for ln in kept])
        keep = {id(ln) for ln in kept}
        for ln in lines:  # headings and data-table rows of the article (trafilatura drops some headings)
            if (ln.heading or ln.table_row) and _inside(ln.element, container) and ln.links * 2 < len(_norm(ln.text)):
                keep.add(id(ln))
        chosen = [ln for ln in lines if id(ln) in keep]
    else:  # trafilatura found no article: keep the lines that are mostly not links
        chosen = [ln for ln in lines if ln.links * 2 < len(_norm(ln.text)) and len(_CJK.findall(ln.text)) >= 2]

    title = meta.get("title") or (tmeta.title if tmeta is not None and tmeta.title else "") or page_title
    b = TextBuilder()
    for ln in chosen:
        if ln.heading:
            b.heading(ln.text, ln.heading)
        else:
            b.block([(ln.text, None)])
    metadata: dict[str, str] = {}
    if title:
        metadata["title"] = title
    date = meta.get("date") or (tmeta.date if tmeta is not None and tmeta.date else "")
    if date:
        metadata["page_date"] = date
    source = meta.get("source") or (tmeta.sitename if tmeta is not None and tmeta.sitename else "")
    if source:
        metadata["source"] = source
    url = meta.get("url") or (tmeta.url if tmeta is not None and tmeta.url else "")
    if url:
        metadata["url"] = url
    if page_title:
        metadata["page_title"] = page_title
    return b.build("html", metadata)
