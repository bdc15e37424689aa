"""The categories service through its real app: HTTP, validation, auth, storage, feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app
from tests.support import (
    FreshHeaders,
    admin_headers,
    assert_error,
    bearer,
    make_settings,
    serve,
    service_headers,
)

ADMIN = FreshHeaders(admin_headers)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(make_settings(CategoriesSettings, tmp_path))) as client:
        yield client


async def create(client: httpx.AsyncClient, name: str, **fields: object) -> dict[str, object]:
    response = await client.post("/api/categories", json={"name": name, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_returns_the_wire_shape(client: httpx.AsyncClient) -> None:
    body = await create(client, "  Running   Shoes ", logo="https://cdn.example/r.png")
    assert set(body) == {"id", "name", "logo", "description", "created_at"}
    assert body["name"] == "Running Shoes"
    assert body["description"] == ""
    fetched = await client.get(f"/api/categories/{body['id']}")
    assert fetched.json() == body


async def test_list_is_sorted_by_name_with_total(client: httpx.AsyncClient) -> None:
    for name in ["kitchen", "Apparel", "Garden"]:
        await create(client, name)
    body = (await client.get("/api/categories")).json()
    assert [c["name"] for c in body["categories"]] == ["Apparel", "Garden", "kitchen"]
    assert body["total"] == 3


async def test_names_are_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    first = await create(client, "Toys")
    other = await create(client, "Games")
    duplicate = await client.post("/api/categories", json={"name": "tOYS"}, headers=ADMIN)
    assert_error(duplicate, 409, "CATEGORY_NAME_TAKEN")
    rename = await client.patch(
        f"/api/categories/{other['id']}", json={"name": "TOYS"}, headers=ADMIN
    )
    assert_error(rename, 409, "CATEGORY_NAME_TAKEN")
    own_case = await client.patch(
        f"/api/categories/{first['id']}", json={"name": "TOYS"}, headers=ADMIN
    )
    assert own_case.json()["name"] == "TOYS"
    assert (await client.get("/api/categories")).json()["total"] == 2


async def test_patch_is_partial(client: httpx.AsyncClient) -> None:
    made = await create(client, "Books", description="Paper")
    patched = await client.patch(
        f"/api/categories/{made['id']}", json={"logo": "/media/categories/l.png"}, headers=ADMIN
    )
    assert patched.status_code == 200
    assert patched.json() | {"logo": None} == made | {"logo": None}
    assert patched.json()["logo"] == "/media/categories/l.png"


@pytest.mark.parametrize(
    "body",
    [{}, {"name": None}, {"name": "   "}, {"name": "x" * 101}, {"colour": "red"}],
)
async def test_bad_patches_are_422_and_change_nothing(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    made = await create(client, "Music")
    response = await client.patch(f"/api/categories/{made['id']}", json=body, headers=ADMIN)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert (await client.get(f"/api/categories/{made['id']}")).json() == made


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "ok", "id": "mine"}, {"name": 5}, {"name": "a", "logo": 1}]
)
async def test_bad_creates_are_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    assert_error(await client.post("/api/categories", json=body, headers=ADMIN), 422)
    assert (await client.get("/api/categories")).json()["total"] == 0


async def test_writes_need_an_admin(client: httpx.AsyncClient) -> None:
    made = await create(client, "Garden")
    url = f"/api/categories/{made['id']}"
    assert_error(await client.post("/api/categories", json={"name": "x"}), 401, "UNAUTHORIZED")
    customer = bearer("c1", "customer")
    assert_error(await client.post("/api/categories", json={"name": "x"}, headers=customer), 403)
    assert_error(await client.patch(url, json={"name": "y"}, headers=customer), 403)
    assert_error(await client.delete(url, headers=customer), 403)
    forged = {"Authorization": "Bearer not.a.token"}
    assert_error(await client.delete(url, headers=forged), 401)
    assert_error(await client.delete(url, headers=service_headers()), 401)
    assert (await client.get(url)).status_code == 200


@pytest.mark.parametrize(
    "category_id", ["nope", "00000000-0000-0000-0000-000000000000", "' OR 1=1"]
)
async def test_unknown_or_malformed_ids_are_404(
    client: httpx.AsyncClient, category_id: str
) -> None:
    assert_error(await client.get(f"/api/categories/{category_id}"), 404, "CATEGORY_NOT_FOUND")
    patch = await client.patch(f"/api/categories/{category_id}", json={"name": "z"}, headers=ADMIN)
    assert_error(patch, 404, "CATEGORY_NOT_FOUND")
    assert_error(await client.delete(f"/api/categories/{category_id}", headers=ADMIN), 404)


async def test_delete_removes_it(client: httpx.AsyncClient) -> None:
    made = await create(client, "Old")
    assert (await client.delete(f"/api/categories/{made['id']}", headers=ADMIN)).status_code == 204
    assert_error(await client.get(f"/api/categories/{made['id']}"), 404)
    assert_error(await client.delete(f"/api/categories/{made['id']}", headers=ADMIN), 404)


async def test_feed_records_every_change_in_order(client: httpx.AsyncClient) -> None:
    made = await create(client, "Feed")
    await client.patch(f"/api/categories/{made['id']}", json={"name": "Fed"}, headers=ADMIN)
    await client.post("/api/categories", json={"name": "fed"}, headers=ADMIN)  # 409: no event
    await client.delete(f"/api/categories/{made['id']}", headers=ADMIN)
    feed = (await client.get("/internal/events", headers=service_headers())).json()
    assert [(e["seq"], e["type"]) for e in feed["events"]] == [
        (1, "category.created"),
        (2, "category.updated"),
        (3, "category.deleted"),
    ]
    assert feed["events"][1]["data"]["name"] == "Fed"
    assert {e["key"] for e in feed["events"]} == {made["id"]}
    assert feed["last_seq"] == 3


async def test_feed_resumes_after_a_cursor_and_pages(client: httpx.AsyncClient) -> None:
    for n in range(5):
        await create(client, f"C{n}")
    page = await client.get("/internal/events?after=1&limit=2", headers=service_headers())
    assert [e["seq"] for e in page.json()["events"]] == [2, 3]
    rest = await client.get("/internal/events?after=3", headers=service_headers())
    assert [e["seq"] for e in rest.json()["events"]] == [4, 5]
    empty = await client.get("/internal/events?after=5", headers=service_headers())
    assert empty.json() == {"events": [], "last_seq": 5}


async def test_feed_is_for_services_only(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/internal/events"), 401)
    assert_error(await client.get("/internal/events", headers=ADMIN), 401)
    assert_error(await client.get("/internal/events?after=-1", headers=service_headers()), 422)


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(CategoriesSettings, tmp_path)
    async with serve(create_app(settings)) as client:
        made = await create(client, "Durable")
    async with serve(create_app(settings)) as client:
        assert (await client.get(f"/api/categories/{made['id']}")).json() == made
        feed = (await client.get("/internal/events", headers=service_headers())).json()
        assert feed["last_seq"] == 1
