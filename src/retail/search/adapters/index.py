"""Search's storage: the embedded index on disk, in the first index directory that no
other instance holds (docs/architecture.md, Search: several instances)."""

from __future__ import annotations

import logging
from pathlib import Path

from retail.search.config import SearchSettings
from retail.search.engine import IndexInUse, ProductIndex

logger = logging.getLogger("retail.search")

# Instances sharing a DATA_DIR (`--workers N`) take the next free directory each.
MAX_INSTANCES = 32


def index_dirs(settings: SearchSettings) -> list[Path]:
    """Where instances keep their indexes: the configured directory, then `<name>-2`, ..."""
    first = settings.index_dir()
    return [first] + [first.with_name(f"{first.name}-{n}") for n in range(2, MAX_INSTANCES + 1)]


def existing_index_dirs(settings: SearchSettings) -> list[Path]:
    """Every index directory there is on disk, or the first one if there is none yet."""
    return [d for d in index_dirs(settings) if d.exists()] or index_dirs(settings)[:1]


def claim_index(settings: SearchSettings) -> ProductIndex:
    """The first index directory no other instance holds (its lock says so)."""
    for directory in index_dirs(settings):
        try:
            index = ProductIndex(directory)
        except IndexInUse:
            continue
        if directory != settings.index_dir():
            logger.info(
                "%s is held by another instance; this one uses %s", directory.parent, directory
            )
        return index
    raise IndexInUse(
        f"all {MAX_INSTANCES} index directories beside {index_dirs(settings)[0]} are in use"
    )
