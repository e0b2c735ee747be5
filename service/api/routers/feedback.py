"""Feedback on answers and the question log: rate an answer (POST /v1/feedback, anyone), read the ratings and
the question report (admin).

A rating is stored with what it rates (question, standalone question, answer, citations, generation, answer
mode) in the logbook's SQLite file, shared by every worker. A full disk answers 507, like a document add.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from service.api.auth import admin_dependency
from service.api.errors import ApiError, responses
from service.api.models import FeedbackList, FeedbackRequest, FeedbackStored
from service.api.state import AppContext, context
from service.logbook import Logbook, UnknownAnswer
from service.questionreport import build_report
from service.settings import Settings

_DATE = r"^\d{4}-\d{2}-\d{2}([T ][0-9:.+Z-]*)?$"


def _logbook(ctx: AppContext) -> Logbook:
    if ctx.logbook is None:  # pragma: no cover - create_app always makes one
        raise ApiError(503, "no_logbook", "问题日志不可用", "the question log is not available")
    return ctx.logbook


def router(settings: Settings) -> APIRouter:
    require_admin = admin_dependency(settings.admin_token)
    api = APIRouter(tags=["feedback"])

    @api.post("/v1/feedback", response_model=FeedbackStored, status_code=201,
              summary="Rate an answer 👍/👎, optionally with the right answer / 评价回答",
              responses=responses(404, 413, 422, 507))
    def post_feedback(body: FeedbackRequest, ctx: Annotated[AppContext, Depends(context)]) -> JSONResponse:
        book = _logbook(ctx)
        correct = (body.correct_answer or "").strip() or None
        comment = (body.comment or "").strip() or None
        try:
            fb = book.add_feedback(body.answer_id, body.rating, correct, comment)
        except UnknownAnswer:
            off = not book.enabled
            raise ApiError(
                404, "answer_not_found",
                "没有这个回答：answer_id 不对、已超过保留期限，或问题日志已关闭（POLICYQA_QUESTION_LOG=false）" if off
                else "没有这个回答：answer_id 不对，或已超过问题日志的保留期限",
                "no such answer: wrong answer_id, past the log's retention, or the question log is off "
                "(POLICYQA_QUESTION_LOG=false)" if off else "no such answer: wrong answer_id, or past the question "
                                                           "log's retention",
                detail={"answer_id": body.answer_id, "question_log": book.enabled}) from None
        ctx.metrics.feedback.labels(body.rating).inc()
        return JSONResponse({"feedback_id": fb.feedback_id, "answer_id": fb.answer_id, "rating": fb.rating,
                             "created_at": fb.created_at}, status_code=201)

    @api.get("/v1/feedback", response_model=FeedbackList, dependencies=[Depends(require_admin)],
             summary="Ratings, newest first (admin) / 评价列表", responses=responses(401, 403, 422))
    def list_feedback(ctx: Annotated[AppContext, Depends(context)],
                      rating: Annotated[Literal["up", "down"] | None, Query(description="up or down")] = None,
                      since: Annotated[str | None, Query(pattern=_DATE, description="from this date (ISO)")] = None,
                      until: Annotated[str | None, Query(pattern=_DATE, description="to this date (ISO, inclusive)")] = None,
                      limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
        items = _logbook(ctx).feedback(rating, since, until, limit)
        return {"feedback": [f.to_dict() for f in items]}

    @api.get("/v1/report/questions", dependencies=[Depends(require_admin)],
             summary="The question log's report: frequent questions, refusals by reason, place and topic (the "
                     "documents to add), 👎 answers (admin) / 问题报告",
             responses=responses(401, 403, 422))
    def report(ctx: Annotated[AppContext, Depends(context)],
               days: Annotated[int, Query(ge=1, le=36500, description="the last N days")] = 30,
               top: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
        book = _logbook(ctx)
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds")
        out = build_report(book.questions(since), book.feedback(since=since), top).to_dict()
        out["days"] = days
        out["question_log"] = book.enabled
        return out

    return api
