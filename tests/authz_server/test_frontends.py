"""The real gRPC server on 127.0.0.1, port 0, on both front ends: Check, health and (grpcio)
reflection, asked by grpcio's client."""

import json

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2_grpc
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from authz_server.check_servicer import AuthorizationService
from authz_server.frontends import AUTHORIZATION_SERVICE, require_upb, start_server
from authz_server.index import PolicyStore
from authz_server.settings import FRONTENDS

from .checks import check_request
from .factories import NOW, PIZZA_BASE, PROD_KEY, entity, pizza_world


@pytest.fixture(params=FRONTENDS)
def served(request):
    store = PolicyStore()
    running = start_server(store, port=0, workers=4, service=AuthorizationService(store, clock=lambda: NOW),
                           frontend=request.param)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield store, channel
    channel.close()
    running.stop(grace=None)


def _check(channel, request):
    return external_auth_pb2_grpc.AuthorizationStub(channel).Check(request, timeout=10)


def _health(channel, service=""):
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def test_not_ready_then_serving(served):
    store, channel = served
    assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    response = _check(channel, check_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY}))
    assert response.denied_response.status.code == 503
    store.apply_snapshot([entity(r) for r in pizza_world()], 1)
    assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
    assert _health(channel, AUTHORIZATION_SERVICE) == health_pb2.HealthCheckResponse.SERVING


def test_check_allows_and_denies(served):
    store, channel = served
    store.apply_snapshot([entity(r) for r in pizza_world()], 1)
    allowed = _check(channel, check_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY}))
    assert allowed.status.code == code_pb2.OK
    assert allowed.ok_response.headers[0].header.value == "production"
    denied = _check(channel, check_request(PIZZA_BASE + "/menu", headers={"apikey": "pck_wrong"}))
    assert denied.status.code == code_pb2.PERMISSION_DENIED
    assert json.loads(denied.denied_response.body)["code"] == "api_key_invalid"


def test_check_answers_bad_request_and_never_raises(served):
    store, channel = served
    store.apply_snapshot([entity(r) for r in pizza_world()], 1)
    response = _check(channel, check_request(PIZZA_BASE + "/%zz"))
    assert response.denied_response.status.code == 400
    empty = _check(channel, check_request(""))
    assert empty.status.code == code_pb2.PERMISSION_DENIED


def test_reflection_lists_the_services():
    store = PolicyStore()
    running = start_server(store, port=0, workers=2, frontend="grpcio")
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        _assert_reflection_lists_the_services(channel)
    finally:
        channel.close()
        running.stop(grace=None)


def test_the_native_front_end_has_no_reflection_and_says_so(served):
    _, channel = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    try:
        list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    else:  # the grpcio front end answers
        pass


def test_health_of_an_unknown_service_is_not_found(served):
    _, channel = served
    with pytest.raises(grpc.RpcError) as raised:
        _health(channel, "no.such.Service")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def _assert_reflection_lists_the_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {service.name for response in responses for service in response.list_services_response.service}
    assert {AUTHORIZATION_SERVICE, "grpc.health.v1.Health"} <= names


def test_upb_backend_is_required(monkeypatch):
    from google.protobuf.internal import api_implementation

    require_upb()
    monkeypatch.setattr(api_implementation, "Type", lambda: "python")
    with pytest.raises(RuntimeError, match="upb"):
        require_upb()


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_check_validates_a_bearer_token_with_the_servers_token_services(provider, tokens, frontend):
    """On the native front end the first token needs the JWKS: the call moves to a thread."""
    import time

    from .oauth import claims, make_key_manager, mint, oauth_world

    store = PolicyStore()
    running = start_server(store, port=0, workers=2, service=AuthorizationService(store, tokens=tokens), frontend=frontend)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        store.apply_snapshot([entity(r) for r in oauth_world(make_key_manager(jwks_uri=provider.jwks_uri))], 1)
        response = _check(channel, check_request(PIZZA_BASE + "/menu", headers={"authorization": f"Bearer {mint()}"}))
        assert response.status.code == code_pb2.OK, response.denied_response.body
        assert response.dynamic_metadata["credential_kind"] == "oauth2_jwt"
        expired = mint(claims(exp=int(time.time()) - 3600))
        response = _check(channel, check_request(PIZZA_BASE + "/menu", headers={"authorization": f"Bearer {expired}"}))
        assert response.denied_response.status.code == 401
        assert json.loads(response.denied_response.body)["code"] == "token_expired"
    finally:
        channel.close()
        running.stop(grace=None)
