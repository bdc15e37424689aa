"""HTTP layer of search: parse and bound the query, call a use case, shape the answer."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from retail.kernel.money import PriceFilter, to_cents
from retail.kernel.security import InternalCaller
from retail.search import service
from retail.search.dependencies import FollowingDep, IndexDep, SettingsDep
from retail.search.engine import InvalidQuery, SearchQuery
from retail.search.exceptions import InvalidSearchQuery
from retail.search.schemas import ProductHit, ReindexResult

router = APIRouter(prefix="/api/search", tags=["search"])
internal = APIRouter(prefix="/internal", tags=["internal"])

Money = Annotated[PriceFilter | None, Query()]
MAX_OFFSET = 10_000
# Published, not enforced by FastAPI: _text answers a blank q with INVALID_QUERY.
NOT_BLANK = {"pattern": r"\S"}


def _text(q: str, settings: SettingsDep) -> str:
    if not q.strip():
        raise InvalidSearchQuery("q must not be blank")
    if len(q) > settings.max_query_length:
        raise InvalidSearchQuery(f"q is longer than {settings.max_query_length} characters")
    return q


# The answer is the index's own JSON, returned as is: FastAPI does not validate and re-encode
# a Response, which cost more than the search. `response_model` still documents it.
@router.get("", response_model=list[ProductHit])
async def search_products(
    index: IndexDep,
    settings: SettingsDep,
    q: Annotated[str, Query(description="What the shopper typed", json_schema_extra=NOT_BLANK)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_OFFSET, description="from 1; overrides offset")
    ] = None,
    category_id: Annotated[str | None, Query(max_length=64)] = None,
    min_price: Money = None,
    max_price: Money = None,
    in_stock: bool | None = None,
) -> Response:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidSearchQuery("min_price is above max_price")
    query = SearchQuery(
        text=_text(q, settings),
        category_id=category_id,
        min_price_cents=to_cents(min_price) if min_price is not None else None,
        max_price_cents=to_cents(max_price) if max_price is not None else None,
        in_stock=in_stock,
        limit=limit,
        offset=(page - 1) * limit if page else offset,
    )
    try:
        return Response(await service.search(index, query=query), media_type="application/json")
    except InvalidQuery as exc:
        raise InvalidSearchQuery(str(exc)) from None


@router.get("/suggest", response_model=list[str])
async def suggest(
    index: IndexDep,
    settings: SettingsDep,
    q: Annotated[
        str, Query(description="The start of a word or title", json_schema_extra=NOT_BLANK)
    ],
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> list[str]:
    try:
        return await service.suggest(index, prefix=_text(q, settings), limit=limit)
    except InvalidQuery as exc:
        raise InvalidSearchQuery(str(exc)) from None


@internal.post("/reindex", response_model=ReindexResult)
async def reindex(
    _caller: InternalCaller, index: IndexDep, following: FollowingDep
) -> ReindexResult:
    """Rebuild this instance's index from scratch from the feeds (`retail reindex`)."""
    return await service.rebuild_index(index, following=following)
