"""Exact money (DESIGN.md decision 4): integer cents stored, Decimal computed, one half-up
rounding per line, and prices exposed as JSON numbers with at most two decimals."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MAX_AMOUNT = Decimal("99999999.99")


def _number(**bounds: float) -> WithJsonSchema:
    """What the OpenAPI document says: a JSON number, its bounds, at most two decimals.
    (Pydantic would publish a Decimal as `number | string`, the string unconstrained.)"""
    return WithJsonSchema({"type": "number", **bounds, "multipleOf": 0.01})


def _json_number(value: object) -> object:
    """Amounts in a body are JSON numbers and nothing else: a string ("4.50", "1e3") or a
    boolean is refused rather than converted (issue 14). Decimals pass, for callers in
    Python."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    return value


_Strict = BeforeValidator(_json_number)


def _json_integer(value: object) -> object:
    """Counts in a body (quantities, stock) are JSON integers: `true` is not 1 and "3" is
    not 3 (issue 14). A number without a fraction (3.0) is an integer to JSON Schema, and
    so to us; 2.5 is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


# For `Annotated[int, Field(ge=..., le=...), WholeNumber]` (after the bounds, or the OpenAPI
# document loses them): no booleans, no strings.
WholeNumber = BeforeValidator(_json_integer)

# Request types: Pydantic checks the bounds and the number of decimals.
Price = Annotated[
    Decimal,
    _Strict,
    Field(gt=0, le=MAX_AMOUNT, decimal_places=2),
    _number(exclusiveMinimum=0, maximum=float(MAX_AMOUNT)),
]
# Zero allowed: an add-on may be free.
Amount = Annotated[
    Decimal,
    _Strict,
    Field(ge=0, le=MAX_AMOUNT, decimal_places=2),
    _number(minimum=0, maximum=float(MAX_AMOUNT)),
]
TaxPercent = Annotated[
    Decimal, _Strict, Field(ge=0, le=100, decimal_places=2), _number(minimum=0, maximum=100)
]
# A price filter in a query string, where every value is text: the bounds of an amount,
# parsed from its decimal string.
PriceFilter = Annotated[
    Decimal,
    Field(ge=0, le=MAX_AMOUNT, decimal_places=2),
    _number(minimum=0, maximum=float(MAX_AMOUNT)),
]


def to_cents(amount: Decimal) -> int:
    cents = amount * HUNDRED
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(cents)


def from_cents(cents: int) -> float:
    """For the wire: a float whose shortest repr has at most two decimals (19.99, not 19.990001).

    Python divides two integers with one correct rounding, as `float(Decimal(cents) / 100)`
    does (exact below 28 digits, then rounded once): the same float, at a tenth of the cost,
    which a page of ten orders pays fifty times."""
    return cents / 100


def tax_basis_points(percent: Decimal) -> int:
    """7.25 % -> 725, so tax rates are stored as integers like prices."""
    return int((percent * HUNDRED).to_integral_value(ROUND_HALF_UP))


def percent_from_basis_points(basis_points: int) -> float:
    return basis_points / 100  # as from_cents


def line_tax_cents(unit_cents: int, quantity: int, tax_bp: int) -> int:
    """Tax of one line, rounded half-up once: quantity x unit x rate / 10000, in integers
    (half-up is away from zero, as Decimal's ROUND_HALF_UP)."""
    exact = unit_cents * quantity * tax_bp
    whole, rest = divmod(abs(exact), 10_000)
    rounded = whole + (rest >= 5_000)
    return rounded if exact >= 0 else -rounded
