from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from retail.kernel.money import (
    from_cents,
    line_tax_cents,
    percent_from_basis_points,
    tax_basis_points,
    to_cents,
)
from retail.kernel.pagination import PageRequest, total_pages


def test_cents_round_trip_exactly() -> None:
    assert to_cents(Decimal("19.99")) == 1999
    assert from_cents(1999) == 19.99
    assert from_cents(10) == 0.1
    assert to_cents(Decimal("0.1")) + to_cents(Decimal("0.2")) == 30
    with pytest.raises(ValueError, match="two decimals"):
        to_cents(Decimal("1.005"))


def test_tax_is_rounded_half_up_once_per_line() -> None:
    # 3 x 0.35 at 7.25 % = 0.076125 -> 8 cents (not 3 x round(2.5375) = 9)
    assert line_tax_cents(35, 3, tax_basis_points(Decimal("7.25"))) == 8
    assert line_tax_cents(50, 1, 1000) == 5  # exactly .5 of a cent? 0.05 -> 5
    assert line_tax_cents(5, 1, 1000) == 1  # 0.5 cent rounds half up
    assert line_tax_cents(1999, 2, 0) == 0
    assert percent_from_basis_points(725) == 7.25


def _amounts(seed: int) -> list[int]:
    """Every cent amount up to 10,000.00, and a spread up to 99,999,999.99 x 10,000 units."""
    rng = random.Random(seed)
    spread = [rng.randrange(10**14) for _ in range(100_000)]
    return [*range(1_000_001), *spread, 10**14 - 1, 10**16 + 1]


def test_wire_amounts_are_the_decimal_quotient_rounded_once() -> None:
    # from_cents divides integers; the definition it must match is the exact decimal
    # quotient, rounded once to the nearest float.
    for cents in _amounts(7):
        assert from_cents(cents) == float(Decimal(cents) / 100), cents
        assert from_cents(-cents) == float(Decimal(-cents) / 100), cents
    assert percent_from_basis_points(1) == 0.01


def test_line_tax_matches_decimal_half_up_rounding() -> None:
    rng = random.Random(11)
    cases = [(unit, 1, bp) for unit in range(4_001) for bp in (0, 1, 500, 725, 1999, 2500)]
    cases += [
        (rng.randrange(10**10), rng.randrange(1, 10_000), rng.randrange(10_001))
        for _ in range(20_000)
    ]
    for unit, quantity, bp in cases:
        exact = Decimal(unit * quantity * bp) / Decimal(10_000)
        expected = int(exact.to_integral_value(ROUND_HALF_UP))
        assert line_tax_cents(unit, quantity, bp) == expected, (unit, quantity, bp)
    assert line_tax_cents(-5, 1, 1000) == -1  # half-up is away from zero, as Decimal's


@pytest.mark.parametrize(
    ("total", "limit", "pages"), [(0, 20, 0), (1, 20, 1), (45, 20, 3), (40, 20, 2)]
)
def test_total_pages(total: int, limit: int, pages: int) -> None:
    assert total_pages(total, limit) == pages


def test_offset() -> None:
    assert PageRequest(page=3, limit=20).offset == 40
