"""Admin writes per second: `threads` REST clients in this process, each creating
applications (`POST /v1/applications`: one row, its change record and its revision, an
audit record, one transaction) for a fixed time, spread round robin over the admin_api
replicas given. Every write takes the one revision counter row, so this is the write path
that replicas share."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx

from bench.policy import SetupFailed


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))], 1)


def run(bases: list[str], token: str, *, seconds: float, threads: int) -> dict[str, Any]:
    """`bases`: each replica's REST base URL; thread `i` writes through replica `i % len(bases)`."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    prefix = uuid.uuid4().hex[:6]

    def writer(index: int) -> None:
        with httpx.Client(base_url=bases[index % len(bases)], headers={"authorization": f"Bearer {token}"},
                          timeout=30.0, trust_env=False) as client:
            n = 0
            while not stop.is_set():
                started = time.perf_counter()
                response = client.post("/v1/applications", json={"name": f"w-{prefix}-{index}-{n}"})
                if response.status_code != 201:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    return
                latencies[index].append((time.perf_counter() - started) * 1000)
                n += 1

    workers = [threading.Thread(target=writer, args=(index,), daemon=True) for index in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join(60)
    elapsed = time.monotonic() - started
    if errors:
        raise SetupFailed(f"admin writes failed: {errors[:3]}")
    every = [value for per_thread in latencies for value in per_thread]
    return {"replicas": len(bases), "threads": threads, "writes": len(every),
            "writes_per_second": round(len(every) / elapsed, 1),
            "p50_ms": _percentile(every, 0.5), "p99_ms": _percentile(every, 0.99)}
