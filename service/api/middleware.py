"""Pure ASGI middleware around every request: a log line, Prometheus metrics, the body-size guard and
the last-resort 500 in the one error shape."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from service.api.errors import BodyTooLarge, internal_error_response, too_large_response
from service.api.metrics import AppMetrics

log = logging.getLogger("policyqa.http")

DRAIN_CAP_BYTES = 64 * 1024 * 1024  # read (and drop) at most this much of an oversize body before the 413
# A request body may be larger than the document it carries: JSON may escape every CJK character as \uXXXX
# (6 bytes for 3 of UTF-8; 12 for a 4-byte character) and a form adds its envelope. The document itself is
# held to max_document_bytes once it is decoded.
BODY_PER_DOCUMENT_BYTE = 3
BODY_OVERHEAD_BYTES = 64 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_body_limit(max_document_bytes: int, max_file_bytes: int = 0) -> int:
    """The largest request body read: room for a max_document_bytes document however it is encoded, or a
    max_file_bytes file (PDF, Word, web page) in a multipart form."""
    return max(max_document_bytes * BODY_PER_DOCUMENT_BYTE, max_file_bytes) + BODY_OVERHEAD_BYTES


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

    def __init__(self, app: ASGIApp, metrics: AppMetrics, body_limit: int) -> None:
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
