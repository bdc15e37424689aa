"""Every service's OpenAPI document tells the truth about errors and amounts, names fields
as a client knows them, and its docs pages work without internet access."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from retail.kernel.errors import field_name
from retail.kernel.openapi import ERROR_SCHEMA
from retail.kernel.settings import SERVICE_PORTS, Settings
from tests.support import assert_error, bearer, make_settings, serve

ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}


def service_app(service: str, data_dir: Path) -> FastAPI:
    main = importlib.import_module(f"retail.{service}.main")
    config = importlib.import_module(f"retail.{service}.config")
    (settings_type,) = (
        value
        for value in vars(config).values()
        if isinstance(value, type) and issubclass(value, Settings) and value is not Settings
    )
    app: FastAPI = main.create_app(make_settings(settings_type, data_dir))
    return app


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_every_error_status_has_the_error_schema(service: str, tmp_path: Path) -> None:
    document = service_app(service, tmp_path).openapi()
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == ERROR_REF, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    error = document["components"]["schemas"][ERROR_SCHEMA]
    assert set(error["required"]) == {"status_code", "error_code", "message", "detail"}
    assert error["properties"]["details"]["type"] == "object"


def statuses(document: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(s) for s in document["paths"][path][method.lower()]["responses"]}


def test_statuses_follow_from_what_a_route_depends_on(tmp_path: Path) -> None:
    products = service_app("products", tmp_path).openapi()
    # Admin, JSON body, the database: 400 401 403 413 415 422 503.
    assert {400, 401, 403, 413, 415, 422, 503} <= statuses(products, "POST", "/api/products")
    assert statuses(products, "GET", "/health") == {200}
    categories = service_app("categories", tmp_path / "categories").openapi()
    # A path parameter: 404; no token read: no 401.
    assert statuses(categories, "GET", "/api/categories/{category_id}") == {200, 404, 422, 503}
    auth = service_app("auth", tmp_path / "auth").openapi()
    login = auth["paths"]["/api/auth/login"]["post"]["responses"]
    assert "Retry-After" in login["429"]["headers"]
    assert login["401"]["description"] == "INVALID_CREDENTIALS"  # the route's own words kept


def test_amounts_are_bounded_numbers_and_null_only_where_accepted(tmp_path: Path) -> None:
    schemas = service_app("products", tmp_path).openapi()["components"]["schemas"]
    price = schemas["ProductCreate"]["properties"]["price"]
    assert {k: v for k, v in price.items() if k != "title"} == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 99999999.99,
        "multipleOf": 0.01,
    }
    tax = schemas["ProductCreate"]["properties"]["tax_percent"]
    assert (tax["type"], tax["minimum"], tax["maximum"]) == ("number", 0, 100)
    update = schemas["ProductUpdate"]["properties"]
    assert "null" not in str(update["price"])  # a null price is refused, so not offered
    assert "null" in str(update["category_id"])  # null clears the category


async def test_validation_errors_name_fields_not_validators(tmp_path: Path) -> None:
    async with serve(service_app("orders", tmp_path)) as client:
        response = await client.post(
            "/api/orders",
            json={"items": [{"product_id": "p1", "quantity": 1}], "shipping_address": "   "},
            headers=bearer(),
        )
    assert_error(response, 422, "VALIDATION_ERROR")
    fields = {f["field"] for f in response.json()["details"]["fields"]}
    assert fields == {"body.shipping_address"}
    assert response.json()["message"] == "Invalid input: body.shipping_address"


def test_field_names_drop_schema_parts() -> None:
    loc = ("body", "shipping_address", "function-after[_not_blank(), constrained-str]")
    assert field_name(loc) == "body.shipping_address"
    assert field_name(("body", "items", 0, "quantity")) == "body.items.0.quantity"
    assert field_name(("body", "address", "dict[str,str]", "city", "[key]")) == "body.address.city"
    assert field_name(("query", "limit")) == "query.limit"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_need_no_internet(page: str, tmp_path: Path) -> None:
    async with serve(service_app("categories", tmp_path)) as client:
        html = await client.get(page)
        assert html.status_code == 200
        # Every URL the page loads is on this service.
        assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", html.text)
        assets = re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", html.text)
        assert any(a.endswith(".js") for a in assets)
        for asset in assets:
            served = await client.get(asset)
            assert served.status_code == 200, asset
            assert served.content
        assert (await client.get("/openapi.json")).status_code == 200
