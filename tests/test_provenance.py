"""Citations that lead back to the original (corpus/provenance.py, index documents.jsonl `origin`, the answer's
citations, GET /v1/documents/{doc_id}/original): uploaded files written from the seed articles by independent
tools (headless Chromium's --print-to-pdf, python-docx), stored as the service stores them, indexed with the real
model and answered by the real reader."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from corpus.cleaning import clean_document
from corpus.documents import load_corpus
from corpus.formats.measure import body_lines, chromium, printed_pdf, seed, word_file
from corpus.provenance import cleaned_origins, raw_provenance

YJ = "yangjiang-jiangcheng-urban-party-building-2021"
SF = "jiangmen-strong-foundation-2024-09"
POLICY_TAIL = "\n\n江门市人民政府办公室\n\n2021年6月18日\n"  # a notice's signature: issuer and 成文日期


def _add(corpus: Path, data: bytes, name: str, doc_id: str, **fields: str) -> None:
    from service.docstore import DocumentStore, prepare_from_file

    store = DocumentStore(corpus, corpus.parent / "corpus.lock")
    store.add(prepare_from_file(data, name, corpus, doc_id, **fields))


def test_cleaned_origins_follow_the_offset_map(tmp_path: Path) -> None:
    """Every cleaned character copied from the body has the page/section of the body character it copies."""
    corpus = tmp_path / "documents"
    _add(corpus, word_file(seed(SF)), "强基.docx", "sf-docx")
    doc = load_corpus(corpus).documents[0]
    clean = clean_document(doc)
    origin = cleaned_origins(doc, clean)
    raw = raw_provenance(doc)
    assert origin is not None and raw and origin.format == "docx" and origin.name == "强基.docx"
    checked = 0
    for cs, rs, n in clean.segments:
        for k in range(0, n, 7):
            span = next((s for s in raw if s[0] <= rs + k < s[1]), None)
            if span is None:
                continue
            assert origin.at(cs + k)["section"] == list(span[3]), (cs + k, clean.text[cs + k:cs + k + 20])
            checked += 1
    assert checked > 200
    assert cleaned_origins(load_corpus(Path(__file__).resolve().parent.parent / "corpus" / "seeds").documents[0],
                           clean) is None  # a Markdown document has no original


def test_a_provenance_map_for_other_content_is_ignored(tmp_path: Path) -> None:
    corpus = tmp_path / "documents"
    _add(corpus, word_file(seed(SF)), "a.docx", "sf-docx")
    prov = corpus / ".originals" / "sf-docx.provenance.json"
    data = json.loads(prov.read_text("utf-8"))
    data["original_sha256"] = "0" * 64
    prov.write_text(json.dumps(data), "utf-8")
    doc = load_corpus(corpus).documents[0]
    origin = cleaned_origins(doc, clean_document(doc))
    assert origin is not None and origin.spans == () and origin.at(5) == {"format": "docx"}


# --- end to end: a real generation, the real reader ----------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Any:
    if chromium() is None:
        pytest.skip("chromium is not installed")
    from service.engine import Engine
    from service.settings import Settings

    root = tmp_path_factory.mktemp("provenance")
    corpus = root / "documents"
    yj = seed(YJ)
    # a printed notice: each `##` section starts a new page, and the signature gives issuer and 成文日期
    pdf = printed_pdf(dataclasses.replace(yj, raw=yj.raw + POLICY_TAIL))
    _add(corpus, pdf, "江城党建.pdf", "yj-pdf", date="2021")  # the uploader's date; the notice's own is finer
    _add(corpus, word_file(seed(SF)), "强基工程.docx", "sf-docx")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", model_dir=model_dir,  # type: ignore[call-arg]
                        auto_rebuild=False)
    eng = Engine(settings)
    eng.build()
    eng.load()
    return eng


def _page_of(doc_raw_section: str) -> int:
    """Pages of the printed YJ article: the k-th `##` section starts page k + 1."""
    heads = [t for lv, t in body_lines(seed(YJ)) if lv == 2]
    return heads.index(doc_raw_section) + 2


def test_pdf_citation_names_its_page(engine: Any) -> None:
    from service.answering.compose import verify_citation

    ans = engine.answer("江城区有多少名党员登记为志愿者？")
    assert not ans.refused, ans.answer
    c = ans.citations[0]
    assert c.doc_id == "yj-pdf" and "1383" in c.quote
    doc = engine.index.documents["yj-pdf"]
    assert doc.text[c.start:c.end] == c.quote
    verify_citation(engine.index, c)
    assert c.origin["format"] == "pdf"
    assert c.origin["page"] == _page_of("优化组织重服务 基层治理活力旺") >= 2
    # the answer is dated by the notice's issue date (成文日期), not the upload date
    assert doc.date == "2021" and doc.extra["written_date"] == "2021-06-18" and c.date == "2021-06-18"
    assert ans.answer.startswith(f"据《{c.title}》（2021年6月18日）")
    from service.api.models import AskResult

    shown = AskResult.model_validate(ans.to_dict()).model_dump()["citations"][0]["origin"]
    assert shown["format"] == "pdf" and shown["page"] == c.origin["page"]


def test_pdf_quote_over_a_page_break_names_both_pages(engine: Any) -> None:
    doc = engine.index.documents["yj-pdf"]
    spans = doc.origin.spans
    pages = sorted({s[2] for s in spans})
    assert pages[0] == 1 and pages[-1] >= 4
    # a quote from the last characters of one page to the first of the next
    for a, b in itertools.pairwise(spans):
        if b[2] == a[2] + 1 and b[0] - a[1] <= 2:
            got = doc.origin_at(a[1] - 5, b[0] + 5)
            assert got["page"] == a[2] and got["pages"] == [a[2], b[2]]
            break
    else:  # pages only change at section headings here: a quote spanning two whole sections
        a = next(s for s in spans if s[2] == 2)
        b = next(s for s in spans if s[2] == 3)
        assert doc.origin_at(a[0], b[0] + 3) == {"format": "pdf", "page": 2, "pages": [2, 3],
                                                  **({"section": list(a[3])} if a[3] else {})}


def test_docx_citation_names_its_section(engine: Any) -> None:
    ans = engine.answer("今年暑运江门站共计到发旅客多少人次？")
    assert not ans.refused, ans.answer
    c = ans.citations[0]
    assert c.doc_id == "sf-docx" and "77.87万" in c.quote
    assert engine.index.documents["sf-docx"].text[c.start:c.end] == c.quote
    assert c.origin["format"] == "docx" and "page" not in c.origin
    assert c.origin["section"][-1] == "创历史新高 今年暑运江门站到发旅客近78万人次"
    assert c.origin["section"][0] == seed(SF).title


def test_docstore_shows_metadata_and_serves_the_original(engine: Any) -> None:
    from starlette.testclient import TestClient

    from service.api.app import create_app

    client = TestClient(create_app(engine.settings, engine), raise_server_exceptions=False)
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    pdf = listed["yj-pdf"]
    assert pdf["issuer"] == "江门市人民政府办公室" and pdf["written_date"] == "2021-06-18"
    assert pdf["original"] == {"format": "pdf", "name": "江城党建.pdf", "url": "/v1/documents/yj-pdf/original"}
    detail = client.get("/v1/documents/sf-docx").json()
    assert detail["original"]["format"] == "docx" and detail["doc_number"] is None
    r = client.get(pdf["original"]["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content == (engine.settings.corpus_dir / ".originals" / "yj-pdf.pdf").read_bytes()
    assert r.headers["x-content-type-options"] == "nosniff" and "inline" in r.headers["content-disposition"]
    r = client.get("/v1/documents/sf-docx/original")
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["content-disposition"] and r.headers["content-security-policy"] == "sandbox"
    for path, code in (("/v1/documents/no-such-doc/original", "document_not_found"),):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == code


def test_markdown_document_has_no_original(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from service.api.app import create_app
    from service.settings import Settings

    corpus = tmp_path / "documents"
    corpus.mkdir()
    src = Path(__file__).resolve().parent.parent / "corpus" / "seeds" / f"{YJ}.md"
    (corpus / src.name).write_bytes(src.read_bytes())
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")  # type: ignore[call-arg]
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    r = client.get(f"/v1/documents/{YJ}/original")
    body = r.json()
    assert r.status_code == 404 and body["error"]["code"] == "original_not_found"
    assert " / " in body["error"]["message"]
    listed = client.get("/v1/documents").json()["documents"][0]
    assert listed["original"] is None and listed["doc_number"] is None
