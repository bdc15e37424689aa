"""Strict input (issue 14) on every wire model that takes quantities, stock, money or a URL
the shop shows: a boolean is not 1, "3" is not 3, "4.50" is not an amount, and a logo is
http(s) or our own media path. Bodies are parsed as FastAPI does (JSON, then the model)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from retail.auth.schemas import CartItemCreate, CartItemUpdate
from retail.categories.schemas import CategoryCreate, CategoryUpdate
from retail.inventory.schemas import ReservationCreate, StockUpdate
from retail.orders.schemas import OrderCreate
from retail.products.schemas import ProductCreate, ProductUpdate

PRODUCT = "11111111-2222-4333-8444-555555555555"


def parse(model: type[BaseModel], body: str) -> BaseModel:
    return model.model_validate(json.loads(body))


def order(quantity: str) -> str:
    line = f'{{"product_id": "{PRODUCT}", "quantity": {quantity}}}'
    return f'{{"items": [{line}], "shipping_address": "1 Main St"}}'


CASES: list[tuple[type[BaseModel], Any]] = [
    (CartItemCreate, lambda q: f'{{"product_id": "p1", "quantity": {q}}}'),
    (CartItemUpdate, lambda q: f'{{"quantity": {q}}}'),
    (OrderCreate, order),
    (StockUpdate, lambda q: f'{{"stock": {q}, "reason": "count"}}'),
    (
        ReservationCreate,
        lambda q: f'{{"order_id": "o1", "lines": [{{"product_id": "p1", "quantity": {q}}}]}}',
    ),
    (ProductCreate, lambda q: f'{{"title": "Mug", "price": 5, "stock": {q}}}'),
    (ProductUpdate, lambda q: f'{{"stock": {q}}}'),
    (
        ProductCreate,
        lambda q: (
            f'{{"title": "Set", "price": 5, "combos": [{{"product_id": "{PRODUCT}", '
            f'"quantity": {q}}}]}}'
        ),
    ),
]


@pytest.mark.parametrize(("model", "body"), CASES)
@pytest.mark.parametrize("refused", ["true", "false", '"3"', "2.5", '"three"', "null"])
def test_integers_are_json_integers(model: type[BaseModel], body: Any, refused: str) -> None:
    assert parse(model, body("3"))  # the integer itself is taken
    # 3.0 is an integer to JSON Schema (and to the OpenAPI document's clients): taken as 3.
    assert parse(model, body("3.0")) == parse(model, body("3"))
    with pytest.raises(ValidationError):
        parse(model, body(refused))


@pytest.mark.parametrize("field", ["price", "tax_percent"])
@pytest.mark.parametrize("refused", ['"4.50"', '"4"', "true", '"1e2"'])
def test_money_is_a_json_number(field: str, refused: str) -> None:
    taken = parse(ProductCreate, f'{{"title": "Mug", "price": 4.5, "{field}": 4.5}}')
    assert getattr(taken, field) == 4.5
    assert parse(ProductUpdate, f'{{"{field}": 4}}')
    with pytest.raises(ValidationError):
        parse(ProductCreate, f'{{"title": "Mug", "price": 5, "{field}": {refused}}}')
    with pytest.raises(ValidationError):
        parse(ProductUpdate, f'{{"{field}": {refused}}}')


def test_an_add_ons_price_is_a_json_number() -> None:
    made = '{{"title": "Mug", "price": 5, "add_ons": [{{"name": "Lid", "price": {}}}]}}'
    assert parse(ProductCreate, made.format("0.5"))
    for refused in ('"0.50"', "true"):
        with pytest.raises(ValidationError):
            parse(ProductCreate, made.format(refused))


@pytest.mark.parametrize(
    "logo",
    ["https://cdn.shop.test/logo.png", "http://cdn.shop.test/a?x=1", "/media/categories/a.png", ""],
)
def test_a_logo_may_be_http_or_our_media(logo: str) -> None:
    assert CategoryCreate(name="Lamps", logo=logo).logo == logo
    assert CategoryUpdate(logo=logo).logo == logo


@pytest.mark.parametrize(
    "logo",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "//evil.test/x.png",
        "logo.png",
        "/media/../.jwt_secret",
        "ftp://files.test/x.png",
        "https://user:pw@cdn.test/x.png",
        "https://cdn.test/a b.png",
        "https://cdn.test/a\\b.png",
        "/static/x.png",
    ],
)
def test_other_logos_are_refused(logo: str) -> None:
    with pytest.raises(ValidationError):
        CategoryCreate(name="Lamps", logo=logo)
    with pytest.raises(ValidationError):
        CategoryUpdate(logo=logo)
