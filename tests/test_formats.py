"""Uploaded files in real formats, written from the seed articles by independent tools (Python's GB18030
codec, python-docx, headless Chromium, pypdf, Pillow, zipfile): extraction, provenance, metadata, bad input,
storage of the original, the upload dispatch and `policyqa corpus add`."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest

from corpus.documents import DocumentError, load_corpus, parse_document
from corpus.formats import FormatError, extract
from corpus.formats.measure import (
    article_text,
    body_lines,
    chrome_left,
    chromium,
    government_page,
    printed_pdf,
    recovered,
    seed,
    word_file,
)
from corpus.formats.policy import find_policy_metadata, iso_date

YJ = "yangjiang-jiangcheng-urban-party-building-2021"
SF = "jiangmen-strong-foundation-2024-09"
needs_chromium = pytest.mark.skipif(chromium() is None, reason="chromium is not installed")


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    if chromium() is None:
        pytest.skip("chromium is not installed")
    return printed_pdf(seed(YJ))  # each `##` section starts a new page


def _section_of(ex, needle: str) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    pos = ex.text.index(needle)
    span = ex.locate(pos)
    assert span is not None
    return span.section


# --- HTML ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [YJ, SF])
def test_html_gb18030_page_keeps_the_article_and_drops_chrome(name: str) -> None:
    doc = seed(name)
    data = government_page(doc)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really GB18030 bytes
    ex = extract(data, "notice.htm")
    ref = article_text(doc)
    assert recovered(ref, ex.text) >= 0.95
    assert chrome_left(ex.text, ref) == 0.0
    assert ex.metadata["title"] == doc.title
    assert ex.metadata["source"] == "阳江市江城区委组织部"
    assert ex.metadata["page_date"].startswith("2021-06-01")


def test_html_headings_become_sections() -> None:
    doc = seed(YJ)
    ex = extract(government_page(doc), "page.html")
    heads = [t for lv, t in body_lines(doc) if lv == 2]
    assert [ln[3:] for ln in ex.text.splitlines() if ln.startswith("## ")] == heads
    first_para_after = next(t for i, (lv, t) in enumerate(body_lines(doc))
                            if lv == 0 and any(x[1] == heads[1] for x in body_lines(doc)[:i]))
    assert _section_of(ex, first_para_after[:20]) == (doc.title, heads[1])


def test_html_utf8_policy_notice_metadata() -> None:
    page = """<html><head><meta charset="utf-8"><title>江门市人民政府关于印发某某办法的通知</title></head><body>
    <div class="nav"><a href="/">首页</a><a href="/zc">政策文件</a></div>
    <div class="content"><table class="info">
    <tr><td>索引号</td><td>007024818/2024-00012</td><td>分类</td><td>综合政务</td></tr>
    <tr><td>发布机构</td><td>江门市人民政府办公室</td><td>成文日期</td><td>2024-01-15</td></tr>
    <tr><td>发文字号</td><td>江府〔2024〕12号</td><td>发布日期</td><td>2024年1月18日</td></tr></table>
    <h1>江门市人民政府关于印发某某办法的通知</h1>
    <p>江府〔2024〕12号</p>
    <p>各市、区人民政府，市政府各部门、各直属机构：现将《江门市某某管理办法》印发给你们，请认真贯彻执行。执行中遇到的问题，请径向市有关部门反映。</p>
    <p>本办法自2024年3月1日起施行，有效期5年。</p>
    <p>江门市人民政府</p><p>2024年1月15日</p></div>
    <div class="footer">版权所有 江门市人民政府</div></body></html>"""
    ex = extract(page.encode("utf-8"), "notice.html")
    meta = ex.metadata
    assert meta["doc_number"] == "江府〔2024〕12号"
    assert meta["written_date"] == "2024-01-15"
    assert meta["published_date"] == "2024-01-18"
    assert meta["effective_date"] == "2024-03-01"
    assert meta["issuer"] in ("江门市人民政府办公室", "江门市人民政府")
    assert meta["validity"].startswith("5年")
    assert "请认真贯彻执行" in ex.text and "版权所有" not in ex.text


def test_policy_metadata_from_plain_text() -> None:
    text = ("粤府办〔2023〕5号\n\n广东省人民政府办公厅关于某事项的通知\n\n各地级以上市人民政府：\n\n"
            "一、总体要求。本通知自印发之日起施行。\n\n广东省人民政府办公厅\n二〇二三年三月十日\n")
    meta = find_policy_metadata(text)
    assert meta["doc_number"] == "粤府办〔2023〕5号"
    assert meta["written_date"] == "2023-03-10"
    assert meta["issuer"] == "广东省人民政府办公厅"
    assert iso_date("2024年2月30日") is None and iso_date("2024-1-5") == "2024-01-05"


# --- DOCX ---------------------------------------------------------------------------------------------


def test_docx_headings_and_table() -> None:
    doc = seed(YJ)
    data = word_file(doc, [("指标", "数量"), ("党群服务中心", "30个"), ("网格党小组", "50个")])
    ex = extract(data, "article.docx")
    assert recovered(article_text(doc), ex.text) >= 0.95
    assert ex.metadata["title"] == doc.title
    heads = [t for lv, t in body_lines(doc) if lv == 2]
    assert [ln[3:] for ln in ex.text.splitlines() if ln.startswith("## ")] == heads
    assert "党群服务中心 | 30个" in ex.text.splitlines()
    assert _section_of(ex, "党群服务中心 | 30个") == (doc.title, heads[-1])


# --- PDF ----------------------------------------------------------------------------------------------


@needs_chromium
def test_pdf_printed_by_chromium_pages_and_body(pdf_bytes: bytes) -> None:
    doc = seed(YJ)
    ex = extract(pdf_bytes, "article.pdf")
    assert recovered(article_text(doc), ex.text) >= 0.95
    assert int(ex.metadata["pages"]) >= 4
    assert "file://" not in ex.text and "article.html" not in ex.text  # Chromium's running footer
    # the truth: section k (the k-th `##`) was forced onto page k+1; its sentences must map there
    page = 1
    checked = 0
    for level, text in body_lines(doc):
        if level == 2:
            page += 1
        if level or len(text) < 30:
            continue
        needle = text[:25]
        offset = ex.text.find(needle)
        assert offset >= 0 and ex.text.count(needle) == 1, needle
        span = ex.locate(offset)
        assert span is not None and span.page == page, (needle, span, page)
        checked += 1
    assert checked >= 10


@needs_chromium
def test_pdf_multi_page_paragraphs_map_to_several_pages() -> None:
    doc = seed(SF)
    ex = extract(printed_pdf(doc, page_break_level=0), "long.pdf")  # flows over pages freely
    assert recovered(article_text(doc), ex.text) >= 0.95
    pages = [s.page for s in ex.spans]
    assert pages == sorted(pages) and pages[0] == 1 and pages[-1] == int(ex.metadata["pages"]) >= 3


# --- bad input ----------------------------------------------------------------------------------------


def _code(data: bytes, name: str) -> str:
    with pytest.raises(FormatError) as info:
        extract(data, name)
    err = info.value
    assert name in err.message_en and name in err.message_zh
    return err.code


def _minimal_pdf(encrypt: bool = False) -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(200, 200)
    if encrypt:
        w.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_wrong_extension_and_unsupported() -> None:
    docx = word_file(seed(YJ))
    html = government_page(seed(YJ))
    pdf = _minimal_pdf()
    assert _code(pdf, "x.docx") == "extension_mismatch"
    assert _code(docx, "x.pdf") == "extension_mismatch"
    assert _code(html, "x.pdf") == "extension_mismatch"
    assert _code(pdf, "x.html") == "extension_mismatch"
    assert _code(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.docx") == "extension_mismatch"
    assert _code(b"hello", "x.exe") == "unsupported_format"
    assert _code(b"", "empty.pdf") == "empty_file"
    assert _code(b"  \n", "empty.txt") == "empty_file"


def test_bad_pdfs(pdf_or_minimal: bytes) -> None:
    assert _code(pdf_or_minimal[: len(pdf_or_minimal) // 2], "truncated.pdf") == "corrupt_pdf"
    assert _code(b"%PDF-1.7\n garbage garbage\n%%EOF\n", "garbage.pdf") in ("corrupt_pdf", "empty_extraction")
    assert _code(_minimal_pdf(encrypt=True), "locked.pdf") == "encrypted_pdf"
    assert _code(_minimal_pdf(), "blank.pdf") == "scanned_pdf"


def test_scanned_pdf_is_refused_not_empty() -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(img).text((20, 80), "scanned page, no text layer", fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PDF")
    with pytest.raises(FormatError) as info:
        extract(buf.getvalue(), "scan.pdf")
    assert info.value.code == "scanned_pdf" and "scanned PDF: no text layer" in info.value.message_en


@pytest.fixture
def pdf_or_minimal() -> bytes:
    return printed_pdf(seed(YJ)) if chromium() else _minimal_pdf()


def test_zip_bomb_and_broken_docx() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w") as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(110):  # 110 MiB of zeros, ~110 KiB compressed
                f.write(chunk)
    bomb = buf.getvalue()
    assert len(bomb) < 1_000_000
    assert _code(bomb, "bomb.docx") == "docx_too_large"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/other.xml", "<x/>")
    assert _code(buf.getvalue(), "nodoc.docx") == "corrupt_docx"
    assert _code(word_file(seed(YJ))[:3000], "cut.docx") == "corrupt_docx"


def test_empty_extraction() -> None:
    page = b"<html><body><div class='nav'><a href='/'>home</a></div><footer>(c)</footer></body></html>"
    assert _code(page, "chrome-only.html") == "empty_extraction"
    import docx

    d = docx.Document()
    buf = io.BytesIO()
    d.save(buf)
    assert _code(buf.getvalue(), "blank.docx") == "empty_extraction"


# --- storage, upload dispatch, CLI ------------------------------------------------------------------


def test_stored_document_original_and_provenance(tmp_path: Path) -> None:
    from service.documents_api import ORIGINALS_DIR, DocumentStore, prepare_from_file

    doc = seed(YJ)
    data = word_file(doc)
    corpus = tmp_path / "documents"
    prepared = prepare_from_file(data, "党建.docx", corpus, source="测试来源")
    store = DocumentStore(corpus, tmp_path / "corpus.lock")
    stored = store.add(prepared)
    assert prepared.original is not None
    assert (corpus / f"{stored.doc_id}.md").is_file()
    original = corpus / ORIGINALS_DIR / f"{stored.doc_id}.docx"
    assert original.read_bytes() == data  # never modified
    loaded = load_corpus(corpus)
    assert [d.doc_id for d in loaded.documents] == [stored.doc_id] and not loaded.problems
    again = loaded.documents[0]
    assert again.title == doc.title and again.source == "测试来源"
    assert again.date == "" and not again.date_inferred  # the file states no date: none is made up
    assert again.extra["original"] == f"{ORIGINALS_DIR}/{stored.doc_id}.docx"
    prov = json.loads((corpus / ORIGINALS_DIR / f"{stored.doc_id}.provenance.json").read_text("utf-8"))
    assert prov["format"] == "docx" and prov["original_sha256"] == again.extra["original_sha256"]
    heads = [t for lv, t in body_lines(doc) if lv == 2]
    pos = again.raw.index("## " + heads[0])
    span = next(s for s in prov["spans"] if s["start"] <= pos < s["end"])
    assert span["section"] == [doc.title, heads[0]]
    # deleting takes the original and its provenance along into the trash
    store.delete(stored.doc_id)
    assert list((corpus / ORIGINALS_DIR).iterdir()) == []
    assert len(list((corpus / ".trash").iterdir())) == 3


def test_markdown_upload_unchanged(tmp_path: Path) -> None:
    from service.documents_api import prepare_from_file

    md = (Path(__file__).resolve().parent.parent / "corpus" / "seeds" / f"{YJ}.md").read_bytes()
    prepared = prepare_from_file(md, "x.md", tmp_path)
    assert prepared.data == md and prepared.original is None
    with pytest.raises(FormatError) as info:
        prepare_from_file(_minimal_pdf(), "x.md", tmp_path)
    assert info.value.code == "extension_mismatch"


def _multipart(files: dict, data: dict) -> tuple[bytes, str]:  # type: ignore[type-arg]
    req = httpx.Request("POST", "http://test/v1/documents", files=files, data=data)
    return req.read(), req.headers["content-type"]


def test_prepare_upload_dispatches_on_extension(tmp_path: Path) -> None:
    from starlette.requests import Request

    from service.api.errors import ApiError
    from service.api.uploads import prepare_upload

    def run(files: dict, data: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
        body, ctype = _multipart(files, data or {})
        scope = {"type": "http", "method": "POST", "path": "/v1/documents", "query_string": b"",
                 "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]}

        async def receive() -> dict:  # type: ignore[type-arg]
            return {"type": "http.request", "body": body, "more_body": False}

        return asyncio.run(prepare_upload(Request(scope, receive), body, tmp_path, 10_000_000))

    doc = seed(YJ)
    html = government_page(doc)
    p = run({"file": ("page.htm", html, "text/html")}, {"title": "覆盖标题", "date": "2021-07"})
    assert p.original is not None and p.original.data == html and p.original.suffix == ".htm"
    assert p.document.title == "覆盖标题" and p.document.date == "2021-07"
    assert p.document.extra["original_format"] == "html"
    assert parse_document(p.data, tmp_path / "x.md").raw == p.document.raw
    p = run({"file": ("a.docx", word_file(doc), "application/octet-stream")}, {"doc_id": "yj-docx"})
    assert p.document.doc_id == "yj-docx" and p.document.date == "" and not p.document.date_inferred
    with pytest.raises(FormatError) as info:
        run({"file": ("a.pdf", html, "application/pdf")})
    assert info.value.code == "extension_mismatch"
    with pytest.raises((DocumentError, ApiError)):
        run({"file": ("a.docx", word_file(doc), "application/octet-stream")}, {"date": "2021-13-01"})


def test_cli_corpus_add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main

    monkeypatch.setenv("POLICYQA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("POLICYQA_CORPUS_DIR", raising=False)
    monkeypatch.delenv("POLICYQA_INDEX_DIR", raising=False)
    page = tmp_path / "page.html"
    page.write_bytes(government_page(seed(YJ)))
    word = tmp_path / "article.docx"
    word.write_bytes(word_file(seed(SF)))
    rc = main(["corpus", "add", str(page), str(word), "--source", "命令行测试", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    rows = [json.loads(ln) for ln in out.out.splitlines()]
    assert [r["format"] for r in rows] == ["html", "docx"]
    corpus = tmp_path / "data" / "documents"
    loaded = load_corpus(corpus)
    ids = {d.doc_id for d in loaded.documents}
    assert {r["doc_id"] for r in rows} <= ids and YJ in ids  # the seeds were copied first, as the service does
    assert not loaded.problems
    added = loaded.by_id()[rows[0]["doc_id"]]
    assert added.source == "命令行测试" and added.date == "2021-06-01" and not added.date_inferred
    # the same file again: refused as duplicate content, exit code 1, nothing else written
    before = sorted(p.name for p in corpus.rglob("*"))
    assert main(["corpus", "add", str(page)]) == 1
    assert "duplicate_content" in capsys.readouterr().err
    assert sorted(p.name for p in corpus.rglob("*")) == before
    bad = tmp_path / "fake.pdf"
    bad.write_bytes(b"<html><body>not a pdf</body></html>")
    assert main(["corpus", "add", str(bad)]) == 1
    assert "extension_mismatch" in capsys.readouterr().err
