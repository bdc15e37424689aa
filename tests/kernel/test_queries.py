"""A query string read by one model (kernel/queries.py) answers as FastAPI's declared query
parameters would: the same values, the same VALIDATION_ERROR, the same OpenAPI document."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field

from retail.kernel.errors import install_error_handlers
from retail.kernel.openapi import install_openapi
from retail.kernel.queries import QueryString
from tests.support import assert_error, serve


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Filters(BaseModel):
    q: str = Field(description="What to look for")
    limit: int = Field(20, ge=1, le=100)
    page: int | None = Field(None, ge=1)
    in_stock: bool | None = None
    colour: Colour | None = None


def app_with_both() -> FastAPI:
    """The same parameters read by the model and declared one by one."""
    app = FastAPI()
    install_error_handlers(app)
    install_openapi(app)

    @app.get("/model")
    async def by_model(
        filters: Annotated[Filters, Depends(QueryString(Filters))],
    ) -> dict[str, Any]:
        return filters.model_dump()

    @app.get("/declared")
    async def declared(
        q: Annotated[str, Query(description="What to look for")],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        page: Annotated[int | None, Query(ge=1)] = None,
        in_stock: bool | None = None,
        colour: Colour | None = None,
    ) -> dict[str, Any]:
        return {"q": q, "limit": limit, "page": page, "in_stock": in_stock, "colour": colour}

    return app


@pytest.fixture
async def client() -> Any:
    async with serve(app_with_both()) as client:
        yield client


QUERIES = [
    {"q": "tea"},
    {"q": "tea", "limit": "5", "page": "2", "in_stock": "true", "colour": "blue"},
    {"q": "tea", "in_stock": "0", "unknown": "ignored", "nocache": "run-1"},
    [("q", "first"), ("q", "last"), ("limit", "7"), ("limit", "9")],  # the last value wins
]


@pytest.mark.parametrize("params", QUERIES)
async def test_the_model_reads_what_declared_parameters_read(
    client: httpx.AsyncClient, params: Any
) -> None:
    by_model = await client.get("/model", params=params)
    declared = await client.get("/declared", params=params)
    assert by_model.status_code == declared.status_code == 200
    assert by_model.json() == declared.json()


BAD = [
    ({}, "query.q", "missing"),
    ({"q": "tea", "limit": "101"}, "query.limit", "less_than_equal"),
    ({"q": "tea", "limit": "ten"}, "query.limit", "int_parsing"),
    ({"q": "tea", "page": "0"}, "query.page", "greater_than_equal"),
    ({"q": "tea", "colour": "green"}, "query.colour", "enum"),
]


@pytest.mark.parametrize(("params", "field", "kind"), BAD)
async def test_bad_values_are_the_same_validation_error(
    client: httpx.AsyncClient, params: dict[str, str], field: str, kind: str
) -> None:
    for path in ("/model", "/declared"):
        response = await client.get(path, params=params)
        assert_error(response, 422, "VALIDATION_ERROR")
        (error,) = response.json()["details"]["fields"]
        assert (error["field"], error["type"]) == (field, kind), path
        assert "ten" not in response.text  # never the submitted value


def test_the_document_lists_the_model_fields_as_query_parameters() -> None:
    document = app_with_both().openapi()
    by_model = document["paths"]["/model"]["get"]
    declared = document["paths"]["/declared"]["get"]

    def shape(operation: dict[str, Any]) -> list[tuple[str, str, bool, str | None]]:
        return [
            (p["name"], p["in"], p["required"], p.get("description"))
            for p in operation["parameters"]
        ]

    assert shape(by_model) == shape(declared)
    limit = next(p for p in by_model["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    assert "Colour" in document["components"]["schemas"]  # what the colour refers to
    assert set(by_model["responses"]) == set(declared["responses"]) == {"200", "422"}
