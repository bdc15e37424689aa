from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retail.search.engine import ProductIndex
from tests.search_engine.catalogue import open_index


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ProductIndex]:
    opened = open_index(tmp_path / "index")
    yield opened
    opened.close()
