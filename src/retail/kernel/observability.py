"""Structured logs (one JSON object a line) carrying the request id of the request being served,
and, with tracing on, the trace and span ids of the current span (`trace_id`, `span_id`), so
a log search finds every line of one order across the services it went through."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
# The tracer's `log_ids`: (trace_id, span_id) of the current span, or None outside one.
TraceIds = Callable[[], tuple[str, str] | None]

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


def current_request_id() -> str:
    return _request_id.get()


def bind_request_id(value: str) -> Any:
    return _request_id.set(value)


def reset_request_id(token: Any) -> None:
    _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, trace_ids: TraceIds | None = None) -> None:
        super().__init__()
        self.service = service
        self.trace_ids = trace_ids

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "request_id": current_request_id(),
            "message": record.getMessage(),
        }
        ids = self.trace_ids() if self.trace_ids is not None else None
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(
            f"%(asctime)s %(levelname)s {service} [%(request_id)s] %(name)s: %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = current_request_id()
        return super().format(record)


def configure_logging(
    service: str, level: str = "INFO", fmt: str = "json", trace_ids: TraceIds | None = None
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter(service, trace_ids) if fmt == "json" else TextFormatter(service)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our middleware writes one access line per request with the request id; uvicorn's is redundant.
    logging.getLogger("uvicorn.access").disabled = True
