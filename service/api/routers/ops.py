"""Operations: liveness, readiness (with the first build's progress), Prometheus metrics, the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response

from service.api.errors import bilingual, error_payload
from service.api.models import Health, NotReady, Ready
from service.api.state import RETRY_AFTER_S, AppContext, context, stage_message

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def router() -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.get("/healthz", response_model=Health, summary="Liveness: the process answers / 存活检查")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", response_model=Ready, summary="Readiness: an index is loaded / 就绪检查",
             responses={503: {"model": NotReady,
                              "description": "Not ready: starting, building the first index (with its "
                                             "progress) or that build failed / 尚未就绪"}})
    def readyz(ctx: Annotated[AppContext, Depends(context)]) -> Response:
        r = ctx.watcher.readiness()
        if r["state"] == "ready":
            return JSONResponse(r)
        zh, en = stage_message(r)
        body = {**error_payload("not_ready", bilingual(zh, en), {"reason": r.pop("reason", None)}), **r}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    @api.get("/metrics", summary="Prometheus metrics / 监控指标", response_class=Response,
             responses={200: {"description": "Prometheus text format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics(ctx: Annotated[AppContext, Depends(context)]) -> Response:
        content, ctype = ctx.metrics.render()
        return Response(content, media_type=ctype)

    if (STATIC_DIR / "index.html").is_file():

        @api.get("/", include_in_schema=False)
        def home() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

        @api.get("/report", include_in_schema=False)
        def report_page() -> FileResponse:
            """The question report for operators (the data comes from the admin-only /v1/report/questions)."""
            return FileResponse(STATIC_DIR / "report.html", media_type="text/html; charset=utf-8")

    return api
