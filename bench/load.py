"""Load generators for gRPC Check: h2load (nghttp2-client, C, cheap per request) posting a
serialized CheckRequest, and a small Python fallback for machines without h2load (its
own CPU cost is much higher: used by the smoke test, never for the published figures)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from bench.check_bodies import CHECK_PATH, write_body


@dataclass
class LoadResult:
    requests: int                 # completed with HTTP 200 / gRPC OK transport
    failed: int
    seconds: float
    latencies_us: list[float] = field(default_factory=list, repr=False)
    tool: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """In milliseconds (nearest rank)."""
        if not self.latencies_us:
            return float("nan")
        ordered = sorted(self.latencies_us)
        rank = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))
        return ordered[rank] / 1000.0


def have_h2load() -> bool:
    return shutil.which("h2load") is not None


_DONE = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed")
# h2load prints the duration in the unit that fits: "finished in 5.00s", "997.98ms", "850us".
_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms|us)\b")
_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_STATUS = re.compile(r"status codes: (\d+) 2xx")


def _as_tuple(messages) -> tuple[external_auth_pb2.CheckRequest, ...]:
    return tuple(messages) if isinstance(messages, (list, tuple)) else (messages,)


def h2load(ports: list[int], messages, *, seconds: float, connections: int = 2,
           streams: int = 8, warm_up: float = 0.0, host: str = "127.0.0.1", scheme: str = "http") -> LoadResult:
    """One h2load per port (one per authz_server worker) and message, all at once, for
    `seconds`; with several messages the connections are shared out between them.
    `scheme` "https": TLS with ALPN h2 (h2load does not verify, nor present a certificate)."""
    messages = _as_tuple(messages)
    connections = max(1, connections // len(messages))
    with tempfile.TemporaryDirectory(prefix="portcullis-h2load-") as tmp:
        runs = []
        for (number, message), port in ((pair, port) for pair in enumerate(messages) for port in ports):
            body = write_body(Path(tmp) / f"check-{number}.bin", message)
            log = Path(tmp) / f"{port}-{number}.log"
            argv = ["h2load", "-D", f"{seconds:g}", *([f"--warm-up-time={warm_up:g}"] if warm_up else []), "-c", str(connections),
                    "-m", str(streams), "-t", "1", "-d", str(body), "-H", "content-type: application/grpc",
                    "-H", "te: trailers", f"--log-file={log}", f"{scheme}://{host}:{port}{CHECK_PATH}"]
            runs.append((subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), log))
        result = LoadResult(0, 0, 0.0, tool="h2load")
        for process, log in runs:
            output, _ = process.communicate(timeout=seconds + warm_up + 30)
            done, finished, status = _DONE.search(output), _FINISHED.search(output), _STATUS.search(output)
            if process.returncode != 0 or not (done and finished and status):
                raise RuntimeError(f"h2load failed ({process.returncode}):\n{output[-2000:]}")
            ok = int(status.group(1))
            result.requests += ok
            result.failed += int(done.group(1)) - ok
            result.seconds = max(result.seconds, float(finished.group(1)) * _SECONDS_PER_UNIT[finished.group(2)])
            for line in log.read_text().splitlines():
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1] == "200":
                    result.latencies_us.append(float(parts[2]))
        return result


def python_load(ports: list[int], messages, *, seconds: float,
                concurrency: int = 2, host: str = "127.0.0.1") -> LoadResult:
    """A few client threads per port with grpcio's blocking stub (fallback, costly)."""
    messages = _as_tuple(messages)
    result = LoadResult(0, 0, 0.0, tool="python-grpc")
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(port: int, message: external_auth_pb2.CheckRequest) -> None:
        with grpc.insecure_channel(f"{host}:{port}") as channel:
            stub = external_auth_pb2_grpc.AuthorizationStub(channel)
            latencies, ok, failed = [], 0, 0
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    stub.Check(message, timeout=5.0)
                    ok += 1
                    latencies.append((time.perf_counter() - started) * 1e6)
                except grpc.RpcError:
                    failed += 1
            with lock:
                result.requests += ok
                result.failed += failed
                result.latencies_us.extend(latencies)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(port, messages[n % len(messages)]))
               for port in ports for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def check_once(port: int, message: external_auth_pb2.CheckRequest, host: str = "127.0.0.1") -> external_auth_pb2.CheckResponse:
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        return external_auth_pb2_grpc.AuthorizationStub(channel).Check(message, timeout=10.0)
