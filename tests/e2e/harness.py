"""Real processes on free ports: what the end-to-end tests start and stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from retail.kernel.settings import SERVICE_PORTS
from tests.support import (
    MONGODB_SERVICES,
    SECRET,
    database_overrides,
    mongodb_requested,
    on_nx,
)

STARTUP_TIMEOUT_SECONDS = 60.0


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


def system_env(data_dir: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """Environment for processes of every service: shared secret, own data dir, the ports
    and peer URLs of this test's system."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_URL"))}
    env.update(DATA_DIR=str(data_dir), JWT_SECRET_KEY=SECRET, LOG_LEVEL="WARNING")
    env.update({k.upper(): str(v) for k, v in database_overrides(data_dir).items()})
    if mongodb_requested():  # the services with a MongoDB adapter run on the run's MongoDB
        for service in MONGODB_SERVICES:
            overrides = database_overrides(data_dir, service)
            env[f"{service.upper()}_DATABASE_URL"] = overrides["database_url"]
            env["DATABASE_SCHEMA_PREFIX"] = overrides["database_schema_prefix"]
    if on_nx():
        # nx-27017 serves every service's MongoDB from one slow process: a peer call may take
        # seconds under a race, so peers wait longer (and recovery, which must outwait a
        # saga's two peer calls, with them). A test's own settings still win.
        env.update(HTTP_TIMEOUT_SECONDS="20", PENDING_GRACE_SECONDS="60")
    for service, port in ports.items():
        env[f"{service.upper()}_PORT"] = str(port)
        env[f"{service.upper()}_URL"] = f"http://127.0.0.1:{port}"
    env.update(extra)
    return env


def all_ports() -> dict[str, int]:
    return dict(zip(SERVICE_PORTS, free_ports(len(SERVICE_PORTS)), strict=True))


def wait_until_ready(urls: Sequence[str], process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    pending = list(urls)
    while pending:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited early with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready: {pending}")
        try:
            if httpx.get(f"{pending[0]}/health", timeout=1.0).status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextmanager
def running(
    args: Sequence[str], env: dict[str, str], ready_urls: Sequence[str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m retail <args>` running until the block ends."""
    process = subprocess.Popen([sys.executable, "-m", "retail", *args], env=env)
    try:
        wait_until_ready(ready_urls, process)
        yield process
    finally:
        stop(process)


def serve_args(service: str, port: int, workers: int = 1) -> list[str]:
    return ["serve", service, "--port", str(port), "--workers", str(workers)]
