import json

import pytest
from google.rpc import code_pb2
from portcullis.admin.v1 import admin_pb2

from authz_server import denials
from authz_server.envoy_adapter import ENVIRONMENT_HEADER, deny_response, to_check_response, to_request_context
from authz_server.index.api_keys import KeyEnvironment
from authz_server.pipeline import Allow, decide


from .checks import check_request, header_dict
from .factories import NOW, PIZZA_BASE, PROD_KEY, index_of, make_api, pizza_world


def test_request_context_from_headers_map():
    context = to_request_context(
        check_request(PIZZA_BASE + "/menu?apikey=abc&x=1", method="get", headers={"ApiKey": "v", "Referer": "https://a/"})
    )
    assert context.method == "GET"
    assert context.raw_path == PIZZA_BASE + "/menu"
    assert context.segments == ("pizzashack", "1.0.0", "menu")
    assert context.query_values("apikey") == ("abc",)
    assert context.header("apikey") == "v" and context.header("referer") == "https://a/"
    assert str(context.client_ip) == "203.0.113.7" and context.request_id == "req-1"


def test_request_context_from_header_map_keeps_repeated_values():
    context = to_request_context(check_request(PIZZA_BASE + "/menu", header_map=[("apikey", "a"), ("apikey", "b")]))
    assert context.header_values("apikey") == ("a", "b")


def test_trusted_hops_use_forwarded_for():
    request = check_request("/x", headers={"x-forwarded-for": "198.51.100.9, 10.0.0.2"}, peer="10.0.0.1")
    assert str(to_request_context(request, trusted_hops=2).client_ip) == "198.51.100.9"
    assert str(to_request_context(request, trusted_hops=0).client_ip) == "10.0.0.1"


@pytest.mark.parametrize("path", ["/a/%zz", "/a/../b", "/a?apikey=%", "no-slash"], ids=lambda v: v)
def test_malformed_request_is_bad_request(path):
    with pytest.raises(denials.BadRequest):
        to_request_context(check_request(path))


def _allow_response(path, headers):
    index = index_of(*pizza_world())
    context = to_request_context(check_request(path, headers=headers))
    decision = decide(context, index, NOW)
    assert isinstance(decision, Allow), decision
    return to_check_response(decision, context)


def test_allow_sets_environment_and_strips_credentials_and_reserved_headers():
    response = _allow_response(
        PIZZA_BASE + "/menu?apikey=" + PROD_KEY + "&api%6Bey=" + PROD_KEY,
        {"apikey": PROD_KEY, "x-portcullis-environment": "sandbox", "X-Portcullis-Admin": "1", "accept": "*/*"},
    )
    assert response.status.code == code_pb2.OK
    ok = response.ok_response
    assert header_dict(ok.headers) == {"x-portcullis-environment": ["production"]}
    assert ok.headers[0].append_action == ok.headers[0].OVERWRITE_IF_EXISTS_OR_ADD
    assert set(ok.headers_to_remove) == {"apikey", "x-portcullis-admin"}
    assert list(ok.query_parameters_to_remove) == ["apikey", "api%6Bey"]
    metadata = dict(response.dynamic_metadata)
    assert metadata == {"api_id": "api-pizza", "api_key_id": "key-prod", "application_id": "app-1",
                        "environment": "production", "reason": "allowed", "resource": "GET /menu", "credential_kind": "api_key",
                        "key_manager_id": "", "consumer_key": ""}


def test_allow_on_open_resource_still_strips_key_header():
    response = _allow_response(PIZZA_BASE + "/open", {"apikey": "whatever"})
    assert "apikey" in response.ok_response.headers_to_remove
    assert response.dynamic_metadata["environment"] == "production"


def test_query_param_disabled_is_not_removed():
    api = make_api(security=admin_pb2.SecuritySchemes(api_key=admin_pb2.ApiKeyScheme(header="X-Key", disable_query_param=True)))
    index = index_of(api)
    context = to_request_context(check_request(PIZZA_BASE + "/open"))
    response = to_check_response(decide(context, index, NOW), context)
    assert list(response.ok_response.query_parameters_to_remove) == []
    assert list(response.ok_response.headers_to_remove) == ["x-key"]


def test_deny_response_body_headers_and_status():
    denial = denials.ApiKeyRevoked(api_key_id="key-prod")
    denial.challenges = ('Bearer realm="portcullis"', 'APIKey realm="portcullis", header="apikey"')
    response = deny_response(denial)
    assert response.status.code == code_pb2.PERMISSION_DENIED
    denied = response.denied_response
    assert denied.status.code == 401
    assert json.loads(denied.body) == {"code": "api_key_revoked", "message": "The API key has been revoked."}
    headers = header_dict(denied.headers)
    assert headers["content-type"] == ["application/json"]
    assert headers["x-portcullis-reason"] == ["api_key_revoked"]
    assert headers["www-authenticate"] == list(denial.challenges)
    assert response.dynamic_metadata["reason"] == "api_key_revoked"
    assert response.dynamic_metadata["api_key_id"] == "key-prod"


@pytest.mark.parametrize("cls", denials.ALL_DENIALS, ids=lambda c: c.code)
def test_every_denial_maps_to_its_status(cls):
    response = deny_response(cls())
    assert response.denied_response.status.code == cls.http_status
    assert json.loads(response.denied_response.body)["code"] == cls.code


def test_the_environment_header_selects_the_backend_in_envoys_routes():
    # authz_server says the environment in ENVIRONMENT_HEADER; the routes admin_api sends
    # Envoy over xDS must match the same header and values, each to its own cluster.
    from admin_api.xds.translate import TlsTrust, translate
    from portcullis.admin.v1 import admin_pb2

    api = admin_pb2.Api(id="a1", base_path="/shop/v1", lifecycle_state=admin_pb2.Api.PUBLISHED,
                        production_endpoint="http://127.0.0.1:1", sandbox_endpoint="http://127.0.0.1:2")
    translated = translate(api, TlsTrust("/unused"))
    cluster_of_environment = {c.name.split(".")[2]: c.name for c in translated.clusters}
    routes = translated.routes
    by_environment = {}
    for route in routes:
        (header,) = route.match.headers
        assert header.name == ENVIRONMENT_HEADER
        by_environment[header.string_match.exact] = route.route.cluster
    assert by_environment == {e.value: cluster_of_environment[e.value] for e in KeyEnvironment}
    assert {e.value for e in KeyEnvironment} == {KeyEnvironment.SANDBOX.value, KeyEnvironment.PRODUCTION.value}
