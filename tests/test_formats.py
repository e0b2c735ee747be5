"""Uploaded files in real formats, written from the seed articles by independent tools (Python's GB18030
codec, python-docx, headless Chromium, pypdf, Pillow, zipfile): extraction, provenance, metadata, bad input,
storage of the original, the upload dispatch and `policyqa corpus add`."""

from __future__ import annotations

import asyncio
import base64
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


def test_format_is_what_the_bytes_are() -> None:
    from corpus.formats import detect

    docx = word_file(seed(YJ))
    html = government_page(seed(YJ))
    pdf = _minimal_pdf()
    assert detect(pdf, "x.docx") == "pdf" and detect(pdf, "x.html") == "pdf"
    assert detect(docx, "x.pdf") == "docx" and detect(docx, "x.doc") == "docx"
    assert detect(html, "x.pdf") == "html" and detect(html, "x.txt") == "text"  # a .txt holding markup stays text
    ex = extract(html, "x.pdf")
    assert ex.kind == "html" and "江城区" in ex.text and "版权所有" not in ex.text
    assert extract(docx, "x.doc").text == extract(docx, "x.docx").text
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 600
    assert _code(png, "photo.pdf") == "unsupported_content"
    with pytest.raises(FormatError) as info:
        extract(png, "photo.doc")
    assert "image" in info.value.message_en and "图片" in info.value.message_zh
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes/readme.txt", "not a Word package")
    assert _code(buf.getvalue(), "archive.docx") == "unsupported_content"
    assert _code(bytes(range(256)) * 8, "random.doc") == "unsupported_content"
    # OLE2 bytes whose directory cannot be read: a damaged Word 97-2003 file
    assert _code(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.docx") == "corrupt_doc"
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
    from service.docstore import ORIGINALS_DIR, DocumentStore, prepare_from_file

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
    from service.docstore import prepare_from_file

    md = (Path(__file__).resolve().parent.parent / "corpus" / "seeds" / f"{YJ}.md").read_bytes()
    prepared = prepare_from_file(md, "x.md", tmp_path)
    assert prepared.data == md and prepared.original is None
    with pytest.raises(FormatError) as info:  # a PDF named .md is read as the PDF it is: a blank page
        prepare_from_file(_minimal_pdf(), "x.md", tmp_path)
    assert info.value.code == "scanned_pdf"


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
    p = run({"file": ("a.pdf", html, "application/pdf")})  # a web page saved as .pdf: read and kept as HTML
    assert p.document.extra["original_format"] == "html" and p.document.extra["original_name"] == "a.pdf"
    assert p.original is not None and p.original.suffix == ".html" and p.original.data == html
    with pytest.raises(FormatError) as info:
        run({"file": ("a.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "application/pdf")})
    assert info.value.code == "unsupported_content"
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
    bad.write_bytes(b"GIF89a" + bytes(range(256)))
    assert main(["corpus", "add", str(bad)]) == 1
    assert "unsupported_content" in capsys.readouterr().err


# --- Word files as they are found: .doc (OLE2), .docx, misnamed, one-file XML, damaged packages --------

REG = {  # real regulations (../shared/corpora/regulations/raw): file, what its bytes are, a sentence of it
    "ole2-doc": ("广东省__2021_江门市文明行为促进条例.doc", "doc", "第五十二条 本条例自2021年5月1日起施行。"),
    "docx": ("云南省__2019_曲靖市文明行为促进条例.docx", "docx", "第三十五条  本条例自2019年11月1日起施行。"),
    "zip-named-doc": ("云南省__2018_昆明市文明行为促进条例.doc", "docx", "第三十七条  本条例自2018年12月1日起施行。"),
    "ole2-named-docx": ("江苏省__2019_盐城市文明行为促进条例.docx", "doc", "第五十二条  本条例自2019年7月1日起施行。"),
    "flat-xml-doc": ("海南省__2020_海南省文明行为促进条例.doc", "wordxml", "第五十五条  本条例自2021年1月1日起施行。"),
    "damaged-docx": ("江西省__2020_九江市文明行为促进条例.docx", "docx", "第五十一条  本条例自2020年10月1日起施行。"),
}


def _regulation(name: str) -> bytes:
    from eval.rawfiles import shared_dir

    RAW = shared_dir() / "corpora" / "regulations" / "raw"

    path = RAW / name
    if not path.is_file():
        pytest.skip(f"the regulations corpus is not here ({RAW}): it lies in ../shared beside the clone")
    return path.read_bytes()


@pytest.mark.parametrize("case", sorted(REG))
def test_real_word_files_read_by_content(case: str) -> None:
    name, kind, sentence = REG[case]
    data = _regulation(name)
    ex = extract(data, name)
    assert ex.kind == kind
    assert sentence in ex.text
    assert ex.text.count("第二条") >= 1 and "\x07" not in ex.text and "\x13" not in ex.text
    span = ex.locate(ex.text.index(sentence))
    assert span is not None and span.page is None
    assert ex.metadata["effective_date"][:4] in sentence  # policy metadata is found in every kind


def test_real_flat_xml_keeps_headings() -> None:
    name = REG["flat-xml-doc"][0]
    ex = extract(_regulation(name), name)
    assert ex.text.startswith("# 海南省文明行为促进条例\n\n（2020年9月30日")
    assert _section_of(ex, "第五十五条") == ("海南省文明行为促进条例",)


def test_real_doc_stored_with_original_and_provenance(tmp_path: Path) -> None:
    from service.docstore import ORIGINALS_DIR, DocumentStore, prepare_from_file

    corpus = tmp_path / "documents"
    store = DocumentStore(corpus, tmp_path / "corpus.lock")
    for case, suffix in (("ole2-doc", ".doc"), ("zip-named-doc", ".docx"), ("ole2-named-docx", ".doc"),
                         ("flat-xml-doc", ".xml")):
        name, kind, sentence = REG[case]
        data = _regulation(name)
        doc = store.add(prepare_from_file(data, name, corpus))
        assert doc.extra["original_format"] == kind and doc.extra["original_name"] == name
        assert doc.extra["original"] == f"{ORIGINALS_DIR}/{doc.doc_id}{suffix}"  # stored under what it is
        assert (corpus / ORIGINALS_DIR / f"{doc.doc_id}{suffix}").read_bytes() == data
        prov = json.loads((corpus / ORIGINALS_DIR / f"{doc.doc_id}.provenance.json").read_text("utf-8"))
        assert prov["format"] == kind and prov["spans"] and sentence in doc.raw
    assert not load_corpus(corpus).problems


def _fib_at(data: bytes) -> int:
    """Where the WordDocument stream starts in the file: the sector that begins with a Word 97 FIB."""
    return next(i for i in range(0, len(data), 512) if data[i:i + 4] == b"\xec\xa5\xc1\x00")


def _ole_with_fib(data: bytes, patch: dict[int, bytes]) -> bytes:
    """`data` (a .doc) with bytes of its FIB replaced: offset in the WordDocument stream → new bytes."""
    at = _fib_at(data)
    out = bytearray(data)
    for off, value in patch.items():
        out[at + off:at + off + len(value)] = value
    return bytes(out)


def test_bad_doc_files() -> None:
    import struct

    name = REG["ole2-doc"][0]
    data = _regulation(name)
    assert _code(data[: len(data) // 3], "truncated.doc") == "corrupt_doc"
    assert _code(data[:1536], "header-only.doc") == "corrupt_doc"
    fib_flags = struct.unpack_from("<H", data, _fib_at(data) + 0x0A)[0]
    locked = _ole_with_fib(data, {0x0A: struct.pack("<H", fib_flags | 0x0100)})
    assert _code(locked, "locked.doc") == "encrypted_doc"
    no_text = _ole_with_fib(data, {0x4C: struct.pack("<I", 0)})  # ccpText = 0: a document without text
    assert _code(no_text, "blank.doc") == "empty_extraction"
    # the same compound file with its WordDocument stream renamed Workbook: an Excel 97-2003 file
    entry = data.index("WordDocument".encode("utf-16-le") + b"\x00\x00")
    xls = bytearray(data)
    xls[entry:entry + 64] = "Workbook".encode("utf-16-le").ljust(64, b"\x00")
    xls[entry + 64:entry + 66] = struct.pack("<H", 2 * (len("Workbook") + 1))
    with pytest.raises(FormatError) as info:
        extract(bytes(xls), "sheet.doc")
    assert info.value.code == "unsupported_content" and "Excel" in info.value.message_en


def test_damaged_doc_bytes_give_a_format_error_never_a_traceback() -> None:
    import random

    name = REG["ole2-doc"][0]
    data = _regulation(name)
    rng = random.Random(7)
    at = _fib_at(data)
    outcomes = set()
    for _ in range(60):  # bytes of the FIB and the sectors after it overwritten at random
        bad = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = at + rng.randrange(0, 1024) if rng.random() < 0.6 else rng.randrange(len(data))
            bad[pos] = rng.randrange(256)
        try:
            extract(bytes(bad), "damaged.doc")
            outcomes.add("read")
        except FormatError as exc:
            outcomes.add(exc.code)
    assert outcomes <= {"read", "corrupt_doc", "encrypted_doc", "empty_extraction", "unsupported_content",
                        "unsupported_doc_version"}


def test_piece_table_special_characters() -> None:
    from corpus.formats.legacy_word import Para, ParaProps, paragraphs

    text = ("第一章 总则\r"
            "见\x13 HYPERLINK \"http://x\" \x14《条例》\x15全文\x0b第二行\r"
            "\x01\x08图\x1e表\x1f\x02\x05\r"
            "甲\x07乙一\r乙二\x07\x07"
            "页末\x0c下页\r"
            "\x13 IF \x13 PAGE \x145\x15 = 5 \x14真\x15\x13 TOC \\o \x15\r")
    row_start, row_end = text.index("甲"), text.index("\x07\x07") + 1

    def props(cp: int) -> ParaProps:
        if cp == text.index("\r"):
            return ParaProps(level=1)  # a heading style
        return ParaProps(row_start <= cp <= row_end, cp == row_end)

    assert paragraphs(text, props) == [
        Para("第一章 总则", 1), Para("见《条例》全文\n第二行"), Para("图-表"),
        Para("甲 | 乙一 乙二", 0, ("甲", "乙一 乙二")), Para("页末"), Para("下页"), Para("真")]
    # without paragraph properties a cell mark right after a cell mark ends the row
    assert paragraphs("甲\x07乙\x07\x07后文\r", lambda cp: None) == [Para("甲 | 乙", 0, ("甲", "乙")), Para("后文")]


def _flat_opc(docx_bytes: bytes) -> bytes:
    """A .docx written as Word's one-file XML package (pkg:package), as Word saves "Word XML Document"."""
    parts = []
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as zf:
        for info in zf.infolist():
            raw = zf.read(info)
            ctype = ("application/vnd.openxmlformats-package.relationships+xml" if info.filename.endswith(".rels")
                     else "application/xml")
            if info.filename.endswith((".xml", ".rels")):
                body = raw.decode("utf-8")
                body = body.split("?>", 1)[1] if body.startswith("<?xml") else body
                data = f"<pkg:xmlData>{body}</pkg:xmlData>"
            else:  # the thumbnail: base64, as Word writes binary parts
                data = f"<pkg:binaryData>{base64.b64encode(raw).decode()}</pkg:binaryData>"
            parts.append(f'<pkg:part pkg:name="/{info.filename}" pkg:contentType="{ctype}">{data}</pkg:part>')
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<?mso-application progid="Word.Document"?>\n'
            '<pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage">'
            + "".join(parts) + "</pkg:package>").encode("utf-8")


def test_flat_xml_and_damaged_docx_read_like_the_docx() -> None:
    docx = word_file(seed(YJ), [("指标", "数量"), ("党群服务中心", "30个")])
    want = extract(docx, "a.docx")
    flat = extract(_flat_opc(docx), "a.doc")
    assert flat.kind == "wordxml" and flat.text == want.text and flat.spans == want.spans
    assert flat.metadata["title"] == want.metadata["title"]
    buf = io.BytesIO()  # a relationship to a part the zip lacks: python-docx refuses the package
    with zipfile.ZipFile(io.BytesIO(docx)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "_rels/.rels":
                body = body.replace(b"</Relationships>", b'<Relationship Id="rIdUI" Type="http://schemas.microsoft.'
                                    b'com/office/2006/relationships/ui/userCustomization" Target="userCustomization/'
                                    b'customUI.xml"/></Relationships>')
            dst.writestr(info, body)
    import docx as python_docx

    with pytest.raises(KeyError):
        python_docx.Document(io.BytesIO(buf.getvalue()))
    damaged = extract(buf.getvalue(), "a.docx")
    assert damaged.kind == "docx" and damaged.text == want.text and damaged.spans == want.spans
    assert _code(b'<?xml version="1.0"?>\n<pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/'
                 b'xmlPackage"></pkg:package>', "empty.doc") == "corrupt_wordxml"


def test_word_2003_xml() -> None:
    xml = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<?mso-application progid="Word.Document"?>
<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml"
 xmlns:wx="http://schemas.microsoft.com/office/word/2003/auxHint">
<w:styles><w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style></w:styles>
<w:body><wx:sect><w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>示例条例</w:t></w:r></w:p>
<w:p><w:r><w:t>第一条 为了规范文明行为，</w:t></w:r><w:r><w:t>制定本条例。</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>项目</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>罚款</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
</wx:sect></w:body></w:wordDocument>""".encode()
    ex = extract(xml, "示例.doc")
    assert ex.kind == "wordxml"
    assert ex.text == "# 示例条例\n\n第一条 为了规范文明行为，制定本条例。\n\n项目 | 罚款"
    assert _section_of(ex, "项目") == ("示例条例",)


def test_cli_corpus_add_word_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main

    monkeypatch.setenv("POLICYQA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("POLICYQA_CORPUS_DIR", raising=False)
    monkeypatch.delenv("POLICYQA_INDEX_DIR", raising=False)
    paths = []
    for case in ("ole2-doc", "zip-named-doc"):
        path = tmp_path / REG[case][0]
        path.write_bytes(_regulation(REG[case][0]))
        paths.append(str(path))
    rc = main(["corpus", "add", *paths, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert [json.loads(ln)["format"] for ln in out.out.splitlines()] == ["doc", "docx"]


def test_list_numbers_word_draws() -> None:
    from corpus.formats.legacy_word import Para, ParaProps, paragraphs
    from corpus.formats.numbering import Counter, Level, format_number

    assert [format_number(n, "chineseCounting") for n in (1, 10, 11, 20, 21, 100, 101, 110, 1001)] == [
        "一", "十", "十一", "二十", "二十一", "一百", "一百零一", "一百一十", "一千零一"]
    assert [format_number(n, f) for n, f in ((3, "upperRoman"), (28, "lowerLetter"), (2, "decimalEnclosedCircle"),
                                              (7, "decimalZero"), (3, "ideographTraditional"))] == [
        "III", "bb", "②", "07", "丙"]
    article = Level(1, "chineseCounting", ("第", 0, "条"), "space")
    item = Level(1, "chineseCounting", ("（", 1, "）"), "nothing")
    counter = Counter({"law": (article, item)})
    labels = [counter.label("law", lvl) for lvl in (0, 1, 1, 0, 1)]
    assert labels == ["第一条 ", "（一）", "（二）", "第二条 ", "（一）"]  # items start again under each article
    # in a .doc the paragraph mark says which list and level (sprmPIlfo / sprmPIlvl)
    counter = Counter({"law": (article, item)})
    text = "为了规范。\r下列行为：\r乱扔\r\r吐痰\r施行。\r"
    marks = [i for i, ch in enumerate(text) if ch == "\r"]  # the empty numbered paragraph still counts
    by_mark = dict(zip(marks, [ParaProps(ilfo=1, ilvl=0), ParaProps(ilfo=1, ilvl=0), ParaProps(ilfo=1, ilvl=1),
                               ParaProps(ilfo=1, ilvl=1), ParaProps(ilfo=1, ilvl=1), ParaProps()], strict=True))

    def props(cp: int) -> ParaProps:
        return by_mark[cp]

    assert paragraphs(text, props, lambda p: counter.label("law", p.ilvl)) == [
        Para("第一条 为了规范。"), Para("第二条 下列行为："), Para("（一）乱扔"), Para("（三）吐痰"), Para("施行。")]
    # a .docx whose list style numbers its paragraphs (python-docx's own template: "List Number" is 1. 2. 3.)
    import docx as python_docx

    d = python_docx.Document()
    for t in ("第一段文字内容", "第二段文字内容", "第三段文字内容"):
        d.add_paragraph(t, style="List Number")
    buf = io.BytesIO()
    d.save(buf)
    assert extract(buf.getvalue(), "list.docx").text.split("\n\n") == [
        "1. 第一段文字内容", "2. 第二段文字内容", "3. 第三段文字内容"]


@pytest.mark.parametrize(("name", "sentences"), [
    ("广东省__2020_深圳经济特区文明行为条例.doc", ["第一条 为了加快推进城市文明建设", "第七十四条 本条例自2020年3月1日起施行"]),
    ("黑龙江省__2023_大庆市文明行为促进条例.docx", ["（四）出租车不得拒载、甩客", "（一）从事政务服务的单位制定文明服务规范"]),
])
def test_real_numbered_articles_and_items(name: str, sentences: list[str]) -> None:
    text = extract(_regulation(name), name).text
    for sentence in sentences:
        assert sentence in text


def test_docx_text_inside_smart_tags_and_content_controls() -> None:
    import docx as python_docx
    from docx.oxml import parse_xml

    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    d = python_docx.Document()
    p = d.add_paragraph("（")
    p._p.append(parse_xml(f'<w:smartTag {w} w:uri="urn:schemas-microsoft-com:office:smarttags" w:element="chsdate">'
                          "<w:r><w:t>2017年11月23日</w:t></w:r></w:smartTag>"))
    p._p.append(parse_xml(f"<w:sdt {w}><w:sdtContent><w:r><w:t>抚州市人民代表大会常务委员会通过</w:t></w:r>"
                          "</w:sdtContent></w:sdt>"))
    p._p.append(parse_xml(f"<w:r {w}><w:t>）</w:t></w:r>"))
    assert p.text == "（）"  # python-docx alone loses both
    buf = io.BytesIO()
    d.save(buf)
    assert extract(buf.getvalue(), "tags.docx").text == "（2017年11月23日抚州市人民代表大会常务委员会通过）"
    name = "江西省__2018_抚州市文明行为促进条例.docx"  # the real file: a chsdate smart tag in its passing line
    assert "（2017年11月23日抚州市第四届人民代表大会常务" in extract(_regulation(name), name).text
