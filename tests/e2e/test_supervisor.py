"""`retail up` supervises its services: a service that dies is forked again (logged, with
backoff) while the others keep serving, and Ctrl-C still stops them all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import free_ports, stop, system_env, wait_until_ready

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads children in /proc"),
]
RESTART_TIMEOUT_SECONDS = 30.0


def children_of(pid: int) -> dict[str, int]:
    """The supervisor's children by service name (each names itself in /proc/PID/comm)."""
    listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = {}
    for child in map(int, listed):
        try:
            found[Path(f"/proc/{child}/comm").read_text().strip()] = child
        except OSError:
            continue  # exited meanwhile
    return found


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str], Path]]:
    """`retail up categories products`, its stderr kept in a file."""
    ports = dict(zip(("categories", "products"), free_ports(2), strict=True))
    env = system_env(tmp_path, ports, FOLLOW_FEEDS="false")
    urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    log = tmp_path / "up.log"
    with log.open("wb") as stderr:
        command = [sys.executable, "-m", "retail", "up", *ports]
        process = subprocess.Popen(command, env=env, stderr=stderr)
        try:
            wait_until_ready(list(urls.values()), process)
            yield process, urls, log
        finally:
            stop(process, signal.SIGKILL)


def test_a_service_that_dies_is_restarted_and_ctrl_c_stops_all(
    shop: tuple[subprocess.Popen[bytes], dict[str, str], Path],
) -> None:
    process, urls, log = shop
    before = children_of(process.pid)
    assert set(before) == {"categories", "products"}

    subprocess.run(["kill", "-KILL", str(before["categories"])], check=True)
    deadline = time.monotonic() + RESTART_TIMEOUT_SECONDS
    while children_of(process.pid).get("categories") in (None, before["categories"]):
        assert time.monotonic() < deadline, "categories was not restarted"
        assert httpx.get(f"{urls['products']}/health").status_code == 200  # others go on
        time.sleep(0.1)
    wait_until_ready([urls["categories"]], process)
    assert children_of(process.pid)["products"] == before["products"]  # left alone
    assert httpx.get(f"{urls['categories']}/api/categories").status_code == 200

    assert stop(process, signal.SIGINT) == 0
    for url in urls.values():
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=1.0)
    messages = [json.loads(line)["message"] for line in log.read_text().splitlines() if line]
    pid = before["categories"]
    assert f"categories (pid {pid}) was killed by SIGKILL" in "\n".join(messages)
    assert any(m.startswith("categories restarted (pid ") for m in messages)


# The supervisor's own logic, in a fresh interpreter: forking the test runner (which may run
# threads) would be unsafe, and the child here must not inherit pytest.
BACKOFF_PROBE = textwrap.dedent(
    """
    import json, os, time
    from retail import supervisor

    now = [0.0]
    up = supervisor.Supervisor(["crashing"], lambda service: 7, clock=lambda: now[0])
    child = up.children["crashing"]
    delays = []
    for lived in (1.0, 1.0, 1.0, supervisor.STABLE_SECONDS + 1):
        up.start(child)
        while child.restart_at is None:  # the child exits at once with code 7
            time.sleep(0.01)
            now[0] = child.started_at + lived
            up.reap()
        delays.append(child.restart_at - now[0])
    print(json.dumps(delays))
    """
)


def test_restarts_back_off_and_a_stable_service_starts_afresh() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BACKOFF_PROBE], capture_output=True, text=True, check=True
    )
    delays = json.loads(done.stdout)
    # Three quick deaths: 0.5 s, then doubling. After a long healthy run: 0.5 s again.
    assert delays == [0.5, 1.0, 2.0, 0.5]
    assert "exited with code 7 after 1.0 s; restarting it in 0.5 s" in done.stderr


PRELOAD_PROBE = textwrap.dedent(
    """
    import asyncio, json, os, threading
    from retail.cli import main  # what `retail up` imports before it forks
    from retail.supervisor import preload

    preload()
    try:
        asyncio.get_running_loop()
        loop = True
    except RuntimeError:
        loop = False
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the listing's own descriptor, closed by now
    print(json.dumps({
        "threads": threading.active_count(),
        "loop": loop,
        "sockets": [fd for fd in fds if fd.startswith("socket:")],
        "fastapi": "fastapi" in __import__("sys").modules,
    }))
    """
)


def test_the_supervisor_holds_no_thread_loop_or_socket_when_it_forks() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PRELOAD_PROBE], capture_output=True, text=True, check=True
    )
    state = json.loads(done.stdout)
    assert state == {"threads": 1, "loop": False, "sockets": [], "fastapi": True}
