"""The bcrypt adapter: real hashes, off the event loop, the same work for unknown users."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import pytest

from retail.auth.adapters.passwords import BcryptHasher


@pytest.fixture
async def hasher() -> BcryptHasher:
    return await BcryptHasher.create(4)


async def test_hashes_verify_and_carry_their_cost(hasher: BcryptHasher) -> None:
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("correct horsf", hashed)
    assert not hasher.needs_rehash(hashed)
    assert (await BcryptHasher.create(5)).needs_rehash(hashed)


@pytest.mark.parametrize(
    ("password", "stored"),
    [
        ("anything", None),  # unknown user: the dummy hash
        ("é" * 37, "$2b$04$" + "a" * 53),  # longer than bcrypt reads
        ("anything", "not a bcrypt hash"),
    ],
)
async def test_impossible_matches_are_false_not_errors(
    hasher: BcryptHasher, password: str, stored: str | None
) -> None:
    assert await hasher.verify(password, stored) is False


async def test_no_truncation_on_hashing(hasher: BcryptHasher) -> None:
    with pytest.raises(ValueError, match="72 bytes"):
        await hasher.hash("p" * 73)


async def test_hashing_does_not_block_the_event_loop() -> None:
    hasher = await BcryptHasher.create(10)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    await hasher.hash("correct horse")
    elapsed = time.perf_counter() - started
    ticker.cancel()
    # The loop kept running meanwhile: a good share of the possible ticks happened.
    assert ticks >= elapsed / 0.005 / 4


async def median_seconds(run: Callable[[], Awaitable[bool]], times: int = 5) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def test_unknown_users_cost_as_much_as_known_ones() -> None:
    hasher = await BcryptHasher.create(10)
    stored = await hasher.hash("correct horse")
    known = await median_seconds(lambda: hasher.verify("wrong guess", stored))
    unknown = await median_seconds(lambda: hasher.verify("wrong guess", None))
    assert 0.5 < unknown / known < 2
