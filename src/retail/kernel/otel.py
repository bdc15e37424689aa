"""The OpenTelemetry SDK side of `retail.kernel.tracing`, imported only with tracing on.

Each app gets a `TracerProvider` of its own (not the process-global one), so that services
built in one process (tests, `retail reindex`) each name themselves. Context and W3C
propagation are OpenTelemetry's process-wide ones, as they must be: a request's span is
current for everything the request does, and `OTEL_PROPAGATORS` picks the header format.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from retail.kernel.metrics import UNMATCHED
from retail.kernel.tracing import Tracing, bind_active, reset_active


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # Not at the top: it loads protobuf and requests, which console tracing does not need.
    # It reads OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces) and OTEL_EXPORTER_OTLP_* itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


class _Inbound:
    __slots__ = ("_active", "_attached", "_method", "_span")

    def __init__(self, span: Span, method: str, tracing: Tracing) -> None:
        self._span = span
        self._method = method
        self._attached = otel_context.attach(trace.set_span_in_context(span))
        self._active = bind_active(tracing)

    def finish(self, route: str, status: int) -> None:
        span = self._span
        if route != UNMATCHED:  # semantic conventions: "{method} {http.route}", else "{method}"
            span.update_name(f"{self._method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        reset_active(self._active)
        otel_context.detach(self._attached)
        span.end()


class _Outbound:
    __slots__ = ("_span",)

    def __init__(self, span: Span, headers: dict[str, str]) -> None:
        self._span = span
        propagate.inject(headers, context=trace.set_span_in_context(span))

    def __enter__(self) -> _Outbound:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            _failed(self._span, exc)
        self._span.end()

    def answered(self, status: int) -> None:
        self._span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self._span.set_status(Status(StatusCode.ERROR))


class _Unit:
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def end(self, error: BaseException | None) -> None:
        if error is not None:
            _failed(self._span, error)
        self._span.end()


class OtelTracing:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider  # tests add an in-memory exporter to it
        self._tracer = provider.get_tracer("retail.kernel")

    @classmethod
    def create(cls, service_name: str, exporters: list[str]) -> OtelTracing:
        # The sampler comes from OTEL_TRACES_SAMPLER(_ARG); parent-based always-on by default.
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        for name in exporters:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        return cls(provider)

    def inbound(self, scope: MutableMapping[str, Any]) -> _Inbound:
        carrier = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        method: str = scope["method"]
        span = self._tracer.start_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        return _Inbound(span, method, self)

    def outbound(self, method: str, peer: str, path: str, headers: dict[str, str]) -> _Outbound:
        span = self._tracer.start_span(
            f"{method} {peer}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "peer.service": peer, "url.path": path},
        )
        return _Outbound(span, headers)

    def unit_of_work(self, *, system: str, readonly: bool) -> _Unit | None:
        if not trace.get_current_span().is_recording():
            return None  # background work (a feed follower, recovery): not traced
        mode = "read" if readonly else "write"
        span = self._tracer.start_span(
            f"{system} {mode}",
            kind=SpanKind.CLIENT,
            attributes={"db.system": system, "retail.unit_of_work": mode},
        )
        return _Unit(span)

    def log_ids(self) -> tuple[str, str] | None:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")

    def shutdown(self) -> None:
        self.provider.shutdown()
