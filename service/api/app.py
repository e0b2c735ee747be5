"""The HTTP service: `create_app(settings, engine=None)` wires the routers, middleware and error handlers.

JSON under /v1, OpenAPI at /openapi.json with Swagger UI at /docs, health at /healthz and /readyz,
Prometheus text at /metrics. The documentation page loads its script, style and icon from this server (the
copy of Swagger UI, Apache-2.0, that the fastapi-offline package ships), never from a CDN: the service runs
where there is no internet. There is no /redoc: ReDoc's bundle fetches its logo from a CDN.

Nothing heavy happens at import, in `create_app` or before the port opens: the index is loaded (or the
first one built) by a background task, and until then /readyz says how far it has got and the question
routes answer 503 with Retry-After. The watcher follows the CURRENT pointer every second and on each
index-reading request, so a generation published by a rebuild is picked up by every worker without a
restart; a request that already started keeps the LoadedIndex it started with.

Every error uses one shape (service.api.errors): {"error": {"code", "message", "detail"?}}.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.api.errors import ErrorResponse, install_error_handlers
from service.api.metrics import AppMetrics
from service.api.middleware import Observability, request_body_limit
from service.api.routers import documents, feedback, index, ops, questions
from service.api.state import AppContext, AutoRebuild, IndexWatcher, stop
from service.docstore import DocumentStore
from service.jobs import JobRunner, env_settings
from service.logbook import Logbook
from service.logs import configure_logging
from service.settings import Settings

if TYPE_CHECKING:
    from service.engine import Engine

DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"  # swagger-ui, favicon
DOCS_ASSETS_URL = "/docs/assets"


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    if engine is None:
        from service.engine import Engine

        engine = Engine(settings)
    metrics = AppMetrics()
    jobs = JobRunner(settings)
    auto = (AutoRebuild(jobs, settings.rebuild_delay_s, on_start=lambda job: metrics.rebuilds.inc())
            if settings.auto_rebuild else None)
    ctx = AppContext(settings=settings, engine=engine,
                     store=DocumentStore(settings.corpus_dir, settings.index_dir / "corpus.lock"),
                     jobs=jobs, watcher=IndexWatcher(engine, jobs, metrics), auto=auto, metrics=metrics,
                     logbook=Logbook(settings.logbook_path, enabled=settings.question_log,
                                     retention_days=settings.question_log_days))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = await ctx.background()  # loading runs beside serving: the port opens at once
        try:
            yield
        finally:
            await stop(tasks)

    app = FastAPI(
        title="policyqa",
        version="0.1.0",
        summary="Cited answers about local policy articles / 本地政策问答（带引用）",
        description="中文问题，引用原文作答。Every error has the shape "
                    '`{"error": {"code", "message", "detail"?}}`. Admin routes need '
                    "`Authorization: Bearer <POLICYQA_ADMIN_TOKEN>`.",
        lifespan=lifespan,
        responses={500: {"model": ErrorResponse, "description": "Internal error / 服务器内部错误"}},
        docs_url=None,  # FastAPI's own pages load Swagger UI and ReDoc from a CDN: see install_docs
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    install_docs(app)
    app.add_middleware(Observability, metrics=metrics, body_limit=request_body_limit(settings.max_document_bytes, settings.max_file_bytes))
    app.include_router(questions.router(settings))
    app.include_router(documents.router(settings))
    app.include_router(index.router(settings))
    app.include_router(feedback.router(settings))
    app.include_router(ops.router())
    if ops.STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=ops.STATIC_DIR), name="static")
    return app


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) with its script, style and icon served from DOCS_ASSETS_URL."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} — API 文档 / API docs",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
            # no spec validation by swagger.io's online validator (Swagger UI's default for remote specs)
            swagger_ui_parameters={"validatorUrl": None})


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory service.api.app:app_from_env` (settings from POLICYQA_* variables)."""
    settings = env_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
