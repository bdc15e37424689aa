from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from retail.kernel.settings import Settings
from retail.orders.domain import Policy


class OrdersSettings(Settings):
    service_name: ClassVar[str] = "orders"
    service_database_url: str | None = Field(None, validation_alias="ORDERS_DATABASE_URL")

    # An order still `pending` this long after its last owner touched it is finished or
    # rolled back by the recovery loop. It must exceed a slow saga (two peer calls, each
    # bounded by HTTP_TIMEOUT_SECONDS), or recovery would race requests still in flight.
    pending_grace_seconds: float = Field(30.0, gt=0)
    recovery_interval_seconds: float = Field(5.0, gt=0)
    recovery_batch_size: int = Field(50, ge=1, le=1000)
    # Off in tests that drive recovery by hand (`service.recover(app.state.deps, ...)`).
    recover_pending: bool = True

    # Idempotency keys are kept at least a day (clients retry across restarts and outages).
    idempotency_ttl_hours: float = Field(24.0, ge=24.0)
    # How long a repeat of a request still in flight waits for its answer before a 409.
    idempotency_wait_seconds: float = Field(5.0, ge=0, le=60)
    reorder_max_attempts: int = Field(5, ge=1, le=50)
    # New orders are priced from the catalogue view while it is known current within this
    # many seconds, else by asking products (orders/feeds.py). 0: always ask products.
    catalogue_max_age_seconds: float = Field(2.0, ge=0, le=60)
    # Off in tests that drive the view by hand (`app.state.followers["products"].catch_up()`).
    follow_feeds: bool = True

    def policy(self) -> Policy:
        return Policy(
            pending_grace=timedelta(seconds=self.pending_grace_seconds),
            idempotency_ttl=timedelta(hours=self.idempotency_ttl_hours),
            idempotency_wait_seconds=self.idempotency_wait_seconds,
            reorder_max_attempts=self.reorder_max_attempts,
        )
