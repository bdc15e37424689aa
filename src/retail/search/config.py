from pathlib import Path
from typing import ClassVar

from pydantic import Field

from retail.kernel.settings import Settings


class SearchSettings(Settings):
    service_name: ClassVar[str] = "search"
    # Search keeps no database of its own: its index is derived data, rebuilt from the feeds.
    # SEARCH_INDEX_DIR is this instance's index (default DATA_DIR/search-index); an instance
    # that finds it held by another takes `<dir>-2`, `<dir>-3`, ... and follows into that.
    search_index_dir: Path | None = None
    follow_feeds: bool = True
    feed_poll_seconds: float = Field(0.3, gt=0, le=30)
    max_query_length: int = Field(500, ge=10, le=10_000)

    def index_dir(self) -> Path:
        return self.search_index_dir or self.data_dir / "search-index"
