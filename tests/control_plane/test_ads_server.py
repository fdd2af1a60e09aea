"""admin_api's ADS server over real gRPC on loopback: credential, versions from the
change log, pushes on API changes, ACK/NACK tracking and ListGateways."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from admin_api.app import AdminApp, create_admin_app
from admin_api.access.caller import Caller, Role
from admin_api.errors import PermissionDenied
from admin_api.xds.resources import CLUSTER_TYPE, ROUTE_TYPE
from admin_api.xds.runtime import XdsConfig
from portcullis.admin.v1 import admin_pb2, gateways_pb2
from portcullis_shared.settings import MeshSettings
from tests.control_plane.ads_client import AdsClient, cluster_routes, clusters, route_config

ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)
LIST_GATEWAYS = "portcullis.admin.v1.GatewayService/ListGateways"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AdminApp]:
    app = create_admin_app(MeshSettings(data_dir=tmp_path), grpc_port=0, xds_config=XdsConfig(poll_interval=0.1))
    app.start()
    yield app
    app.stop()


@pytest.fixture
def gateway_token(app: AdminApp) -> str:
    return app.settings.gateway_token_file.read_text().strip()


@pytest.fixture
def client(app: AdminApp, gateway_token: str) -> Iterator[AdsClient]:
    client = AdsClient(f"127.0.0.1:{app.grpc_port}", gateway_token)
    yield client
    client.close()


def publish(app: AdminApp, **fields: object) -> admin_pb2.Api:
    request = admin_pb2.CreateApiRequest(name=str(fields.pop("name", "Pets")), version="v1",
                                         context=str(fields.pop("context", "/pets")),
                                         production_endpoint="http://127.0.0.1:9999/api", **fields)
    api = app.dispatcher.call("portcullis.admin.v1.ApiService/CreateApi", request, ADMIN)
    return app.dispatcher.call("portcullis.admin.v1.ApiService/ChangeApiLifecycle",
                               admin_pb2.ChangeApiLifecycleRequest(id=api.id, target_state=admin_pb2.Api.PUBLISHED),
                               ADMIN)


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def gateways(app: AdminApp) -> gateways_pb2.ListGatewaysResponse:
    return app.dispatcher.call(LIST_GATEWAYS, gateways_pb2.ListGatewaysRequest(), ADMIN)


def subscribe(client: AdsClient) -> tuple:
    client.send(CLUSTER_TYPE)
    cds = client.receive()
    client.ack(cds)
    client.send(ROUTE_TYPE, names=("gateway",))
    rds = client.receive()
    client.ack(rds)
    return cds, rds


def test_a_stream_without_the_gateway_credential_is_refused(app: AdminApp) -> None:
    for token in (None, "pcg_not-a-real-token", app.settings.sync_token_file.read_text().strip()):
        client = AdsClient(f"127.0.0.1:{app.grpc_port}", token)
        client.send(CLUSTER_TYPE)
        with pytest.raises(grpc.RpcError) as refused:
            client.receive()
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        client.close()
    assert gateways(app).gateways == []


def test_first_answers_carry_the_revision_of_the_newest_api_change(app: AdminApp, client: AdsClient) -> None:
    api = publish(app)
    wait_for(lambda: app.xds.state.current.api_count == 1)
    cds, rds = subscribe(client)
    assert cds.version_info == rds.version_info == app.xds.state.current.version
    with app.store.read() as session:
        from admin_api.store import outbox
        assert int(cds.version_info) == outbox.current_revision(session)  # the publish was the last change
    assert cluster_routes(cds) == {f"api.{api.id}.production"}
    routes = route_config(rds).virtual_hosts[0].routes
    assert [r.name for r in routes[:1] + routes[-1:]] == ["dot_segment_parameters", "not_deployed"]
    assert [r.match.path_separated_prefix for r in routes[1:-1]] == ["/pets/v1"]
    assert routes[1].route.prefix_rewrite == "/api" and routes[1].route.host_rewrite_literal == "127.0.0.1:9999"


def test_an_api_change_is_pushed_clusters_first_and_acks_are_tracked(app: AdminApp, client: AdsClient) -> None:
    cds, rds = subscribe(client)
    assert clusters(cds) == {}
    wait_for(lambda: gateways(app).gateways and gateways(app).gateways[0].acked_version == cds.version_info)
    api = publish(app)
    while True:  # the create (CREATED: nothing deployed) may come as its own version first
        pushed = [client.receive(), client.receive()]
        assert [p.type_url for p in pushed] == [CLUSTER_TYPE, ROUTE_TYPE]
        assert pushed[0].version_info == pushed[1].version_info != cds.version_info
        for response in pushed:
            client.ack(response)
        if f"api.{api.id}.production" in cluster_routes(pushed[0]):
            break
    listed = wait_for(lambda: [g for g in gateways(app).gateways if g.acked_version == pushed[0].version_info])
    gateway = listed[0]
    assert gateway.node_id == "test-envoy" and gateway.connected and gateway.streams == 1
    assert gateway.acked_clusters_version == gateway.acked_routes_version == pushed[0].version_info
    assert gateways(app).current_version == pushed[0].version_info


def test_a_nack_is_reported_with_the_api_it_names_and_not_resent(app: AdminApp, client: AdsClient,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    api = publish(app)
    wait_for(lambda: app.xds.state.current.api_count == 1)
    client.send(CLUSTER_TYPE)
    cds = client.receive()
    detail = f"Error adding/updating cluster(s) api.{api.id}.production: bad things"
    client.send(CLUSTER_TYPE, version="", nonce=cds.nonce, error=detail)
    gateway = wait_for(lambda: [g for g in gateways(app).gateways if g.HasField("last_nack")])[0]
    assert gateway.last_nack.type == "clusters" and gateway.last_nack.version == cds.version_info
    assert gateway.last_nack.detail == detail and list(gateway.last_nack.api_ids) == [api.id]
    assert gateway.acked_version == ""
    assert any("REJECTED" in r.message and api.id in r.message for r in caplog.records if r.levelname == "ERROR")
    with pytest.raises(TimeoutError):
        client.receive(timeout=0.5)  # the rejected version is not sent again


def test_stale_nonces_are_ignored_and_resubscription_resends(app: AdminApp, client: AdsClient) -> None:
    client.send(CLUSTER_TYPE)
    first = client.receive()
    client.send(CLUSTER_TYPE, version="", nonce="not-ours", error="stale complaint")
    with pytest.raises(TimeoutError):
        client.receive(timeout=0.5)
    assert not any(g.HasField("last_nack") for g in gateways(app).gateways)
    client.send(CLUSTER_TYPE)  # a fresh request (empty nonce), e.g. after Envoy's own retry
    assert client.receive().version_info == first.version_info


def test_retired_apis_leave_and_deleted_gateways_show_as_disconnected(app: AdminApp, gateway_token: str) -> None:
    api = publish(app)
    # Subscribe once the publish is in the served state: otherwise (on a loaded machine) the
    # stream's first answers are empty and the publish arrives as a push the test reads as
    # the deprecation's.
    wait_for(lambda: app.xds.state.current.api_count == 1)
    client = AdsClient(f"127.0.0.1:{app.grpc_port}", gateway_token, node_id="edge-1")
    subscribe(client)
    app.dispatcher.call("portcullis.admin.v1.ApiService/ChangeApiLifecycle",
                        admin_pb2.ChangeApiLifecycleRequest(id=api.id, target_state=admin_pb2.Api.DEPRECATED), ADMIN)
    assert f"api.{api.id}.production" in cluster_routes(client.receive())  # DEPRECATED is still routed
    client.receive()
    app.dispatcher.call("portcullis.admin.v1.ApiService/ChangeApiLifecycle",
                        admin_pb2.ChangeApiLifecycleRequest(id=api.id, target_state=admin_pb2.Api.RETIRED), ADMIN)
    # Its cluster stays until this Envoy has acknowledged routes that no longer name it.
    pushed, routes = client.receive(), client.receive()
    assert cluster_routes(pushed) == {f"api.{api.id}.production"}
    assert [r.name for r in route_config(routes).virtual_hosts[0].routes] == ["dot_segment_parameters", "not_deployed"]
    client.ack(routes)
    assert clusters(client.receive()) == {}
    client.close()
    gone = wait_for(lambda: [g for g in gateways(app).gateways if g.node_id == "edge-1" and not g.connected])[0]
    assert gone.HasField("disconnected_at")


def test_two_gateways_converge_on_one_version(app: AdminApp, gateway_token: str) -> None:
    first = AdsClient(f"127.0.0.1:{app.grpc_port}", gateway_token, node_id="edge-a")
    second = AdsClient(f"127.0.0.1:{app.grpc_port}", gateway_token, node_id="edge-b")
    try:
        subscribe(first)
        subscribe(second)
        publish(app)
        version = wait_for(lambda: app.xds.state.current.api_count == 1 and app.xds.state.current.version)
        for client in (first, second):
            while True:
                response = client.receive()
                client.ack(response)
                if response.type_url == ROUTE_TYPE and response.version_info == version:
                    break
        wait_for(lambda: {g.node_id: g.acked_version for g in gateways(app).gateways} == {
            "edge-a": version, "edge-b": version})
    finally:
        first.close()
        second.close()


def test_list_gateways_is_for_admins_of_the_default_organization(app: AdminApp) -> None:
    with pytest.raises(PermissionDenied):
        app.dispatcher.call(LIST_GATEWAYS, gateways_pb2.ListGatewaysRequest(),
                            Caller(subject="bob", organization_id="acme", role=Role.ADMIN))
    with pytest.raises(PermissionDenied):
        app.dispatcher.call(LIST_GATEWAYS, gateways_pb2.ListGatewaysRequest(),
                            Caller(subject="pat", organization_id="default", role=Role.PUBLISHER))


def _routed_cluster(rds) -> str:
    (route,) = [r for r in route_config(rds).virtual_hosts[0].routes if r.HasField("route")]
    return route.route.cluster


def test_an_endpoint_change_is_a_new_cluster_and_the_old_one_stays_until_the_routes_are_acked(
        app: AdminApp, client: AdsClient) -> None:
    # Envoy applies clusters before routes: an endpoint changed in place would receive
    # requests with the old route's path rewrite. The old cluster must outlive every
    # route that names it, and no longer.
    api = publish(app)
    wait_for(lambda: app.xds.state.current.api_count == 1)
    cds, rds = subscribe(client)
    old = _routed_cluster(rds)
    assert set(clusters(cds)) == {old}
    app.dispatcher.call("portcullis.admin.v1.ApiService/UpdateApi", admin_pb2.UpdateApiRequest(
        id=api.id, api=admin_pb2.Api(production_endpoint="http://127.0.0.1:9998/v2"),
        update_mask={"paths": ["production_endpoint"]}), ADMIN)
    both = client.receive()
    new_rds = client.receive()
    new = _routed_cluster(new_rds)
    assert new != old and new.rpartition(".")[0] == old.rpartition(".")[0]
    assert set(clusters(both)) == {old, new}
    assert route_config(new_rds).virtual_hosts[0].routes[1].route.prefix_rewrite == "/v2"
    client.ack(both)
    with pytest.raises(TimeoutError):
        client.receive(timeout=0.3)  # nothing more until the new routes are acknowledged
    client.ack(new_rds)
    clean = client.receive()
    assert clean.type_url == CLUSTER_TYPE and set(clusters(clean)) == {new}
    assert clean.version_info == new_rds.version_info


def test_rejected_routes_keep_the_clusters_the_envoy_still_routes_to(app: AdminApp, client: AdsClient) -> None:
    api = publish(app)
    wait_for(lambda: app.xds.state.current.api_count == 1)
    _, rds = subscribe(client)
    old = _routed_cluster(rds)
    app.dispatcher.call("portcullis.admin.v1.ApiService/UpdateApi", admin_pb2.UpdateApiRequest(
        id=api.id, api=admin_pb2.Api(production_endpoint="http://127.0.0.1:9998"),
        update_mask={"paths": ["production_endpoint"]}), ADMIN)
    both, new_rds = client.receive(), client.receive()
    client.ack(both)
    client.send(ROUTE_TYPE, nonce=new_rds.nonce, names=("gateway",), error="routes rejected")
    with pytest.raises(TimeoutError):
        client.receive(timeout=0.3)  # the old routes are still in use: the old cluster stays
    # The next change still carries the cluster those old routes name.
    app.dispatcher.call("portcullis.admin.v1.ApiService/UpdateApi", admin_pb2.UpdateApiRequest(
        id=api.id, api=admin_pb2.Api(production_endpoint="http://127.0.0.1:9997"),
        update_mask={"paths": ["production_endpoint"]}), ADMIN)
    assert old in clusters(client.receive())


def test_metrics_show_the_streams_and_the_version_each_gateway_acknowledged(app: AdminApp, client: AdsClient) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    def samples() -> dict:
        text = generate_latest(app.metrics_registry()).decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    assert samples()[("portcullis_admin_xds_streams", ())] == 0
    cds, _rds = subscribe(client)
    wait_for(lambda: gateways(app).gateways and gateways(app).gateways[0].acked_version == cds.version_info)
    seen = samples()
    assert seen[("portcullis_admin_xds_streams", ())] == 1
    assert seen[("portcullis_admin_xds_gateways_connected", ())] == 1
    assert seen[("portcullis_admin_xds_version", ())] == int(cds.version_info)
    for type_name in ("clusters", "routes"):
        assert seen[("portcullis_admin_xds_acked_version", (("node_id", "test-envoy"), ("type", type_name)))] == int(
            cds.version_info)
    assert seen[("portcullis_admin_xds_gateway_in_sync", (("node_id", "test-envoy"),))] == 1
    publish(app)  # a new version, not acknowledged: the gateway is behind
    wait_for(lambda: app.xds.registry.serving_version != cds.version_info)
    assert samples()[("portcullis_admin_xds_gateway_in_sync", (("node_id", "test-envoy"),))] == 0
    client.close()
    wait_for(lambda: samples()[("portcullis_admin_xds_streams", ())] == 0)
    assert not any(name == "portcullis_admin_xds_acked_version" for name, _ in samples())
