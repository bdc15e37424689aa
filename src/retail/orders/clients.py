"""The peers orders calls (docs/architecture.md, internal contracts), through the kernel's
peer client: service token attached, a peer that is down or times out a 503.

Inventory's refusals become the orders service's own errors; any other error answer is
`ServiceUnavailable` (5xx) or the kernel's `PeerError` (an unexpected 4xx), which the saga
treats like an outage: it cannot know whether stock is held, so it releases.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from retail.kernel.errors import AppError
from retail.kernel.http import PeerError, PeerResponse, ServiceClient, expect_ok
from retail.orders.domain import CatalogEntry, LineRequest
from retail.orders.exceptions import InsufficientStock, ReservationReleased, UnknownProduct

LOOKUP_PATH = "/internal/products/lookup"
RESERVATIONS_PATH = "/internal/reservations"
_REFUSALS: dict[tuple[int, str], type[AppError]] = {
    (409, "INSUFFICIENT_STOCK"): InsufficientStock,
    (409, "RESERVATION_RELEASED"): ReservationReleased,
    (422, "UNKNOWN_PRODUCT"): UnknownProduct,
}


class _LookupItem(BaseModel):
    model_config = ConfigDict(extra="ignore")  # products may add fields freely

    id: str
    title: str
    price_cents: int
    tax_bp: int
    # An inactive product is withdrawn from sale: to us it is as if it were not there.
    is_active: bool = True


class _LookupResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    products: list[_LookupItem]


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error_code: str = ""
    message: str = ""
    details: dict[str, object] | None = None


class ProductsCatalog:
    """`ProductCatalog` over `POST /internal/products/lookup`."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogEntry]:
        wanted = list(dict.fromkeys(product_ids))
        response = await self._client.request(
            "POST", LOOKUP_PATH, json={"ids": wanted}, idempotent=True
        )
        expect_ok(response, self._client.peer)
        try:
            found = _LookupResult.model_validate_json(response.content)
        except ValidationError:
            raise PeerError("The products service answered in an unknown shape") from None
        return {
            item.id: CatalogEntry(item.id, item.title, item.price_cents, item.tax_bp)
            for item in found.products
            if item.id in wanted and item.is_active
        }


class InventoryReservations:
    """`StockReservations` over inventory's internal reservation API."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def reserve(self, reservation_id: str, lines: Sequence[LineRequest]) -> None:
        body = {
            "order_id": reservation_id,
            "lines": [{"product_id": line.product_id, "quantity": line.quantity} for line in lines],
        }
        # Keyed by the reservation id: inventory answers a repeat as the first call.
        response = await self._client.request("POST", RESERVATIONS_PATH, json=body, idempotent=True)
        if response.status_code in (409, 422):
            raise _refusal(response)
        expect_ok(response, self._client.peer)

    async def release(self, reservation_id: str) -> None:
        path = f"{RESERVATIONS_PATH}/{reservation_id}/release"
        response = await self._client.request("POST", path, idempotent=True)
        expect_ok(response, self._client.peer)


def _refusal(response: PeerResponse) -> AppError:
    try:
        error = _ErrorBody.model_validate_json(response.content)
    except ValidationError:
        error = _ErrorBody()
    refusal = _REFUSALS.get((response.status_code, error.error_code))
    if refusal is None:
        return PeerError(f"The inventory service answered {response.status_code}")
    return refusal(error.message or None, details=error.details)
