"""Fallback load generator (no wrk): asyncio + httpx, closed loop, prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

import httpx


async def _worker(
    client: httpx.AsyncClient,
    spec: dict[str, Any],
    deadline: float,
    offset: int,
    latencies: list[float],
    errors: list[int],
) -> None:
    n = offset
    paths, bodies = spec["paths"], spec["bodies"]
    while time.perf_counter() < deadline:
        n += 1
        body = bodies[n % len(bodies)] if bodies else None
        started = time.perf_counter()
        try:
            path = paths[n % len(paths)]
            if spec["unique"]:  # see bench.load.Target.unique
                path += f"{'&' if '?' in path else '?'}nocache={spec['unique']}-{n}"
            response = await client.request(spec["method"], path, content=body)
            if response.status_code >= 400:
                errors.append(response.status_code)
        except httpx.HTTPError:
            errors.append(0)
        latencies.append(time.perf_counter() - started)


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **spec["headers"]}
    limits = httpx.Limits(max_connections=spec["concurrency"])
    latencies: list[float] = []
    errors: list[int] = []
    async with httpx.AsyncClient(
        base_url=spec["base_url"], headers=headers, limits=limits, timeout=10
    ) as client:
        started = time.perf_counter()
        deadline = started + spec["seconds"]
        await asyncio.gather(
            *(
                _worker(client, spec, deadline, i * 7919, latencies, errors)
                for i in range(spec["concurrency"])
            )
        )
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
