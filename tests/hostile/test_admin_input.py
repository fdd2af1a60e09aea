"""Malformed, mistyped, huge and unknown input to the admin API, on gRPC and REST alike:
a clear client error (INVALID_ARGUMENT / 4xx), never a server error, and the database
exactly as it was (every table's rows, the change log included)."""

from __future__ import annotations

import json
from typing import Any, Iterator

import grpc
import pytest

from portcullis.admin.v1 import admin_pb2

from .admin_world import AdminWorld, start_admin_world, stop_admin_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module) -> Iterator[AdminWorld]:
    admin = start_admin_world(tmp_path_factory.mktemp("admin-input"))
    yield admin
    stop_admin_world(admin)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
        yield patch


CREATE_API = "/portcullis.admin.v1.ApiService/CreateApi"
GOOD_API = {"name": "Hostile", "version": "1.0.0", "context": "/hostile", "production_endpoint": "http://127.0.0.1:8091"}


def _good_request(**overrides: Any) -> admin_pb2.CreateApiRequest:
    return admin_pb2.CreateApiRequest(**{**GOOD_API, **overrides})


def _with_resources(count: int) -> admin_pb2.CreateApiRequest:
    request = _good_request()
    request.resources.extend(admin_pb2.Resource(method="GET", path=f"/r{i}") for i in range(count))
    return request


def _unknown_in_resource() -> bytes:
    request = _good_request()
    resource = admin_pb2.Resource(method="GET", path="/menu").SerializeToString() + b"\xb8\x3e\x01"
    # field 8 (resources), length-delimited, carrying a Resource with unknown field 999
    number = admin_pb2.CreateApiRequest.DESCRIPTOR.fields_by_name["resources"].number
    return request.SerializeToString() + bytes([number << 3 | 2, len(resource)]) + resource


# (id, raw request bytes, expected status code)
GRPC_CASES = [
    ("not-protobuf", lambda: b"\xff\xff\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT),
    ("truncated", lambda: _good_request(description="x" * 100).SerializeToString()[:20], grpc.StatusCode.INVALID_ARGUMENT),
    ("bad-utf8-string", lambda: b"\x0a\x02\xff\xfe", grpc.StatusCode.INVALID_ARGUMENT),
    ("unknown-field", lambda: _good_request().SerializeToString() + b"\xb8\x3e\x01", grpc.StatusCode.INVALID_ARGUMENT),
    ("unknown-field-nested", _unknown_in_resource, grpc.StatusCode.INVALID_ARGUMENT),
    # Another message's bytes: CreateApplicationRequest is "name" only, the API is incomplete.
    ("mismatched-message", lambda: admin_pb2.CreateApplicationRequest(name="app").SerializeToString(),
     grpc.StatusCode.INVALID_ARGUMENT),
    # field 1 (name) as a varint: a wrong wire type is an unknown field for protobuf
    ("wrong-wire-type", lambda: b"\x08\x05" + _good_request(name="").SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
    ("huge-name", lambda: _good_request(name="x" * 3_000_000).SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
    ("huge-context", lambda: _good_request(context="/" + "c" * 1_000_000).SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
    ("huge-description", lambda: _good_request(description="x" * 3_000_000).SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
    ("huge-repeated", lambda: _with_resources(100_000).SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
    ("over-the-message-limit", lambda: _good_request(description="x" * 5_000_000).SerializeToString(),
     grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("nul-in-name", lambda: _good_request(name="Hos\x00tile").SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
    ("enum-out-of-range", lambda: _good_request().SerializeToString() + b"\x48\x63", grpc.StatusCode.INVALID_ARGUMENT),
]


@pytest.mark.parametrize(("build", "expected"), [(b, e) for _, b, e in GRPC_CASES], ids=[i for i, _, _ in GRPC_CASES])
def test_grpc_refuses_hostile_bytes_and_changes_nothing(world: AdminWorld, build, expected):
    before = world.fingerprint()
    with pytest.raises(grpc.RpcError) as raised:
        world.raw_unary(CREATE_API)(build(), metadata=world.metadata, timeout=20)
    assert raised.value.code() == expected, raised.value.details()
    assert len(raised.value.details() or "") <= 2000, "an error message must not echo unbounded input"
    assert world.fingerprint() == before


def test_grpc_hostile_bytes_without_a_credential_are_unauthenticated(world: AdminWorld):
    with pytest.raises(grpc.RpcError) as raised:
        world.raw_unary(CREATE_API)(b"\xff\xff\xff", timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_control_request_is_accepted(world: AdminWorld):
    """The control row: the same bytes without the hostile part create the API."""
    answer = world.raw_unary(CREATE_API)(_good_request(name="Control", context="/control").SerializeToString(),
                                         metadata=world.metadata, timeout=10)
    assert admin_pb2.Api.FromString(answer).base_path == "/control/1.0.0"


# --- REST ------------------------------------------------------------------------------------

JSON = {"content-type": "application/json"}

# (id, method, path, raw body, extra headers, expected status)
REST_CASES: list[tuple[str, str, str, bytes, dict[str, str], int]] = [
    ("not-json", "POST", "/v1/apis", b"{not json", JSON, 400),
    ("truncated-json", "POST", "/v1/apis", json.dumps(GOOD_API).encode()[:-5], JSON, 400),
    ("json-array", "POST", "/v1/apis", b"[1, 2]", JSON, 400),
    ("json-string", "POST", "/v1/apis", b'"api"', JSON, 400),
    ("json-null", "POST", "/v1/apis", b"null", JSON, 400),
    ("empty-body", "POST", "/v1/apis", b"", JSON, 400),
    ("not-utf8", "POST", "/v1/apis", b'{"name": "\xff\xfe"}', JSON, 400),
    ("nan", "POST", "/v1/apis", b'{"name": NaN}', JSON, 400),
    ("duplicate-keys", "POST", "/v1/apis", b'{"name": "a", "name": "b", "version": "1", "context": "/dup"}', JSON, 400),
    ("deep-nesting", "POST", "/v1/apis", b'{"security": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", JSON, 400),
    ("unknown-field", "POST", "/v1/apis", json.dumps({**GOOD_API, "is_admin": True}).encode(), JSON, 400),
    ("unknown-nested-field", "POST", "/v1/apis",
     json.dumps({**GOOD_API, "resources": [{"method": "GET", "path": "/m", "x": 1}]}).encode(), JSON, 400),
    ("camel-case-name", "POST", "/v1/apis", json.dumps({**GOOD_API, "productionEndpoint": "http://x"}).encode(), JSON, 400),
    ("wrong-type-string", "POST", "/v1/apis", json.dumps({**GOOD_API, "name": 5}).encode(), JSON, 400),
    ("wrong-type-bool", "POST", "/v1/apis", json.dumps({**GOOD_API, "subscription_less": "yes"}).encode(), JSON, 400),
    ("wrong-type-array", "POST", "/v1/apis", json.dumps({**GOOD_API, "resources": {"method": "GET"}}).encode(), JSON, 400),
    ("null-field", "POST", "/v1/apis", json.dumps({**GOOD_API, "description": None}).encode(), JSON, 400),
    ("enum-unknown", "POST", "/v1/apis/x/lifecycle", b'{"target_state": "LIVE"}', JSON, 400),
    ("huge-name", "POST", "/v1/apis", json.dumps({**GOOD_API, "name": "x" * 900_000}).encode(), JSON, 400),
    ("huge-repeated", "POST", "/v1/apis",
     json.dumps({**GOOD_API, "resources": [{"method": "GET", "path": f"/r{i}"} for i in range(20_000)]}).encode(), JSON, 400),
    ("over-the-body-limit", "POST", "/v1/apis", json.dumps({**GOOD_API, "description": "x" * 2_000_000}).encode(), JSON, 413),
    ("huge-integer", "POST", "/v1/apis/x/api-keys", b'{"name": "k", "validity_days": 1e400}', JSON, 400),
    ("integer-overflow", "POST", "/v1/apis/x/api-keys", b'{"name": "k", "validity_days": 99999999999999999999}', JSON, 400),
    ("negative-integer", "POST", "/v1/apis/x/api-keys", b'{"name": "k", "validity_days": -1}', JSON, 400),
    ("float-for-integer", "POST", "/v1/apis/x/api-keys", b'{"name": "k", "validity_days": 1.5}', JSON, 400),
    ("wrong-content-type", "POST", "/v1/apis", json.dumps(GOOD_API).encode(), {"content-type": "text/plain"}, 415),
    ("form-content-type", "POST", "/v1/apis", b"name=x&version=1", {"content-type": "application/x-www-form-urlencoded"}, 415),
    ("query-page-size-huge", "GET", "/v1/apis?page_size=99999999999999999999", b"", {}, 400),
    ("query-page-size-text", "GET", "/v1/apis?page_size=ten", b"", {}, 400),
    ("query-unknown-parameter", "GET", "/v1/apis?is_admin=true", b"", {}, 400),
    ("path-id-huge", "GET", "/v1/apis/" + "x" * 60_000, b"", {}, 404),
    ("path-id-newline", "DELETE", "/v1/api-keys/%0Ax/application", b"", {}, 404),
    ("path-newline-unknown-route", "GET", "/v1/%0A", b"", {}, 404),
    ("path-id-traversal", "GET", "/v1/apis/..%2F..%2Fapi-keys", b"", {}, 404),
    ("method-not-allowed", "PUT", "/v1/apis", json.dumps(GOOD_API).encode(), JSON, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"),
                         [case[1:] for case in REST_CASES], ids=[case[0] for case in REST_CASES])
def test_rest_refuses_hostile_bodies_and_changes_nothing(world: AdminWorld, method, path, body, headers, status):
    before = world.fingerprint()
    response = world.rest.request(method, path, content=body, headers={**world.auth, **headers})
    assert response.status_code == status, response.text[:500]
    problem = response.json()
    assert problem["status"] == status and problem.get("detail"), problem
    assert len(response.content) <= 4000, "an error must not echo unbounded input"
    assert world.fingerprint() == before
