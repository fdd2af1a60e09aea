"""A real Envoy against an in-process admin_api: init waits for the first configuration,
and a configuration Envoy rejects is reported by ListGateways (gRPC) with Envoy's detail
and the API that caused it, while Envoy keeps the version it had."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from envoy.config.cluster.v3 import cluster_pb2

from admin_api.access.caller import Caller, Role
from admin_api.app import AdminApp, create_admin_app
from admin_api.xds import translate
from admin_api.xds.runtime import XdsConfig
from mesh import envoy_config
from mesh.components import envoy_binary
from mesh.local_ca import ensure_local_ca
from mesh.processes import Component
from mesh.readiness import http_ok
from mesh.runner import free_port
from portcullis.admin.v1 import admin_pb2, gateways_pb2
from portcullis_shared.settings import REPO_ROOT, MeshSettings
from portcullis_shared.tls import AUTO_DIR_NAME, TlsSettings
from tests.integration.conftest import SUITE_TLS_MODE
from tests.integration.endpoints import envoy_admin_url, gateway_url, grpc_channel, http_get
from tests.integration.gateway import wait_until

pytestmark = pytest.mark.integration

ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)
NODE = "nack-envoy"
BROKEN_HOST = "broken.invalid"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AdminApp]:
    settings = MeshSettings(data_dir=tmp_path, gateway_port=free_port(), envoy_admin_port=free_port(),
                            authz_port=free_port(), tls=TlsSettings(mode=SUITE_TLS_MODE))
    if settings.tls.mode == "auto":
        ensure_local_ca(tmp_path / AUTO_DIR_NAME)   # what the mesh's launcher does first
    app = create_admin_app(settings, grpc_port=0, xds_config=XdsConfig(poll_interval=0.1))
    yield app
    app.stop()


def _envoy(app: AdminApp, tmp_path: Path) -> Component:
    settings = dataclasses.replace(app.settings, admin_grpc_port=app.grpc_port)
    config = envoy_config.write(settings, node_id=NODE)
    return Component("envoy", [str(envoy_binary()), "-c", str(config), "--disable-hot-restart",
                               "--log-level", "warn", "--base-id", "11"],
                     env=dict(os.environ), cwd=REPO_ROOT, log_path=tmp_path / "envoy.log",
                     probe=http_ok(f"{envoy_admin_url(settings)}/ready", expect_body="LIVE"))


def _stat(app: AdminApp, name: str) -> int:
    url = f"{envoy_admin_url(app.settings)}/stats"
    try:
        text = httpx.get(url, params={"filter": f"^{name}$"}, timeout=5.0, trust_env=False).text
    except httpx.TransportError:
        return 0
    return sum(int(line.partition(": ")[2]) for line in text.splitlines() if line.startswith(name + ": "))


def _list_gateways(app: AdminApp) -> gateways_pb2.ListGatewaysResponse:
    token = app.settings.admin_token_file.read_text().strip()
    with grpc_channel(app.settings, f"127.0.0.1:{app.grpc_port}") as channel:
        call = channel.unary_unary("/portcullis.admin.v1.GatewayService/ListGateways",
                                   request_serializer=gateways_pb2.ListGatewaysRequest.SerializeToString,
                                   response_deserializer=gateways_pb2.ListGatewaysResponse.FromString)
        return call(gateways_pb2.ListGatewaysRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=5)


def _node(app: AdminApp) -> gateways_pb2.Gateway | None:
    return next((g for g in _list_gateways(app).gateways if g.node_id == NODE), None)


def _create(app: AdminApp, endpoint: str) -> admin_pb2.Api:
    return app.dispatcher.call("portcullis.admin.v1.ApiService/CreateApi", admin_pb2.CreateApiRequest(
        name="Nacked", version="v1", context="/nacked", production_endpoint=endpoint), ADMIN)


def _publish(app: AdminApp, api: admin_pb2.Api) -> admin_pb2.Api:
    return app.dispatcher.call("portcullis.admin.v1.ApiService/ChangeApiLifecycle", admin_pb2.ChangeApiLifecycleRequest(
        id=api.id, target_state=admin_pb2.Api.PUBLISHED), ADMIN)


def test_envoy_init_waits_for_admin_api(app: AdminApp, tmp_path: Path) -> None:
    envoy = _envoy(app, tmp_path)
    envoy.start()
    try:
        # admin_api is not serving yet: Envoy reaches for it and stays out of LIVE.
        wait_until(lambda: _stat(app, "cluster.xds.upstream_cx_total") >= 1, "Envoy reached for admin_api",
                   timeout=30.0)
        assert not envoy.is_ready()
        with pytest.raises(httpx.TransportError):
            http_get(app.settings, f"{gateway_url(app.settings)}/", timeout=2.0)
        app.start()
        envoy.wait_ready(timeout=30.0)
        wait_until(lambda: (_node(app) or gateways_pb2.Gateway()).acked_version == _list_gateways(app).current_version,
                   "Envoy acknowledged the first configuration")
    finally:
        envoy.stop()


def test_a_rejected_configuration_is_reported_and_envoy_keeps_its_version(app: AdminApp, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real_cluster = translate._unnamed_cluster

    def broken_cluster(upstream, config, trust) -> cluster_pb2.Cluster:
        cluster = real_cluster(upstream, config, trust)
        if upstream.host == BROKEN_HOST:
            cluster.type = cluster_pb2.Cluster.STATIC  # a host name where Envoy needs an IP address
        return cluster

    monkeypatch.setattr(translate, "_unnamed_cluster", broken_cluster)
    app.start()
    envoy = _envoy(app, tmp_path)
    envoy.start()
    try:
        envoy.wait_ready(timeout=30.0)
        wait_until(lambda: (_node(app) or gateways_pb2.Gateway()).acked_version == _list_gateways(app).current_version,
                   "the first version acknowledged")
        first_version = _list_gateways(app).current_version
        api = _create(app, f"http://{BROKEN_HOST}:8080")  # CREATED: nothing to deploy yet
        wait_until(lambda: first_version != _list_gateways(app).current_version == _node(app).acked_version,
                   "the version with the created API acknowledged")
        good_version = _node(app).acked_version
        _publish(app, api)
        wait_until(lambda: _node(app).HasField("last_nack"), "the NACK reached ListGateways", timeout=10.0)
        node = _node(app)
        assert node.last_nack.type == "clusters"
        assert node.last_nack.version == _list_gateways(app).current_version != good_version
        assert list(node.last_nack.api_ids) == [api.id]
        assert f"api.{api.id}.production" in node.last_nack.detail and "malformed IP address" in node.last_nack.detail
        assert node.acked_clusters_version == good_version  # Envoy kept what it had
        assert _stat(app, "cluster_manager.cds.update_rejected") >= 1
        # Fixed: the next version is taken; the last NACK stays visible as history.
        app.dispatcher.call("portcullis.admin.v1.ApiService/UpdateApi", admin_pb2.UpdateApiRequest(
            id=api.id, api=admin_pb2.Api(production_endpoint="http://127.0.0.1:9"),
            update_mask={"paths": ["production_endpoint"]}), ADMIN)
        wait_until(lambda: _node(app).acked_version == _list_gateways(app).current_version, "the fix acknowledged")
    finally:
        envoy.stop()
