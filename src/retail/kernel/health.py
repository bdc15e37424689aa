"""What /ready knows of a database besides whether it answers a read: a fault that outlasts a
request (disk full, read-only, I/O error, server gone) seen by a unit of work.

A full disk still serves reads, so a read probe alone says "ok" while every write fails. The
units of work therefore report such a fault here, and it stays reported until a write
commits again: a use case's, or the readiness check's own small write probe, which /ready
runs while a fault is reported. So /ready turns 503 with the first failed write and back to
200 once a write can commit, without a restart and without waiting for traffic.
"""

from __future__ import annotations


class StorageFault(Exception):
    """A readiness check's finding, shown by /ready as `failed: <message>`."""


class StorageHealth:
    __slots__ = ("fault",)

    def __init__(self) -> None:
        self.fault: str | None = None

    def failed(self, reason: str) -> None:
        self.fault = reason

    def recovered(self) -> None:
        self.fault = None
