"""Questions: /v1/ask (a cited answer, or with "stream": true Server-Sent Events) and /v1/search (passages
with their scores).

No `from __future__ import annotations` here: FastAPI must see AskRequest, a class made per settings
inside router(), as a class and not as a string it cannot resolve.
"""

import itertools
import json
import logging
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from index.store import LoadedIndex
from service.api.errors import error_payload, responses, status_error
from service.api.models import AnswerMode, AskResult, Mode, SearchResult
from service.api.state import AppContext, context, loaded_index
from service.conversation import Resolution, Turn, resolve
from service.conversation.condense import condense
from service.logbook import from_answer, new_answer_id
from service.settings import Settings

log = logging.getLogger("policyqa")


def router(settings: Settings) -> APIRouter:
    """The routes, with the limits in `settings` written into their schemas."""
    max_q, max_k = settings.max_question_chars, settings.max_k
    max_turns = settings.max_history_turns
    api = APIRouter(tags=["questions"])

    class HistoryTurn(BaseModel):
        model_config = ConfigDict(extra="forbid")

        question: str = Field(min_length=1, max_length=max_q, description="the question asked in that turn")
        answer: str = Field("", max_length=MAX_ANSWER_CHARS, description="the answer as received")
        resolved_question: str | None = Field(None, max_length=max_q * 4,
                                              description="the `resolved_question` that turn's answer reported")

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        question: str = Field(min_length=1, max_length=max_q, description=f"中文问题，最长 {max_q} 字")
        k: int | None = Field(None, ge=1, le=max_k, description="passages to retrieve (default from settings)")
        mode: Mode = Field("hybrid", description="retrieval: hybrid (BM25 + dense), dense or sparse")
        answer_mode: AnswerMode = Field(
            settings.answer_mode, description="extractive (the reader's quoted sentence), generative (the LLM's "
                                              "statements, each verified against its passage; needs "
                                              "POLICYQA_LLM_BASE_URL) or auto (generative for why/how/which-ones "
                                              "questions)")
        stream: bool = Field(False, description="answer as Server-Sent Events: `passages`, then `delta` events "
                                                "(text as it is written), then `answer` (the final object)")
        history: list[HistoryTurn] | None = Field(
            None, max_length=max_turns,
            description=f"earlier turns of the conversation, oldest first (at most {max_turns}), as the client "
                        "received them; the server keeps no state, so any worker can answer. A follow-up (那东莞呢？) "
                        "is answered as the standalone question reported in `resolved_question`")

    @api.post("/v1/ask", response_model=AskResult, summary="Answer a question with citations / 回答问题并给出引用",
              responses={**responses(413, 422, 503), 200: {"content": {"text/event-stream": {}}}})
    def ask(body: AskRequest, ctx: Annotated[AppContext, Depends(context)],
            _: Annotated[LoadedIndex, Depends(loaded_index)]) -> Response:
        t0 = time.perf_counter()
        resolution = _resolve(ctx, body.question, body.history or [], body.answer_mode)
        if body.stream:
            events = ctx.engine.answer_events(resolution.resolved, k=body.k, mode=body.mode,
                                              answer_mode=body.answer_mode)
            # retrieval and the reader run before the first event: their errors still get the JSON error
            # response; a failure after the 200 went out is sent as an `error` event
            first = next(events)
            return StreamingResponse(_sse(itertools.chain([first], events), ctx, resolution, t0),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        result = ctx.engine.answer(resolution.resolved, k=body.k, mode=body.mode, answer_mode=body.answer_mode)
        ctx.metrics.observe_answer(result)
        return JSONResponse(_finish(result.to_dict(), ctx, resolution, t0))

    @api.get("/v1/search", response_model=SearchResult,
             summary="Retrieve passages with score breakdown / 检索段落", responses=responses(422, 503))
    def search(q: Annotated[str, Query(min_length=1, max_length=max_q, description="query / 查询")],
               ctx: Annotated[AppContext, Depends(context)],
               _: Annotated[LoadedIndex, Depends(loaded_index)],
               k: Annotated[int | None, Query(ge=1, le=max_k, description="passages to return")] = None,
               mode: Annotated[Mode, Query(description="hybrid, dense or sparse")] = "hybrid") -> Response:
        return JSONResponse(ctx.engine.search(q, k, mode).to_dict())

    return api


MAX_ANSWER_CHARS = 20_000  # of an earlier answer sent back in `history`


def _resolve(ctx: AppContext, question: str, history: list[Any], answer_mode: str) -> Resolution:
    """The standalone question to answer: the LLM condenses it in generative mode (the rules on any failure),
    the rules otherwise."""
    turns = [Turn(t.question, t.answer, t.resolved_question) for t in history]
    if not turns:
        return resolve(question)
    llm = ctx.engine.llm
    if answer_mode == "generative" and llm is not None:
        resolution = condense(llm, question, turns, timeout_s=min(ctx.settings.llm_timeout_s, 20.0),
                              max_chars=ctx.settings.max_question_chars)
    else:
        resolution = resolve(question, turns)
    ctx.metrics.followups.labels(resolution.method).inc()
    return resolution


def _finish(data: dict[str, Any], ctx: AppContext, resolution: Resolution, t0: float) -> dict[str, Any]:
    """The answer as sent: the question as asked, the standalone one answered, its id; logged."""
    answer_id = new_answer_id()
    data["question"] = resolution.question
    data["resolved_question"] = resolution.resolved
    data["conversation"] = resolution.to_dict()
    data["answer_id"] = answer_id
    if ctx.logbook is not None:
        latency = round((time.perf_counter() - t0) * 1000, 1)
        ctx.logbook.record(from_answer(data, answer_id=answer_id, question=resolution.question,
                                       resolved=resolution.resolved, latency_ms=latency))
    return data


def _event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sse(events: Iterator[Any], ctx: AppContext, resolution: Resolution, t0: float) -> Iterator[str]:
    try:
        for event in events:
            if event.kind == "passages":
                data: Any = {"passages": [p.to_dict() for p in event.data]}
            elif event.kind == "delta":
                data = {"text": event.data}
            else:
                ctx.metrics.observe_answer(event.data)
                data = _finish(event.data.to_dict(), ctx, resolution, t0)
            yield _event(event.kind, data)
    except Exception:
        log.exception("streamed answer failed")
        yield _event("error", error_payload(*status_error(500)))
