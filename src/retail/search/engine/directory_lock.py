"""An exclusive lock on an index directory, held by one ProductIndex at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from retail.search.engine.model import IndexInUse

LOCK_FILE = "product-index.lock"


class DirectoryLock:
    """A flock, so that a second ProductIndex on the same directory (in this process or
    another) fails at once with IndexInUse instead of deep inside tantivy; the in-memory
    vocabulary and registry are only right for the one instance that writes."""

    def __init__(self, directory: Path) -> None:
        self._fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(self._fd)
            raise IndexInUse(f"another ProductIndex holds {directory}") from error

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
