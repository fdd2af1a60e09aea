"""The `transports` part (`python -m bench.transports`): Envoy -> authz_server over h2c on
TCP (today's default), a Unix socket (PORTCULLIS_AUTHZ_UNIX_SOCKET) and mTLS on TCP
(PORTCULLIS_TLS), side by side in one run, through Envoy.

Per transport, one authz_server child (the native front end with the defaults a
deployment runs with: a TCP port; a Unix socket made as a worker makes it; a TCP port with
TLS that requires Envoy's client certificate, from a local CA of mesh/local_ca.py) and one
Envoy in front of it (one worker thread; the mesh's ext_authz filter, fail closed, 1.5 s;
the cluster rendered as the mesh renders that hop). The three are loaded at once by three
wrk, for a few rounds: on a shared machine a neighbour's burst then hits all three alike,
and each process's CPU is its own transport's. Each figure is the median of its rounds
(every round is kept in the JSON). The store is empty, so every Check is the cheapest decision (404
api_not_found): the transport's share of the cost is the largest it can be. Figures:
requests per second through Envoy, authz_server's and Envoy's CPU per request, latency.
Results: bench/results/uds-frontend.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import e2e, proc
from mesh.ports import free_ports
from mesh.components import envoy_binary
from mesh.envoy_config import DEFAULT_AUTHZ_TIMEOUT_SECONDS
from mesh.readiness import http_ok
from portcullis_shared.settings import REPO_ROOT

MODES = ("tcp", "uds", "mtls")
_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_EXT_AUTHZ = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_H2_OPTIONS = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "explicit_http_config": {"http2_protocol_options": {}}}}


def serve(tmp: Path, mode: str) -> None:
    """A child: one transport; prints its port or socket path, serves until its stdin closes."""
    from authz_server.check_servicer import AuthorizationService
    from authz_server.frontends import HealthStatus, UnixSocket, _start_native
    from authz_server.index.store import PolicyStore
    from authz_server.settings import H2Settings
    from mesh.local_ca import ensure_local_ca
    from portcullis_shared.tls import CertKey
    from portcullis_shared.tls_context import server_context

    store = PolicyStore()
    store.apply_snapshot([], 1)   # ready and empty: every Check decides (404 api_not_found)
    service = AuthorizationService(store)
    status = HealthStatus()
    limits = H2Settings()   # the defaults a deployment runs with
    context, unix = None, None
    if mode == "mtls":
        issued = ensure_local_ca(tmp / "ca")
        context = server_context(CertKey(issued["authz"].cert_file, issued["authz"].key_file),
                                 client_ca=issued["ca"].cert_file)
    elif mode == "uds":
        unix = UnixSocket(tmp / "run" / "authz.sock")
    server = _start_native(service, status, "127.0.0.1", 0, 4, 256, {}, context, limits, unix)
    print(unix.path if unix is not None else server.port, flush=True)
    sys.stdin.read()
    server.stop(grace=0.0)


def _listener(mode: str, port: int) -> dict[str, Any]:
    return {"name": mode, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": _HCM, "stat_prefix": mode,
                "http_filters": [
                    {"name": "envoy.filters.http.ext_authz", "typed_config": {
                        "@type": _EXT_AUTHZ, "transport_api_version": "V3", "failure_mode_allow": False,
                        "grpc_service": {"envoy_grpc": {"cluster_name": f"authz_{mode}"},
                                         "timeout": f"{DEFAULT_AUTHZ_TIMEOUT_SECONDS:g}s"}}},
                    {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
                "route_config": {"virtual_hosts": [{"name": mode, "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
            }}]}]}


def _cluster(mode: str, address: dict[str, Any], transport_socket: dict[str, Any] | None) -> dict[str, Any]:
    cluster = {"name": f"authz_{mode}", "type": "STATIC", "connect_timeout": "0.25s",
               "typed_extension_protocol_options": _H2_OPTIONS,
               "load_assignment": {"cluster_name": f"authz_{mode}",
                                   "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}]}}
    if transport_socket is not None:
        cluster["transport_socket"] = transport_socket
    return cluster


def envoy_config(mode: str, admin_port: int, listener_port: int, endpoint: str, ca_dir: Path) -> dict[str, Any]:
    """One listener and its cluster, as the mesh renders the hop: `pipe` for the socket,
    mesh/envoy_tls for mTLS."""
    if mode == "uds":
        address, transport_socket = {"pipe": {"path": endpoint}}, None
    else:
        address = {"socket_address": {"address": "127.0.0.1", "port_value": int(endpoint)}}
        transport_socket = None
        if mode == "mtls":
            from mesh.envoy_tls import authz_socket, write_secrets
            from portcullis_shared.tls import CertKey, TlsFiles

            _client_files(ca_dir)
            tls = TlsFiles(ca_file=ca_dir / "ca.pem", admin=None, authz=None, gateway=None,
                           client=CertKey(ca_dir / "client.pem", ca_dir / "client-key.pem"))
            # As the mesh does it: the context names secrets Envoy reads by file-based SDS.
            sds = ca_dir / "envoy-sds"
            write_secrets(tls, sds)
            transport_socket = json.loads(authz_socket(tls, "127.0.0.1", sds).partition(": ")[2])
    return {
        # File-based SDS (the mTLS hop) needs a node id and cluster.
        "node": {"id": f"bench-transports-{mode}", "cluster": "bench"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [_listener(mode, listener_port)],
                             "clusters": [_cluster(mode, address, transport_socket)]},
    }


def _client_files(ca_dir: Path) -> None:
    """mesh/local_ca names its files by identity; check the ones Envoy reads are there."""
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        if not (ca_dir / name).is_file():
            raise RuntimeError(f"the local CA has no {name} in {ca_dir}: {sorted(p.name for p in ca_dir.iterdir())}")


@dataclass
class _Hop:
    """One transport's authz_server child and the Envoy in front of it."""

    mode: str
    child: subprocess.Popen[str]
    envoy: subprocess.Popen[bytes] | None = None
    url: str = ""


def _start_hop(mode: str, tmp: Path, log) -> _Hop:
    child = subprocess.Popen([sys.executable, "-m", "bench.transports", "--serve", str(tmp), "--mode", mode],
                             cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hop = _Hop(mode, child)
    try:
        _start_envoy(hop, tmp, log)
    except BaseException:
        _stop_hop(hop)   # a hop that failed half-way is not in run()'s list: stop it here
        raise
    return hop


def _start_envoy(hop: _Hop, tmp: Path, log) -> None:
    mode, child = hop.mode, hop.child
    assert child.stdout is not None
    endpoint = child.stdout.readline().strip()
    if not endpoint:
        raise RuntimeError(f"the {mode} authz_server did not start")
    admin_port, listener_port = free_ports(2, range(0))
    config = tmp / f"envoy-{mode}.json"
    config.write_text(json.dumps(envoy_config(mode, admin_port, listener_port, endpoint, tmp / "ca")))
    hop.envoy = subprocess.Popen([str(envoy_binary()), "-c", str(config), "--concurrency", "1",
                                  "--disable-hot-restart", "--log-level", "warn", "--base-id", str(admin_port)],
                                 stdout=log, stderr=subprocess.STDOUT)
    ready = http_ok(f"http://127.0.0.1:{admin_port}/ready", expect_body="LIVE")
    deadline = time.monotonic() + 30
    while not ready():
        if hop.envoy.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the {mode} bench Envoy did not start: see its log")
        time.sleep(0.1)
    hop.url = f"http://127.0.0.1:{listener_port}/bench-transport/1.0.0/menu"


def _stop_hop(hop: _Hop) -> None:
    if hop.envoy is not None:
        hop.envoy.terminate()
        try:
            hop.envoy.wait(10)
        except subprocess.TimeoutExpired:
            hop.envoy.kill()
            hop.envoy.wait()
    for pipe in (hop.child.stdin, hop.child.stdout):
        if pipe is not None:
            pipe.close()
    hop.child.wait(timeout=10)


def _round(hops: list[_Hop], seconds: float, connections: int) -> list[dict[str, Any]]:
    """All transports loaded at once for `seconds`: a neighbour's burst hits all of them alike."""
    meters = {hop.mode: (proc.CpuMeter([hop.child.pid]).start(), proc.CpuMeter([hop.envoy.pid]).start())
              for hop in hops if hop.envoy is not None}
    with ThreadPoolExecutor(max_workers=len(hops)) as pool:
        results = list(pool.map(lambda hop: e2e.wrk(hop.url, {}, seconds=seconds, connections=connections), hops))
    rows = []
    for hop, result in zip(hops, results):
        authz_cpu, envoy_cpu = meters[hop.mode]
        requests = max(result["requests"], 1)
        rows.append({"mode": hop.mode, "rps": result["rps"], "p50_ms": result.get("p50_ms"),
                     "p99_ms": result.get("p99_ms"), "non_404": _not_decided(result),
                     "socket_errors": result["socket_errors"],
                     "authz_cpu_us_per_request": round(authz_cpu.stop() * 1e6 / requests, 1),
                     "envoy_cpu_us_per_request": round(envoy_cpu.stop() * 1e6 / requests, 1)})
    return rows


def run(seconds: float, rounds: int = 3, connections: int = 16) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pc-tr-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        log = open(tmp / "envoy.log", "wb")
        hops: list[_Hop] = []
        try:
            for mode in MODES:
                hops.append(_start_hop(mode, tmp, log))
            for hop in hops:   # every hop carries authz_server's decision before it is loaded
                _decided(hop.url, hop.mode)
            load_before = os.getloadavg()
            rounds_of: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
            for _ in range(rounds):
                for row in _round(hops, seconds, connections):
                    rounds_of[row["mode"]].append(row)
            load_after = os.getloadavg()
        except BaseException:
            log.flush()
            sys.stderr.write((tmp / "envoy.log").read_text(errors="replace")[-2000:])
            raise
        finally:
            for hop in hops:
                _stop_hop(hop)
            log.close()
    rows = {mode: _median_row(mode, each) for mode, each in rounds_of.items()}
    tcp = rows["tcp"]
    return {"seconds": seconds, "rounds": rounds, "connections": connections, "every_round": rounds_of,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "rows": [rows[mode] for mode in MODES],
            "vs_tcp": vs_tcp(rounds_of)}


def vs_tcp(rounds_of: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """Each transport against TCP, round by round (the same seconds, the same neighbours), then
    the median of those paired ratios: steadier than a ratio of medians on a shared machine."""
    def paired(mode: str, name: str) -> float | None:
        ratios = sorted(row[name] / tcp[name] for row, tcp in zip(rounds_of[mode], rounds_of["tcp"]) if tcp[name])
        return round(ratios[len(ratios) // 2], 3) if ratios else None

    return {mode: {"rps_ratio": paired(mode, "rps"), "authz_cpu_ratio": paired(mode, "authz_cpu_us_per_request"),
                   "envoy_cpu_ratio": paired(mode, "envoy_cpu_us_per_request")}
            for mode in MODES if mode != "tcp"}


def _median_row(mode: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (a neighbour's burst moves one round, not the median);
    failures summed."""
    def median(name: str) -> Any:
        values = sorted(row[name] for row in rounds if row[name] is not None)
        return values[len(values) // 2] if values else None

    return {"mode": mode, **{name: median(name) for name in ("rps", "p50_ms", "p99_ms", "authz_cpu_us_per_request",
                                                            "envoy_cpu_us_per_request")},
            "non_404": sum(row["non_404"] for row in rounds), "socket_errors": sum(row["socket_errors"] for row in rounds)}


def _decided(url: str, mode: str) -> None:
    """The empty store's denial (404 api_not_found), not Envoy's own 403 for an unreachable hop."""
    answer = httpx.get(url, trust_env=False, timeout=5.0)
    reason = answer.headers.get("x-portcullis-reason")
    if answer.status_code != 404 or reason != "api_not_found":
        raise RuntimeError(f"{mode}: Envoy answered {answer.status_code} ({reason!r}), not authz_server's decision")


def _not_decided(result: dict[str, Any]) -> int:
    """wrk counts non-2xx; every answer here is authz_server's 404, so all of them are decisions.
    What matters is that each request got one: socket errors and timeouts are reported apart."""
    return result["requests"] - result["non_2xx"]


def markdown(result: dict[str, Any], header: dict[str, Any]) -> str:
    lines = [
        "# Envoy -> authz_server: h2c on TCP vs Unix socket vs mTLS (one run, side by side, through Envoy)",
        "",
        f"- date: {header['date']}",
        f"- commit: {header['commit']}",
        f"- machine: {header['machine']}",
        f"- load average (1, 5, 15 min) before: {result['load_average_before']}, after: {result['load_average_after']} "
        "(other sessions share the cores)",
        f"- conditions: {header['conditions']}",
        f"- per transport: wrk 1 thread x {result['connections']} connections -> its own Envoy (1 worker thread) -> "
        f"its own authz_server (native front end); the three loaded at once, {result['seconds']:g} s per round, "
        f"median of {result['rounds']} rounds; Check on "
        "an empty policy (404 api_not_found, the cheapest decision: the transport's share is the largest it can be).",
        "",
        "| Envoy -> authz_server | requests/s | authz_server CPU µs/request | Envoy CPU µs/request | p50 ms | p99 ms "
        "| 2xx (should be 0) | socket errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['mode']} | {row['rps']} | {row['authz_cpu_us_per_request']} | "
                     f"{row['envoy_cpu_us_per_request']} | {row['p50_ms']} | {row['p99_ms']} | {row['non_404']} | "
                     f"{row['socket_errors']} |")
    lines.append("")
    for mode, ratio in result["vs_tcp"].items():
        lines.append(f"{mode} / tcp, median of the per-round ratios: requests per second x{ratio['rps_ratio']}, "
                     f"authz_server CPU per request x{ratio['authz_cpu_ratio']}, Envoy CPU per request "
                     f"x{ratio['envoy_cpu_ratio']}.")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--conditions", default=os.environ.get("BENCH_CONDITIONS", "not stated"))
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.mode)
        return 0
    if not e2e.have_wrk():
        print("bench.transports: wrk is not installed (make bench-tools installs it)", file=sys.stderr)
        return 1
    from bench.__main__ import commit, machine

    result = run(args.seconds, args.rounds)
    about = machine()
    header = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit(),
              "machine": f"{about['cores']} cores, {about['cpu_model']}, {about['memory_gib']} GiB",
              "conditions": args.conditions}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "uds-frontend.json").write_text(json.dumps({**header, **result}, indent=2) + "\n", encoding="utf-8")
    text = markdown(result, header)
    (args.out / "uds-frontend.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
