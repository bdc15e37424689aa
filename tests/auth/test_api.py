"""The auth service through its real app: HTTP, validation, tokens, throttling, storage."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retail.auth.config import AuthSettings
from retail.auth.main import create_admin, create_app
from retail.kernel.security import TokenCodec
from tests.support import assert_error, database_overrides, make_settings, serve

SECRET = "auth-api-tests-secret-of-exactly-48-characters!!"
ADMIN_EMAIL, ADMIN_PASSWORD = "boss@shop.test", "boss-pass-123"
PASSWORD = "correct horse"
Json = dict[str, Any]


def settings_for(data_dir: Path, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "jwt_secret_key": SECRET,
        "bcrypt_rounds": 4,
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        **overrides,
    }
    return make_settings(AuthSettings, data_dir, **values)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(tmp_path))) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: httpx.AsyncClient, email: str = "ada@shop.test", password: str = PASSWORD
) -> Json:
    response = await client.post(
        "/api/auth/register", json={"email": email, "name": "Ada", "password": password}
    )
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


async def login(
    client: httpx.AsyncClient, email: str = "ada@shop.test", password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def session(client: httpx.AsyncClient, email: str = "ada@shop.test") -> Json:
    response = await login(client, email, ADMIN_PASSWORD if email == ADMIN_EMAIL else PASSWORD)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


# --- registration -----------------------------------------------------------------------


async def test_register_answers_201_with_the_user(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={"email": "  Ada@Shop.Test ", "name": "  Ada Lovelace ", "password": PASSWORD},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "role", "created_at", "is_active"}  # an addition
    assert (body["email"], body["name"], body["role"]) == (
        "ada@shop.test",
        "Ada Lovelace",
        "customer",
    )
    assert PASSWORD not in response.text


async def test_an_email_registers_once_whatever_its_case(client: httpx.AsyncClient) -> None:
    await register(client)
    again = await client.post(
        "/api/auth/register", json={"email": "ADA@shop.TEST", "name": "Eve", "password": PASSWORD}
    )
    assert_error(again, 409, "EMAIL_TAKEN")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@shop.test", "name": "A", "password": PASSWORD, "role": "admin"},
        {"email": "a@shop.test", "name": "A", "password": PASSWORD, "nickname": "x"},
        {"email": "a@shop.test", "name": "A", "password": "short77"},
        {"email": "a@shop.test", "name": "A", "password": "é" * 36 + "a"},  # 73 bytes
        {"email": "a@shop.test", "name": "A", "password": "p" * 73},
        {"email": "not-an-email", "name": "A", "password": PASSWORD},
        {"email": "İ" * 200 + "@shop.test", "name": "A", "password": PASSWORD},  # 400 lowered
        {"email": "a@shop.test", "name": "   ", "password": PASSWORD},
        {"email": "a@shop.test", "name": "n" * 101, "password": PASSWORD},
        {"email": "a@shop.test", "password": PASSWORD},
        {"email": "a@shop.test", "name": "A", "password": 12345678},
    ],
)
async def test_bad_registrations_are_422_without_the_password(
    client: httpx.AsyncClient, body: Json
) -> None:
    response = await client.post("/api/auth/register", json=body)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert response.json()["details"]["fields"]
    if isinstance(body.get("password"), str):
        assert body["password"] not in response.text
    admins_only = await client.get("/api/auth/users", headers=bearer(await admin_token(client)))
    assert admins_only.json()["total"] == 1  # nothing was stored


async def test_a_72_byte_password_is_accepted_whole(client: httpx.AsyncClient) -> None:
    password = "é" * 36
    await register(client, password=password)
    assert (await login(client, password=password)).status_code == 200
    assert (await login(client, password="é" * 35)).status_code == 401  # no truncation


# --- login ------------------------------------------------------------------------------


async def test_login_answers_tokens_and_the_user(client: httpx.AsyncClient) -> None:
    user = await register(client)
    body = (await login(client, email=" ADA@shop.test")).json()
    assert set(body) >= {"access_token", "refresh_token", "token_type", "user"}
    assert body["token_type"] == "bearer"
    assert body["user"] == {k: user[k] for k in ("id", "email", "name", "role")}
    principal = TokenCodec(SECRET).verify_access(body["access_token"])
    assert principal.user_id == user["id"]
    assert principal.session_id


async def test_unknown_email_and_wrong_password_get_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    unknown = await login(client, email="eve@shop.test")
    wrong = await login(client, password="not the password")
    assert_error(unknown, 401, "INVALID_CREDENTIALS")
    assert unknown.json() == wrong.json()
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]


async def test_repeated_failures_are_throttled_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    for _ in range(6):  # five are free; the sixth locks the account
        assert_error(await login(client, password="a wrong guess"), 401, "INVALID_CREDENTIALS")
    locked = await login(client)  # the right password too: checked before verifying it
    assert_error(locked, 429, "TOO_MANY_ATTEMPTS")
    assert int(locked.headers["retry-after"]) >= 1
    other = await register(client, email="bob@shop.test")
    assert (await login(client, email=other["email"])).status_code == 200


async def test_success_resets_the_account_counter(client: httpx.AsyncClient) -> None:
    await register(client)
    for _ in range(4):
        await login(client, password="a wrong guess")
    assert (await login(client)).status_code == 200
    for _ in range(5):
        assert (await login(client, password="a wrong guess")).status_code == 401


async def test_the_client_address_is_throttled_too(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, login_free_failures_per_address=3)
    async with serve(create_app(settings)) as client:
        for n in range(4):
            spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}  # ignored: no trusted proxy
            response = await client.post(
                "/api/auth/login",
                json={"email": f"victim{n}@shop.test", "password": "guess"},
                headers=spoofed,
            )
            assert response.status_code == 401
        assert_error(await login(client, email="victim9@shop.test"), 429, "TOO_MANY_ATTEMPTS")


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, login_free_failures_per_address=1, trusted_proxy_hops=1)
    async with serve(create_app(settings)) as client:

        async def attempt(forwarded: str) -> int:
            response = await client.post(
                "/api/auth/login",
                json={"email": f"{forwarded}@shop.test".replace(",", ""), "password": "guess"},
                headers={"X-Forwarded-For": forwarded},
            )
            return response.status_code

        # The proxy appends the address it saw; what the client wrote before it is ignored.
        assert [await attempt(f"forged{n}, 192.0.2.1") for n in range(3)] == [401, 401, 429]
        assert await attempt("192.0.2.2") == 401


async def test_the_throttle_holds_across_two_processes_on_one_database(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
        await register(first)
        for client in (first, second, first, second, first, second):
            assert (await login(client, password="a wrong guess")).status_code == 401
        for client in (first, second):
            assert_error(await login(client), 429, "TOO_MANY_ATTEMPTS")


# --- refresh and logout -----------------------------------------------------------------


async def test_refresh_rotates(client: httpx.AsyncClient) -> None:
    await register(client)
    first = await session(client)
    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["token_type"] == "bearer"
    assert body["refresh_token"] != first["refresh_token"]
    assert body["user"] == first["user"]
    me = await client.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.json()["id"] == first["user"]["id"]


async def test_reuse_revokes_the_family_newest_token_included(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    first = await session(client)
    newest = (await refresh(client, first["refresh_token"])).json()["refresh_token"]
    assert_error(await refresh(client, first["refresh_token"]), 401, "TOKEN_REUSED")
    assert_error(await refresh(client, newest), 401, "INVALID_REFRESH_TOKEN")


@pytest.mark.parametrize("token", ["unknown-token", "x" * 512])
async def test_unknown_refresh_tokens_are_401(client: httpx.AsyncClient, token: str) -> None:
    assert_error(await refresh(client, token), 401, "INVALID_REFRESH_TOKEN")


async def test_logout_revokes_and_is_idempotent(client: httpx.AsyncClient) -> None:
    await register(client)
    token = (await session(client))["refresh_token"]
    for sent in (token, token, "never-issued"):
        response = await client.post("/api/auth/logout", json={"refresh_token": sent})
        assert response.status_code == 204
        assert response.content == b""
    assert_error(await refresh(client, token), 401, "INVALID_REFRESH_TOKEN")


# --- the signed-in user -----------------------------------------------------------------


async def test_me_answers_the_user(client: httpx.AsyncClient) -> None:
    user = await register(client)
    token = (await session(client))["access_token"]
    assert (await client.get("/api/auth/me", headers=bearer(token))).json() == user


async def test_me_needs_a_valid_access_token(client: httpx.AsyncClient) -> None:
    await register(client)
    tokens = await session(client)
    codec = TokenCodec(SECRET)
    for headers in (
        {},
        bearer("not.a.jwt"),
        bearer(tokens["refresh_token"]),  # a refresh token is no access token
        bearer(codec.issue_service("orders")),
        bearer(TokenCodec("another-secret-" * 4).issue_access(tokens["user"]["id"], "admin")),
    ):
        assert_error(await client.get("/api/auth/me", headers=headers), 401)
    gone = codec.issue_access("00000000-0000-0000-0000-000000000000", "customer")
    assert_error(await client.get("/api/auth/me", headers=bearer(gone)), 401, "ACCOUNT_NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": PASSWORD},
        {"name": None},
        {"name": " "},
        {"password": "new password"},
        {"password": "short", "current_password": PASSWORD},
        {"role": "admin"},
    ],
)
async def test_bad_account_updates_are_422(client: httpx.AsyncClient, body: Json) -> None:
    await register(client)
    token = (await session(client))["access_token"]
    response = await client.patch("/api/auth/me", json=body, headers=bearer(token))
    assert_error(response, 422, "VALIDATION_ERROR")
    assert (await client.get("/api/auth/me", headers=bearer(token))).json()["name"] == "Ada"


async def test_renaming_needs_no_password(client: httpx.AsyncClient) -> None:
    await register(client)
    token = (await session(client))["access_token"]
    response = await client.patch("/api/auth/me", json={"name": " Ada L. "}, headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["name"] == "Ada L."


async def test_a_wrong_current_password_is_422(client: httpx.AsyncClient) -> None:
    await register(client)
    token = (await session(client))["access_token"]
    body = {"password": "new password", "current_password": "a wrong guess"}
    response = await client.patch("/api/auth/me", json=body, headers=bearer(token))
    assert_error(response, 422, "CURRENT_PASSWORD_INCORRECT")
    assert "a wrong guess" not in response.text
    assert (await login(client)).status_code == 200


async def test_password_change_signs_out_the_other_sessions_only(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    here, elsewhere = await session(client), await session(client)
    body = {"password": "new password", "current_password": PASSWORD}
    changed = await client.patch("/api/auth/me", json=body, headers=bearer(here["access_token"]))
    assert changed.status_code == 200
    assert_error(await refresh(client, elsewhere["refresh_token"]), 401)
    assert (await refresh(client, here["refresh_token"])).status_code == 200
    assert_error(await login(client), 401, "INVALID_CREDENTIALS")
    assert (await login(client, password="new password")).status_code == 200


# --- administration ---------------------------------------------------------------------


async def admin_token(client: httpx.AsyncClient) -> str:
    token: str = (await session(client, ADMIN_EMAIL))["access_token"]
    return token


async def test_the_first_admin_comes_from_the_settings(client: httpx.AsyncClient) -> None:
    body = await session(client, ADMIN_EMAIL)
    assert body["user"]["role"] == "admin"


async def test_admins_page_through_users_newest_first(client: httpx.AsyncClient) -> None:
    for n in range(24):
        await register(client, email=f"u{n:02d}@shop.test")
    admin = bearer(await admin_token(client))
    first = (await client.get("/api/auth/users?limit=10", headers=admin)).json()
    assert (first["total"], first["page"], first["limit"], first["total_pages"]) == (25, 1, 10, 3)
    assert first["users"][0]["email"] == "u23@shop.test"
    assert set(first["users"][0]) == {"id", "email", "name", "role", "created_at", "is_active"}
    last = (await client.get("/api/auth/users?page=3&limit=10", headers=admin)).json()
    assert [u["email"] for u in last["users"]][-1] == ADMIN_EMAIL
    assert len(last["users"]) == 5
    beyond = (await client.get("/api/auth/users?page=9&limit=10", headers=admin)).json()
    assert (beyond["users"], beyond["total_pages"]) == ([], 3)
    default = (await client.get("/api/auth/users", headers=admin)).json()
    assert (default["limit"], default["total_pages"], len(default["users"])) == (20, 2, 20)
    for query in ("page=0", "limit=0", "limit=101", "page=x"):
        assert_error(await client.get(f"/api/auth/users?{query}", headers=admin), 422)


async def test_admins_change_roles(client: httpx.AsyncClient) -> None:
    user = await register(client)
    admin = bearer(await admin_token(client))
    url = f"/api/auth/users/{user['id']}"
    promoted = await client.patch(url, json={"role": "admin"}, headers=admin)
    assert promoted.status_code == 200
    assert promoted.json() == {**user, "role": "admin"}
    assert (await session(client))["user"]["role"] == "admin"
    for body in ({"role": "owner"}, {}, {"role": "admin", "name": "x"}):
        assert_error(await client.patch(url, json=body, headers=admin), 422)


async def test_the_last_admin_cannot_be_demoted(client: httpx.AsyncClient) -> None:
    tokens = await session(client, ADMIN_EMAIL)
    url = f"/api/auth/users/{tokens['user']['id']}"
    admin = bearer(tokens["access_token"])
    assert_error(
        await client.patch(url, json={"role": "customer"}, headers=admin), 409, "LAST_ADMIN"
    )
    other = await register(client)
    await client.patch(f"/api/auth/users/{other['id']}", json={"role": "admin"}, headers=admin)
    demoted = await client.patch(url, json={"role": "customer"}, headers=admin)
    assert demoted.json()["role"] == "customer"


@pytest.mark.parametrize("user_id", ["nope", "00000000-0000-0000-0000-000000000000", "' OR 1=1"])
async def test_unknown_or_malformed_user_ids_are_404(
    client: httpx.AsyncClient, user_id: str
) -> None:
    admin = bearer(await admin_token(client))
    response = await client.patch(
        f"/api/auth/users/{user_id}", json={"role": "admin"}, headers=admin
    )
    assert_error(response, 404, "USER_NOT_FOUND")


async def test_admin_routes_refuse_customers_and_strangers(client: httpx.AsyncClient) -> None:
    user = await register(client)
    customer = bearer((await session(client))["access_token"])
    url = f"/api/auth/users/{user['id']}"
    assert_error(await client.get("/api/auth/users", headers=customer), 403, "FORBIDDEN")
    assert_error(await client.patch(url, json={"role": "admin"}, headers=customer), 403)
    assert_error(await client.get("/api/auth/users"), 401, "UNAUTHORIZED")
    assert_error(await client.patch(url, json={"role": "admin"}), 401)


async def test_create_admin_promotes_and_is_idempotent(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, admin_email=None, admin_password=None)
    await create_admin(settings, "Root@Shop.test", "root-pass-123")
    await create_admin(settings, "root@shop.test", "ignored-now-123")
    async with serve(create_app(settings)) as client:
        body = (await login(client, "root@shop.test", "root-pass-123")).json()
        assert body["user"]["role"] == "admin"
        users = await client.get("/api/auth/users", headers=bearer(body["access_token"]))
        assert users.json()["total"] == 1


async def test_restarts_keep_data_and_do_not_reset_the_admin(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with serve(create_app(settings)) as client:
        await register(client)
        token = await admin_token(client)
        body = {"password": "changed-pass-1", "current_password": ADMIN_PASSWORD}
        await client.patch("/api/auth/me", json=body, headers=bearer(token))
    async with serve(create_app(settings)) as client:
        assert (await login(client, ADMIN_EMAIL, "changed-pass-1")).status_code == 200
        assert (await login(client)).status_code == 200


# --- the HTTP surface -------------------------------------------------------------------


async def test_http_errors_keep_the_error_format(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/auth/nowhere"), 404, "NOT_FOUND")
    assert_error(await client.get("/api/auth/login"), 405, "METHOD_NOT_ALLOWED")
    huge = {"email": "a@shop.test", "name": "A", "password": PASSWORD, "pad": "x" * 2_000_000}
    assert_error(await client.post("/api/auth/register", json=huge), 413, "PAYLOAD_TOO_LARGE")
    bad_json = await client.post(
        "/api/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(bad_json, 422, "VALIDATION_ERROR")


async def test_docs_show_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    assert spec["paths"]["/api/auth/me"]["get"]["security"]
    assert (await client.get("/health")).json() == {"status": "ok", "service": "auth"}
    assert (await client.get("/ready")).json()["checks"] == {"database": "ok"}


async def test_the_create_admin_command_runs_on_the_configured_back_end(tmp_path: Path) -> None:
    """`retail create-admin` as a real process, on the database the tests run on (SQLite, or
    PostgreSQL/MongoDB when the run asks for them)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_URL", "_URI", "_PREFIX"))}
    env.update(DATA_DIR=str(tmp_path), JWT_SECRET_KEY=SECRET, BCRYPT_ROUNDS="4")
    env.update({k.upper(): v for k, v in database_overrides(tmp_path, "auth").items()})
    command = [
        "-m",
        "retail",
        "create-admin",
        "--email",
        "Root@Shop.test",
        "--password",
        "root-pass-1",
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, env=env, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    assert b"is an admin" in output
    settings = settings_for(tmp_path, admin_email=None, admin_password=None)
    async with serve(create_app(settings)) as client:
        body = (await login(client, "root@shop.test", "root-pass-1")).json()
        assert body["user"]["role"] == "admin"
