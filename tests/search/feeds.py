"""The products, categories and inventory services as search sees them: their change feeds
(`GET /internal/events?after=&limit=`, docs/architecture.md "Feeds"), served through
`httpx.MockTransport` from lists that a test appends to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx

from retail.kernel.errors import Unauthorized
from retail.kernel.events import FEED_PATH, Event, EventFeed
from tests.support import tokens

FEEDS = ("categories", "products", "inventory")


class FakeFeeds:
    def __init__(self) -> None:
        self.events: dict[str, list[Event]] = {feed: [] for feed in FEEDS}
        self.products: dict[str, dict[str, Any]] = {}
        self.down: set[str] = set()
        self.reads: list[tuple[str, int]] = []  # (feed, after) of every read
        # Runs as a read arrives, before it is answered: to act at a chosen moment.
        self.before_read: Callable[[str, int], Awaitable[None]] | None = None

    # What the peers announce ------------------------------------------------------------

    def add(self, feed: str, event_type: str, key: str, data: dict[str, Any]) -> None:
        events = self.events[feed]
        seq = events[-1].seq + 1 if events else 1
        now = datetime.now(UTC)
        events.append(Event(seq=seq, type=event_type, key=key, data=data, occurred_at=now))

    def category(self, category_id: str, name: str, event: str = "category.created") -> None:
        data = {"id": category_id, "name": name, "logo": None, "description": ""}
        self.add("categories", event, category_id, data | {"created_at": "2025-01-01T00:00:00"})

    def delete_category(self, category_id: str) -> None:
        self.add("categories", "category.deleted", category_id, {"id": category_id})

    def product(
        self,
        product_id: str,
        title: str,
        description: str = "",
        *,
        price_cents: int = 1000,
        category_id: str | None = None,
        stock: int = 5,
        created_at: str = "2025-01-01T00:00:00Z",
    ) -> dict[str, Any]:
        """A product.created event; returns the product in its wire shape."""
        wire = {
            "id": product_id,
            "title": title,
            "description": description,
            "price": price_cents / 100,
            "tax_percent": 20.0,
            "image_url": f"/media/{product_id}.png",
            "category_id": category_id,
            "stock": stock,
            "add_ons": [{"name": "Gift wrap", "price": 2.5}],
            "combos": [],
            "sku": None,
            "brand": None,
            "created_at": created_at,
        }
        self.products[product_id] = wire
        data = wire | {"price_cents": price_cents, "tax_bp": 2000, "initial_stock": stock}
        self.add("products", "product.created", product_id, data)
        return wire

    def update_product(self, product_id: str, **changes: Any) -> dict[str, Any]:
        wire = self.products[product_id] | changes
        self.products[product_id] = wire
        data = wire | {"price_cents": round(wire["price"] * 100), "tax_bp": 2000}
        self.add("products", "product.updated", product_id, data)
        return wire

    def delete_product(self, product_id: str) -> None:
        del self.products[product_id]
        self.add("products", "product.deleted", product_id, {"id": product_id})

    def stock(self, product_id: str, stock: int) -> None:
        data = {"product_id": product_id, "stock": stock, "change": 0, "reason": "count"}
        self.add("inventory", "stock.changed", product_id, data | {"order_id": None})

    def forget_history(self) -> None:
        """As if the peers' databases were restored from nothing: new feeds from seq 1."""
        self.events = {feed: [] for feed in FEEDS}
        self.products = {}

    # The transport ----------------------------------------------------------------------

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {feed: httpx.MockTransport(self._handler(feed)) for feed in FEEDS}

    def _handler(
        self, feed: str
    ) -> Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]:
        async def handle(request: httpx.Request) -> httpx.Response:
            if feed in self.down:
                raise httpx.ConnectError("connection refused", request=request)
            if request.url.path != FEED_PATH:
                return httpx.Response(404)
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            try:  # the real feeds answer service tokens only
                tokens.verify_service(token if scheme == "Bearer" else "")
            except Unauthorized:
                return httpx.Response(401)
            after, limit = int(request.url.params["after"]), int(request.url.params["limit"])
            self.reads.append((feed, after))
            if self.before_read is not None:
                await self.before_read(feed, after)
            events = [e for e in self.events[feed] if e.seq > after][:limit]
            body = EventFeed(events=events, last_seq=events[-1].seq if events else after)
            return httpx.Response(200, json=body.model_dump(mode="json"))

        return handle


def small_shop(feeds: FakeFeeds) -> None:
    """A fixed catalogue whose words are chosen for the ranking and filter rules."""
    # fmt: off
    feeds.category("cat-kitchen", "Kitchen")
    feeds.category("cat-shirts", "Men's T-Shirts")
    feeds.category("cat-fruit", "Fresh Fruit")
    feeds.product("tee", "Organic Cotton Crew-Neck T-Shirt - Navy Blue", "A soft everyday tee.",
                  price_cents=2500, category_id="cat-shirts", stock=10)
    feeds.product("oxford", "Oxford Shirt - White", "Crisp cotton for the office.",
                  price_cents=4500, category_id="cat-shirts", stock=0)
    feeds.product("jacket", "Rain Jacket - Olive", "Pairs well with a linen shirt.",
                  price_cents=9900)
    feeds.product("shorts", "Linen Shorts - Sand", "Light and airy.", price_cents=3500)
    feeds.product("chef-knife", "Chef Knife", "Forged steel blade.", price_cents=5900,
                  category_id="cat-kitchen")
    feeds.product("pocket-knife", "Pocket Knife", "Handy in the kitchen and outdoors.",
                  price_cents=2900)
    feeds.product("berries", "Frozen Berries", "A mix of blueberry and raspberry.",
                  price_cents=699, category_id="cat-fruit", stock=40)
    feeds.product("chocolate", "Dark Chocolate Bar", "Single origin cocoa.", price_cents=450,
                  category_id="cat-fruit")
    feeds.product("creme", "Crème Brûlée Kit", "Everything for a classic dessert.",
                  price_cents=1500, category_id="cat-kitchen")
    feeds.product("lamp", "Table Lamp - Brass", "Warm light for reading.", price_cents=7900)
    feeds.product("mug-old", "Enamel Mug", "Holds a big coffee.", price_cents=1200, stock=3,
                  created_at="2023-01-01T00:00:00Z")
    feeds.product("mug-new", "Enamel Mug", "Holds a big coffee.", price_cents=1200, stock=1,
                  created_at="2024-03-01T00:00:00Z")
    feeds.product("mug-sold-out", "Enamel Mug", "Holds a big coffee.", price_cents=1200,
                  stock=0, created_at="2024-09-01T00:00:00Z")
    # fmt: on
