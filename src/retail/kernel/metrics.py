"""Prometheus metrics: what every service counts per request, the shop's own figures, and
the `/metrics` answer.

prometheus-client keeps the figures of this process in its default registry, or, when
PROMETHEUS_MULTIPROC_DIR names a directory (`retail serve --workers N` sets one per
service), in memory-mapped files there that every worker writes and any worker sums up
when scraped. The mode is fixed when prometheus-client is imported, so the variable must be
set before the process starts (docs/observability.md).

Label values are bounded: the route is the route's template (`/api/products/{product_id}`,
never the path a client sent; "unmatched" for a 404 of no route) and an unknown method is
"OTHER". The shop's figures are module-level metrics, as prometheus-client intends: a
service counts with one line (`ORDERS.labels(outcome="confirmed").inc()`), and a family
shows samples only in the services that count it. The figures that change on every request
and unit of work are the exception: `PROCESS_TALLY` keeps them as plain numbers and
exports them when scraped (issue 17's cost budget; docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from itertools import accumulate
from types import TracebackType
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from retail.kernel.tracing import Tracing, UnitSpan

logger = logging.getLogger("retail.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A scraped gauge's read (a count in the database) may take this long before the scrape
# answers without it.
SCRAPE_READ_SECONDS = 2.0
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From a cached read (~0.3 ms) to a slow order; the default buckets start at 5 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REQUEST_LABELS = ("method", "route", "status")

_REQUESTS_DOC = "HTTP requests answered"
_DURATION_DOC = "Time from a request's arrival to its answer"
_UNITS_DOC = "Units of work (transactions) open or waiting for a connection, by mode"


# --- the shop's own figures (one line where they happen) --------------------------------

ORDERS = Counter("retail_orders", "Orders settled, by outcome", ["outcome"])
STOCK_RESERVATIONS = Counter(
    "retail_stock_reservations", "Reservations of an order's stock, by outcome", ["outcome"]
)
STOCK_RELEASES = Counter(
    "retail_stock_releases", "Releases of an order's stock, by outcome", ["outcome"]
)
LOGIN_THROTTLED = Counter(
    "retail_login_throttled",
    "Sign-ins refused by the throttle, by the key that was locked",
    ["key"],
)
FEED_LAG_EVENTS = Gauge(
    "retail_feed_lag_events",
    "Events of a followed feed known to be waiting at the last read (0: caught up)",
    ["feed"],
    multiprocess_mode="livemax",
)
FEED_LAG_SECONDS = Gauge(
    "retail_feed_lag_seconds",
    "Age of the newest event of a followed feed when it was applied (0: caught up)",
    ["feed"],
    multiprocess_mode="livemax",
)
SQLITE_BUSY_RETRIES = Counter(
    "retail_sqlite_busy_retries",
    "Times a writer found the SQLite file locked by another process and tried again",
)


def record_feed_lag(feed: str, applied: Sequence[Any], *, full_page: bool) -> None:
    """After a follower applied a page of `feed`: a page that was not full means caught up
    (0), a full one that at least that many more may wait (the feed does not say how many);
    and how old the newest applied event was (`applied`: the feed's events)."""
    FEED_LAG_EVENTS.labels(feed).set(len(applied) if full_page else 0)
    age = (datetime.now(UTC) - applied[-1].occurred_at).total_seconds() if applied else 0.0
    FEED_LAG_SECONDS.labels(feed).set(max(age, 0.0))


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


# --- per request --------------------------------------------------------------------------


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The template of the route that served the request (the router puts the route in the
    scope; the read cache puts back the one of the answer it replays)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class _Series:
    """One (method, route, status): its count per latency bucket (the last is +Inf) and the
    sum of its durations."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0


class ProcessTally:
    """The per-request and per-unit figures of this process as plain numbers, turned into
    Prometheus families only when /metrics is scraped.

    prometheus-client's own metrics take a lock (and, in multiprocess mode, write a
    memory-mapped file) on every change: a few microseconds a request, which the cheapest
    reads notice. Here a request costs a dict lookup, a bisect and two additions. They are
    made in the event loop's thread, which is the only one that serves requests and opens
    units of work, so no lock is needed.

    With several workers (PROMETHEUS_MULTIPROC_DIR), a scrape must sum every worker's
    figures, which only prometheus-client's files hold: there each change goes to its
    labelled values, as before (`_Shared`), and the tally stays empty.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}
        self.units_open = {"read": 0, "write": 0}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = _Series()
        series.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        series.total += seconds

    def unit_opened(self, mode: str) -> None:
        self.units_open[mode] += 1

    def unit_closed(self, mode: str) -> None:
        self.units_open[mode] -= 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("http_requests", _REQUESTS_DOC, labels=_REQUEST_LABELS)
        durations = HistogramMetricFamily(
            "http_request_duration_seconds", _DURATION_DOC, labels=_REQUEST_LABELS
        )
        for (method, route, status), series in list(self._series.items()):
            labels = [method if method in _METHODS else "OTHER", route, str(status)]
            cumulative = list(accumulate(series.buckets))
            requests.add_metric(labels, cumulative[-1])
            bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
            durations.add_metric(labels, list(zip(bounds, cumulative, strict=True)), series.total)
        units = GaugeMetricFamily("retail_db_units_open", _UNITS_DOC, labels=["mode"])
        for mode, count in self.units_open.items():
            units.add_metric([mode], count)
        yield from (requests, durations, units)


class _Shared(ProcessTally):
    """Multiprocess mode: the same figures in prometheus-client's per-worker files."""

    def __init__(self) -> None:
        super().__init__()
        self._requests = Counter("http_requests", _REQUESTS_DOC, _REQUEST_LABELS)
        self._durations = Histogram(
            "http_request_duration_seconds",
            _DURATION_DOC,
            _REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
        )
        units = Gauge("retail_db_units_open", _UNITS_DOC, ["mode"], multiprocess_mode="livesum")
        self._units = {mode: units.labels(mode=mode) for mode in self.units_open}
        self._labelled: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._labelled.get(key)
        if series is None:
            labels = (method if method in _METHODS else "OTHER", route, str(status))
            series = (self._requests.labels(*labels), self._durations.labels(*labels))
            self._labelled[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def unit_opened(self, mode: str) -> None:
        self._units[mode].inc()

    def unit_closed(self, mode: str) -> None:
        self._units[mode].dec()

    def collect(self) -> Iterator[Metric]:
        return iter(())  # the files are read by MultiProcessCollector


def _process_tally() -> ProcessTally:
    if multiprocess_mode():
        return _Shared()
    tally = ProcessTally()
    REGISTRY.register(tally)
    return tally


PROCESS_TALLY = _process_tally()


# --- units of work -----------------------------------------------------------------------


class _ObservedUnit:
    """A unit of work counted in `retail_db_units_open` (and spanned, when tracing) from
    entering to leaving; everything else is the unit's own (repositories, commit)."""

    __slots__ = ("_readonly", "_span", "_system", "_tracing", "_unit")

    def __init__(self, unit: Any, readonly: bool, tracing: Tracing | None, system: str) -> None:
        self._unit = unit
        self._readonly = readonly
        self._tracing = tracing
        self._system = system
        self._span: UnitSpan | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)

    async def __aenter__(self) -> Any:
        PROCESS_TALLY.unit_opened("read" if self._readonly else "write")
        if self._tracing is not None:
            self._span = self._tracing.unit_of_work(system=self._system, readonly=self._readonly)
        try:
            return await self._unit.__aenter__()
        except BaseException as exc:
            self._left(exc)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._unit.__aexit__(exc_type, exc, tb)
        except BaseException as raised:
            self._left(raised)
            raise
        self._left(exc)

    def _left(self, error: BaseException | None) -> None:
        PROCESS_TALLY.unit_closed("read" if self._readonly else "write")
        if self._span is not None:
            self._span.end(error)
            self._span = None


def observed_units(
    factory: Callable[..., Any], *, tracing: Tracing | None, system: str
) -> Callable[..., Any]:
    """`factory` (a service's units of work), each unit counted while open and, with
    `tracing`, a span of the request's trace (`system`: sqlite, postgresql, mongodb)."""

    def units(*, readonly: bool = False) -> Any:
        return _ObservedUnit(factory(readonly=readonly), readonly, tracing, system)

    return units


# --- read when scraped ------------------------------------------------------------------


@cache
def _scraped(name: str, documentation: str) -> Gauge:
    # Created on first use, once per process: only the services that register it show it.
    return Gauge(name, documentation, multiprocess_mode="mostrecent")


@dataclass(frozen=True)
class ScrapedGauge:
    """A figure the database knows (products below their stock threshold), read when
    /metrics is scraped rather than kept up to date on every change."""

    name: str
    gauge: Gauge
    read: Callable[[], Awaitable[float]]

    async def refresh(self) -> None:
        try:
            value = await asyncio.wait_for(self.read(), SCRAPE_READ_SECONDS)
        except Exception as exc:  # the scrape still answers, with the last value read
            logger.warning("metrics: reading %s failed: %r", self.name, exc)
            return
        self.gauge.set(value)


def scraped_gauge(
    name: str, documentation: str, read: Callable[[], Awaitable[float]]
) -> ScrapedGauge:
    return ScrapedGauge(name, _scraped(name, documentation), read)


# --- /metrics -----------------------------------------------------------------------------


@dataclass
class MetricsEndpoint:
    """What `/metrics` answers, and to whom: anyone, or a bearer of `token`."""

    token: str | None = None
    scraped: list[ScrapedGauge] = field(default_factory=list)

    def allows(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        given = credentials.strip().encode()
        return scheme.lower() == "bearer" and secrets.compare_digest(given, self.token.encode())

    async def exposition(self) -> tuple[bytes, str]:
        """The text format: this process's registry, or every worker's files summed."""
        for gauge in self.scraped:
            await gauge.refresh()
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def process_stopped() -> None:
    """A worker leaving: its live gauges (units open, feed lag) stop counting."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
