"""`page` (from 1) and `limit` (1..100) as one dependency, the page arithmetic, and `Page`:
one page of a list with the total, what every service's repositories answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int = 1
    limit: int = DEFAULT_LIMIT

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def total_pages(total: int, limit: int) -> int:
    return (total + limit - 1) // limit


async def page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
) -> PageRequest:
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in its thread pool.
    return PageRequest(page=page, limit=limit)


Pagination = Annotated[PageRequest, Depends(page_request)]
