"""Uploading documents as people have them, over HTTP to a real server: a government web page in GB18030, a
PDF printed by headless Chromium, a Word file written by python-docx and a scanned page (an image of text).
Each file is made here from a seed article by those independent tools; the seed itself is left out of the
server's corpus, so the upload is the only copy. A question whose answer is inside must cite the upload,
the quote must be the document's text at its offsets, and the citation must name the right page or section.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, LiveServer, make_workspace, running
from pypdf import PdfReader

from corpus.formats.measure import chromium, government_page, printed_pdf, seed, word_file

HTML_SEED = "yangjiang-jiangcheng-urban-party-building-2021"
PDF_SEED = "jianghai-party-building-2022-09-26"
DOCX_SEED = "jiangmen-strong-foundation-2024-09"

pytestmark = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (the PDF is printed by it)")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ws = make_workspace(tmp_path_factory.mktemp("uploads"))
    for name in (HTML_SEED, PDF_SEED, DOCX_SEED):
        (ws.corpus_dir / f"{name}.md").unlink()
    with running(LiveServer(ws, ws.env(POLICYQA_REBUILD_DELAY_S="0.5"), name="uploads")) as server:
        yield server


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _pdf_page_of(pdf: bytes, quote: str) -> int:
    """The page (1-based) whose text layer holds the start of `quote`, read by pypdf on its own."""
    head = _norm(quote)[:12]
    pages = [_norm(p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf)).pages]
    found = [i + 1 for i, text in enumerate(pages) if head in text]
    assert found, f"{head!r} is on no page"
    return found[0]


def _upload(admin: httpx.Client, name: str, data: bytes, ctype: str, doc_id: str) -> dict[str, Any]:
    r = admin.post("/v1/documents", files={"file": (name, data, ctype)}, data={"doc_id": doc_id})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _wait_indexed(client: httpx.Client, doc_ids: set[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {d["doc_id"]: d["state"] for d in client.get("/v1/documents").json()["documents"]}
        if all(states.get(i) == "indexed" for i in doc_ids):
            return
        time.sleep(0.5)
    raise AssertionError(f"not indexed in {timeout}s: {states}")


def _cited(client: httpx.Client, question: str, doc_id: str, expected: str) -> dict[str, Any]:
    """The citation of `doc_id` that holds `expected`, checked against the document's text."""
    ans = client.post("/v1/ask", json={"question": question}).json()
    assert not ans["refused"], ans
    assert expected in (ans["short_answer"] or "") + ans["answer"], ans["answer"]
    text = client.get(f"/v1/documents/{doc_id}").json()["text"]
    mine = [c for c in ans["citations"] if c["doc_id"] == doc_id]
    assert mine, ans["citations"]
    for c in mine:
        assert text[c["start"]:c["end"]] == c["quote"]
    holding = [c for c in mine if expected in c["quote"]]
    assert holding, mine
    return holding[0]


def test_each_format_over_http_cites_the_right_place(live: LiveServer) -> None:
    pdf = printed_pdf(seed(PDF_SEED))
    page = government_page(seed(HTML_SEED), encoding="gb18030")
    docx = word_file(seed(DOCX_SEED))
    with live.client() as client, live.client(ADMIN_TOKEN) as admin:
        before = {d["doc_id"] for d in client.get("/v1/documents").json()["documents"]}
        _upload(admin, "jianghai.html", page, "text/html", "up-html")
        _upload(admin, "strong-foundation.pdf", pdf, "application/pdf", "up-pdf")
        _upload(admin, "jiangcheng.docx", docx,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "up-docx")
        _wait_indexed(client, {"up-html", "up-pdf", "up-docx"})
        assert {d["doc_id"] for d in client.get("/v1/documents").json()["documents"]} == before | {
            "up-html", "up-pdf", "up-docx"}

        c = _cited(client, "江海区村级党组织书记小微权力正负面清单明确了多少项权责？", "up-pdf", "93项")
        assert c["origin"]["format"] == "pdf"
        assert c["origin"]["page"] == _pdf_page_of(pdf, c["quote"]) >= 2
        original = client.get("/v1/documents/up-pdf/original")
        assert original.status_code == 200 and original.content == pdf  # stored byte for byte

        c = _cited(client, "江城区有多少名党员登记为志愿者？", "up-html", "1383")
        assert c["origin"] == {"format": "html", "section": [*_headings_above(HTML_SEED, "1383")]}

        c = _cited(client, "暑假期间台山岛航线每天有多少艘高速客船往返？", "up-docx", "21艘")
        assert c["origin"]["format"] == "docx"
        assert c["origin"]["section"][-1] == _headings_above(DOCX_SEED, "21艘")[-1]


def _headings_above(name: str, needle: str) -> list[str]:
    """The heading trail above `needle` in the seed article (Markdown headings by level)."""
    trail: dict[int, str] = {}
    for line in seed(name).raw.splitlines():
        if needle in line:
            return [trail[level] for level in sorted(trail)]
        m = re.match(r"^(#+)\s+(.*)$", line)
        if m:
            level = len(m.group(1))
            trail = {k: v for k, v in trail.items() if k < level}
            trail[level] = m.group(2).strip()
    raise AssertionError(f"{needle!r} not in {name}")

def test_a_scanned_pdf_is_refused_and_nothing_is_stored(live: LiveServer) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1200, 400), "white")
    ImageDraw.Draw(img).text((40, 180), "Jiangmen 2026: 12 new service stations (scanned page)", fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PDF")
    corpus = live.workspace.corpus_dir
    files_before = sorted(p.name for p in corpus.rglob("*") if p.is_file())
    with live.client() as client, live.client(ADMIN_TOKEN) as admin:
        listed_before = client.get("/v1/documents").json()["documents"]
        r = admin.post("/v1/documents", files={"file": ("scan.pdf", buf.getvalue(), "application/pdf")})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert set(r.json()) == {"error"} and err["code"] == "scanned_pdf"
        assert "scan.pdf" in err["message"] and "扫描" in err["message"]
        assert client.get("/v1/documents").json()["documents"] == listed_before
    assert sorted(p.name for p in corpus.rglob("*") if p.is_file()) == files_before



def test_a_word_97_2003_file_named_docx_is_read_cited_and_served_as_msword(live: LiveServer) -> None:
    from eval.rawfiles import shared_dir

    RAW = shared_dir() / "corpora" / "regulations" / "raw"

    path = RAW / "江苏省__2019_盐城市文明行为促进条例.docx"  # a Word 97-2003 (OLE2) file named .docx
    if not path.is_file():
        pytest.skip(f"the regulations corpus is not here ({RAW}): it lies in ../shared beside the clone")
    data = path.read_bytes()
    with live.client() as client, live.client(ADMIN_TOKEN) as admin:
        _upload(admin, path.name, data, "application/octet-stream", "up-doc")
        _wait_indexed(client, {"up-doc"})
        c = _cited(client, "盐城市文明行为促进条例自什么时候起施行？", "up-doc", "2019年7月1日")
        assert c["origin"]["format"] == "doc"
        original = client.get("/v1/documents/up-doc/original")
        assert original.status_code == 200 and original.content == data  # stored byte for byte, as .doc
        assert original.headers["content-type"] == "application/msword"
        assert original.headers["content-disposition"].startswith("attachment")
        assert (live.workspace.corpus_dir / ".originals" / "up-doc.doc").is_file()
