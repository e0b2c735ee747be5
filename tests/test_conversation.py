"""Follow-up questions (service/conversation): the rewrite rules, the LLM's condensing with its fallback, the
stateless `history` of POST /v1/ask, and the follow-up set's resolution accuracy (no index needed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.conversation import Turn, resolve, rewrite
from service.conversation.condense import condense
from service.llm.client import LLMFailure

JM_DATE = "江门市文明行为促进条例什么时候施行？"


# --- the rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("context", "follow_up", "expected"), [
    # a new place replaces the old one (written as the old one was: full name for a full name)
    (JM_DATE, "那东莞呢？", "东莞市文明行为促进条例什么时候施行？"),
    (JM_DATE, "东莞的呢？", "东莞市文明行为促进条例什么时候施行？"),
    ("江门在禁止吸烟场所吸烟罚多少钱？", "那东莞呢？", "东莞在禁止吸烟场所吸烟罚多少钱？"),
    # a new year replaces the old one
    ("2024年暑运期间江门站共到发旅客多少人次？", "2023年呢？", "2023年暑运期间江门站共到发旅客多少人次？"),
    # a new topic replaces the old one
    ("江门遛狗不牵绳罚多少钱？", "那乱扔垃圾呢？", "江门乱扔垃圾罚多少钱？"),
    ("2024年暑运期间江门站共到发旅客多少人次？", "发送旅客多少人次？", "2024年暑运期间江门站共发送旅客多少人次？"),
    # a new document of the same place
    ("东莞市文明行为促进条例什么时候施行？", "东莞市生态文明建设促进与保障条例呢？",
     "东莞市生态文明建设促进与保障条例什么时候施行？"),
    # pronouns: the document in focus, else the place
    ("江门市文明行为促进条例由哪个部门负责？", "它什么时候施行？", JM_DATE),
    (JM_DATE, "这个条例是哪次会议通过的？", "江门市文明行为促进条例是哪次会议通过的？"),
    ("新会区共组建了多少个小区党支部？", "它以哪里为主阵地构建三级党组织管理网络？", "新会区以哪里为主阵地构建三级党组织管理网络？"),
    # ellipsis: the subject of the turn before with the new question
    ("江门遛狗不牵绳怎么处罚？", "罚多少钱？", "江门遛狗不牵绳罚多少钱？"),
    (JM_DATE, "主管部门是哪个？", "江门市文明行为促进条例主管部门是哪个？"),
    ("江海区党建引领基层治理领导小组的组长是谁？", "副组长呢？", "江海区党建引领基层治理领导小组的副组长是谁？"),
    # the place (and year) carried to a question with its own subject
    ("江海区划分了多少个网格？", "有多少名专职网格员？", "江海区有多少名专职网格员？"),
    ("高新区（江海区）党建引领基层治理领导小组的组长是谁？", "划分了多少个网格？", "江海区划分了多少个网格？"),
    ("阳江市江城区搭建的城市基层党建系统架构是几级联动？", "“十三五”期间新增规上企业多少家？",
     "阳江市江城区“十三五”期间新增规上企业多少家？"),
    ("2024年江门市委开展了多少次“第一议题”学习？", "培训了多少人次党员、干部？", "江门市2024年培训了多少人次党员、干部？"),
])
def test_follow_ups_take_what_they_lack_from_the_turn_before(context: str, follow_up: str, expected: str) -> None:
    r = rewrite(follow_up, context)
    assert r.resolved == expected, r
    assert r.method == "rules" and r.carried and r.changed


@pytest.mark.parametrize(("context", "question"), [
    (JM_DATE, "阳江市文明行为促进条例什么时候施行？"),
    (JM_DATE, "深圳市有多少党员？"),
    ("江海区划分了多少个网格？", "江海区有多少名专职网格员？"),
    ("江门市第十四次党代会上作报告的江门市委书记是谁？", "江门全市成立了多少个小区物业党组织？"),
])
def test_a_question_that_stands_alone_is_left_as_it_is(context: str, question: str) -> None:
    r = rewrite(question, context)
    assert r.resolved == question and r.method == "standalone" and not r.carried


def test_without_history_the_question_is_the_standalone_one() -> None:
    r = resolve("  那东莞呢？ ", [])
    assert (r.resolved, r.method) == ("那东莞呢？", "first")


def test_a_chain_of_follow_ups_resolves_turn_by_turn_and_trusts_the_reported_standalone_question() -> None:
    turns = [Turn(JM_DATE), Turn("那东莞呢？"), Turn("佛山的呢？")]
    assert resolve("它是哪次会议通过的？", turns).resolved == "佛山市文明行为促进条例是哪次会议通过的？"
    # the client sends back what each answer said it answered: that is the context, not a re-derivation
    told = [Turn("随便问问", resolved_question="广州市文明行为促进条例什么时候施行？")]
    assert resolve("那韶关呢？", told).resolved == "韶关市文明行为促进条例什么时候施行？"


# --- the LLM condenses; the rules on any failure ---------------------------------------------------------


class ScriptedLLM:
    """Stands in for LLMClient.stream: yields a scripted reply or raises."""

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.messages: list[dict[str, str]] = []

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], deadline: float) -> Iterator[str]:
        self.messages = messages
        if isinstance(self.reply, Exception):
            raise self.reply
        yield from (self.reply[i:i + 5] for i in range(0, len(self.reply), 5))


HISTORY = [Turn(JM_DATE, "本条例自2021年5月1日起施行。[1]", JM_DATE)]


def test_the_llm_condenses_a_follow_up() -> None:
    llm = ScriptedLLM(json.dumps({"question": "东莞市文明行为促进条例从哪天开始施行？"}, ensure_ascii=False))
    r = condense(llm, "那东莞呢？", HISTORY, timeout_s=5)  # type: ignore[arg-type]
    assert (r.resolved, r.method, r.fallback_reason) == ("东莞市文明行为促进条例从哪天开始施行？", "llm", None)
    assert "江门市文明行为促进条例" in llm.messages[1]["content"] and "那东莞呢" in llm.messages[1]["content"]


@pytest.mark.parametrize(("reply", "reason"), [
    (LLMFailure("llm_timeout"), "llm_timeout"),
    (LLMFailure("llm_unavailable", "connection refused"), "llm_unavailable"),
    ("not json at all {", "llm_malformed"),
    (json.dumps({"question": ""}), "llm_malformed"),
    (json.dumps({"question": "line one\nline two 东莞"}, ensure_ascii=False), "llm_malformed"),
])
def test_any_llm_failure_falls_back_to_the_rules(reply: str | Exception, reason: str) -> None:
    r = condense(ScriptedLLM(reply), "那东莞呢？", HISTORY, timeout_s=5)  # type: ignore[arg-type]
    assert (r.resolved, r.method, r.fallback_reason) == ("东莞市文明行为促进条例什么时候施行？", "rules", reason)


# --- over HTTP: stateless history -------------------------------------------------------------------------


class RecordingEngine:
    """Answers every question with itself (no model): what matters here is which question was answered."""

    llm = None

    def __init__(self) -> None:
        self.asked: list[str] = []

    def answer(self, question: str, k: int | None = None, mode: str = "hybrid", answer_mode: Any = None) -> Any:
        from service.answering import Answer

        self.asked.append(question)
        return Answer(question, f"回答：{question}", None, "fact", False, None, 0.9, False, (), (), "g-test")


def _app(tmp_path: Path, engine: Any, **settings: Any) -> Any:
    from starlette.testclient import TestClient

    from service.api.app import create_app
    from service.api.state import loaded_index
    from service.settings import Settings

    app = create_app(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index",
                              logbook_path=tmp_path / "logbook.sqlite3", **settings), engine=engine)
    app.dependency_overrides[loaded_index] = lambda: None  # no index: the engine stands in
    return TestClient(app, raise_server_exceptions=False)


def test_history_is_stateless_any_worker_answers_the_same_follow_up(tmp_path: Path) -> None:
    first, second = RecordingEngine(), RecordingEngine()
    worker_a, worker_b = _app(tmp_path / "a", first), _app(tmp_path / "b", second)
    r1 = worker_a.post("/v1/ask", json={"question": JM_DATE}).json()
    assert r1["resolved_question"] == JM_DATE and r1["conversation"]["method"] == "first"
    history = [{"question": JM_DATE, "answer": r1["answer"], "resolved_question": r1["resolved_question"]}]
    r2 = worker_b.post("/v1/ask", json={"question": "那东莞呢？", "history": history}).json()
    assert r2["question"] == "那东莞呢？"
    assert r2["resolved_question"] == "东莞市文明行为促进条例什么时候施行？"
    assert second.asked == ["东莞市文明行为促进条例什么时候施行？"]  # the standalone question was answered
    # the same history sent to the other worker gets the same question answered
    r3 = worker_a.post("/v1/ask", json={"question": "那东莞呢？", "history": history}).json()
    assert r3["resolved_question"] == r2["resolved_question"] and r3["answer_id"] != r2["answer_id"]
    # a third turn carries the chain along
    history.append({"question": "那东莞呢？", "answer": r2["answer"], "resolved_question": r2["resolved_question"]})
    r4 = worker_b.post("/v1/ask", json={"question": "这个条例是哪次会议通过的？", "history": history}).json()
    assert r4["resolved_question"] == "东莞市文明行为促进条例是哪次会议通过的？"
    assert 'policyqa_followups_total{method="rules"} 2.0' in worker_b.get("/metrics").text


def test_history_limits_and_malformed_turns_are_refused_in_the_error_shape(tmp_path: Path) -> None:
    client = _app(tmp_path, RecordingEngine(), max_history_turns=3)
    turn = {"question": JM_DATE, "answer": "…"}
    r = client.post("/v1/ask", json={"question": "那东莞呢？", "history": [turn] * 4})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert "at most 3" in r.json()["error"]["message"], r.json()
    for bad in ([{"q": "x"}], [{"question": ""}], ["江门"], [{"question": "x", "answer": 3}],
                [{"question": "x", "extra": 1}], {"question": "x"}):
        r = client.post("/v1/ask", json={"question": "那东莞呢？", "history": bad})
        assert r.status_code == 422 and set(r.json()) == {"error"}, (bad, r.text)
    ok = client.post("/v1/ask", json={"question": "那东莞呢？", "history": [turn] * 3})
    assert ok.status_code == 200 and ok.json()["resolved_question"].startswith("东莞市")


# --- the follow-up set ------------------------------------------------------------------------------------


def test_the_follow_up_set_is_well_formed_and_resolved_by_rule() -> None:
    from eval.conversations import load_conversations, match, resolution_rows, resolution_summary

    _, conversations = load_conversations("followups-dev")
    assert len(conversations) >= 50
    assert all(2 <= len(c.turns) <= 3 for c in conversations)
    for c in conversations:
        assert c.turns[0].question == c.turns[0].standalone  # a conversation opens with a standalone question
        for t in c.turns:
            assert t.gold.answerable == bool(t.gold.answers)
    summary = resolution_summary(resolution_rows(conversations))
    assert summary["accuracy"] >= 0.90, summary
    # the equivalence rule: places by their full names, function words and word order aside
    assert match("江门市2024年培训了多少人次党员、干部？", "2024年江门培训了多少人次党员干部") == "equivalent"
    assert match("东莞文明行为促进条例什么时候施行", "东莞市文明行为促进条例什么时候施行？") == "exact"
    assert match("东莞市文明行为促进条例是哪次会议通过的？", "东莞市文明行为促进条例什么时候施行？") == "miss"


def test_policyqa_chat_answers_follow_ups_as_standalone_questions() -> None:
    import io

    from service.chat import run_chat

    engine = RecordingEngine()
    shown: list[str] = []
    out = io.StringIO()
    stdin = io.StringIO(f"{JM_DATE}\n那东莞呢？\n/new\n那东莞呢？\n")
    code = run_chat(engine, answer_mode="extractive", k=5, mode="hybrid", max_turns=10,
                    show=lambda q, a, batch: shown.append(a.answer), stdin=stdin, out=out)
    assert code == 0
    assert engine.asked == [JM_DATE, "东莞市文明行为促进条例什么时候施行？", "那东莞呢？"]  # /new forgets
    assert "按此理解 / understood as：东莞市文明行为促进条例什么时候施行？" in out.getvalue()
    assert len(shown) == 3


def test_generative_mode_falls_back_to_the_rules_when_the_llm_server_is_down(tmp_path: Path) -> None:
    import socket

    from service.llm.client import LLMClient, LLMConfig

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = RecordingEngine()
    engine.llm = LLMClient(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=3))  # type: ignore[assignment]
    client = _app(tmp_path, engine)
    history = [{"question": JM_DATE, "answer": "本条例自2021年5月1日起施行。", "resolved_question": JM_DATE}]
    r = client.post("/v1/ask", json={"question": "那东莞呢？", "history": history, "answer_mode": "generative"}).json()
    assert r["resolved_question"] == "东莞市文明行为促进条例什么时候施行？"
    assert r["conversation"]["method"] == "rules" and r["conversation"]["fallback_reason"] == "llm_unavailable"


def test_the_follow_up_sets_seed_answers_are_verbatim_in_their_documents(seed_corpus: Any) -> None:
    from eval.conversations import load_conversations

    _, conversations = load_conversations("followups-dev")
    checked = 0
    for c in conversations:
        for t in c.turns:
            for doc_id in t.gold.gold_docs:
                text = seed_corpus.cleaned[doc_id].text
                assert any(a in text for a in t.gold.answers), (t.gold.id, doc_id, t.gold.answers)
                checked += 1
    assert checked >= 25



def test_the_follow_up_sets_regulation_answers_are_in_the_regulations() -> None:
    """Checked against the .docx regulations of ../shared (python-docx); the .doc ones need antiword to read."""
    import re

    import docx
    from conftest import REPO

    from eval.sets import SETS_DIR

    raw = REPO.parent / "shared" / "corpora" / "regulations" / "raw"
    if not raw.is_dir():
        pytest.skip(f"the regulations corpus is not at {raw}")
    texts: dict[str, str] = {}
    for path in raw.glob("*.docx"):
        try:
            body = "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
        except Exception:  # a few packages python-docx refuses (see the corpus README)
            continue
        texts[path.stem.split("_", 3)[-1]] = re.sub(r"\s+", "", body)
    checked = 0
    for line in (SETS_DIR / "followups-dev.jsonl").read_text(encoding="utf-8").splitlines():
        for t in json.loads(line)["turns"]:
            for title in t.get("gold_titles", []):
                if title in texts:
                    assert any(a in texts[title] for a in t["answers"]), (title, t["answers"])
                    checked += 1
    assert checked >= 10, checked


def test_a_question_with_its_own_time_keeps_no_year_from_before() -> None:
    """目前 is a time of its own: the year of the turn before does not carry over (the page asked 江门市目前有多少名党员
    after 佛山市2019年…, got 江门市2019年目前… and a refusal)."""
    from service.conversation.rewrite import Turn, resolve

    r = resolve("江门市目前有多少名党员？", [Turn("佛山市2019年有多少名网格员？")])
    assert r.resolved == "江门市目前有多少名党员？"
