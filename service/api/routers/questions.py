"""Questions: /v1/ask (a cited answer) and /v1/search (passages with their scores).

No `from __future__ import annotations` here: FastAPI must see AskRequest, a class made per settings
inside router(), as a class and not as a string it cannot resolve.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from index.store import LoadedIndex
from service.api.errors import responses
from service.api.models import AskResult, Mode, SearchResult
from service.api.state import AppContext, context, loaded_index
from service.settings import Settings


def router(settings: Settings) -> APIRouter:
    """The routes, with the limits in `settings` written into their schemas."""
    max_q, max_k = settings.max_question_chars, settings.max_k
    api = APIRouter(tags=["questions"])

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        question: str = Field(min_length=1, max_length=max_q, description=f"中文问题，最长 {max_q} 字")
        k: int | None = Field(None, ge=1, le=max_k, description="passages to retrieve (default from settings)")
        mode: Mode = Field("hybrid", description="retrieval: hybrid (BM25 + dense), dense or sparse")

    @api.post("/v1/ask", response_model=AskResult, summary="Answer a question with citations / 回答问题并给出引用",
              responses=responses(413, 422, 503))
    def ask(body: AskRequest, ctx: Annotated[AppContext, Depends(context)],
            _: Annotated[LoadedIndex, Depends(loaded_index)]) -> Response:
        result = ctx.engine.answer(body.question, k=body.k, mode=body.mode)
        ctx.metrics.observe_answer(result.refused, result.reason, result.confidence, result.timings_ms)
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
