"""`retail up`: one supervisor process that forks a child per service and restarts any that
dies, with backoff, until Ctrl-C (SIGINT) or SIGTERM stops them all.

Each service process used to be a fresh interpreter that spent about a second importing
FastAPI, pydantic, SQLAlchemy and uvicorn. The supervisor imports that common stack once
(`preload`) and forks: a child starts with it already loaded and only imports its own
service, builds its app and serves. A restart forks again from the supervisor, which never
changes after the preload. So the parent must hold nothing a child could not share: no event
loop, no thread, no socket or database connection. `preload` imports modules and nothing
else, and `Supervisor.start` refuses to fork while another thread runs.

A child gets its service's name as its process name (`ps`, `/proc/PID/comm`) and is sent
SIGTERM if the supervisor itself dies (Linux's parent-death signal), so no service outlives
a supervisor that was killed.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import FrameType

logger = logging.getLogger("retail.up")

# What every service imports (computed from their imports: the kernel, FastAPI, pydantic,
# SQLAlchemy, aiohttp for peers) and what uvicorn loads to serve. Nothing here may start a
# thread or open a connection at import.
PRELOAD = (
    "retail.kernel.app",
    "retail.kernel.http",
    "retail.kernel.following",
    "uvicorn.server",
    "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
)
# What a first start adds: every database is migrated, with Alembic.
MIGRATIONS = ("alembic.command", "alembic.config", "alembic.runtime.migration")
# What a PostgreSQL database adds (the SQLite default never imports it).
POSTGRES = ("retail.kernel.postgres",)
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
# A child that ran this long before dying was healthy: its restart starts the backoff afresh.
STABLE_SECONDS = 30.0
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def preload(modules: Iterable[str] = PRELOAD) -> None:
    """Import the common stack, then freeze it out of the garbage collector's sight: a
    collection in a child would otherwise write to (and so copy) every shared object's page.

    The collector is off while importing: imports make hundreds of thousands of objects and
    little garbage, so the collections they would set off (each a walk over the growing
    heap) find next to nothing, and the one collection before freezing finds it all. This
    is the serial part of `retail up`'s start: every child waits for it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        if enabled:
            gc.enable()
    gc.collect()
    gc.freeze()


def backoff_seconds(failures: int) -> float:
    """The wait before restarting a service that has died `failures` times in a row."""
    doubled = FIRST_BACKOFF_SECONDS * 2.0 ** max(0, failures - 1)
    return min(MAX_BACKOFF_SECONDS, doubled)


@dataclass(slots=True)
class Child:
    service: str
    pid: int = 0
    started_at: float = 0.0
    failures: int = 0  # deaths in a row, each within STABLE_SECONDS of its start
    restart_at: float | None = None  # set while dead


class Supervisor:
    """Forks `serve(service)` in a child per service, and forks again when one dies."""

    def __init__(
        self,
        services: Sequence[str],
        serve: Callable[[str], int],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._serve = serve
        self._clock = clock
        self.children = {name: Child(name) for name in services}
        self._stop_signal: int | None = None
        self._pid = os.getpid()

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; then stop every child. 0 once all have stopped."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        for child in self.children.values():
            self.start(child)
        while True:
            time.sleep(POLL_SECONDS)
            if self._stop_signal is not None:  # Ctrl-C reaches the children too: no restarts
                break
            self.reap()
            self.restart_due()
        self.stop_all()
        return 0

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signal = signum

    def start(self, child: Child) -> None:
        if threading.active_count() > 1:  # a forked child would hold a copy of its locks
            raise RuntimeError("the supervisor must not run threads before forking")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns here
            _run_child(child.service, self._serve, parent=self._pid)
        child.pid, child.started_at, child.restart_at = pid, self._clock(), None

    def reap(self) -> None:
        """Note every child that has exited, and when it is to be started again."""
        for child in self.children.values():
            if child.restart_at is not None or not child.pid:
                continue
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid == 0:
                continue
            now = self._clock()
            lived = now - child.started_at
            child.failures = 1 if lived >= STABLE_SECONDS else child.failures + 1
            delay = backoff_seconds(child.failures)
            child.restart_at = now + delay
            logger.warning(
                "%s (pid %d) %s after %.1f s; restarting it in %.1f s",
                child.service,
                child.pid,
                _describe(status),
                lived,
                delay,
                extra={"child": child.service, "exit": _describe(status), "restart_in": delay},
            )

    def restart_due(self) -> None:
        now = self._clock()
        for child in self.children.values():
            if child.restart_at is not None and now >= child.restart_at:
                try:
                    self.start(child)
                except OSError as exc:  # fork refused (no memory, process limit): later
                    child.failures += 1
                    child.restart_at = now + backoff_seconds(child.failures)
                    logger.error("%s could not be restarted: %s", child.service, exc)
                    continue
                logger.warning("%s restarted (pid %d)", child.service, child.pid)

    def stop_all(self) -> None:
        """SIGTERM to every child (uvicorn shuts down gracefully), SIGKILL after the grace."""
        alive = {c.pid for c in self.children.values() if c.pid and c.restart_at is None}
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while alive and time.monotonic() < deadline:
            alive = {pid for pid in alive if os.waitpid(pid, os.WNOHANG)[0] == 0}
            if alive:
                time.sleep(0.05)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _run_child(service: str, serve: Callable[[str], int], *, parent: int) -> None:
    """The forked child: default signal handling (uvicorn installs its own), its service's
    name, then serve. Never returns: `os._exit`, so nothing of the supervisor's runs here."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _name_process(service)
        _die_with_parent(parent)
        code = serve(service)
    except SystemExit as exc:  # uvicorn exits so when it cannot bind its port
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _name_process(service: str) -> None:
    """`ps` and /proc/PID/comm name the service (at most 15 bytes), not `python`."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(service[:15])


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM when the supervisor dies, even by SIGKILL. Elsewhere: nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # here: only a forked child on Linux needs it

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before the request took effect
        os._exit(1)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
