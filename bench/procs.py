"""What the services' processes cost, read from /proc (Linux): CPU seconds and resident memory.

Memory is given two ways. RSS counts every page a process maps, so the pages a service shares
with its siblings (`retail up` imports the common stack once and forks them) count once in
each of them; PSS (proportional set size) splits a shared page among the processes that map
it, so the six PSS figures add up to what the six cost the machine.

`retail up` forks one process per service, named after it (/proc/PID/comm), and `retail serve
<service>` names it on its command line (uvicorn may fork workers under either), so a service
is the set of processes so named, found among the descendants of the process the benchmark
started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_seconds: float
    rss_bytes: int
    pss_bytes: int = 0  # 0 where the kernel has no smaps_rollup (before Linux 4.14)


def _stat(pid: int) -> list[str] | None:
    try:
        return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None  # gone meanwhile


def _pss_bytes(pid: int) -> int:
    try:
        with (_PROC / str(pid) / "smaps_rollup").open() as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024  # in kB
    except (OSError, ValueError):
        pass  # gone meanwhile, or not readable
    return 0


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _service_of(pid: int, services: tuple[str, ...]) -> str | None:
    try:
        comm = (_PROC / str(pid) / "comm").read_text().strip()
        argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if comm in services:  # a child forked by `retail up` names itself after its service
        return comm
    words = [part.decode(errors="replace") for part in argv]
    if "serve" in words:
        name = words[words.index("serve") + 1] if len(words) > words.index("serve") + 1 else ""
        return name if name in services else None
    return None


def usage_by_service(root: int, services: tuple[str, ...]) -> dict[str, Usage]:
    """CPU seconds, RSS and PSS of every service under `root`; empty where /proc is missing."""
    if not _PROC.exists():
        return {}
    totals: dict[str, Usage] = {}
    owner: dict[int, str] = {}
    for pid in sorted(_descendants(root)):
        fields = _stat(pid)
        if fields is None:
            continue
        name = _service_of(pid, services) or owner.get(int(fields[1]))
        if name is None:
            continue
        owner[pid] = name
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        rss = int(fields[21]) * _PAGE
        before = totals.get(name, Usage(0.0, 0))
        totals[name] = Usage(
            before.cpu_seconds + cpu, before.rss_bytes + rss, before.pss_bytes + _pss_bytes(pid)
        )
    return totals


def cpu_seconds(pid: int) -> float:
    """CPU seconds of one process (0.0 where /proc is missing or the process is gone)."""
    fields = _stat(pid) if _PROC.exists() else None
    return (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0


def cpu_total(usage: dict[str, Usage]) -> float:
    return sum(one.cpu_seconds for one in usage.values())
