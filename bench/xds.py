"""Part 4, xDS: how fast a publish reaches traffic, and what 10,000 APIs cost to push.

(a) publish-to-first-200: through the whole mesh (admin_api → Watch → authz_server and
    admin_api → ADS → Envoy), the time from the lifecycle call to the first 200 through
    Envoy, polled every 5 ms, over many publishes; p50 and p99.
(b) scale: a real Envoy against admin_api's ADS server holding N synthetic APIs (a
    production and a sandbox endpoint each: 2N clusters and 2N routes): building the
    whole configuration, a new Envoy's time to LIVE (fetch and apply everything), its
    memory, then one API changed: the rebuild, the bytes pushed, and the time until the
    Envoy acknowledges the new version.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from admin_api.app import open_store
from admin_api import bootstrap
from admin_api.xds.gateways import GatewayRegistry
from admin_api.xds.resources import CLUSTER_TYPE, ROUTE_TYPE, ConfigBuilder
from admin_api.xds.server import AdsServicer
from admin_api.xds.state import XdsState
from admin_api.xds.translate import TlsTrust
from bench import proc
from bench.policy import BenchMesh
from mesh import envoy_config
from mesh.components import envoy_binary
from mesh.processes import Component
from mesh.readiness import http_ok
from mesh.runner import free_port
from portcullis.admin.v1 import admin_pb2
from portcullis_shared.settings import REPO_ROOT, MeshSettings

OPEN = [{"method": "*", "path": "/*", "open": True}]
POLL_SECONDS = 0.005


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def publish_to_first_200(bench: BenchMesh, publishes: int) -> dict[str, Any]:
    settings = bench.settings
    endpoint = f"http://{settings.host}:{settings.backend_production_port}"
    gateway = httpx.Client(base_url=f"http://{settings.host}:{settings.gateway_port}", timeout=5.0, trust_env=False)
    seconds: list[float] = []
    try:
        for index in range(publishes):
            name = f"pub{index}-{os.urandom(4).hex()}"
            api = bench.admin.call("POST", "/v1/apis", {
                "name": name, "version": "v1", "context": f"/{name}", "resources": OPEN,
                "subscription_less": True, "production_endpoint": endpoint}, expect=201)
            path = f"{api['base_path']}/menu"
            started = time.perf_counter()
            bench.admin.call("POST", f"/v1/apis/{api['id']}/lifecycle", {"target_state": "PUBLISHED"})
            deadline = started + 30.0
            while gateway.get(path).status_code != 200:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{path} not served 30 s after its publish")
                time.sleep(POLL_SECONDS)
            seconds.append(time.perf_counter() - started)
    finally:
        gateway.close()
    ms = [s * 1000 for s in seconds]
    return {"publishes": publishes, "p50_ms": round(statistics.median(ms), 1), "p99_ms": round(_percentile(ms, 0.99), 1),
            "max_ms": round(max(ms), 1), "poll_ms": POLL_SECONDS * 1000}


def _synthetic_api(index: int) -> admin_pb2.Api:
    return admin_pb2.Api(
        id=f"{index:032x}", organization_id="default", name=f"api{index}", version="v1",
        base_path=f"/svc{index}/v1", lifecycle_state=admin_pb2.Api.PUBLISHED,
        production_endpoint=f"http://10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}:8080/api",
        sandbox_endpoint=f"http://sandbox-{index}.internal.example:8080")


def _acked(registry: GatewayRegistry, node: str, version: str) -> bool:
    return any(g.node_id == node and g.acked.get("clusters") == version and g.acked.get("routes") == version
               for g in registry.gateways())


def scale(apis: int) -> dict[str, Any]:
    import grpc
    from concurrent import futures

    with tempfile.TemporaryDirectory(prefix="portcullis-bench-xds-") as tmp:
        settings = MeshSettings(data_dir=Path(tmp), gateway_port=free_port(), envoy_admin_port=free_port(),
                                authz_port=free_port())
        store = open_store(f"sqlite:///{tmp}/xds.db")
        bootstrap.ensure_credentials(store, settings.admin_token_file, settings.sync_token_file,
                                     settings.gateway_token_file)
        builder = ConfigBuilder(TlsTrust(settings.upstream_trust_store))
        started = time.perf_counter()
        for index in range(apis):
            builder.upsert(_synthetic_api(index))
        translated = time.perf_counter()
        state, registry = XdsState(), GatewayRegistry()
        snapshot = state.publish(builder.build("1"))
        built = time.perf_counter()
        import threading
        servicer = AdsServicer(store, state, registry, threading.Event())
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                             options=[("grpc.max_send_message_length", 512 * 2**20)])
        server.add_generic_rpc_handlers((servicer.handler(),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        envoy_settings = MeshSettings(data_dir=Path(tmp), gateway_port=settings.gateway_port,
                                      envoy_admin_port=settings.envoy_admin_port, authz_port=settings.authz_port,
                                      admin_grpc_port=port)
        config = envoy_config.write(envoy_settings, node_id="bench-envoy")
        envoy = Component("envoy", [str(envoy_binary()), "-c", str(config), "--disable-hot-restart",
                                    "--log-level", "error", "--base-id", "23"],
                          env=dict(os.environ), cwd=REPO_ROOT, log_path=Path(tmp) / "envoy.log",
                          probe=http_ok(f"http://127.0.0.1:{settings.envoy_admin_port}/ready", expect_body="LIVE"),
                          ready_timeout=600.0)
        try:
            envoy_started = time.perf_counter()
            envoy.start()
            envoy.wait_ready()
            live = time.perf_counter()
            rss = proc.rss_bytes(envoy.pid)
            _wait(lambda: _acked(registry, "bench-envoy", "1"), 60.0)
            # One API changes: the rebuild and the push of the new version.
            change_started = time.perf_counter()
            changed = _synthetic_api(apis // 2)
            changed.production_endpoint = "http://10.255.255.1:9090/moved"
            builder.upsert(changed)
            second = state.publish(builder.build("2"))
            rebuilt = time.perf_counter()
            _wait(lambda: _acked(registry, "bench-envoy", "2"), 120.0)
            acked = time.perf_counter()
            rss_after = proc.rss_bytes(envoy.pid)
        finally:
            envoy.stop()
            servicer.close()
            server.stop(1).wait()
            store.db.dispose()
    return {
        "apis": apis, "clusters": snapshot.cluster_count, "routes": 2 * apis,
        "translate_all_s": round(translated - started, 2), "build_snapshot_s": round(built - translated, 3),
        "cds_bytes": len(snapshot.responses[CLUSTER_TYPE]), "rds_bytes": len(snapshot.responses[ROUTE_TYPE]),
        "new_envoy_to_live_s": round(live - envoy_started, 1),
        "envoy_rss_mib": round(rss / 2**20), "envoy_rss_after_change_mib": round(rss_after / 2**20),
        "one_change_rebuild_ms": round((rebuilt - change_started) * 1000, 1),
        "one_change_pushed_bytes": len(second.responses[CLUSTER_TYPE]) + len(second.responses[ROUTE_TYPE]),
        "one_change_to_ack_s": round(acked - change_started, 2),
    }


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the Envoy's acknowledgement")
        time.sleep(0.01)
