"""Readiness probes: small callables that answer "is it ready yet?" without raising."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

PROBE_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Probe:
    description: str  # what "ready" means, for messages such as "not ready: <description>"
    check: Callable[[], bool]

    def __call__(self) -> bool:
        return self.check()


def http_ok(url: str, *, expect_body: str | None = None, verify: ssl.SSLContext | bool = True) -> Probe:
    """GET url answers 200 (and, when given, the body contains expect_body); `verify`:
    what an https server's certificate is checked against."""

    def check() -> bool:
        try:
            response = httpx.get(url, timeout=PROBE_TIMEOUT_SECONDS, trust_env=False, verify=verify)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and (expect_body is None or expect_body in response.text)

    return Probe(f"GET {url} answers 200", check)


def grpc_serving(target: str, service: str = "", *, credentials: grpc.ChannelCredentials | None = None) -> Probe:
    """The standard gRPC health service reports SERVING for `service` ("" = overall);
    `credentials`: TLS (None: plaintext)."""

    def check() -> bool:
        with (grpc.insecure_channel(target) if credentials is None
              else grpc.secure_channel(target, credentials)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=PROBE_TIMEOUT_SECONDS)
            except grpc.RpcError:
                return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    return Probe(f"grpc health of {target} is SERVING", check)


def files_exist(paths: Sequence[Path]) -> Probe:
    def check() -> bool:
        return all(path.is_file() for path in paths)

    return Probe("files exist: " + ", ".join(str(path) for path in paths), check)


def all_of(*probes: Probe) -> Probe:
    """Ready when every probe is; probes are asked in order and stop at the first no."""

    def check() -> bool:
        return all(probe() for probe in probes)

    return Probe(" and ".join(probe.description for probe in probes), check)
