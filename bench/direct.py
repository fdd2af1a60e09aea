"""Part 1: Check over gRPC straight at authz_server's workers, one credential path at a time."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from envoy.service.auth.v3 import external_auth_pb2
from google.rpc import code_pb2

from bench import load, proc
from bench.check_bodies import check_request
from bench.policy import BenchPolicy


class WrongDecision(RuntimeError):
    """The benchmark would measure a denial where it means to measure an allow."""


@dataclass(frozen=True)
class Scenario:
    name: str
    messages: tuple[external_auth_pb2.CheckRequest, ...]  # sent side by side (one h2load each per worker)
    header: str | None = None                              # an allow must set it (the backend JWT)


def scenarios(policy: BenchPolicy, suffix: str = "") -> list[Scenario]:
    base, header = policy.base_path, policy.backend_jwt_header
    return [
        Scenario("anonymous" + suffix, (check_request(base + "/open"),), header),
        Scenario("api_key" + suffix, (check_request(base + "/menu", {"apikey": policy.api_key_value}),), header),
        Scenario("jwt_cached" + suffix, (check_request(base + "/menu", {"authorization": f"Bearer {policy.jwt}"}),),
                 header),
        Scenario("opaque_cached" + suffix,
                 (check_request(base + "/menu", {"authorization": f"Bearer {policy.opaque_token}"}),), header),
    ]


def first_sight_scenario(policy: BenchPolicy, name: str) -> Scenario:
    """Two tokens side by side: with the backend-JWT cache at one entry, each sign misses."""
    tokens = (policy.jwt, policy.jwt2) if policy.backend_jwt_header else (policy.jwt,)
    return Scenario(name, tuple(check_request(policy.base_path + "/menu", {"authorization": f"Bearer {token}"})
                                for token in tokens), policy.backend_jwt_header)


def verify_allowed(ports: list[int], scenario: Scenario) -> external_auth_pb2.CheckResponse:
    """Every worker allows it (this also fills each worker's caches)."""
    response = None
    for port in ports:
        for message in scenario.messages:
            response = load.check_once(port, message)
            if response.status.code != code_pb2.OK:
                reason = response.denied_response.body
                raise WrongDecision(f"{scenario.name}: worker on port {port} denied: {reason}")
            names = {option.header.key.lower() for option in response.ok_response.headers}
            if scenario.header and scenario.header.lower() not in names:
                raise WrongDecision(f"{scenario.name}: the allow sets no {scenario.header} header")
    assert response is not None
    return response


def run(ports: list[int], authz_pids: Callable[[], list[int]], scenario: Scenario, *, seconds: float,
        use_h2load: bool, profile_dir: Path | None = None) -> dict[str, Any]:
    verify_allowed(ports, scenario)
    pids = authz_pids()
    spy = None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        spy = proc.profiler(pids[-1], seconds, profile_dir / f"{scenario.name}.speedscope.json")
    meter = proc.CpuMeter(pids).start()
    if use_h2load:
        result = load.h2load(ports, scenario.messages, seconds=seconds)
    else:
        result = load.python_load(ports, scenario.messages, seconds=seconds)
    cpu = meter.stop()
    if spy is not None:
        spy.wait(timeout=60)
    verify_allowed(ports, scenario)  # still allowed at the end: nothing degraded under load
    return {
        "scenario": scenario.name,
        "tool": result.tool,
        "requests": result.requests,
        "failed": result.failed,
        "seconds": round(result.seconds, 2),
        "rps": round(result.rps, 1),
        "p50_ms": round(result.percentile(0.50), 3),
        "p99_ms": round(result.percentile(0.99), 3),
        "p999_ms": round(result.percentile(0.999), 3),
        "server_cpu_seconds": round(cpu, 3),
        "server_cpu_us_per_decision": round(cpu * 1e6 / result.requests, 1) if result.requests else None,
        "server_system_cpu_us_per_decision": (round(meter.system_seconds * 1e6 / result.requests, 1)
                                              if result.requests else None),
        "server_cores_busy": round(cpu / result.seconds, 2) if result.seconds else None,
    }
