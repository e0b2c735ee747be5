"""The web page's conversation in a real headless Chromium against the session's real server (tests/conftest.py
`server`): a follow-up goes with its history and shows the standalone question answered, earlier turns form a
thread, 👍/👎 (with 正确答案是…) are stored, 新对话 starts over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ADMIN_TOKEN, LiveServer
from playwright.sync_api import Browser, expect
from test_web import _ask, browser, watched_page  # noqa: F401  (browser: the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST = "江海区党建考核连续几年被市委组织部评为“好”的等次？"
FOLLOW_UP = "哪个村的党组织获评全国先进基层党组织？"
RESOLVED = "江海区哪个村的党组织获评全国先进基层党组织？"


def test_thread_follow_up_and_feedback_buttons(browser: Browser, server: LiveServer,  # noqa: F811
                                               artifacts_dir: Path) -> None:
    base = server.url
    with watched_page(browser, base) as (page, problems):
        page.goto(f"{base}/")
        expect(page.locator("#thread")).to_be_hidden()
        first = _ask(page, FIRST)
        assert not first["refused"] and first["resolved_question"] == FIRST
        card = page.locator("#answer") if not first["refused"] else page.locator("#refusal")
        expect(card.locator(".resolved-question")).to_have_count(0)  # the same question: nothing to show
        # 👍 on the first answer
        with page.expect_response(lambda r: r.url.endswith("/v1/feedback")) as info:
            card.locator(".feedback-up").click()
        assert info.value.status == 201
        expect(card.locator(".feedback-status")).to_have_text("谢谢！")
        expect(page.locator("#question")).to_have_value("")  # ready for the follow-up

        # the follow-up: sent with the first turn, answered as its standalone question
        with page.expect_request(lambda r: r.url.endswith("/v1/ask")) as sent:
            second = _ask(page, FOLLOW_UP)
        body = json.loads(sent.value.post_data or "{}")
        assert body["question"] == FOLLOW_UP
        assert body["history"] == [{"question": FIRST, "answer": first["answer"], "resolved_question": FIRST}]
        assert second["resolved_question"] == RESOLVED
        card = page.locator("#refusal") if second["refused"] else page.locator("#answer")
        expect(card.locator(".resolved-question")).to_contain_text(RESOLVED)
        thread = page.locator("#thread")
        expect(thread).to_be_visible()
        expect(thread.locator(".thread-turn")).to_have_count(1)
        expect(thread.locator(".thread-q")).to_contain_text(FIRST)

        # 👎 with the right answer
        card.locator(".feedback-down").click()
        field = card.locator(".feedback-correct")
        expect(field).to_be_visible()
        field.fill("礼乐街道英南村党总支")
        with page.expect_response(lambda r: r.url.endswith("/v1/feedback")) as info:
            card.locator(".feedback-send").click()
        assert info.value.status == 201
        expect(card.locator(".feedback-status")).to_have_text("谢谢，已记下正确答案")
        page.screenshot(path=str(artifacts_dir / "web-conversation.png"), full_page=True)

        # 新对话: the thread goes, the next question is asked with no history
        page.locator("#new-conversation").click()
        expect(thread).to_be_hidden()
        with page.expect_request(lambda r: r.url.endswith("/v1/ask")) as sent:
            again = _ask(page, FOLLOW_UP)
        assert "history" not in json.loads(sent.value.post_data or "{}")
        assert again["resolved_question"] == FOLLOW_UP
        assert not problems, problems

    with server.client(ADMIN_TOKEN) as admin:
        stored = admin.get("/v1/feedback").json()["feedback"]
    mine = {f["answer_id"]: f for f in stored}
    assert mine[first["answer_id"]]["rating"] == "up"
    down = mine[second["answer_id"]]
    assert (down["rating"], down["correct_answer"], down["question"], down["resolved_question"]) == (
        "down", "礼乐街道英南村党总支", FOLLOW_UP, RESOLVED)


def test_the_report_page_shows_the_question_log_to_the_operator(browser: Browser, server: LiveServer) -> None:  # noqa: F811
    with server.client() as c:
        refused = c.post("/v1/ask", json={"question": "佛山市2019年有多少名网格员？"}).json()
    assert refused["refused"], refused
    with watched_page(browser, server.url) as (page, problems):
        page.goto(f"{server.url}/report")
        page.locator("#report-token").fill("wrong-token")
        page.locator("#report-button").click()
        expect(page.locator("#report-error")).to_contain_text("令牌")
        page.locator("#report-token").fill(ADMIN_TOKEN)
        page.locator("#report-button").click()
        report = page.locator("#report")
        expect(report).to_be_visible()
        expect(report.locator("caption")).to_have_count(5)
        expect(report).to_contain_text("佛山市")  # refused: a gap by place
        expect(report).to_contain_text("最常问的问题")
        # the wrong token's 401 is the only resource error the browser reports
        assert [p for p in problems if "status of 401" not in p] == [], problems
