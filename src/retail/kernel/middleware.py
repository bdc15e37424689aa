"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and costs throughput).

`RequestContextMiddleware` gives every request an id, logs one access line, adds security
headers, caps the request body and turns anything unhandled into the wire error format. It
also counts and times each answer for /metrics and, with tracing on, holds the request's
span: one layer for all of it, since each layer costs every request its own calls.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retail.kernel.errors import error_body
from retail.kernel.metrics import ProcessTally, route_template
from retail.kernel.observability import bind_request_id, reset_request_id
from retail.kernel.tracing import Tracing

logger = logging.getLogger("retail.access")
error_logger = logging.getLogger("retail.errors")

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class BodyTooLarge(HTTPException):
    """Raised inside receive() once a streamed body passes the cap.

    An HTTPException so that FastAPI's body parsing re-raises it (it turns other errors
    into 400) and the kernel's handler answers 413 in the wire format.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _without_trailing_slash(scope: Scope) -> Scope:
    """`/api/products/` is served as `/api/products`. Starlette would answer a redirect
    instead, with a Location built from the Host header, which anyone can write."""
    path: str = scope["path"]
    if len(path) < 2 or not path.endswith("/"):
        return scope
    trimmed = path.rstrip("/") or "/"
    raw: bytes = scope.get("raw_path") or path.encode()
    return {**scope, "path": trimmed, "raw_path": raw.rstrip(b"/") or b"/"}


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        no_store_prefix: str = "/api",
        access_log: str = "on",
        access_log_sample_rate: float = 1.0,
        metrics: ProcessTally | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.no_store_prefix = no_store_prefix
        # "errors" logs answers from 400 up; a JSON line per request is a real share of the
        # CPU of a cheap request, so busy shops may keep only those (or none), or a sample
        # of the others (errors are always logged).
        self.log_from_status = {"on": 0, "errors": 400}.get(access_log)
        self.sample_rate = access_log_sample_rate
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = _without_trailing_slash(scope)
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        token = bind_request_id(request_id)
        state: dict[str, Any] = {"status": 500, "started": False}
        span = self.tracing.inbound(scope) if self.tracing is not None else None
        started = time.perf_counter()
        try:
            await self._serve(scope, receive, send, request_id, state)
        finally:
            seconds = time.perf_counter() - started
            status: int = state["status"]
            needs_route = self.metrics is not None or span is not None
            route = route_template(scope) if needs_route else ""
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route, status, seconds)
            if self._logs(status):
                logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )
            if span is not None:  # after the log line, which carries its trace id
                span.finish(route, status)
            reset_request_id(token)

    def _logs(self, status: int) -> bool:
        if self.log_from_status is None or status < self.log_from_status:
            return False
        return status >= 400 or self.sample_rate >= 1.0 or random.random() < self.sample_rate

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, state: dict[str, Any]
    ) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._send_error(
                send, state, request_id, 413, "PAYLOAD_TOO_LARGE", self._too_large()
            )
            return
        no_store = scope["path"].startswith(self.no_store_prefix)
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def decorated_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(_SECURITY_HEADERS)
                if no_store:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, capped_receive, decorated_send)
        except BodyTooLarge:
            await self._send_error(
                send, state, request_id, 413, "PAYLOAD_TOO_LARGE", self._too_large()
            )
        except Exception:
            error_logger.exception("unhandled error", extra={"path": scope["path"]})
            message = f"Internal server error (request id {request_id})"
            await self._send_error(
                send, state, request_id, 500, "INTERNAL_ERROR", message, {"request_id": request_id}
            )

    def _too_large(self) -> str:
        return f"Request body exceeds {self.max_body_bytes} bytes"

    async def _send_error(
        self,
        send: Send,
        state: MutableMapping[str, Any],
        request_id: str,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        if state["started"]:  # too late to change the response; the log line has the error
            return
        body = json.dumps(error_body(status, code, message, details)).encode()
        state["status"] = status
        state["started"] = True
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-request-id", request_id.encode()),
            *_SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
