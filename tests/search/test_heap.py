"""The index gives the heap its commits freed back to the system once writes pause."""

from __future__ import annotations

import sys
import threading

import pytest

from retail.search.engine.heap import IdleTrim, release_free_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_free_memory_is_released_where_glibc_is() -> None:
    assert release_free_memory() in {0, 1}  # 1: some memory went back


def test_the_trim_runs_once_writes_pause() -> None:
    released = threading.Event()

    def release() -> int:
        released.set()
        return 1

    trim = IdleTrim(delay=0.0, release=release)
    trim.wrote()
    assert released.wait(30)
