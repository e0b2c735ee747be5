"""service/llm without an LLM server: parsing the model's output (whole and streamed), verifying statements
against real passages of the real seed index (a recorded fabricated answer loses its false statements), and
the answer modes' fallbacks with a scripted client. The real llama.cpp server is in test_llm_server.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from service.answering import verify_citation
from service.llm.client import LLMClient, LLMConfig, LLMFailure, failure_reason
from service.llm.generate import GenerativeAnswerer, answer_text, wants_llm
from service.llm.parse import MalformedOutput, StatementStream, parse_answer
from service.llm.verify import find_quote, unsupported_name, unsupported_number, verify

HOW = "江海区是怎样推进党建引领基层治理的？"


class ScriptedClient(LLMClient):
    """Answers every call with the same recorded output, streamed in small pieces, or raises."""

    def __init__(self, output: str = "", error: LLMFailure | None = None) -> None:
        super().__init__(LLMConfig(base_url="http://127.0.0.1:9/v1"))
        self.output, self.error, self.calls = output, error, 0
        self.messages: list[dict[str, str]] = []

    def model(self) -> str:
        return "scripted"

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], deadline: float) -> Iterator[str]:
        self.calls += 1
        self.messages = messages
        if self.error is not None:
            raise self.error
        for i in range(0, len(self.output), 7):
            yield self.output[i:i + 7]


# --- parsing ---------------------------------------------------------------------------------------------

def test_parse_tolerates_fences_and_chatter() -> None:
    text = '好的：\n```json\n{"answerable": true, "statements": [{"text": "甲。", "passages": ["2"], "quote": "乙"}]}\n```'
    raw = parse_answer(text)
    assert raw.answerable and raw.statements[0].passages == (2,) and raw.statements[0].quote == "乙"
    with pytest.raises(MalformedOutput):
        parse_answer('{"answerable": true, "statements": [{"text": "被截断')
    with pytest.raises(MalformedOutput):
        parse_answer("资料中没有相关内容。")


def test_stream_shows_statement_texts_as_they_arrive() -> None:
    out = json.dumps({"answerable": True, "statements": [
        {"text": "第一条，含\"引号\"。", "passages": [1], "quote": "不显示"},
        {"text": "第二条。", "passages": [2], "quote": "也不显示"}]}, ensure_ascii=False)
    stream = StatementStream()
    shown = "".join(stream.feed(out[i:i + 3]) for i in range(0, len(out), 3))
    assert shown == '第一条，含"引号"。第二条。'
    assert stream.buffer == out


# --- verification ----------------------------------------------------------------------------------------

def test_quote_found_across_full_and_half_width_punctuation() -> None:
    passage = "高新区(江海区)紧跟市委步伐,深入推进党建引领基层治理“书记工程”,组建领导小组。"
    a, b = find_quote(passage, "「高新区（江海区）紧跟市委步伐，深入推进党建引领基层治理‘书记工程’」")  # type: ignore[misc]
    assert passage[a:b] == "高新区(江海区)紧跟市委步伐,深入推进党建引领基层治理“书记工程”"
    assert find_quote(passage, "组建领导") is None  # too short to prove anything
    assert find_quote(passage, "紧跟省委步伐") is None


def test_numbers_and_names_must_be_in_the_evidence() -> None:
    evidence = "《党建引领 奋进新程》 2022-09-26 2022年9月26日\n划分190个网格,细分2590个最小单元。江海区..."
    assert unsupported_number("划分了190个网格", evidence) is None
    assert unsupported_number("划分了200个网格", evidence) == "200"
    assert unsupported_number("2022年9月发布", evidence) is None
    assert unsupported_number("一是加强领导", evidence) is None  # 一是 is a word, not a quantity
    assert unsupported_number("共有三千个网格", evidence) == "三千"
    assert unsupported_name("据《党建引领 奋进新程》报道", evidence) is None
    assert unsupported_name("依据《江门市强基行动方案》", evidence) == "江门市强基行动方案"
    assert unsupported_name("江海区和蓬江区都划分了网格", evidence) in ("蓬江", "蓬江区")


def test_fabricated_statements_are_dropped(real_engine) -> None:  # type: ignore[no-untyped-def]
    """A recorded answer with one true statement and four made up ones: only the true one is kept, and its
    citation is the exact span of the document."""
    answerer = real_engine.answerer()
    passages = real_engine.search(HOW, 3).results
    p = passages[0]
    sentence = p.text.split("。")[0] + "。"
    recorded = json.dumps({"answerable": True, "statements": [
        {"text": "真实的陈述。", "passages": [1], "quote": sentence},
        {"text": "编造的引文。", "passages": [1], "quote": "江海区全面完成了所有工作任务并获得国家表彰。"},
        {"text": "全区划分了9999个网格。", "passages": [1], "quote": sentence},
        {"text": "依据《虚构的实施方案》推进。", "passages": [1], "quote": sentence},
        {"text": "不存在的资料。", "passages": [7], "quote": sentence},
    ]}, ensure_ascii=False)
    checked = verify(parse_answer(recorded), passages, answerer.index)
    assert [s.dropped for s in checked.statements] == [
        None, "quote_not_in_passage", "unsupported_number", "unsupported_name", "bad_passage"]
    assert len(checked.citations) == 1
    c = checked.citations[0]
    verify_citation(answerer.index, c)
    assert c.doc_id == p.doc_id and c.start >= p.start and c.end <= p.end


# --- answer modes and fallbacks --------------------------------------------------------------------------

def _generative(real_engine, client: LLMClient | None) -> GenerativeAnswerer:  # type: ignore[no-untyped-def]
    return GenerativeAnswerer(real_engine.answerer(), client, passages=3, timeout_s=5)


def test_generated_answer_cites_verified_quotes(real_engine) -> None:  # type: ignore[no-untyped-def]
    p = real_engine.search(HOW, 3).results[1]
    quote = p.text.split("。")[0]
    client = ScriptedClient(json.dumps({"answerable": True, "statements": [
        {"text": "这是依据第二段的陈述。", "passages": [2], "quote": quote}]}, ensure_ascii=False))
    events = list(_generative(real_engine, client).events(HOW, 5, "hybrid", "generative"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "passages" and kinds[-1] == "answer" and "delta" in kinds
    assert "".join(e.data for e in events if e.kind == "delta") == "这是依据第二段的陈述。"
    a = events[-1].data
    assert a.answer_mode_used == "generative" and a.fallback_reason is None
    assert a.answer == "这是依据第二段的陈述[1]。"
    assert [s.verified for s in a.statements] == [True] and a.llm["statements_kept"] == 1
    for c in a.citations:
        verify_citation(real_engine.index, c)
    assert "[2]" in client.messages[1]["content"] and HOW in client.messages[1]["content"]


@pytest.mark.parametrize("error", ["llm_unavailable", "llm_timeout", "llm_rate_limited", "llm_server_error"])
def test_llm_failures_fall_back_to_the_extractive_answer(real_engine, error: str) -> None:  # type: ignore[no-untyped-def]
    extractive = real_engine.answer(HOW, 5, answer_mode="extractive")
    a = _generative(real_engine, ScriptedClient(error=LLMFailure(error))).answer(HOW, 5, "hybrid", "generative")
    assert a.answer_mode_used == "extractive" and a.fallback_reason == error
    assert a.answer == extractive.answer and a.citations == extractive.citations


@pytest.mark.parametrize(("output", "reason"), [
    ("我不知道", "llm_malformed"),
    ('{"answerable": false, "statements": []}', "llm_no_answer"),
    ('{"answerable": true, "statements": [{"text": "编造。", "passages": [1], "quote": "没有这句话的原文内容"}]}',
     "llm_unverified"),
])
def test_unusable_output_falls_back(real_engine, output: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    a = _generative(real_engine, ScriptedClient(output)).answer(HOW, 5, "hybrid", "generative")
    assert a.answer_mode_used == "extractive" and a.fallback_reason == reason
    if reason == "llm_unverified":
        assert [s.dropped for s in a.statements] == ["quote_not_in_passage"]


def test_hopeless_questions_never_call_the_llm(real_engine) -> None:  # type: ignore[no-untyped-def]
    client = ScriptedClient('{"answerable": false, "statements": []}')
    gen = _generative(real_engine, client)
    for q in ("明天江门会下雨吗？", "2030年江海区划分了多少个网格？"):
        a = gen.answer(q, 5, "hybrid", "generative")
        assert a.refused and a.fallback_reason == "hard_refusal", (q, a.reason)
    assert client.calls == 0


def test_auto_and_extractive_modes(real_engine) -> None:  # type: ignore[no-untyped-def]
    from service.answering.question import answer_type

    assert wants_llm(answer_type(HOW), "auto") and wants_llm(answer_type("江门有哪些做法？"), "auto")
    assert not wants_llm(answer_type("江海区划分了多少个网格？"), "auto")
    assert not wants_llm(answer_type(HOW), "extractive")
    client = ScriptedClient('{"answerable": false, "statements": []}')
    a = _generative(real_engine, client).answer("江海区划分了多少个网格？", 5, "hybrid", "auto")
    assert client.calls == 0 and a.answer_mode_used == "extractive" and a.fallback_reason is None
    none = _generative(real_engine, None).answer(HOW, 5, "hybrid", "generative")
    assert none.fallback_reason == "llm_not_configured"


def test_answer_text_puts_markers_before_closing_punctuation() -> None:
    from service.answering.compose import Statement

    sts = (Statement("甲。", (1,), "q", True, 1, None), Statement("乙", (2,), "q", True, 2, None))
    assert answer_text(sts) == "甲[1]。乙[2]。"


def test_client_errors_map_to_fallback_reasons() -> None:
    import openai

    try:  # openai 3 is built on httpx2, openai 1-2 on httpx
        import httpx2 as httpx
    except ImportError:
        import httpx  # type: ignore[no-redef]

    req = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    assert failure_reason(openai.APITimeoutError(request=req)) == "llm_timeout"
    assert failure_reason(openai.APIConnectionError(request=req)) == "llm_unavailable"
    resp = httpx.Response(429, request=req)
    assert failure_reason(openai.RateLimitError("busy", response=resp, body=None)) == "llm_rate_limited"
    resp = httpx.Response(503, request=req)
    assert failure_reason(openai.InternalServerError("down", response=resp, body=None)) == "llm_server_error"


def test_unreachable_server_is_a_fallback_not_an_error() -> None:
    """A real openai client against a closed loopback port."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = LLMClient(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=5))
    with pytest.raises(LLMFailure) as info:
        list(client.stream([{"role": "user", "content": "x"}], {}, time.monotonic() + 5))
    assert info.value.reason == "llm_unavailable"
    unnamed = LLMClient(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=5))  # asks for the model list
    with pytest.raises(LLMFailure) as info:
        unnamed.model()
    assert info.value.reason == "llm_unavailable"


def test_a_nearly_verbatim_quote_cites_only_its_verbatim_part(real_engine) -> None:  # type: ignore[no-untyped-def]
    from service.llm.verify import near_quote

    passage = "高新区(江海区)把抓基层、打基础作为长远之计和固本之举,把基层党组织建设成为坚强战斗堡垒。"
    model = "高新区（江海区）把抓基层、打基础作为长远之计和固本之策"  # one character changed at the end
    a, b = near_quote(passage, model)  # type: ignore[misc]
    assert passage[a:b] == "高新区(江海区)把抓基层、打基础作为长远之计和固本之"
    assert near_quote(passage, "高新区把工作做好了并且获得了很多荣誉和表彰") is None

    p = real_engine.search(HOW, 3).results[0]
    sentence = max(p.text.split("。"), key=len).strip()
    changed = sentence[:-1] + ("甲" if sentence[-1] != "甲" else "乙")
    raw = parse_answer(json.dumps({"answerable": True, "statements": [
        {"text": "一条陈述。", "passages": [1], "quote": changed},
        {"text": "侨都现在一共有多少名共产党员？", "passages": [1], "quote": sentence}]}, ensure_ascii=False))
    checked = verify(raw, real_engine.search(HOW, 3).results, real_engine.index)
    kept, echoed = checked.statements
    assert kept.verified and kept.match == "partial" and echoed.dropped == "not_a_statement"
    assert checked.citations[0].quote == sentence[:-1]
    verify_citation(real_engine.index, checked.citations[0])


class _Scripted:
    """A real HTTP server on a loopback port answering /v1/chat/completions with a fixed status and body."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(outer.status)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                return None

        self.status, self.body, self.content_type = status, body, content_type
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _sse_body(text: str) -> bytes:
    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\ndata: [DONE]\n\n".encode()


@pytest.mark.parametrize(("status", "body", "ctype", "reason"), [
    (429, b'{"error": {"message": "busy"}}', "application/json", "llm_rate_limited"),
    (503, b'{"error": {"message": "loading"}}', "application/json", "llm_server_error"),
    (200, _sse_body("对不起，我无法回答这个问题。"), "text/event-stream", "llm_malformed"),
])
def test_server_errors_over_http_fall_back(real_engine, status: int, body: bytes, ctype: str,  # type: ignore[no-untyped-def]
                                           reason: str) -> None:
    """The real openai client against a real HTTP server that answers 429, 503, or a stream of prose."""
    server = _Scripted(status, body, ctype)
    try:
        client = LLMClient(LLMConfig(base_url=server.base_url, model="m", timeout_s=10))
        a = _generative(real_engine, client).answer(HOW, 5, "hybrid", "generative")
    finally:
        server.close()
    assert a.answer_mode_used == "extractive" and a.fallback_reason == reason and a.citations
