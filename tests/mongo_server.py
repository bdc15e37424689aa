"""nx-27017 (MongoDB's wire protocol over SQLite) as a throwaway server for a test run: started
on a free port with its data in a temporary directory, stopped at the end. CI has no real
MongoDB; `TEST_MONGODB_URI=nx` makes conftest.py run the MongoDB suites against this."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def nx_server(workdir: Path) -> Iterator[str]:
    """Run nx-27017 while the block runs; yields its URL (no database in the path)."""
    port = free_port()
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("nx-27017")),
        *("--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)),
        *("--log-file", str(workdir / "nx-27017.log"), "--pid-file", str(workdir / "nx.pid")),
    ]
    with open(workdir / "nx-27017.out", "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"mongodb://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, workdir)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (workdir / "nx-27017.out").read_text(errors="replace")
            raise RuntimeError(f"nx-27017 exited with {process.returncode}:\n{output}")
        client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=200)
        try:
            client.admin.command("ping")
            return
        except PyMongoError:
            time.sleep(0.1)
        finally:
            client.close()
    raise RuntimeError(f"nx-27017 did not answer on {url} within {STARTUP_SECONDS:.0f}s")
