"""What the use cases need: the index (`retail.search.engine.ProductIndex` provides it), and
for `retail reindex` a running search service (`clients.RunningSearch`)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from retail.search.engine import IndexBatch, SearchQuery
from retail.search.schemas import ReindexResult


class Index(Protocol):
    def batch(self, meta: Mapping[str, str] | None = None) -> AbstractContextManager[IndexBatch]:
        """Changes (and `meta`, such as a feed cursor) published by one commit, or none."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def search(self, query: SearchQuery) -> list[dict[str, Any]]: ...

    def search_json(self, query: SearchQuery) -> bytes:
        """`search` as the JSON array of the documents."""
        ...

    def cached_json(self, query: SearchQuery) -> bytes | None:
        """`search_json` when it is at hand without searching (microseconds), else None."""
        ...

    def suggest(self, prefix: str, limit: int = 8) -> list[str]: ...

    def clear(self, meta: Mapping[str, str] | None = None) -> None: ...

    def count(self) -> int: ...


class RunningIndex(Protocol):
    """A running search instance, which holds its index and so rebuilds it itself."""

    where: str  # how to reach it, for the command to say which index it rebuilt

    async def reindex(self) -> ReindexResult: ...
