"""`retail up` as real processes on free ports, driven over HTTP like a storefront would."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retail.cli import available_services
from tests.e2e.harness import all_ports, stop, system_env, wait_until_ready

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir: Path = tmp_path_factory.mktemp("system")
    ports = all_ports()
    env = system_env(data_dir, ports, ADMIN_EMAIL="boss@shop.test", ADMIN_PASSWORD="boss-pass-123")
    process = subprocess.Popen([sys.executable, "-m", "retail", "up"], env=env)
    urls = {s: f"http://127.0.0.1:{ports[s]}" for s in available_services()}
    try:
        wait_until_ready(list(urls.values()), process)
        yield urls
    finally:
        assert stop(process, signal.SIGINT) == 0  # Ctrl-C stops them all, cleanly
        for url in urls.values():
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{url}/health", timeout=1.0)


def test_every_service_serves_docs_health_and_ready(system: dict[str, str]) -> None:
    for service, url in system.items():
        assert httpx.get(f"{url}/health").json()["service"] == service
        assert httpx.get(f"{url}/ready").status_code == 200, service
        assert httpx.get(f"{url}/docs").status_code == 200
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"]


def test_account_lifecycle(system: dict[str, str]) -> None:
    auth = httpx.Client(base_url=system["auth"])
    registered = auth.post(
        "/api/auth/register",
        json={"email": "Ada@Shop.test", "name": "Ada", "password": "correct horse"},
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == "ada@shop.test"
    assert registered.json()["role"] == "customer"

    login = auth.post(
        "/api/auth/login", json={"email": "ada@shop.test", "password": "correct horse"}
    ).json()
    assert login["token_type"] == "bearer"
    me = auth.get("/api/auth/me", headers={"Authorization": f"Bearer {login['access_token']}"})
    assert me.json()["id"] == registered.json()["id"]

    rotated = auth.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert rotated.status_code == 200
    newest = rotated.json()["refresh_token"]
    assert newest != login["refresh_token"]

    reuse = auth.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["error_code"]
    family_gone = auth.post("/api/auth/refresh", json={"refresh_token": newest})
    assert family_gone.status_code == 401

    again = auth.post(
        "/api/auth/login", json={"email": "ada@shop.test", "password": "correct horse"}
    ).json()
    assert (
        auth.post("/api/auth/logout", json={"refresh_token": again["refresh_token"]}).status_code
        == 204
    )
    after = auth.post("/api/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert after.status_code == 401


def test_first_admin_comes_from_the_settings(system: dict[str, str]) -> None:
    auth = httpx.Client(base_url=system["auth"])
    login = auth.post(
        "/api/auth/login", json={"email": "boss@shop.test", "password": "boss-pass-123"}
    )
    assert login.json()["user"]["role"] == "admin"
    users = auth.get(
        "/api/auth/users", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert users.status_code == 200
    assert users.json()["total"] >= 1
