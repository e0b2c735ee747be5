"""One JSON error shape for every failure the HTTP service reports.

    {"error": {"code": "snake_case", "message": "中文说明 / English message", "detail": <optional>}}

Validation errors, unknown routes (404), wrong methods (405), stage errors (query, document, index) and
unhandled exceptions (500) all use it. A 500 is logged with its traceback on the server; the response
carries only a code and a generic message, never a stack trace.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from corpus.documents import DocumentError
from index.generations import BuildInProgress, EncoderMismatch, IndexError_, IndexNotFound, StoreUnavailable
from service.retrieval import QueryError

log = logging.getLogger("policyqa.http")


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code (snake_case)")
    message: str = Field(description="中文说明 / English message")
    detail: Any | None = Field(None, description="Optional structured detail (which field, which document)")


class ErrorResponse(BaseModel):
    """Every non-2xx response has this shape."""

    error: ErrorBody


class ApiError(Exception):
    """An error the API reports on purpose: status, code and a bilingual message."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str, *,
                 detail: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{message_en} / {message_zh}")
        self.status = status
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.detail = detail
        self.headers = dict(headers or {})

    @property
    def message(self) -> str:
        return f"{self.message_zh} / {self.message_en}"


def error_payload(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return {"error": body}


def error_response(status: int, code: str, message: str, detail: Any = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_payload(code, message, detail), status_code=status, headers=dict(headers or {}))


def bilingual(zh: str, en: str) -> str:
    return f"{zh} / {en}"


# --- standard messages for the HTTP status codes Starlette raises itself ----------------------------

_STATUS_MESSAGES: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "请求格式错误", "bad request"),
    401: ("unauthorized", "需要身份验证", "authentication required"),
    403: ("forbidden", "禁止访问", "forbidden"),
    404: ("not_found", "没有这个地址", "no such route"),
    405: ("method_not_allowed", "此地址不支持该请求方法", "method not allowed for this route"),
    406: ("not_acceptable", "无法提供请求的格式", "not acceptable"),
    413: ("payload_too_large", "请求体过大", "request body too large"),
    415: ("unsupported_media_type", "不支持的内容类型", "unsupported media type"),
    422: ("validation_error", "请求参数无效", "invalid request"),
    500: ("internal_error", "服务器内部错误，详情见服务器日志", "internal server error; see the server log"),
    503: ("unavailable", "服务暂不可用", "service unavailable"),
}


def status_error(status: int, detail: Any = None) -> tuple[str, str]:
    code, zh, en = _STATUS_MESSAGES.get(status, (f"http_{status}", "请求失败", "request failed"))
    return code, bilingual(zh, en)


def internal_error_response() -> JSONResponse:
    code, message = status_error(500)
    return error_response(500, code, message)


class BodyTooLarge(StarletteHTTPException):
    """A request body, or the document in it, over a size limit (413). `what` says which."""

    def __init__(self, limit: int, what: str = "request") -> None:
        super().__init__(413, f"the {what} is larger than {limit} bytes")
        self.limit = limit
        self.what = what


def too_large_response(limit: int, what: str = "request") -> JSONResponse:
    if what == "document":
        zh, en = f"文档超过上限 {limit} 字节", f"document larger than {limit} bytes"
    elif what == "file":
        zh, en = f"上传的文件超过上限 {limit} 字节", f"uploaded file larger than {limit} bytes"
    else:
        zh, en = f"请求体超过上限 {limit} 字节", f"request body larger than {limit} bytes"
    return error_response(413, "payload_too_large", bilingual(zh, en), {"limit_bytes": limit})


def validation_detail(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Location, message and type of each problem; never the (possibly huge) input echo."""
    out: list[dict[str, Any]] = []
    for e in errors[:20]:
        if not isinstance(e, Mapping):
            out.append({"msg": str(e)[:300]})
            continue
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))[:300],
                    "type": str(e.get("type", ""))})
    return out


def _summary(detail: list[dict[str, Any]]) -> str:
    parts = []
    for d in detail[:3]:
        loc = ".".join(p for p in d.get("loc", []) if p not in ("body", "query", "path"))
        parts.append(f"{loc}: {d.get('msg', '')}" if loc else str(d.get("msg", "")))
    return "; ".join(parts)


# --- handlers ---------------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyTooLarge):
        return too_large_response(exc.limit, exc.what)
    code, message = status_error(exc.status_code)
    detail: Any = None
    if exc.status_code not in (404, 405) and isinstance(exc.detail, str) and exc.detail:
        detail = exc.detail[:300]
    if exc.status_code == 404:
        detail = {"path": request.url.path[:300]}
    return error_response(exc.status_code, code, message, detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = validation_detail(list(exc.errors()))
    summary = _summary(detail)
    message = bilingual("请求参数无效", "invalid request") + (f": {summary}" if summary else "")
    return error_response(422, "validation_error", message, detail)


async def _query_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryError)
    return error_response(422, exc.code, bilingual(exc.message_zh, exc.message_en))


async def _document_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DocumentError)
    return error_response(422, exc.code, bilingual(exc.message_zh, exc.message_en))


async def _index_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IndexError_)
    if isinstance(exc, BuildInProgress):
        return error_response(409, exc.code, bilingual("另一个索引构建正在进行", exc.message))
    if isinstance(exc, IndexNotFound):
        zh = "还没有索引：请先构建（POST /v1/index/rebuild 或 policyqa index build）"
    elif isinstance(exc, StoreUnavailable):
        zh = "配置了 Milvus 存储（POLICYQA_STORE=milvus），但未安装 pymilvus：请安装 policyqa[milvus]"
    elif isinstance(exc, EncoderMismatch):
        zh = "索引与当前配置的编码器不一致：请重建索引（policyqa index build）或改回构建时的 POLICYQA_ENCODER_BACKEND"
    else:
        zh = "索引不可用"
    log.warning("index unavailable: %s", exc)
    return error_response(503, exc.code, bilingual(zh, f"{exc.message} ({exc.hint})"))


STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_full(exc: BaseException) -> bool:
    """The disk (or the process's file-size limit) is full: no write can succeed until space is freed."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    if not storage_full(exc):
        return await _unhandled(request, exc)
    log.error("storage full on %s %s: %s", request.method, request.url.path, exc)
    return error_response(507, "insufficient_storage",
                          bilingual("服务器磁盘空间不足，未保存任何内容；已保存的文档和当前索引不受影响，请释放空间后重试",
                                    "the server's disk is full; nothing was saved, stored documents and the "
                                    "current index are unaffected: free some space and try again"))


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return internal_error_response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(DocumentError, _document_error)
    app.add_exception_handler(IndexError_, _index_error)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unhandled)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error shape for the given status codes."""
    descriptions = {
        400: "Malformed request / 请求格式错误",
        401: "Missing or wrong admin token / 缺少或错误的管理令牌",
        403: "Admin routes disabled: no POLICYQA_ADMIN_TOKEN configured / 未配置管理令牌",
        404: "Not found / 未找到",
        409: "Conflict / 冲突",
        413: "Body too large / 请求体过大",
        415: "Unsupported media type / 不支持的内容类型",
        422: "Invalid input / 输入无效",
        500: "Internal error (details only in the server log) / 服务器内部错误",
        507: "The server's disk is full; nothing was saved / 磁盘空间不足，未保存",
        503: "No index loaded yet / 索引尚未就绪",
    }
    return {s: {"model": ErrorResponse, "description": descriptions.get(s, "Error")} for s in statuses}
