"""Part 2: end to end through Envoy with wrk, gateways side by side in one Envoy:
(a) no authorization, (b) Envoy's jwt_authn, (c) Portcullis's ext_authz with its routes
and the API's cluster over xDS from the bench mesh's admin_api, (d) the ext_authz floor."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template
from typing import Any, Callable

import httpx

from authz_server.settings import worker_ports
from bench import proc
from bench.policy import Admin, BenchPolicy, free_ports
from mesh.components import envoy_binary
from mesh.envoy_config import DEFAULT_AUTHZ_TIMEOUT_SECONDS, authz_endpoints, read_gateway_token
from portcullis_shared.settings import MeshSettings
from mesh.readiness import http_ok

TEMPLATE = Path(__file__).with_name("envoy-bench.yaml.tmpl")
GATEWAYS = ("none", "jwt_authn", "portcullis", "ext_authz_floor")


class WrkFailed(RuntimeError):
    pass


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def render(ports: dict[str, int], *, issuer: str, jwks_file: Path, authz_port: int, authz_workers: int,
           admin_grpc_port: int, gateway_token: str) -> str:
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        ADMIN_GRPC_PORT=admin_grpc_port, GATEWAY_TOKEN=gateway_token,
        ADMIN_PORT=ports["admin"], BACKEND_PORT=ports["backend"], NONE_PORT=ports["none"], JWT_PORT=ports["jwt_authn"],
        PORTCULLIS_PORT=ports["portcullis"], FLOOR_PORT=ports["ext_authz_floor"],
        FLOOR_AUTHZ_PORT=ports["floor_authz"], ISSUER=issuer, JWKS_FILE=str(jwks_file),
        AUTHZ_TIMEOUT=f"{DEFAULT_AUTHZ_TIMEOUT_SECONDS:g}s",
        AUTHZ_ENDPOINTS=authz_endpoints("127.0.0.1", worker_ports(authz_port, authz_workers)),
    )


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(m?s)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_PCT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}

# wrk calls delay() before each request: a fixed pause per connection paces the load.
_PACING = 'local d = tonumber(os.getenv("BENCH_DELAY_MS") or "0")\nfunction delay() return d end\n'


def wrk(url: str, headers: dict[str, str], *, seconds: float, connections: int, delay_ms: int = 0) -> dict[str, Any]:
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory(prefix="portcullis-wrk-") as tmp:
        env = None
        if delay_ms:
            script = Path(tmp) / "pace.lua"
            script.write_text(_PACING)
            argv += ["-s", str(script)]
            env = {"BENCH_DELAY_MS": str(delay_ms), "PATH": "/usr/bin:/bin"}
        output = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60, env=env).stdout
    rps, total = _RPS.search(output), _TOTAL.search(output)
    if not (rps and total):
        raise WrkFailed(f"wrk output not understood:\n{output[-2000:]}")
    non2xx = _NON2XX.search(output)
    errors = _ERRORS.search(output)
    percentiles = {f"p{p}_ms": round(float(v) * _UNIT[u], 3) for p, v, u in _PCT.findall(output)}
    return {
        "requests": int(total.group(1)),
        "rps": round(float(rps.group(1)), 1),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        **percentiles,
    }


def run(policy: BenchPolicy, *, admin: Admin, settings: MeshSettings, authz_workers: int,
        authz_pids: Callable[[], list[int]], data_dir: Path, seconds: float, connections: int = 32,
        profile_dir: Path | None = None) -> dict[str, Any]:
    authz_port = settings.authz_port
    jwks_file = data_dir / "bench-jwks.json"
    jwks_file.write_text(json.dumps(policy.jwks))
    names = ("admin", "backend", "floor_authz", *GATEWAYS)
    ports = dict(zip(names, free_ports(len(names), range(authz_port, authz_port + authz_workers))))
    # The API's endpoints move to the bench backend: its xDS route and cluster then differ
    # from the static gateways' only in how Portcullis deploys an API.
    backend = f"http://127.0.0.1:{ports['backend']}"
    admin.call("PATCH", f"/v1/apis/{policy.api['id']}", {"production_endpoint": backend, "sandbox_endpoint": backend})
    config = data_dir / "envoy-bench.yaml"
    config.write_text(render(ports, issuer=policy.issuer, jwks_file=jwks_file, authz_port=authz_port,
                             authz_workers=authz_workers, admin_grpc_port=settings.admin_grpc_port,
                             gateway_token=read_gateway_token(settings)))
    log = open(data_dir / "envoy-bench.log", "wb")
    floor = _start_constant_authz(ports["floor_authz"], log)
    try:
        envoy = subprocess.Popen([str(envoy_binary()), "-c", str(config), "--disable-hot-restart", "--log-level", "warn",
                                  "--base-id", str(ports["admin"])], stdout=log, stderr=subprocess.STDOUT)
    except BaseException:
        floor.kill()
        raise
    try:
        ready = http_ok(f"http://127.0.0.1:{ports['admin']}/ready", expect_body="LIVE")
        deadline = time.monotonic() + 30
        while not ready():
            if envoy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bench Envoy did not start; see {data_dir / 'envoy-bench.log'}")
            time.sleep(0.1)
        path = policy.base_path + "/menu"
        headers = {"authorization": f"Bearer {policy.jwt}"}
        for gateway in GATEWAYS:  # each answers 200 for the token before it is loaded
            _first_200(f"http://127.0.0.1:{ports[gateway]}{path}", headers, gateway)
        results: dict[str, Any] = {}
        for gateway in GATEWAYS:
            envoy_cpu = proc.CpuMeter([envoy.pid]).start()
            authz_cpu = proc.CpuMeter([floor.pid] if gateway == "ext_authz_floor" else authz_pids()).start()
            spy = None
            if gateway == "portcullis" and profile_dir is not None:
                profile_dir.mkdir(parents=True, exist_ok=True)
                spy = proc.profiler(authz_pids()[-1], seconds, profile_dir / "e2e_portcullis.speedscope.json")
            result = wrk(f"http://127.0.0.1:{ports[gateway]}{path}", headers, seconds=seconds, connections=connections)
            if spy is not None:
                spy.wait()
            result["envoy_cpu_seconds"] = round(envoy_cpu.stop(), 3)
            result["authz_cpu_seconds"] = round(authz_cpu.stop(), 3)
            requests = max(result["requests"], 1)
            result["envoy_cpu_us_per_request"] = round(result["envoy_cpu_seconds"] * 1e6 / requests, 1)
            result["authz_cpu_us_per_request"] = round(result["authz_cpu_seconds"] * 1e6 / requests, 1)
            results[gateway] = result
        peak = results["portcullis"]["rps"]
        results["portcullis_half_load"] = half_load(ports["portcullis"], path, headers, peak, seconds)
        results["ratio_portcullis_to_none"] = round(peak / results["none"]["rps"], 3) if results["none"]["rps"] else None
        results["ratio_portcullis_to_jwt_authn"] = (
            round(peak / results["jwt_authn"]["rps"], 3) if results["jwt_authn"]["rps"] else None)
        results["ratio_floor_to_jwt_authn"] = (
            round(results["ext_authz_floor"]["rps"] / results["jwt_authn"]["rps"], 3) if results["jwt_authn"]["rps"] else None)
        return results
    finally:
        floor.terminate()
        floor.wait(10)
        envoy.terminate()
        try:
            envoy.wait(10)
        except subprocess.TimeoutExpired:
            envoy.kill()
            envoy.wait()
        log.close()


def _first_200(url: str, headers: dict[str, str], gateway: str, timeout: float = 15.0) -> None:
    """The xDS-routed gateway may still have the API's previous endpoint for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(url, headers=headers, trust_env=False)
        if answer.status_code == 200 and answer.text.startswith("[{"):   # the bench backend's body
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{gateway} answered {answer.status_code}: {answer.text[:300]}")
        time.sleep(0.2)


def _start_constant_authz(port: int, log) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "bench.constant_authz", str(port)], stdout=subprocess.PIPE,
                               stderr=log, cwd=Path(__file__).resolve().parent.parent)
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        process.kill()
        raise RuntimeError("bench.constant_authz did not start; see envoy-bench.log")
    return process


def half_load(port: int, path: str, headers: dict[str, str], peak_rps: float, seconds: float) -> dict[str, Any]:
    """Latency at about half of the peak: connections paced by a fixed delay (wrk's Lua
    delay(); Debian's wrk has no fixed-rate mode), the rate actually reached is reported."""
    connections = 16
    target = max(peak_rps / 2, 1.0)
    delay_ms = max(1, round(connections * 1000.0 / target))
    result = wrk(f"http://127.0.0.1:{port}{path}", headers, seconds=seconds, connections=connections, delay_ms=delay_ms)
    result["target_rps"] = round(target, 1)
    result["delay_ms_per_connection"] = delay_ms
    return result
