from typing import ClassVar

from pydantic import Field

from retail.kernel.settings import Settings


class InventorySettings(Settings):
    service_name: ClassVar[str] = "inventory"
    service_database_url: str | None = Field(None, validation_alias="INVENTORY_DATABASE_URL")

    # A level is "low" at or below its own threshold, or else this one (LOW_STOCK_THRESHOLD).
    low_stock_threshold: int = Field(5, ge=0)
    # Off in tests that drive the followers by hand through `app.state.followers[...]`.
    follow_feeds: bool = True
    feed_poll_seconds: float = Field(0.5, gt=0)
