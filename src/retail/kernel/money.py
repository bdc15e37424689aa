"""Exact money (DESIGN.md decision 4): integer cents stored, Decimal computed, one half-up
rounding per line, and prices exposed as JSON numbers with at most two decimals."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import Field

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

# Request types: Pydantic checks the bounds and the number of decimals.
Price = Annotated[Decimal, Field(gt=0, le=Decimal("99999999.99"), decimal_places=2)]
TaxPercent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]


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
