"""Exact money (DESIGN.md decision 4): integer cents stored, Decimal computed, one half-up
rounding per line, and prices exposed as JSON numbers with at most two decimals."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import Field, WithJsonSchema

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MAX_AMOUNT = Decimal("99999999.99")


def _number(**bounds: float) -> WithJsonSchema:
    """What the OpenAPI document says: a JSON number, its bounds, at most two decimals.
    (Pydantic would publish a Decimal as `number | string`, the string unconstrained.) A
    decimal string ("19.99") is still accepted, as it always was, but not advertised."""
    return WithJsonSchema({"type": "number", **bounds, "multipleOf": 0.01})


# Request types: Pydantic checks the bounds and the number of decimals.
Price = Annotated[
    Decimal,
    Field(gt=0, le=MAX_AMOUNT, decimal_places=2),
    _number(exclusiveMinimum=0, maximum=float(MAX_AMOUNT)),
]
# Zero allowed: an add-on may be free.
Amount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_AMOUNT, decimal_places=2),
    _number(minimum=0, maximum=float(MAX_AMOUNT)),
]
TaxPercent = Annotated[
    Decimal, Field(ge=0, le=100, decimal_places=2), _number(minimum=0, maximum=100)
]
# A price filter in a query string: the same bounds as an amount.
PriceFilter = Amount


def to_cents(amount: Decimal) -> int:
    cents = amount * HUNDRED
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(cents)


def from_cents(cents: int) -> float:
    """For the wire: a float whose shortest repr has at most two decimals (19.99, not 19.990001)."""
    return float(Decimal(cents) / HUNDRED)


def tax_basis_points(percent: Decimal) -> int:
    """7.25 % -> 725, so tax rates are stored as integers like prices."""
    return int((percent * HUNDRED).to_integral_value(ROUND_HALF_UP))


def percent_from_basis_points(basis_points: int) -> float:
    return float(Decimal(basis_points) / HUNDRED)


def line_tax_cents(unit_cents: int, quantity: int, tax_bp: int) -> int:
    """Tax of one line, rounded half-up once: quantity x unit x rate / 10000."""
    exact = Decimal(unit_cents * quantity * tax_bp) / Decimal(10_000)
    return int(exact.to_integral_value(ROUND_HALF_UP))
