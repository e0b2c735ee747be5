"""Questions: /v1/ask (a cited answer, or with "stream": true Server-Sent Events) and /v1/search (passages
with their scores).

No `from __future__ import annotations` here: FastAPI must see AskRequest, a class made per settings
inside router(), as a class and not as a string it cannot resolve.
"""

import itertools
import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from index.store import LoadedIndex
from service.api.errors import error_payload, responses, status_error
from service.api.models import AnswerMode, AskResult, Mode, SearchResult
from service.api.state import AppContext, context, loaded_index
from service.settings import Settings

log = logging.getLogger("policyqa")


def router(settings: Settings) -> APIRouter:
    """The routes, with the limits in `settings` written into their schemas."""
    max_q, max_k = settings.max_question_chars, settings.max_k
    api = APIRouter(tags=["questions"])

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

    @api.post("/v1/ask", response_model=AskResult, summary="Answer a question with citations / 回答问题并给出引用",
              responses={**responses(413, 422, 503), 200: {"content": {"text/event-stream": {}}}})
    def ask(body: AskRequest, ctx: Annotated[AppContext, Depends(context)],
            _: Annotated[LoadedIndex, Depends(loaded_index)]) -> Response:
        if body.stream:
            events = ctx.engine.answer_events(body.question, k=body.k, mode=body.mode,
                                              answer_mode=body.answer_mode)
            # retrieval and the reader run before the first event: their errors still get the JSON error
            # response; a failure after the 200 went out is sent as an `error` event
            first = next(events)
            return StreamingResponse(_sse(itertools.chain([first], events), ctx), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        result = ctx.engine.answer(body.question, k=body.k, mode=body.mode, answer_mode=body.answer_mode)
        ctx.metrics.observe_answer(result)
        return JSONResponse(result.to_dict())

    @api.get("/v1/search", response_model=SearchResult,
             summary="Retrieve passages with score breakdown / 检索段落", responses=responses(422, 503))
    def search(q: Annotated[str, Query(min_length=1, max_length=max_q, description="query / 查询")],
               ctx: Annotated[AppContext, Depends(context)],
               _: Annotated[LoadedIndex, Depends(loaded_index)],
               k: Annotated[int | None, Query(ge=1, le=max_k, description="passages to return")] = None,
               mode: Annotated[Mode, Query(description="hybrid, dense or sparse")] = "hybrid") -> Response:
        return JSONResponse(ctx.engine.search(q, k, mode).to_dict())

    return api


def _event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sse(events: Iterator[Any], ctx: AppContext) -> Iterator[str]:
    try:
        for event in events:
            if event.kind == "passages":
                data: Any = {"passages": [p.to_dict() for p in event.data]}
            elif event.kind == "delta":
                data = {"text": event.data}
            else:
                ctx.metrics.observe_answer(event.data)
                data = event.data.to_dict()
            yield _event(event.kind, data)
    except Exception:
        log.exception("streamed answer failed")
        yield _event("error", error_payload(*status_error(500)))
