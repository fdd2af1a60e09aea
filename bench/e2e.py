"""Part 2: end to end through Envoy with wrk, gateways side by side in one Envoy:
(a) no authorization, (b) Envoy's jwt_authn, (c) Portcullis's ext_authz with its routes
and the API's cluster over xDS from the bench mesh's admin_api, (d) the ext_authz floor;
then, on gateway (c), what throttling costs: the same API-key call of an API whose
subscription is on Unlimited and of one whose tier counts every call, in interleaved rounds."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Callable

import httpx

from authz_server.settings import worker_ports
from bench import proc
from bench.policy import Admin, BenchPolicy
from mesh.components import envoy_binary
from mesh.envoy_config import DEFAULT_AUTHZ_TIMEOUT_SECONDS, authz_endpoints, read_gateway_token
from mesh.ports import free_ports
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
_PACING_PERIOD_S = 0.02   # half_load: one request per connection about every 20 ms
_PILOT_SECONDS = 1.0
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


@dataclass(frozen=True)
class ThrottlePair:
    """Two APIs alike but for the subscription's tier: Unlimited (off) and counting (on)."""

    off: BenchPolicy
    on: BenchPolicy
    pairs: int = 4          # rounds of (off, on), the order swapped every other pair: ABBA ABBA


def run(policy: BenchPolicy, *, admin: Admin, settings: MeshSettings, authz_workers: int,
        authz_pids: Callable[[], list[int]], data_dir: Path, seconds: float, connections: int = 32,
        profile_dir: Path | None = None, throttle: ThrottlePair | None = None) -> dict[str, Any]:
    authz_port = settings.authz_port
    jwks_file = data_dir / "bench-jwks.json"
    jwks_file.write_text(json.dumps(policy.jwks))
    names = ("admin", "backend", "floor_authz", *GATEWAYS)
    ports = dict(zip(names, free_ports(len(names), range(authz_port, authz_port + authz_workers))))
    # The API's endpoints move to the bench backend: its xDS route and cluster then differ
    # from the static gateways' only in how Portcullis deploys an API.
    backend = f"http://127.0.0.1:{ports['backend']}"
    for each in (policy, *((throttle.off, throttle.on) if throttle else ())):
        admin.call("PATCH", f"/v1/apis/{each.api['id']}", {"production_endpoint": backend, "sandbox_endpoint": backend})
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
        for each in (throttle.off, throttle.on) if throttle else ():
            _first_200(f"http://127.0.0.1:{ports['portcullis']}{each.base_path}/menu", _api_key(each), "portcullis")
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
        # The floor at the same rate (half of (c)'s peak, not of its own): p99 is compared there.
        results["ext_authz_floor_half_load"] = half_load(ports["ext_authz_floor"], path, headers, peak, seconds)
        floor_peak = results["ext_authz_floor"]["rps"]
        results["ratio_portcullis_to_floor"] = round(peak / floor_peak, 3) if floor_peak else None
        results["ratio_portcullis_to_none"] = round(peak / results["none"]["rps"], 3) if results["none"]["rps"] else None
        results["ratio_portcullis_to_jwt_authn"] = (
            round(peak / results["jwt_authn"]["rps"], 3) if results["jwt_authn"]["rps"] else None)
        results["ratio_floor_to_jwt_authn"] = (
            round(results["ext_authz_floor"]["rps"] / results["jwt_authn"]["rps"], 3) if results["jwt_authn"]["rps"] else None)
        if throttle is not None:
            results["throttle"] = throttle_rounds(ports["portcullis"], throttle, envoy_pid=envoy.pid,
                                                  authz_pids=authz_pids, seconds=seconds, connections=connections)
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


def _api_key(policy: BenchPolicy) -> dict[str, str]:
    return {"apikey": policy.api_key_value}


def _measured(url: str, headers: dict[str, str], *, envoy_pid: int, authz_pids: Callable[[], list[int]],
              seconds: float, connections: int) -> dict[str, Any]:
    envoy_cpu = proc.CpuMeter([envoy_pid]).start()
    authz_cpu = proc.CpuMeter(authz_pids()).start()
    result = wrk(url, headers, seconds=seconds, connections=connections)
    result["envoy_cpu_seconds"] = round(envoy_cpu.stop(), 3)
    result["authz_cpu_seconds"] = round(authz_cpu.stop(), 3)
    requests = max(result["requests"], 1)
    result["envoy_cpu_us_per_request"] = round(result["envoy_cpu_seconds"] * 1e6 / requests, 1)
    result["authz_cpu_us_per_request"] = round(result["authz_cpu_seconds"] * 1e6 / requests, 1)
    return result


def throttle_rounds(port: int, pair: ThrottlePair, *, envoy_pid: int, authz_pids: Callable[[], list[int]],
                    seconds: float, connections: int) -> dict[str, Any]:
    """The same API-key call through gateway (c) on Unlimited (off) and on a counting tier
    (on), in rounds off/on, on/off, off/on, ... so that a change of the machine's load hits
    both sides alike. authz_server's CPU (all its processes, /proc utime + stime) per
    request; the difference is the median of the per-round differences, and the totals'."""
    urls = {side: f"http://127.0.0.1:{port}{each.base_path}/menu" for side, each in (("off", pair.off), ("on", pair.on))}
    headers = {"off": _api_key(pair.off), "on": _api_key(pair.on)}
    load_before = proc.load_average()
    rounds: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for number in range(pair.pairs):
        for side in ("off", "on") if number % 2 == 0 else ("on", "off"):
            rounds[side].append(_measured(urls[side], headers[side], envoy_pid=envoy_pid, authz_pids=authz_pids,
                                          seconds=seconds, connections=connections))
    sides = {side: _totals(rows) for side, rows in rounds.items()}
    differences = [on["authz_cpu_us_per_request"] - off["authz_cpu_us_per_request"]   # in round order
                   for off, on in zip(rounds["off"], rounds["on"])]
    return {
        "credential": "API key", "pairs": pair.pairs, "seconds_per_round": max(1, round(seconds)),
        "load_average_before": load_before, "load_average_after": proc.load_average(),
        **sides,
        "rounds": rounds,
        "authz_cpu_us_on_minus_off_median": round(statistics.median(differences), 1),
        "authz_cpu_us_on_minus_off_per_round": [round(d, 1) for d in differences],
        "authz_cpu_us_on_minus_off_totals": round(sides["on"]["authz_cpu_us_per_request"]
                                                  - sides["off"]["authz_cpu_us_per_request"], 1),
        "rps_on_to_off": round(sides["on"]["rps"] / sides["off"]["rps"], 3) if sides["off"]["rps"] else None,
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's rounds together: requests/s, non-2xx and CPU per request over all of them."""
    requests = sum(row["requests"] for row in rows)
    per = max(requests, 1)
    return {
        "requests": requests,
        "rps": round(statistics.mean(row["rps"] for row in rows), 1),
        "p50_ms": round(statistics.median(row.get("p50_ms", float("nan")) for row in rows), 3),
        "p99_ms": round(statistics.median(row.get("p99_ms", float("nan")) for row in rows), 3),
        "non_2xx": sum(row["non_2xx"] for row in rows),
        "socket_errors": sum(row["socket_errors"] for row in rows),
        "envoy_cpu_us_per_request": round(sum(row["envoy_cpu_seconds"] for row in rows) * 1e6 / per, 1),
        "authz_cpu_us_per_request": round(sum(row["authz_cpu_seconds"] for row in rows) * 1e6 / per, 1),
    }


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
    delay(); Debian's wrk has no fixed-rate mode), the rate actually reached is reported.

    A connection sends one request per delay plus its round trip, so a delay of
    connections / target alone falls short by the round trip (2,852 reached of 3,745 aimed
    at). The round trip is measured by a short pilot at that delay and taken off; the
    connections are chosen so that one period is ~20 ms, where whole milliseconds of delay
    are a fine enough step (1 ms of 4 ms was not)."""
    target = max(peak_rps / 2, 1.0)
    connections = min(256, max(16, round(target * _PACING_PERIOD_S)))
    url = f"http://127.0.0.1:{port}{path}"
    period_ms = connections * 1000.0 / target
    pilot_delay = max(1, round(period_ms))
    pilot = wrk(url, headers, seconds=_PILOT_SECONDS, connections=connections, delay_ms=pilot_delay)
    round_trip_ms = max(0.0, connections * 1000.0 / max(pilot["rps"], 1.0) - pilot_delay)
    delay_ms = max(1, round(period_ms - round_trip_ms))
    result = wrk(url, headers, seconds=seconds, connections=connections, delay_ms=delay_ms)
    result["target_rps"] = round(target, 1)
    result["connections"] = connections
    result["delay_ms_per_connection"] = delay_ms
    result["pilot"] = {"delay_ms": pilot_delay, "rps": pilot["rps"], "round_trip_ms": round(round_trip_ms, 2)}
    return result
