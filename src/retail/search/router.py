"""HTTP layer of search: parse and bound the query, call a use case, shape the answer."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from retail.kernel.money import to_cents
from retail.kernel.queries import QueryString
from retail.kernel.security import InternalCaller
from retail.search import service
from retail.search.dependencies import FollowingDep, IndexDep, SettingsDep
from retail.search.engine import InvalidQuery, SearchQuery
from retail.search.exceptions import InvalidSearchQuery
from retail.search.schemas import NOT_BLANK, ProductHit, ReindexResult, SearchParameters

router = APIRouter(prefix="/api/search", tags=["search"])
internal = APIRouter(prefix="/internal", tags=["internal"])

# Eight parameters, most of them optional: read as one model (kernel/queries.py).
SearchParams = Annotated[SearchParameters, Depends(QueryString(SearchParameters))]


def _text(q: str, settings: SettingsDep) -> str:
    if not q.strip():
        raise InvalidSearchQuery("q must not be blank")
    if len(q) > settings.max_query_length:
        raise InvalidSearchQuery(f"q is longer than {settings.max_query_length} characters")
    return q


# The answer is the index's own JSON, returned as is: FastAPI does not validate and re-encode
# a Response, which cost more than the search. `response_model` still documents it.
@router.get("", response_model=list[ProductHit])
async def search_products(index: IndexDep, settings: SettingsDep, params: SearchParams) -> Response:
    low, high = params.min_price, params.max_price
    if low is not None and high is not None and low > high:
        raise InvalidSearchQuery("min_price is above max_price")
    query = SearchQuery(
        text=_text(params.q, settings),
        category_id=params.category_id,
        min_price_cents=to_cents(low) if low is not None else None,
        max_price_cents=to_cents(high) if high is not None else None,
        in_stock=params.in_stock,
        limit=params.limit,
        offset=(params.page - 1) * params.limit if params.page else params.offset,
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
