"""The web page in a real headless Chromium against a real server.

The server is `uvicorn --factory service.api.app:app_from_env` in a subprocess, on a free 127.0.0.1 port, with
its own index folder and a copy of the stored articles (tests/conftest.py: LiveServer). The browser is
Debian's `chromium` (Playwright never downloads one here). Screenshots land in tests/artifacts/
(git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FACTORY, LiveServer, make_workspace, running
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

# The app factory under test. POLICYQA_WEB_TEST_APP may name another factory (a stand-in used while
# developing the page); it defaults to the real service.
APP = os.environ.get("POLICYQA_WEB_TEST_APP", FACTORY)
READY_TIMEOUT_S = 600  # the first start prepares the model and builds the index
ASK_TIMEOUT_MS = 120_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

ANSWERABLE = "江门市目前有多少名党员？"
UNANSWERABLE = "佛山市2019年有多少名网格员？"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium_path() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


WEB_TOKEN = "upload-" + os.urandom(8).hex()


@pytest.fixture(scope="module")
def web_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server started for this module (its own admin token, automatic rebuilds after 0.5 s); the upload
    test, last, changes its documents."""
    ws = make_workspace(tmp_path_factory.mktemp("web-server"))
    server = LiveServer(ws, ws.env(admin_token=WEB_TOKEN, POLICYQA_REBUILD_DELAY_S="0.5"), name="web", factory=APP)
    with running(server, READY_TIMEOUT_S) as live:
        yield live


@pytest.fixture(scope="module")
def web_server(web_live: LiveServer) -> str:
    """Its base URL."""
    return web_live.url


@contextlib.contextmanager
def browser_session() -> Iterator[Browser]:
    """Debian's headless Chromium (tests/test_llm_server.py drives it too)."""
    path = _chromium_path()
    if path is None:
        message = "chromium not found (install Debian's package: apt-get install -y chromium fonts-noto-cjk)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with browser_session() as b:
        yield b


def _ask(page: Page, question: str) -> dict:
    """Type a question, press Enter, return the /v1/ask JSON the page received."""
    box = page.locator("#question")
    box.fill(question)
    box.focus()
    with page.expect_response(lambda r: r.url.endswith("/v1/ask"), timeout=ASK_TIMEOUT_MS) as info:
        page.keyboard.press("Enter")
    response = info.value
    assert response.ok, f"/v1/ask answered HTTP {response.status}: {response.text()}"
    data: dict = response.json()
    expect(page.locator("#ask-button")).to_be_enabled()
    return data


def _no_horizontal_overflow(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"page is {scroll_width}px wide at a {width}px viewport"


@contextlib.contextmanager
def watched_page(browser: Browser, base: str) -> Iterator[tuple[Page, list[str]]]:
    """A desktop-sized page and the problems seen on it: script errors, console errors, and requests to
    anywhere but `base` (a page may talk to its own origin only: no CDN, no fonts, no analytics)."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("request", lambda r: problems.append(f"off-site request: {r.url}")
            if r.url.startswith(("http:", "https:")) and not r.url.startswith(base) else None)
    try:
        yield page, problems
    finally:
        context.close()


def test_ask_cite_refuse_documents_mobile(browser: Browser, web_server: str, artifacts_dir: Path) -> None:
    with watched_page(browser, web_server) as (page, problems):
        page.goto(f"{web_server}/")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

        # --- an answerable question: cited answer, marker [1] opens the source with the quote marked
        data = _ask(page, ANSWERABLE)
        assert not data["refused"], f"expected an answer, got a refusal: {data}"
        answer = page.locator("#answer")
        expect(answer).to_be_visible()
        text = page.locator("#answer .answer-text")
        assert text.inner_text().strip(), "answer text is empty"
        marker = page.locator('#answer .answer-text button.cite-marker[data-n="1"]')
        expect(marker).to_be_visible()
        assert "[1]" in text.inner_text()

        citation_1 = next(c for c in data["citations"] if c["n"] == 1)
        marker.click()
        quote = page.locator("#source mark.quote")
        expect(quote).to_be_visible()
        assert quote.text_content() == citation_1["quote"]
        expect(page.locator("#source")).to_contain_text(citation_1["title"])
        if data.get("short_answer"):
            expect(page.locator("#answer .short-answer")).to_contain_text(data["short_answer"])
        page.screenshot(path=str(artifacts_dir / "web-answer.png"), full_page=True)

        # --- an unanswerable question: refusal with the nearest passages
        data = _ask(page, UNANSWERABLE)
        assert data["refused"], f"expected a refusal, got: {data.get('answer')}"
        refusal = page.locator("#refusal")
        expect(refusal).to_be_visible()
        expect(refusal).to_contain_text("资料中没有找到可靠答案")
        expect(refusal.locator(".refusal-detail")).to_contain_text(re.compile("佛山|2019"))  # what is missing
        expect(page.locator("#answer")).to_be_hidden()
        assert page.locator("#refusal li.nearest").count() >= 1
        expect(page.locator("#refusal li.nearest").first).to_be_visible()
        page.screenshot(path=str(artifacts_dir / "web-refusal.png"), full_page=True)

        # --- documents view: the 5 stored articles, one opened shows its cleaned text
        page.get_by_role("link", name="文档").click()
        items = page.locator("#doc-list button.doc-item")
        expect(items).to_have_count(5)
        page.screenshot(path=str(artifacts_dir / "web-documents.png"), full_page=True)
        doc_id = items.first.get_attribute("data-doc-id")
        items.first.click()
        doc_text = page.locator("#doc-detail .doc-text")
        expect(doc_text).to_be_visible()
        api_doc = page.request.get(f"{web_server}/v1/documents/{doc_id}").json()
        assert api_doc["text"].strip()
        assert doc_text.text_content() == api_doc["text"]

        # --- phone width: single column, no horizontal scrolling (document and answer views)
        page.set_viewport_size({"width": 360, "height": 740})
        _no_horizontal_overflow(page, 360)
        page.get_by_role("link", name="问答").click()
        data = _ask(page, ANSWERABLE)
        page.locator('#answer .answer-text button.cite-marker[data-n="1"]').click()
        expect(page.locator("#source mark.quote")).to_be_visible()
        _no_horizontal_overflow(page, 360)
        page.screenshot(path=str(artifacts_dir / "web-mobile.png"), full_page=True)

        assert not problems, "\n".join(problems)


def test_api_docs_render_offline(browser: Browser, web_server: str, artifacts_dir: Path) -> None:
    """Swagger UI renders from the server's own files: no request leaves the server."""
    with watched_page(browser, web_server) as (page, problems):
        page.goto(f"{web_server}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("policyqa")
        expect(page.locator(".opblock-summary-path", has_text="/v1/search").first).to_be_visible()
        page.screenshot(path=str(artifacts_dir / "web-api-docs.png"))
        assert not problems, "\n".join(problems)


def test_page_shows_the_first_build(browser: Browser, tmp_path: Path, artifacts_dir: Path) -> None:
    """Opened while the first index is being built, the page says so (with progress) instead of failing,
    and the message goes away once the service is ready."""
    root = tmp_path / "first-build"
    ws = make_workspace(root)
    (ws.index_dir / "cache").unlink()  # no shared embedding cache: the build embeds every chunk
    server = LiveServer(ws, ws.env(admin_token=None), name="web-first-build")
    server.launch()
    try:
        with watched_page(browser, server.url) as (page, problems):
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"{server.url}/")
                    break
                except PlaywrightError:
                    assert time.monotonic() < deadline, server.log_tail()
                    time.sleep(0.1)
            banner = page.locator("#readiness")
            expect(banner).to_be_visible(timeout=10_000)
            expect(banner).to_contain_text(re.compile("准备模型|建立索引|加载索引|阅读模型|预热|启动"))
            page.screenshot(path=str(artifacts_dir / "web-first-build.png"), full_page=True)
            expect(banner).to_be_hidden(timeout=READY_TIMEOUT_S * 1000)
            data = _ask(page, ANSWERABLE)
            assert data["citations"]
            # the browser logs each 503 from /readyz as a console error; nothing else may go wrong
            assert not [p for p in problems if "503" not in p], "\n".join(problems)
    finally:
        server.stop()
        ws.kill_rebuild_children()


def test_upload_form_then_cite_the_original(browser: Browser, web_live: LiveServer, artifacts_dir: Path) -> None:
    """The admin uploads a Word file in the documents view (token typed into the page, kept in memory only);
    the list shows it 索引中 until the automatic rebuild lands; an answer from it names its section and links
    to the original file."""
    from corpus.formats.measure import seed, word_file

    sf = "jiangmen-strong-foundation-2024-09"
    server, token = web_live, WEB_TOKEN
    with server.client(token) as admin:  # the Word file is to be the only copy of this article
        assert admin.delete(f"/v1/documents/{sf}").status_code == 200
    docx = word_file(seed(sf))
    with watched_page(browser, server.url) as (page, problems):
        page.goto(f"{server.url}/#docs")
        expect(page.locator("#doc-list button.doc-item")).to_have_count(4)
        page.locator("#upload summary").click()
        page.locator("#upload-file").set_input_files(
            {"name": "强基工程.docx", "buffer": docx,
             "mimeType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"})
        # a wrong token: the API's message, Chinese half only
        page.locator("#upload-token").fill("wrong-token")
        page.locator("#upload-button").click()
        expect(page.locator("#upload-error")).to_be_visible()
        assert " / " not in page.locator("#upload-error").inner_text()
        page.locator("#upload-token").fill(token)
        page.locator("#upload-source").fill("江门日报")
        with page.expect_response(lambda r: r.url.endswith("/v1/documents") and r.request.method == "POST") as info:
            page.locator("#upload-button").click()
        assert info.value.status == 201, info.value.text()
        created = info.value.json()
        expect(page.locator("#upload-result")).to_contain_text(created["doc_id"])
        item = page.locator(f'#doc-list button.doc-item[data-doc-id="{created["doc_id"]}"]')
        expect(item).to_contain_text("Word")
        expect(item.locator(".tag", has_text="索引中")).to_have_count(0, timeout=240_000)  # indexed by itself
        page.screenshot(path=str(artifacts_dir / "web-upload.png"), full_page=True)
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0  # the token is stored nowhere

        page.get_by_role("link", name="问答").click()
        data = _ask(page, "今年暑运江门站共计到发旅客多少人次？")
        assert not data["refused"], data["answer"]
        c = data["citations"][0]
        assert c["doc_id"] == created["doc_id"] and c["origin"]["format"] == "docx"
        page.locator('#answer .answer-text button.cite-marker[data-n="1"]').click()
        expect(page.locator("#source .source-origin")).to_contain_text("原文章节：")
        expect(page.locator("#source .source-origin")).to_contain_text(c["origin"]["section"][-1])
        link = page.locator("#source a.original-link")
        expect(link).to_have_attribute("href", f"/v1/documents/{created['doc_id']}/original")
        original = page.request.get(f"{server.url}/v1/documents/{created['doc_id']}/original")
        assert original.ok and original.body() == docx
        page.screenshot(path=str(artifacts_dir / "web-citation-origin.png"), full_page=True)
        # the browser logs the refused upload (401/403) as a console error; nothing else may go wrong
        assert not [p for p in problems if "40" not in p], "\n".join(problems)


def test_regulation_dates_and_superseded_version(browser: Browser, tmp_path: Path, artifacts_dir: Path) -> None:
    """Two versions of a regulation uploaded as Word files: the list tags the older one 已被取代, its page links to
    the current one, and a citation's card shows the regulation's 通过 / 批准 / 施行 dates."""
    from conftest import ADMIN_TOKEN

    from corpus.formats.measure_regulations import RAW

    names = {"gy-2019": "贵州省__2019_贵阳市建设生态文明城市条例.docx", "gy-2021": "贵州省__2021_贵阳市建设生态文明城市条例.docx"}
    if not all((RAW / n).is_file() for n in names.values()):
        pytest.skip(f"the regulations corpus is not at {RAW} (set POLICYQA_REGULATIONS_DIR)")
    ws = make_workspace(tmp_path / "regulations")
    server = LiveServer(ws, ws.env(POLICYQA_REBUILD_DELAY_S="0.5"), name="web-regulations", factory=APP)
    with running(server, READY_TIMEOUT_S), watched_page(browser, server.url) as (page, problems):
        with server.client(ADMIN_TOKEN) as admin:
            for doc_id, name in names.items():
                r = admin.post("/v1/documents", files={"file": (name, (RAW / name).read_bytes())},
                               data={"doc_id": doc_id})
                assert r.status_code == 201, r.text
        page.goto(f"{server.url}/#docs")
        old = page.locator('#doc-list button.doc-item[data-doc-id="gy-2019"]')
        expect(old.locator(".tag", has_text="已被取代")).to_have_count(1)
        expect(page.locator('#doc-list button.doc-item[data-doc-id="gy-2021"] .tag', has_text="已被取代")) \
            .to_have_count(0)
        expect(page.locator('#doc-list button.doc-item .tag', has_text="索引中")).to_have_count(0, timeout=240_000)
        old.click()
        expect(page.locator("#doc-detail .doc-facts")).to_contain_text("2013-02-04")  # 通过日期
        expect(page.locator("#doc-detail .doc-facts")).to_contain_text("批准日期")
        expect(page.locator("#doc-detail .superseded a")).to_have_attribute("href", "#docs/gy-2021")
        page.screenshot(path=str(artifacts_dir / "web-regulation-superseded.png"), full_page=True)

        page.get_by_role("link", name="问答").click()
        data = _ask(page, "在贵阳市随地吐痰的罚款是多少？")
        assert not data["refused"], data["answer"]
        n = next(c["n"] for c in data["citations"] if c["doc_id"] in names)
        page.locator(f'#answer .answer-text button.cite-marker[data-n="{n}"]').click()
        facts = page.locator("#source .policy-facts")
        expect(facts).to_contain_text("通过日期")
        expect(facts).to_contain_text("施行日期")
        expect(facts).to_contain_text("2013-05-01")
        page.screenshot(path=str(artifacts_dir / "web-regulation-citation.png"), full_page=True)
        assert not problems, "\n".join(problems)
