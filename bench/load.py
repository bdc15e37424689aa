"""Drive one endpoint at one concurrency and report requests/s and latency percentiles.

wrk (Debian package `wrk`) is used when present: a C load generator that is not the
bottleneck. Without it, a fallback asyncio + httpx generator runs in a separate process; it
saturates a core itself, so its figures are a lower bound (the report says which was used).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

_WRK_LUA = """
local bodies = {BODIES}
local method = "{METHOD}"
local paths = {PATHS}
local unique = "{UNIQUE}"
local counter = 0
local threads = 0
setup = function(thread)
  thread:set("offset", threads * 7919)
  thread:set("thread_id", threads)
  threads = threads + 1
end
wrk.headers["Content-Type"] = "application/json"
{HEADERS}
request = function()
  counter = counter + 1
  local path = paths[((counter + (offset or 0)) % #paths) + 1]
  if unique ~= "" then
    -- a query string never sent before: a miss for any cache on the way
    local sep = "?"
    if string.find(path, "?", 1, true) then sep = "&" end
    path = path .. sep .. "nocache=" .. unique .. "-" .. (thread_id or 0) .. "-" .. counter
  end
  local body = nil
  if #bodies > 0 then body = bodies[(counter % #bodies) + 1] end
  return wrk.format(method, path, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f %f\\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    base_url: str
    paths: list[str]
    method: str = "GET"
    bodies: list[str] | None = None
    headers: dict[str, str] | None = None
    # Every request gets a query string of its own (`nocache=<run>-<n>`), so that no answer
    # comes from the read cache (kernel/cache.py): the route, the database and the JSON.
    unique: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    target: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    tool: str


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _lua_list(items: list[str]) -> str:
    return "{" + ", ".join(json.dumps(i) for i in items) + "}"


def _run_id(target: Target) -> str:
    """Unique per run, so a second run of an uncached target misses too."""
    return uuid.uuid4().hex[:12] if target.unique else ""


def _wrk_script(target: Target) -> str:
    headers = "\n".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (target.headers or {}).items()
    )
    return (
        _WRK_LUA.replace("{BODIES}", _lua_list(target.bodies or []))
        .replace("{METHOD}", target.method)
        .replace("{PATHS}", _lua_list(target.paths))
        .replace("{HEADERS}", headers)
        .replace("{UNIQUE}", _run_id(target))
    )


def run_wrk(target: Target, concurrency: int, seconds: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(target))
    threads = max(1, min(2, concurrency))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        script.name,
        target.base_url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    match = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests, errors, duration_us = (int(match.group(i)) for i in (1, 2, 3))
    p50, p95, p99 = (float(match.group(i)) / 1000 for i in (4, 5, 6))
    rps = requests / (duration_us / 1_000_000)
    return Result(target.name, concurrency, requests, errors, rps, p50, p95, p99, "wrk")


def run_python(target: Target, concurrency: int, seconds: int) -> Result:
    """The fallback: the same request mix from `bench.pyload` in its own process."""
    spec = json.dumps(
        {
            "base_url": target.base_url,
            "paths": target.paths,
            "method": target.method,
            "bodies": target.bodies or [],
            "headers": target.headers or {},
            "unique": _run_id(target),
            "concurrency": concurrency,
            "seconds": seconds,
        }
    )
    command = ["uv", "run", "--frozen", "python", "-m", "bench.pyload", spec]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Result(target.name, concurrency, tool="python", **data)


def run(target: Target, concurrency: int, seconds: int) -> Result:
    if have_wrk():
        return run_wrk(target, concurrency, seconds)
    return run_python(target, concurrency, seconds)
