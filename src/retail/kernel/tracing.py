"""Tracing: off by default, OpenTelemetry when the standard variables ask for it.

Only the standard variables configure it, read from the process environment as the
OpenTelemetry SDK reads them: `OTEL_TRACES_EXPORTER` (`otlp`, `console`, both comma
separated, or `none`: the default here, so tracing is off unless asked for),
`OTEL_EXPORTER_OTLP_ENDPOINT` (and the SDK's other `OTEL_EXPORTER_OTLP_*`),
`OTEL_SERVICE_NAME` (default `retail-<service>`), `OTEL_TRACES_SAMPLER`, `OTEL_PROPAGATORS`
and `OTEL_SDK_DISABLED`.

This module is the kernel's side of it and imports no OpenTelemetry: with tracing off a
service never loads it (tests/kernel/test_imports.py), and each hook below costs one
context-variable read. `retail.kernel.otel` is the SDK side, imported only when tracing is
on. Spans: one per inbound request (the request middleware), one per peer call (the
`ServiceClient`, which sends W3C `traceparent`), one per unit of work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Protocol

from retail.kernel.settings import SettingsError

EXPORTERS = frozenset({"otlp", "console"})


class InboundSpan(Protocol):
    def finish(self, route: str, status: int) -> None:
        """Name the span after the route template, record the status, end it."""


class CallSpan(Protocol):
    def __enter__(self) -> CallSpan: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def answered(self, status: int) -> None: ...


class UnitSpan(Protocol):
    def end(self, error: BaseException | None) -> None: ...


class Tracing(Protocol):
    """What the kernel asks of a tracer (`retail.kernel.otel.OtelTracing`)."""

    def inbound(self, scope: MutableMapping[str, Any]) -> InboundSpan:
        """Start the request's span (continuing the caller's trace) and make it current."""

    def outbound(self, method: str, peer: str, path: str, headers: dict[str, str]) -> CallSpan:
        """A peer call's span; its trace context goes into `headers`."""

    def unit_of_work(self, *, system: str, readonly: bool) -> UnitSpan | None:
        """A unit of work's span, or None outside a traced request (background work)."""

    def log_ids(self) -> tuple[str, str] | None:
        """(trace_id, span_id) of the current span, for the log lines."""

    def shutdown(self) -> None:
        """Export what is buffered and stop."""


def exporters_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names: none unless it names one."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER", "none")
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - EXPORTERS - {"none"})
    if unknown:
        raise SettingsError(
            f"OTEL_TRACES_EXPORTER={raw!r}: {', '.join(unknown)} not supported "
            "(use otlp, console or none)"
        )
    return [name for name in names if name != "none"]


def tracing_from_env(service: str, environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """The service's tracer, or None (tracing off: OpenTelemetry is not imported)."""
    exporters = exporters_from_env(environ)
    if not exporters:
        return None
    from retail.kernel.otel import OtelTracing  # only now: see the module's docstring

    name = environ.get("OTEL_SERVICE_NAME") or f"retail-{service}"
    return OtelTracing.create(name, exporters)


# The tracer of the request being served, for the peer calls it makes. Unset (None) with
# tracing off, and in background work, whose peer calls are not traced.
_ACTIVE: ContextVar[Tracing | None] = ContextVar("retail_tracing", default=None)


def bind_active(tracing: Tracing) -> Token[Tracing | None]:
    return _ACTIVE.set(tracing)


def reset_active(token: Token[Tracing | None]) -> None:
    _ACTIVE.reset(token)


class _Untraced:
    """The peer-call span with tracing off: does nothing."""

    def __enter__(self) -> _Untraced:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def answered(self, status: int) -> None:
        return None


_UNTRACED = _Untraced()


def peer_call(method: str, peer: str, path: str, headers: dict[str, str]) -> CallSpan:
    """The span of a call to a peer (`ServiceClient.request`): a child of the request's span,
    whose context goes to the peer in `traceparent`; a no-op when not tracing."""
    tracing = _ACTIVE.get()
    if tracing is None:
        return _UNTRACED
    return tracing.outbound(method, peer, path, headers)
