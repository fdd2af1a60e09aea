"""`python -m bench.tls_frontend [--seconds S]`: what TLS costs authz_server's native front end.

One child process serves Check twice from one policy store: on h2c (today's Envoy ->
authz_server hop) and on TLS (asyncio's TLS transport under the same HTTP/2 code, the
certificate of a local CA from mesh/local_ca.py). h2load loads one, then the other, in one
run; the figures are calls per second and the child's CPU per call. The store is empty, so
every Check is the cheapest decision (404 api_not_found): the TLS share of the cost is
the largest it can be. h2load cannot present a client certificate, so this TLS port asks
for none: mTLS adds its client-certificate check to the handshake only, once per Envoy
connection, not per call. Results: bench/results/tls-frontend.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load, proc
from bench.check_bodies import check_request
from portcullis_shared.settings import REPO_ROOT

MODES = ("h2c", "tls")


def serve(ca_dir: Path) -> None:
    """The child: both ports on one store, printed as `h2c_port tls_port`; runs until stdin closes."""
    from authz_server.check_servicer import AuthorizationService
    from authz_server.frontends import HealthStatus, _start_native
    from authz_server.index.store import PolicyStore
    from authz_server.settings import H2Settings
    from mesh.local_ca import ensure_local_ca
    from portcullis_shared.tls import CertKey
    from portcullis_shared.tls_context import server_context

    issued = ensure_local_ca(ca_dir)["authz"]
    store = PolicyStore()
    store.apply_snapshot([], 1)   # ready and empty: every Check decides (404 api_not_found), not 503 policy_not_ready
    service = AuthorizationService(store)
    status = HealthStatus()
    limits = H2Settings()   # the defaults a deployment runs with
    h2c = _start_native(service, status, "127.0.0.1", 0, 4, 256, {}, None, limits)
    tls = _start_native(service, status, "127.0.0.1", 0, 4, 256, {},
                        server_context(CertKey(issued.cert_file, issued.key_file)), limits)
    print(h2c.port, tls.port, flush=True)
    sys.stdin.read()
    h2c.stop(grace=0.0)
    tls.stop(grace=0.0)


def run(seconds: float, rounds: int = 2) -> dict[str, Any]:
    """Each mode `rounds` times, alternating (h2c, tls, h2c, tls), so that a noisy neighbour
    hits both alike; the best round of each is reported."""
    message = check_request("/bench-tls/1.0.0/menu")
    with tempfile.TemporaryDirectory(prefix="portcullis-bench-tls-") as tmp:
        child = subprocess.Popen([sys.executable, "-m", "bench.tls_frontend", "--serve", tmp], cwd=REPO_ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            ports = dict(zip(MODES, map(int, child.stdout.readline().split())))
            rows: dict[str, dict[str, Any]] = {}
            for _ in range(rounds):
                for mode in MODES:
                    meter = proc.CpuMeter([child.pid]).start()
                    result = load.h2load([ports[mode]], message, seconds=seconds, connections=2, streams=8,
                                         scheme="https" if mode == "tls" else "http")
                    cpu = meter.stop()
                    row = {"mode": mode, "rps": round(result.rps), "failed": result.failed,
                           "p50_ms": round(result.percentile(0.50), 3), "p99_ms": round(result.percentile(0.99), 3),
                           "cpu_us_per_call": round(cpu / max(result.requests, 1) * 1e6, 1)}
                    if mode not in rows or row["rps"] > rows[mode]["rps"]:
                        rows[mode] = row
        finally:
            for pipe in (child.stdin, child.stdout):
                if pipe is not None:
                    pipe.close()
            child.wait(timeout=10)
    h2c, tls = rows["h2c"], rows["tls"]
    return {"seconds": seconds, "rounds": rounds, "rows": [h2c, tls],
            "tls_vs_h2c": {"rps_ratio": round(tls["rps"] / h2c["rps"], 3) if h2c["rps"] else None,
                           "cpu_per_call_ratio": round(tls["cpu_us_per_call"] / h2c["cpu_us_per_call"], 3)
                           if h2c["cpu_us_per_call"] else None}}


def markdown(result: dict[str, Any], conditions: str) -> str:
    lines = [
        "# authz_server native front end: h2c vs TLS (one run, side by side)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {proc.cpu_model()}; {conditions}; "
        f"h2load 2 connections x 8 streams, {result['seconds']:g} s per round, best of {result['rounds']} "
        "alternating rounds; Check on an empty policy (404 api_not_found, the cheapest decision).",
        "",
        "| transport | calls/s | CPU µs per call (server) | p50 ms | p99 ms | failed |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['mode']} | {row['rps']} | {row['cpu_us_per_call']} | {row['p50_ms']} | "
                     f"{row['p99_ms']} | {row['failed']} |")
    ratio = result["tls_vs_h2c"]
    lines += ["", f"TLS / h2c: calls per second x{ratio['rps_ratio']}, CPU per call x{ratio['cpu_per_call_ratio']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tls_frontend", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--conditions", default="not stated")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    if not load.have_h2load():
        print("bench.tls_frontend: h2load is not installed (make bench installs it)", file=sys.stderr)
        return 1
    result = run(args.seconds, args.rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tls-frontend.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = markdown(result, args.conditions)
    (args.out / "tls-frontend.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
