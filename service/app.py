"""The HTTP service: `create_app(settings, engine=None)` builds the FastAPI app.

JSON under /v1, OpenAPI at /openapi.json with Swagger UI at /docs, health at /healthz and /readyz,
Prometheus text at /metrics. The documentation page loads its script, style and icon from this server (the
copy of Swagger UI, Apache-2.0, that the fastapi-offline package ships), never from a CDN: the service runs
where there is no internet. There is no /redoc: ReDoc's bundle fetches its logo from a CDN.

Nothing heavy happens at import or in `create_app`: the model and the index are loaded in the
app's lifespan. A background task (every second) and every index-reading request call `engine.refresh()`,
so a generation published by a rebuild is picked up by every worker without a restart; a request that
already started keeps the LoadedIndex it started with.

Every error uses one shape (service.errors): {"error": {"code", "message", "detail"?}}.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import fastapi_offline
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from corpus.cleaning import clean_document
from corpus.documents import DOC_ID_RE
from index.generations import IndexCorrupt, IndexError_, IndexMismatch, IndexNotFound, current_generation
from index.store import LoadedIndex
from service.auth import admin_dependency
from service.documents_api import (
    DocumentStore,
    NewDocumentFields,
    PreparedDocument,
    check_doc_id,
    not_found,
    prepare_from_fields,
    prepare_from_markdown,
)
from service.errors import (
    ApiError,
    BodyTooLarge,
    ErrorResponse,
    bilingual,
    error_response,
    install_error_handlers,
    internal_error_response,
    responses,
    too_large_response,
    validation_detail,
)
from service.jobs import JOB_ID_RE, Job, JobRunner, env_settings
from service.metrics import HttpMetrics
from service.settings import Settings

if TYPE_CHECKING:
    from service.engine import Engine

log = logging.getLogger("policyqa.http")
app_log = logging.getLogger("policyqa")

STATIC_DIR = FsPath(__file__).resolve().parent / "static"
DOCS_ASSETS_DIR = FsPath(fastapi_offline.__file__).resolve().parent / "static"  # swagger-ui, favicon
DOCS_ASSETS_URL = "/docs/assets"
REFRESH_EVERY_S = 1.0
WARMUP_QUERY = "党建引领基层治理"
DRAIN_CAP_BYTES = 64 * 1024 * 1024  # read (and drop) at most this much of an oversize body before the 413
# A request body may be larger than the document it carries: JSON may escape every CJK character as \uXXXX
# (6 bytes for 3 of UTF-8; 12 for a 4-byte character) and a form adds its envelope. The document itself is
# held to max_document_bytes once it is decoded.
BODY_PER_DOCUMENT_BYTE = 3
BODY_OVERHEAD_BYTES = 64 * 1024
Mode = Literal["hybrid", "dense", "sparse"]
DOC_ID_PATTERN = DOC_ID_RE.pattern
JOB_ID_PATTERN = JOB_ID_RE.pattern


# --- response models (the documented shapes) -----------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SearchHit(_Open):
    rank: int
    doc_id: str
    chunk_id: str
    title: str
    section: list[str]
    date: str
    kind: str
    text: str = Field(description="cleaned[start:end] of the document (GET /v1/documents/{doc_id} → text)")
    start: int
    end: int
    score: float
    fused_score: float | None
    dense_rank: int | None
    dense_score: float | None
    sparse_rank: int | None
    sparse_score: float | None


class SearchResult(_Open):
    query: str
    mode: str
    k: int
    truncated: bool = Field(description="the query was longer than the model window (dense side cut)")
    generation: str
    timings_ms: dict[str, float]
    results: list[SearchHit]


class Citation(_Open):
    n: int
    doc_id: str
    chunk_id: str
    title: str
    date: str
    section: list[str] | str
    quote: str = Field(description="exactly text[start:end] of the cited document's cleaned text")
    start: int
    end: int


class AskResult(_Open):
    question: str
    answer: str = Field(description="the answer, with citation markers [n]; the refusal text when refused")
    short_answer: str | None = None
    answer_type: str
    refused: bool
    reason: str | None = Field(None, description="why the answer was refused")
    confidence: float
    conflict: bool = Field(description="the sources disagree")
    citations: list[Citation]
    passages: list[SearchHit]
    timings_ms: dict[str, float] = Field(default_factory=dict)
    generation: str
    signals: dict[str, float] = Field(default_factory=dict)


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    date: str
    date_inferred: bool = False
    source: str
    region: str
    url: str | None = None
    content_hash: str | None = Field(None, description="sha256 of the stored file")
    chunks: int = Field(description="chunks of this document in the current index generation")
    indexed: bool = Field(description="in the current generation with the same content hash")
    stored: bool = Field(True, description="the file is in the corpus folder (false: deleted, still indexed)")


class LoadProblemModel(BaseModel):
    file: str
    code: str
    message: str


class DocumentList(BaseModel):
    generation: str | None
    documents: list[DocumentSummary]
    pending_removal: list[str] = Field(description="doc_ids still in the index whose files were deleted")
    problems: list[LoadProblemModel] = Field(description="stored files the corpus loader skips")


class DocumentDetail(DocumentSummary):
    generation: str | None
    text: str = Field(description="cleaned text; citation offsets (start, end) index into it")
    raw: str | None = Field(description="the stored body exactly as captured (null when deleted)")


class DocumentCreated(BaseModel):
    doc_id: str
    title: str
    content_hash: str
    job_id: str | None = Field(None, description="the rebuild job, with ?rebuild=true")


class DocumentDeleted(BaseModel):
    doc_id: str
    deleted: bool
    job_id: str | None = None


class JobProgressModel(BaseModel):
    done: int
    total: int
    stage: str


class JobError(BaseModel):
    code: str
    message: str


class JobStatus(BaseModel):
    job_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: JobProgressModel
    error: JobError | None
    generation: str | None = Field(description="the generation the job built (when succeeded)")
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class JobAccepted(JobStatus):
    started: bool = Field(description="false: a rebuild was already running and this is that job")


class ModelSummary(BaseModel):
    name: str
    fingerprint: str
    dim: int
    max_tokens: int | None = None


class IndexSummary(BaseModel):
    generation: str
    created_at: str
    model: ModelSummary
    counts: dict[str, int]
    corpus_fingerprint: str
    chunker: dict[str, Any]
    dense: dict[str, Any]
    build: dict[str, Any]
    encoder: dict[str, Any] = Field(default_factory=dict,
                                    description="encoder variant that embedded the passages (backend, precision)")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    generation: str


class NewDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, description="the article body as captured (Markdown allowed)")
    date: str | None = Field(None, description="ISO date: YYYY, YYYY-MM or YYYY-MM-DD; default: today, "
                                               "marked date_inferred")
    source: str | None = Field(None, max_length=500)
    url: str | None = Field(None, max_length=2000)
    doc_id: str | None = Field(None, description="ASCII slug; default doc-<sha256(text)[:12]>",
                               max_length=128)
    region: str | None = Field(None, max_length=500)


# --- state shared by the routes ------------------------------------------------------------------------


class IndexWatcher:
    """Loads the index at startup and follows the CURRENT pointer afterwards.

    With no usable index (an app started directly by uvicorn on a new machine, or an index built with
    another model or lexicon) it starts a rebuild job and becomes ready when that job's generation appears.
    """

    def __init__(self, engine: "Engine", jobs: JobRunner) -> None:
        self.engine = engine
        self.jobs = jobs
        self.generation: str | None = None
        self.error: str | None = None
        self._failed: FsPath | None = None

    def startup(self) -> None:
        try:
            idx = self.engine.load()
        except (IndexNotFound, IndexMismatch, IndexCorrupt) as exc:
            job, started = self.jobs.start()
            self.error = f"{exc.message}: building a new generation (job {job.job_id})"
            app_log.warning("no usable index in %s (%s): %s rebuild job %s; ready when it finishes",
                            self.engine.settings.index_dir, exc.message, "started" if started else "waiting for",
                            job.job_id)
            return
        except IndexError_ as exc:
            self.error = str(exc)
            app_log.warning("not ready: %s", exc)
            return
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            app_log.exception("index loading failed")
            return
        self._warm_up()
        self._loaded(idx)

    def _warm_up(self) -> None:
        """Load the encoder, jieba and the reader now rather than on the first request."""
        try:
            self.engine.answer(WARMUP_QUERY, 1, "hybrid")
        except Exception:
            app_log.exception("warm-up query failed")

    def _loaded(self, idx: LoadedIndex) -> None:
        self.generation = idx.generation
        self.error = None
        self._failed = None

    def check(self) -> None:
        """Switch to a newer generation if there is one; a broken one is logged once and skipped."""
        try:
            current = current_generation(self.engine.settings.index_dir)
        except IndexCorrupt as exc:
            self.error = str(exc)
            return
        if current is None or current == self._failed:
            return
        idx = self.loaded()
        if idx is not None and idx.path == current:  # the common case: nothing new (one file read)
            if idx.generation != self.generation:
                self._loaded(idx)
            return
        try:
            self.engine.refresh()
        except Exception as exc:
            self._failed = current
            self.error = f"generation {current.name} not loaded: {exc}"
            app_log.error("could not switch to index generation %s: %s (still serving %s)", current.name, exc,
                          self.generation)
            return
        idx = self.loaded()
        if idx is not None and idx.generation != self.generation:
            if self.generation is None:
                self._warm_up()
            self._loaded(idx)

    def loaded(self) -> LoadedIndex | None:
        idx: LoadedIndex | None = getattr(self.engine, "_index", None)
        return idx

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_EVERY_S)
            try:
                await anyio.to_thread.run_sync(self.check)
            except Exception:  # pragma: no cover - check() already catches
                app_log.exception("index watcher")


@dataclass
class AppContext:
    settings: Settings
    engine: "Engine"
    store: DocumentStore
    jobs: JobRunner
    watcher: IndexWatcher
    metrics: HttpMetrics = field(default_factory=HttpMetrics)


# --- middleware: request log, metrics, body limit, last-resort 500 -------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_body_limit(max_document_bytes: int) -> int:
    """The largest request body read: room for a max_document_bytes document however it is encoded."""
    return max_document_bytes * BODY_PER_DOCUMENT_BYTE + BODY_OVERHEAD_BYTES


async def _drain(receive: Receive, cap: int) -> None:
    """Read and drop the rest of a request body (so the client can finish sending and read our 413)."""
    seen = 0
    while seen < cap:
        msg = await receive()
        if msg["type"] != "http.request":
            return
        seen += len(msg.get("body", b""))
        if not msg.get("more_body", False):
            return


class Observability:
    """Pure ASGI middleware: request log line, Prometheus metrics, body-size guard, JSON 500s."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, body_limit: int) -> None:
        self.app = app
        self.metrics = metrics
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        started = False
        limit = self.body_limit
        received = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_CAP_BYTES)
                    raise BodyTooLarge(limit)
            return message

        try:
            length = _content_length(scope)
            if length is not None and length > limit:
                await _drain(receive, DRAIN_CAP_BYTES)
                await too_large_response(limit)(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge as exc:
            if started:
                raise
            await too_large_response(exc.limit, exc.what)(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await internal_error_response()(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - t0
            route = scope.get("route")
            template = getattr(route, "path", None) or ("<unmatched>" if status == 404 else "<other>")
            method = str(scope.get("method", ""))
            log.info("%s %s %d %.1fms", method, scope.get("path", ""), status, seconds * 1000)
            self.metrics.observe(template, method, status, seconds)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# --- helpers used by the routes ------------------------------------------------------------------------


def _job_status(job: Job) -> dict[str, Any]:
    return job.public()


def _summary(doc_meta: dict[str, Any], idx: LoadedIndex | None, content_hash: str | None,
             stored: bool = True) -> dict[str, Any]:
    indexed_doc = idx.documents.get(doc_meta["doc_id"]) if idx is not None else None
    indexed = indexed_doc is not None and (content_hash is None or indexed_doc.content_hash == content_hash)
    return {"doc_id": doc_meta["doc_id"], "title": doc_meta["title"], "date": doc_meta["date"],
            "date_inferred": bool(doc_meta.get("date_inferred", False)), "source": doc_meta["source"],
            "region": doc_meta.get("region") or "", "url": doc_meta.get("url"), "content_hash": content_hash,
            "chunks": indexed_doc.chunks if indexed_doc is not None else 0, "indexed": indexed,
            "stored": stored}


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyTooLarge(limit)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge(limit)
    return bytes(buf)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _check_document_size(data: bytes | str, limit: int) -> None:
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > limit:
        raise BodyTooLarge(limit, "document")


async def _prepare_upload(request: Request, body: bytes, corpus_dir: FsPath, max_doc: int) -> PreparedDocument:
    """The uploaded document, validated; a document over max_doc bytes is refused before it is parsed."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            obj = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(422, "invalid_json", "请求体不是有效的 JSON（UTF-8）",
                           f"the request body is not valid JSON (UTF-8): {exc}") from exc
        try:
            new = NewDocument.model_validate(obj)
        except ValidationError as exc:
            detail = validation_detail(list(exc.errors()))
            raise ApiError(422, "validation_error", "文档字段无效", "invalid document fields", detail=detail) from exc
        _check_document_size(new.text, max_doc)
        fields = NewDocumentFields(title=new.title, text=new.text, date=new.date, source=new.source, url=new.url,
                                   doc_id=new.doc_id, region=new.region)
        return prepare_from_fields(fields, corpus_dir)
    if ctype == "multipart/form-data":
        replay = Request(request.scope, _replay(body))
        try:
            form = await replay.form(max_files=1, max_fields=10, max_part_size=len(body) + 1)
        except StarletteHTTPException as exc:
            raise ApiError(400, "bad_multipart", "multipart 表单无法解析", f"cannot parse the multipart form: "
                           f"{exc.detail}") from exc
        try:
            upload = form.get("file")
            doc_id = form.get("doc_id")
            if isinstance(upload, UploadFile):
                data = await upload.read()
            elif isinstance(upload, str):
                data = upload.encode("utf-8")
            else:
                raise ApiError(422, "missing_file", "缺少 file 字段（Markdown 文件）",
                               "the form lacks the `file` field (a Markdown file)")
            if doc_id is not None and not isinstance(doc_id, str):
                raise ApiError(422, "bad_doc_id", "doc_id 字段必须是文本", "the doc_id field must be text")
        finally:
            await form.close()
        _check_document_size(data, max_doc)
        return prepare_from_markdown(data, corpus_dir, doc_id or None)
    if ctype in ("text/markdown", "text/x-markdown", "text/plain"):
        _check_document_size(body, max_doc)
        return prepare_from_markdown(body, corpus_dir, request.query_params.get("doc_id") or None)
    raise ApiError(415, "unsupported_media_type", "请用 application/json、multipart/form-data 或 text/markdown 提交",
                   "send application/json, multipart/form-data (field `file`) or text/markdown",
                   detail={"content_type": ctype[:100]})


NEW_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": NewDocument.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "Markdown with YAML front matter (title, date, source…), "
                                            "the stored format of corpus/raw/*.md"},
                    "doc_id": {"type": "string", "pattern": DOC_ID_PATTERN,
                               "description": "used when the front matter names none"}}}},
            "text/markdown": {"schema": {"type": "string"}},
        },
    }
}


# --- the app -------------------------------------------------------------------------------------------


def create_app(settings: Settings, engine: "Engine | None" = None) -> FastAPI:
    if engine is None:
        from service.engine import Engine

        engine = Engine(settings)
    jobs = JobRunner(settings)
    watcher = IndexWatcher(engine, jobs)
    ctx = AppContext(settings=settings, engine=engine,
                     store=DocumentStore(settings.corpus_dir, settings.index_dir / "corpus.lock"),
                     jobs=jobs, watcher=watcher)
    max_q = settings.max_question_chars
    max_k = settings.max_k
    max_doc = settings.max_document_bytes
    max_body = request_body_limit(max_doc)
    require_admin = admin_dependency(settings.admin_token)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(watcher.startup)
        task = asyncio.create_task(watcher.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
    app.add_middleware(Observability, metrics=ctx.metrics, body_limit=max_body)

    def refresh() -> None:
        watcher.check()

    # --- questions -------------------------------------------------------------------------------------

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        question: str = Field(min_length=1, max_length=max_q, description=f"中文问题，最长 {max_q} 字")
        k: int | None = Field(None, ge=1, le=max_k, description="passages to retrieve (default from settings)")
        mode: Mode = Field("hybrid", description="retrieval: hybrid (BM25 + dense, RRF), dense or sparse")

    @app.post("/v1/ask", response_model=AskResult, tags=["questions"],
              summary="Answer a question with citations / 回答问题并给出引用",
              responses=responses(413, 422, 503))
    def ask(body: AskRequest) -> Response:
        refresh()
        answer = getattr(engine, "answer", None)
        if answer is None:
            raise ApiError(503, "answering_unavailable", "问答功能尚未启用", "answering is not available yet")
        result = answer(body.question, k=body.k, mode=body.mode)
        return JSONResponse(result.to_dict())

    @app.get("/v1/search", response_model=SearchResult, tags=["questions"],
             summary="Retrieve passages with score breakdown / 检索段落", responses=responses(422, 503))
    def search(q: Annotated[str, Query(min_length=1, max_length=max_q, description="query / 查询")],
               k: Annotated[int | None, Query(ge=1, le=max_k, description="passages to return")] = None,
               mode: Annotated[Mode, Query(description="hybrid, dense or sparse")] = "hybrid") -> Response:
        refresh()
        return JSONResponse(engine.search(q, k, mode).to_dict())

    # --- documents -------------------------------------------------------------------------------------

    DocId = Annotated[str, Path(min_length=1, max_length=128, pattern=DOC_ID_PATTERN,
                                description="document id (lowercase ASCII slug)")]

    @app.get("/v1/documents", response_model=DocumentList, tags=["documents"],
             summary="List stored documents and their index state / 文档列表", responses=responses())
    def list_documents() -> dict[str, Any]:
        refresh()
        idx = watcher.loaded()
        loaded = ctx.store.load()
        docs = [_summary(d.metadata(), idx, d.content_hash) for d in loaded.documents]
        stored_ids = {d.doc_id for d in loaded.documents}
        pending = sorted(set(idx.documents) - stored_ids) if idx is not None else []
        problems = [{"file": p.path.name, "code": p.code, "message": bilingual(p.message_zh, p.message_en)}
                    for p in loaded.problems]
        return {"generation": idx.generation if idx is not None else None, "documents": docs,
                "pending_removal": pending, "problems": problems}

    @app.get("/v1/documents/{doc_id}", response_model=DocumentDetail, tags=["documents"],
             summary="One document: metadata, cleaned text, stored body / 单个文档",
             responses=responses(404, 422))
    def get_document(doc_id: DocId) -> dict[str, Any]:
        check_doc_id(doc_id)
        refresh()
        idx = watcher.loaded()
        doc = ctx.store.get(doc_id)
        indexed = idx.documents.get(doc_id) if idx is not None else None
        generation = idx.generation if idx is not None else None
        if doc is not None:
            out = _summary(doc.metadata(), idx, doc.content_hash)
            text = indexed.text if indexed is not None and out["indexed"] else clean_document(doc).text
            return {**out, "generation": generation, "text": text, "raw": doc.raw}
        if indexed is not None:  # deleted, still in the current generation: citations need its text
            meta = {"doc_id": indexed.doc_id, "title": indexed.title, "date": indexed.date,
                    "date_inferred": indexed.date_inferred, "source": indexed.source, "region": indexed.region,
                    "url": indexed.url}
            out = _summary(meta, idx, indexed.content_hash, stored=False)
            return {**out, "generation": generation, "text": indexed.text, "raw": None}
        raise not_found(doc_id)

    @app.post("/v1/documents", response_model=DocumentCreated, status_code=201, tags=["admin"],
              summary="Add a document (admin) / 新增文档（管理）",
              description="JSON `{title, text, date?, source?, url?, doc_id?, region?}`, a multipart upload "
                          "(field `file`: Markdown with front matter) or a text/markdown body. Validated like "
                          "the corpus loader and written durably before the 201. `?rebuild=true` also starts "
                          f"a rebuild job. A document over {max_doc} bytes (UTF-8, as stored) is refused with 413.",
              responses=responses(400, 401, 403, 409, 413, 415, 422),
              openapi_extra=NEW_DOCUMENT_BODY, dependencies=[Depends(require_admin)])
    async def add_document(request: Request,
                           rebuild: Annotated[bool, Query(description="also start an index rebuild")] = False,
                           ) -> Response:
        body = await _read_body(request, max_body)
        prepared = await _prepare_upload(request, body, settings.corpus_dir, max_doc)
        _check_document_size(prepared.data, max_doc)  # the stored file: body and front matter
        doc = await anyio.to_thread.run_sync(ctx.store.add, prepared)
        app_log.info("document %s added (%d bytes)", doc.doc_id, len(prepared.data))
        out: dict[str, Any] = {"doc_id": doc.doc_id, "title": doc.title, "content_hash": doc.content_hash,
                               "job_id": None}
        if rebuild:
            job, _ = await anyio.to_thread.run_sync(start_job)
            out["job_id"] = job.job_id
        return JSONResponse(out, status_code=201, headers={"Location": f"/v1/documents/{doc.doc_id}"})

    @app.delete("/v1/documents/{doc_id}", response_model=DocumentDeleted, tags=["admin"],
                summary="Delete a document (admin) / 删除文档（管理）",
                description="Moves the stored file to the corpus folder's `.trash/` (durably). The document "
                            "leaves search results with the next rebuild (`?rebuild=true` starts one).",
                responses=responses(401, 403, 404, 422), dependencies=[Depends(require_admin)])
    def delete_document(doc_id: DocId,
                        rebuild: Annotated[bool, Query(description="also start an index rebuild")] = False,
                        ) -> dict[str, Any]:
        check_doc_id(doc_id)
        deleted = ctx.store.delete(doc_id)
        app_log.info("document %s deleted (moved to %s)", doc_id, deleted.trashed_as)
        job_id = start_job()[0].job_id if rebuild else None
        return {"doc_id": doc_id, "deleted": True, "job_id": job_id}

    # --- index and jobs --------------------------------------------------------------------------------

    def start_job() -> tuple[Job, bool]:
        job, started = ctx.jobs.start()
        if started:
            ctx.metrics.rebuilds.inc()
        return job, started

    @app.post("/v1/index/rebuild", response_model=JobAccepted, status_code=202, tags=["admin"],
              summary="Rebuild the index in the background (admin) / 后台重建索引（管理）",
              description="Starts a low-priority build process and returns its job at once. While one runs, "
                          "the running job is returned (same job_id, `started: false`).",
              responses=responses(401, 403), dependencies=[Depends(require_admin)])
    def rebuild_index() -> Response:
        job, started = start_job()
        return JSONResponse({**_job_status(job), "started": started}, status_code=202,
                            headers={"Location": f"/v1/jobs/{job.job_id}"})

    @app.get("/v1/jobs/{job_id}", response_model=JobStatus, tags=["index"],
             summary="A rebuild job's state and progress / 重建任务状态", responses=responses(404, 422))
    def get_job(job_id: Annotated[str, Path(pattern=JOB_ID_PATTERN, description="from POST /v1/index/rebuild")],
                ) -> dict[str, Any]:
        job = ctx.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"没有任务“{job_id}”", f"no job {job_id!r}",
                           detail={"job_id": job_id})
        return _job_status(job)

    @app.get("/v1/index", response_model=IndexSummary, tags=["index"],
             summary="The current index generation / 当前索引版本", responses=responses(503))
    def index_info() -> dict[str, Any]:
        refresh()
        m = engine.index.manifest
        return {"generation": m["generation"], "created_at": m["created_at"],
                "model": {k: m["model"].get(k) for k in ("name", "fingerprint", "dim", "max_tokens")},
                "counts": m["counts"], "corpus_fingerprint": m["corpus"]["fingerprint"], "chunker": m["chunker"],
                "dense": m.get("dense", {}), "build": m.get("build", {}),
                "encoder": m.get("encoder") or {"backend": "torch"}}

    # --- operations ------------------------------------------------------------------------------------

    @app.get("/healthz", response_model=Health, tags=["operations"], summary="Liveness / 存活检查")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Ready, tags=["operations"], summary="Readiness: an index is loaded / 就绪检查",
             responses=responses(503))
    def readyz() -> Response:
        idx = watcher.loaded()
        if idx is None:
            return error_response(503, "not_ready", bilingual("索引尚未加载", "no index loaded"),
                                  {"reason": watcher.error})
        return JSONResponse({"status": "ready", "generation": idx.generation})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics / 监控指标",
             response_class=Response,
             responses={200: {"description": "Prometheus text format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics() -> Response:
        content, ctype = ctx.metrics.render()
        return Response(content, media_type=ctype)

    # --- the web page (service/static) ------------------------------------------------------------------

    if (STATIC_DIR / "index.html").is_file():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def home() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

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
    """Factory for `uvicorn --factory service.app:app_from_env` (settings from POLICYQA_* variables)."""
    from service.server import configure_logging

    settings = env_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
