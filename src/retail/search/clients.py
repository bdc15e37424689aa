"""The peers search calls, through the kernel's peer client (service token attached, a
peer that is down or times out a 503): the three feeds it follows, and a running search
service, which `retail reindex` asks to rebuild the index it holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from retail.kernel.http import ServiceClient, Transports, expect_ok, peer_client
from retail.kernel.security import TokenCodec
from retail.search.config import SearchSettings
from retail.search.schemas import ReindexResult

FEEDS = ("categories", "products", "inventory")
REINDEX_PATH = "/internal/reindex"
# A rebuild of a large catalogue takes far longer than an ordinary call between services.
REINDEX_TIMEOUT_SECONDS = 3600.0


def feed_clients(
    settings: SearchSettings, tokens: TokenCodec, transports: Transports | None = None
) -> dict[str, ServiceClient]:
    """A client of each feed's owner, by feed name (the feed is named after its service)."""
    return {feed: peer_client(settings, feed, tokens, transports) for feed in FEEDS}


class RunningSearch:
    """`RunningIndex` over `POST /internal/reindex` of the search service at `SEARCH_URL`."""

    def __init__(self, client: ServiceClient, where: str) -> None:
        self._client = client
        self.where = where

    async def reindex(self) -> ReindexResult:
        response = await self._client.request("POST", REINDEX_PATH)
        expect_ok(response, self._client.peer)
        return ReindexResult.model_validate_json(response.content)


@asynccontextmanager
async def running_search(
    settings: SearchSettings, tokens: TokenCodec, transports: Transports | None = None
) -> AsyncIterator[RunningSearch]:
    client = peer_client(settings, "search", tokens, transports, timeout=REINDEX_TIMEOUT_SECONDS)
    try:
        yield RunningSearch(client, settings.url_of("search"))
    finally:
        await client.aclose()
