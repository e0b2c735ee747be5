"""Extraction figures: seed articles written out as real files by independent tools, extracted back.

    python -m corpus.formats.measure

For each format: the share of the seed article's body recovered (the seed's body lines, by sentences
found verbatim in the extraction) and the share of page chrome left in. The samples: an HTML page in GB18030 with
navigation, breadcrumbs, a related-news box and a footer; a DOCX written by python-docx (heading styles
and a table); a PDF printed by headless Chromium from an HTML page (one section per page, Chromium's own
running header and footer on). Tests (tests/test_formats.py) use the same builders.
"""

from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from corpus.documents import SEEDS_DIR, Document, load_document

CHROME = ("首页", "政务公开", "互动交流", "办事服务", "当前位置", "相关新闻", "江城区召开年度工作会议",
          "版权所有", "ICP备", "网站标识码", "联系电话", "打印本页", "关闭窗口")
_NORM = re.compile(r"[\s#|]+")
_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]?")


def seed(name: str) -> Document:
    return load_document(SEEDS_DIR / f"{name}.md")


def body_lines(doc: Document) -> list[tuple[int, str]]:
    """(heading level or 0, text) for each non-empty line of a seed body."""
    out = []
    for line in doc.raw.splitlines():
        s = line.strip()
        if s:
            level = len(s) - len(s.lstrip("#"))
            out.append((level, s.lstrip("#").strip()))
    return out


def norm(text: str) -> str:
    return _NORM.sub("", text)


def recovered(reference: str, extracted: str, min_len: int = 6) -> float:
    """Share of the reference's characters in sentences found verbatim (whitespace aside) in `extracted`."""
    got = norm(extracted)
    total = found = 0
    for sent in _SENTENCE.findall(reference):
        s = norm(sent)
        if len(s) < min_len:
            continue
        total += len(s)
        found += len(s) if s in got else 0
    return found / total if total else 0.0


def article_text(doc: Document) -> str:
    """The seed's article body: its lines without Markdown heading marks (the reference for recovery)."""
    return "\n".join(text for _, text in body_lines(doc))


def chrome_left(extracted: str, reference: str = "", chrome: tuple[str, ...] = CHROME) -> float:
    """Share of the chrome strings found in `extracted` (those the article itself contains don't count)."""
    pieces = [c for c in chrome if c not in reference]
    return sum(1 for c in pieces if c in extracted) / len(pieces)


def _paragraphs_html(doc: Document, page_break_before: int = 0) -> str:
    parts = []
    for level, text in body_lines(doc):
        t = html.escape(text)
        if level:
            style = ' style="break-before: page"' if page_break_before and level == page_break_before else ""
            parts.append(f"<h{level}{style}>{t}</h{level}>")
        else:
            parts.append(f"<p>{t}</p>")
    return "\n".join(parts)


def government_page(doc: Document, encoding: str = "gb18030") -> bytes:
    """A page as a local government site serves it: GB2312-labelled (GB18030 bytes), chrome all around."""
    page = f"""<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>{html.escape(doc.title)}_阳江市人民政府门户网站</title>
<meta name="ArticleTitle" content="{html.escape(doc.title)}">
<meta name="PubDate" content="2021-06-01 10:30">
<meta name="ContentSource" content="阳江市江城区委组织部">
</head><body>
<div class="top"><a href="/">首页</a> | <a href="/zwgk">政务公开</a> | <a href="/hdjl">互动交流</a> | <a href="/bsfw">办事服务</a></div>
<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="/zwgk">政务公开</a> &gt; 工作动态</div>
<div class="main"><div class="article">
{_paragraphs_html(doc)}
</div>
<div class="tools"><a href="javascript:window.print()">打印本页</a> <a href="javascript:window.close()">关闭窗口</a></div>
</div>
<div class="side"><h3>相关新闻</h3><ul>
<li><a href="/a">江城区召开年度工作会议部署全年重点任务</a></li>
<li><a href="/b">市领导调研城市基层党建工作并提出工作要求</a></li></ul></div>
<div class="footer"><p>版权所有：阳江市江城区人民政府办公室　主办单位：江城区政务服务数据管理局</p>
<p>粤ICP备12345678号　网站标识码4417020001</p><p>联系电话：0662-1234567</p></div>
</body></html>"""
    return page.encode(encoding)


def word_file(doc: Document, table: list[tuple[str, str]] | None = None) -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.title = doc.title
    for level, text in body_lines(doc):
        if level:
            d.add_heading(text, level=min(level, 9))
        else:
            d.add_paragraph(text)
    if table:
        t = d.add_table(rows=len(table), cols=2)
        for i, (a, b) in enumerate(table):
            t.cell(i, 0).text = a
            t.cell(i, 1).text = b
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def printed_pdf(doc: Document, page_break_level: int = 2, browser: str | None = None) -> bytes:
    """The seed article as an HTML page, printed to PDF by headless Chromium (header and footer on)."""
    browser = browser or chromium()
    if browser is None:
        raise RuntimeError("no chromium to print with")
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(doc.title)}</title>
<style>body {{ font-family: 'WenQuanYi Micro Hei', 'Noto Sans CJK SC', sans-serif; font-size: 11pt; }}</style>
</head><body>{_paragraphs_html(doc, page_break_level)}</body></html>"""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "article.html", Path(tmp) / "article.pdf"
        src.write_text(page, encoding="utf-8")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp}/profile",
                        f"--print-to-pdf={out}", src.as_uri()], check=True, capture_output=True, timeout=180)
        return out.read_bytes()


def figures() -> list[dict[str, object]]:
    from corpus.formats import extract

    rows: list[dict[str, object]] = []
    samples: list[tuple[str, str, bytes | None]] = []
    yj = seed("yangjiang-jiangcheng-urban-party-building-2021")
    samples.append(("html (GB18030, chrome)", "page.htm", government_page(yj)))
    samples.append(("docx (python-docx)", "article.docx", word_file(yj, [("指标", "数量"), ("党群服务中心", "30个")])))
    yj_pdf = printed_pdf(yj) if chromium() else None
    samples.append(("pdf (Chromium print)", "article.pdf", yj_pdf))
    sf = seed("jiangmen-strong-foundation-2024-09")
    samples.append(("html (GB18030, chrome)", "page2.htm", government_page(sf)))
    samples.append(("docx (python-docx)", "article2.docx", word_file(sf)))
    samples.append(("pdf (Chromium print)", "article2.pdf", printed_pdf(sf, 4) if chromium() else None))
    for label, name, data in samples:
        ref = sf if "2." in name else yj
        if data is None:
            rows.append({"format": label, "doc": ref.doc_id, "skipped": "no chromium"})
            continue
        ex = extract(data, name)
        reference = article_text(ref)
        rows.append({"format": label, "doc": ref.doc_id, "bytes": len(data), "chars": len(ex.text),
                     "body_recovered": round(recovered(reference, ex.text), 4),
                     "chrome_left": round(chrome_left(ex.text, reference), 4), "spans": len(ex.spans)})
    return rows


def main() -> None:
    for row in figures():
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
