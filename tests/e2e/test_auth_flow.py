"""The auth service as a real process (`uv run retail serve auth --port N`), driven over HTTP:
register, login, me, refresh, reuse detection, logout."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import free_ports, stop, system_env, wait_until_ready

pytestmark = pytest.mark.e2e


def serve_command(port: int) -> list[str]:
    # --no-sync: a test must not change the environment other processes are using.
    if shutil.which("uv"):
        return ["uv", "run", "--no-sync", "retail", "serve", "auth", "--port", str(port)]
    return [sys.executable, "-m", "retail", "serve", "auth", "--port", str(port)]


@pytest.fixture(scope="module")
def auth_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("auth")
    (port,) = free_ports(1)
    env = system_env(data_dir, {"auth": port}, BCRYPT_ROUNDS="4")
    process = subprocess.Popen(serve_command(port), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready([url], process)
        yield url
    finally:
        # uv passes SIGTERM on to the server, which shuts down cleanly; uv itself then
        # reports the signal (143) where a bare interpreter would exit 0.
        assert stop(process) in (0, 128 + signal.SIGTERM)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=1.0)


def test_account_lifecycle_over_real_http(auth_url: str) -> None:
    with httpx.Client(base_url=auth_url, timeout=10.0) as auth:
        registered = auth.post(
            "/api/auth/register",
            json={"email": "Grace@Shop.test", "name": "Grace", "password": "hopper-1906"},
        )
        assert registered.status_code == 201, registered.text
        assert registered.json()["email"] == "grace@shop.test"

        login = auth.post(
            "/api/auth/login", json={"email": "grace@shop.test", "password": "hopper-1906"}
        )
        assert login.status_code == 200, login.text
        tokens = login.json()
        me = auth.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.json() == registered.json()

        rotated = auth.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        newest = rotated.json()["refresh_token"]

        reused = auth.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert reused.status_code == 401
        assert reused.json()["error_code"] == "TOKEN_REUSED"
        revoked = auth.post("/api/auth/refresh", json={"refresh_token": newest})
        assert revoked.status_code == 401

        again = auth.post(
            "/api/auth/login", json={"email": "grace@shop.test", "password": "hopper-1906"}
        ).json()
        logout = auth.post("/api/auth/logout", json={"refresh_token": again["refresh_token"]})
        assert logout.status_code == 204
        after = auth.post("/api/auth/refresh", json={"refresh_token": again["refresh_token"]})
        assert after.status_code == 401
        assert auth.get("/ready").status_code == 200
