"""Sessions that end, through the real auth app: logout, refresh-token reuse, a password
change, a role change and a deactivation each make the tokens they concern refused (401
SESSION_REVOKED) by auth itself, which follows its own feed as every service does; the feed
is served at /internal/events; deactivation and reactivation; strict input at auth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retail.auth.main import create_app
from retail.kernel.security import TokenCodec
from tests.auth.test_api import (
    ADMIN_EMAIL,
    PASSWORD,
    SECRET,
    bearer,
    login,
    refresh,
    register,
    session,
    settings_for,
)
from tests.support import assert_error, serve

Json = dict[str, Any]
# Generous: the feed wakes the follower at the commit; this only bounds a broken run.
DEADLINE_SECONDS = 10.0


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(tmp_path))) as client:
        yield client


async def refused_soon(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    """The request is answered 401 SESSION_REVOKED once the revocation has been applied."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while True:
        response = await client.get(url, headers=headers)
        if response.status_code == 401 or loop.time() > deadline:
            break
        await asyncio.sleep(0.02)
    assert_error(response, 401, "SESSION_REVOKED")


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await session(client, ADMIN_EMAIL))["access_token"])


async def test_a_logged_out_sessions_access_token_is_refused(client: httpx.AsyncClient) -> None:
    await register(client)
    mine, other = await session(client), await session(client)
    assert (await client.get("/api/auth/me", headers=bearer(mine["access_token"]))).is_success
    logout = await client.post("/api/auth/logout", json={"refresh_token": mine["refresh_token"]})
    assert logout.status_code == 204
    await refused_soon(client, "/api/auth/me", bearer(mine["access_token"]))
    # Another session of the same user is untouched.
    assert (await client.get("/api/auth/me", headers=bearer(other["access_token"]))).is_success


async def test_refresh_reuse_ends_the_familys_access_tokens(client: httpx.AsyncClient) -> None:
    await register(client)
    first = await session(client)
    second = (await refresh(client, first["refresh_token"])).json()
    assert_error(await refresh(client, first["refresh_token"]), 401, "TOKEN_REUSED")
    await refused_soon(client, "/api/auth/me", bearer(second["access_token"]))
    await refused_soon(client, "/api/auth/me/cart", bearer(first["access_token"]))


async def test_a_password_change_ends_the_other_sessions(client: httpx.AsyncClient) -> None:
    await register(client)
    here, there = await session(client), await session(client)
    changed = await client.patch(
        "/api/auth/me",
        json={"password": "a new password", "current_password": PASSWORD},
        headers=bearer(here["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    await refused_soon(client, "/api/auth/me", bearer(there["access_token"]))
    assert (await client.get("/api/auth/me", headers=bearer(here["access_token"]))).is_success


async def test_a_demoted_admin_loses_admin_rights_at_once(client: httpx.AsyncClient) -> None:
    boss = await admin_headers(client)
    other = await register(client, "second@shop.test")
    url = f"/api/auth/users/{other['id']}"
    assert (await client.patch(url, json={"role": "admin"}, headers=boss)).status_code == 200
    second = bearer((await session(client, "second@shop.test"))["access_token"])
    assert (await client.get("/api/auth/users", headers=second)).status_code == 200
    demoted = await client.patch(url, json={"role": "customer"}, headers=boss)
    assert demoted.json()["role"] == "customer"
    await refused_soon(client, "/api/auth/users", second)
    # Signing in again gives a customer's token, which works for what a customer may do.
    again = bearer((await session(client, "second@shop.test"))["access_token"])
    assert_error(await client.get("/api/auth/users", headers=again), 403, "FORBIDDEN")
    assert (await client.get("/api/auth/me", headers=again)).json()["role"] == "customer"


async def test_deactivation_and_reactivation(client: httpx.AsyncClient) -> None:
    boss = await admin_headers(client)
    user = await register(client)
    tokens = await session(client)
    url = f"/api/auth/users/{user['id']}"
    off = await client.patch(url, json={"is_active": False}, headers=boss)
    assert off.status_code == 200
    assert off.json() == {**user, "is_active": False}
    await refused_soon(client, "/api/auth/me", bearer(tokens["access_token"]))
    assert_error(await login(client), 403, "ACCOUNT_DISABLED")
    assert_error(await login(client, password="a wrong one"), 401, "INVALID_CREDENTIALS")
    assert_error(await refresh(client, tokens["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    listed = (await client.get("/api/auth/users", headers=boss)).json()["users"]
    assert {u["email"]: u["is_active"] for u in listed}["ada@shop.test"] is False
    on = await client.patch(url, json={"is_active": True}, headers=boss)
    assert on.json()["is_active"] is True
    back = await session(client)
    assert (await client.get("/api/auth/me", headers=bearer(back["access_token"]))).is_success


async def test_the_last_active_admin_cannot_be_deactivated(client: httpx.AsyncClient) -> None:
    tokens = await session(client, ADMIN_EMAIL)
    url = f"/api/auth/users/{tokens['user']['id']}"
    boss = bearer(tokens["access_token"])
    for body in (
        {"is_active": False},
        {"role": "customer"},
        {"role": "customer", "is_active": True},
    ):
        assert_error(await client.patch(url, json=body, headers=boss), 409, "LAST_ADMIN")
    assert (await client.get("/api/auth/users", headers=boss)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"is_active": None},
        {"role": None},
        {"is_active": "false"},
        {"is_active": 0},
        {"role": "admin", "email": "x@shop.test"},
    ],
)
async def test_user_changes_are_strict(client: httpx.AsyncClient, body: Json) -> None:
    boss = await admin_headers(client)
    user = await register(client)
    url = f"/api/auth/users/{user['id']}"
    assert_error(await client.patch(url, json=body, headers=boss), 422)
    assert (await session(client))["user"]["role"] == "customer"


async def test_the_feed_is_internal_and_lists_the_events(client: httpx.AsyncClient) -> None:
    user = await register(client)
    mine = await session(client)
    await client.post("/api/auth/logout", json={"refresh_token": mine["refresh_token"]})
    assert_error(await client.get("/internal/events", headers=bearer(mine["access_token"])), 401)
    service = bearer(TokenCodec(SECRET).issue_service("tests"))
    feed = (await client.get("/internal/events", headers=service)).json()
    last = feed["events"][-1]
    assert last["type"] == "session.revoked"
    assert last["data"]["user_id"] == user["id"]
    assert last["key"] == last["data"]["sid"]
    assert feed["last_seq"] == last["seq"]


# --- strict input -----------------------------------------------------------------------


@pytest.mark.parametrize("password", ["        ", " \t  \u3000   ", "\u00a0" * 9])
async def test_a_password_of_only_spaces_is_refused(
    client: httpx.AsyncClient, password: str
) -> None:
    body = {"email": "ada@shop.test", "name": "Ada", "password": password}
    assert_error(await client.post("/api/auth/register", json=body), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "look_alike",
    [
        "\uff41\uff44\uff41@shop.test",  # full-width "ada"
        "ADA@SHOP.TEST",
        "ada@\uff53hop.test",
    ],
)
async def test_a_look_alike_email_is_the_same_account(
    client: httpx.AsyncClient, look_alike: str
) -> None:
    await register(client)
    body = {"email": look_alike, "name": "Eve", "password": PASSWORD}
    assert_error(await client.post("/api/auth/register", json=body), 409, "EMAIL_TAKEN")
    signed_in = await login(client, look_alike)
    assert signed_in.status_code == 200
    assert signed_in.json()["user"]["email"] == "ada@shop.test"


async def test_case_folding_goes_beyond_lowercase(client: httpx.AsyncClient) -> None:
    first = await register(client, "strasse@shop.test")
    body = {"email": "STRASSE@shop.test".replace("SS", "\u00df"), "name": "X", "password": PASSWORD}
    assert_error(await client.post("/api/auth/register", json=body), 409, "EMAIL_TAKEN")
    assert first["email"] == "strasse@shop.test"
