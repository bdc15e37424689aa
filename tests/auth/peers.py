"""Products as the auth app sees it over HTTP for the cart: the internal lookup of
docs/architecture.md ("Products internal API"), served by `httpx.MockTransport` over the
in-memory `FakeCatalog`, with the real route's checks (service token only, at most 100 ids)."""

from __future__ import annotations

import json
from typing import NoReturn

import httpx

from retail.kernel.errors import Unauthorized
from tests.auth.fakes import FakeCatalog
from tests.support import tokens


class ProductsPeer:
    def __init__(self, catalog: FakeCatalog) -> None:
        self.catalog = catalog
        self.callers: set[str] = set()

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {"products": httpx.MockTransport(self._products)}

    async def _products(self, request: httpx.Request) -> httpx.Response:
        if self.catalog.down:
            _down()
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if request.url.path != "/internal/products/lookup" or request.method != "POST":
            return httpx.Response(404, json={"status_code": 404, "error_code": "NOT_FOUND"})
        try:
            self.callers.add(self._caller(request))
        except Unauthorized:
            return httpx.Response(401, json={"status_code": 401, "error_code": "UNAUTHORIZED"})
        ids = json.loads(request.content)["ids"]
        if len(ids) > 100 or any(len(i) > 64 for i in ids):
            return httpx.Response(422, json={"status_code": 422, "error_code": "VALIDATION_ERROR"})
        found = await self.catalog.lookup(ids)
        products = [
            {
                "id": p.id,
                "title": p.title,
                "price_cents": p.price_cents,
                "tax_bp": p.tax_bp,
                "stock": p.stock,
                "image_url": p.image_url,
                "category_id": None,
            }
            for p in found.values()
        ]
        return httpx.Response(200, json={"products": products})

    @staticmethod
    def _caller(request: httpx.Request) -> str:
        """Internal routes take service tokens only, as the real products service does."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer":
            raise Unauthorized()
        return tokens.verify_service(token)


def _down() -> NoReturn:
    raise httpx.ConnectError("connection refused")
