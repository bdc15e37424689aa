"""The peer auth calls for the cart: products' internal lookup (docs/architecture.md, "Products
internal API"), through the kernel's peer client. A service token is attached; products being
down or slow is a 503, and an answer we cannot read is the kernel's `PeerError`."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from retail.auth.domain import CatalogProduct
from retail.kernel.http import PeerError, ServiceClient, Transports, expect_ok, peer_client
from retail.kernel.security import TokenCodec
from retail.kernel.settings import Settings

LOOKUP_PATH = "/internal/products/lookup"


class _LookupItem(BaseModel):
    model_config = ConfigDict(extra="ignore")  # products may add fields freely

    id: str
    title: str
    price_cents: int
    tax_bp: int
    stock: int
    image_url: str | None = None
    # An inactive product is withdrawn from sale: to us it is as if it were not there.
    is_active: bool = True


class _LookupResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    products: list[_LookupItem]


def products_client(
    settings: Settings,
    tokens: TokenCodec,
    transports: Transports | None = None,
) -> ServiceClient:
    return peer_client(settings, "products", tokens, transports)


class ProductsCatalog:
    """`ProductCatalog` over `POST /internal/products/lookup`."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogProduct]:
        wanted = list(dict.fromkeys(product_ids))
        if not wanted:
            return {}
        response = await self._client.request(
            "POST", LOOKUP_PATH, json={"ids": wanted}, idempotent=True
        )
        expect_ok(response, self._client.peer)
        try:
            found = _LookupResult.model_validate_json(response.content)
        except ValidationError:
            raise PeerError("The products service answered in an unknown shape") from None
        return {
            item.id: CatalogProduct(
                item.id, item.title, item.price_cents, item.tax_bp, item.stock, item.image_url
            )
            for item in found.products
            if item.id in wanted and item.is_active
        }
