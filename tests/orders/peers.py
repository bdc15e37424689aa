"""Products and inventory as the orders app sees them over HTTP: the internal contracts of
docs/architecture.md, served by `httpx.MockTransport` over the in-memory fakes."""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

import httpx

from retail.kernel.errors import AppError, Unauthorized
from retail.orders.domain import CatalogEntry, LineRequest
from tests.orders.fakes import FakeCatalog, FakeInventory
from tests.support import tokens

_RELEASE = re.compile(r"^/internal/reservations/([^/]+)/release$")


class Peers:
    def __init__(self, catalog: FakeCatalog, inventory: FakeInventory) -> None:
        self.catalog = catalog
        self.inventory = inventory
        self.callers: set[str] = set()

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {
            "products": httpx.MockTransport(self._products),
            "inventory": httpx.MockTransport(self._inventory),
        }

    async def _products(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return _down() if self.catalog.down else httpx.Response(200, json={"status": "ok"})
        if self.catalog.down:
            return _down()
        self._check_caller(request)
        if request.url.path != "/internal/products/lookup":
            return httpx.Response(404)
        ids = json.loads(request.content)["ids"]
        found = await self.catalog.lookup(ids)
        return httpx.Response(200, json={"products": [_lookup_item(e) for e in found.values()]})

    async def _inventory(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/health":
            return _down() if self.inventory.down else httpx.Response(200, json={"status": "ok"})
        if self.inventory.down:
            return _down()
        self._check_caller(request)
        try:
            if path == "/internal/reservations":
                return await self._reserve(json.loads(request.content))
            if match := _RELEASE.match(path):
                await self.inventory.release(match.group(1))
                return httpx.Response(200, json={"order_id": match.group(1), "status": "released"})
        except AppError as error:
            body = {"status_code": error.status_code, "error_code": error.error_code}
            body |= {"message": error.message, "details": error.details}
            return httpx.Response(error.status_code, json=body)
        return httpx.Response(404)

    async def _reserve(self, body: dict[str, Any]) -> httpx.Response:
        lines = [LineRequest(line["product_id"], line["quantity"]) for line in body["lines"]]
        await self.inventory.reserve(body["order_id"], lines)
        answer = {"order_id": body["order_id"], "status": "reserved", "lines": body["lines"]}
        return httpx.Response(200, json=answer)

    def _check_caller(self, request: httpx.Request) -> None:
        """Internal routes take service tokens only, as the real peers do."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer":
            raise Unauthorized()
        self.callers.add(tokens.verify_service(token))


def _lookup_item(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "id": entry.product_id,
        "title": entry.title,
        "price_cents": entry.price_cents,
        "tax_bp": entry.tax_bp,
        "stock": 0,
        "image_url": None,
        "category_id": None,
    }


def _down() -> NoReturn:
    raise httpx.ConnectError("connection refused")
