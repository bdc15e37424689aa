"""The orders service's errors: `AppError`s with their own error codes, and two signals the
repositories raise for the use cases to handle (never seen by a client)."""

from __future__ import annotations

from typing import Any

from retail.kernel.errors import AppError, Conflict, NotFound, ValidationFailed
from retail.orders.domain import Failure


class OrderNotFound(NotFound):
    """Also for another customer's order: its existence is not theirs to learn."""

    error_code = "ORDER_NOT_FOUND"
    message = "Order not found"


class UnknownProduct(ValidationFailed):
    """Details carry `product_id` (and `product_ids` when several are unknown)."""

    error_code = "UNKNOWN_PRODUCT"
    message = "An item names a product that does not exist"


class InsufficientStock(Conflict):
    """Details carry `product_id`, `requested` and `available`."""

    error_code = "INSUFFICIENT_STOCK"
    message = "Not enough stock"


class ReservationReleased(Conflict):
    """Inventory refuses to reserve for an order whose reservation was given up already."""

    error_code = "RESERVATION_RELEASED"
    message = "This order's reservation was already released"


class IdempotencyKeyReused(ValidationFailed):
    error_code = "IDEMPOTENCY_KEY_REUSED"
    message = "This Idempotency-Key was used with a different request"


class IdempotentRequestInProgress(Conflict):
    error_code = "IDEMPOTENT_REQUEST_IN_PROGRESS"
    message = "A request with this Idempotency-Key is still being processed; retry shortly"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "1"})
        super().__init__(message, **kwargs)


class NothingToReorder(Conflict):
    """Details carry `skipped_items`."""

    error_code = "NOTHING_TO_REORDER"
    message = "None of the items of this order can be ordered now"


class InvalidStatusTransition(Conflict):
    """Details carry `from`, `to` and `allowed`."""

    error_code = "INVALID_STATUS_TRANSITION"
    message = "The order cannot move to this status"


# Refusals of a reservation: the order fails, and the refusal is the client's answer.
REFUSALS = (InsufficientStock, UnknownProduct, ReservationReleased)


class ReplayedFailure(AppError):
    """The refusal a request with this Idempotency-Key got the first time, answered again."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message, details=failure.details)
        self.status_code = failure.status_code
        self.error_code = failure.error_code


def failure_of(error: AppError) -> Failure:
    return Failure(error.status_code, error.error_code, error.message, error.details)


class OrderNumberTaken(Exception):
    """The drawn order number exists already: draw another."""


class IdempotencyKeyTaken(Exception):
    """A concurrent request with the same key stored its order first."""
