"""Every failure is an RFC 9457 problem document with a stable code (and the field at
fault when there is one); nothing reaches the dispatcher that should not."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_api import errors
from admin_api.transports.rest.body import MAX_BODY_BYTES
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.transports.rest.conftest import AUTH, TOKEN, FakeDispatcher

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert PROBLEM_KEYS <= problem.keys() <= PROBLEM_KEYS | {"field"}
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"https://portcullis.dev/problems/{code}"
    assert problem["title"] and problem["detail"]
    assert problem.get("field") == field
    return problem


@pytest.mark.parametrize(
    ("url", "body", "field", "says"),
    [
        ("/v1/apis", {"nme": "x"}, "nme", "unknown field 'nme'"),
        ("/v1/apis", {"resources": [{"method": "GET"}, {"opn": True}]}, "resources[1].opn", "unknown field"),
        ("/v1/apis", {"security": {"api_key": {"headr": "k"}}}, "security.api_key.headr", "ApiKeyScheme"),
        ("/v1/apis", {"productionEndpoint": "http://x"}, "productionEndpoint", "did you mean 'production_endpoint'"),
        ("/v1/apis", {"name": 1}, "name", "must be a string"),
        ("/v1/apis", {"name": None}, "name", "null"),
        ("/v1/apis", {"subscription_less": "true"}, "subscription_less", "true or false"),
        ("/v1/apis", {"resources": {}}, "resources", "array"),
        ("/v1/apis", {"resources": ["GET /menu"]}, "resources[0]", "object"),
        ("/v1/apis", {"resources": [None]}, "resources[0]", "null"),
        ("/v1/apis", {"security": []}, "security", "object"),
        ("/v1/apis/a1/api-keys", {"environment": "STAGING"}, "environment", "PRODUCTION"),
        ("/v1/apis/a1/api-keys", {"environment": 1}, "environment", "one of"),
        ("/v1/apis/a1/api-keys", {"validity_days": "5"}, "validity_days", "integer"),
        ("/v1/apis/a1/api-keys", {"validity_days": 1.5}, "validity_days", "integer"),
        ("/v1/apis/a1/api-keys", {"validity_days": True}, "validity_days", "integer"),
        ("/v1/apis/a1/api-keys", {"validity_days": 2**31}, "validity_days", "between"),
        ("/v1/apis/a1/api-keys", {"allowed_ips": "10.0.0.1"}, "allowed_ips", "array"),
        ("/v1/apis/a1/api-keys", {"allowed_ips": [1]}, "allowed_ips[0]", "string"),
        ("/v1/apis/a1/api-keys", {"api_id": "a2"}, "api_id", "disagrees with the path"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
def test_invalid_bodies_are_400_naming_the_field(
    client: TestClient, dispatcher: FakeDispatcher, url: str, body: dict, field: str, says: str
) -> None:
    problem = assert_problem(client.post(url, json=body, headers=AUTH), 400, "invalid_argument", field)
    assert says in problem["detail"]
    assert dispatcher.calls == []


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/apis/a1", {}, "update_mask"),
        ("/v1/apis/a1", {"id": "a1"}, "update_mask"),
        ("/v1/apis/a1", {"id": "other", "name": "n"}, "id"),
        ("/v1/apis/a1?update_mask=nope", {"name": "n"}, "update_mask"),
        ("/v1/apis/a1?update_mask=name,,version", {"name": "n"}, "update_mask"),
        ("/v1/apis/a1?update_mask=name&update_mask=version", {"name": "n"}, "update_mask"),
        ("/v1/apis/a1?api=x", {"name": "n"}, "api"),
        ("/v1/apis/a1", {"created_at": "yesterday"}, "created_at"),
    ],
    ids=["nothing-to-update", "only-the-path-field", "id-disagrees", "unknown-mask-path", "empty-mask-path",
         "mask-twice", "body-field-in-query", "bad-timestamp"],
)
def test_invalid_patches(client: TestClient, dispatcher: FakeDispatcher, url: str, body: dict, field: str) -> None:
    assert_problem(client.patch(url, json=body, headers=AUTH), 400, "invalid_argument", field)
    assert dispatcher.calls == []


@pytest.mark.parametrize(
    ("url", "field", "says"),
    [
        ("/v1/apis?page_size=abc", "page_size", "integer"),
        ("/v1/apis?page_size=1e2", "page_size", "integer"),
        ("/v1/apis?page_size=99999999999", "page_size", "between"),
        ("/v1/api-keys?include_revoked=yes", "include_revoked", "true or false"),
        ("/v1/apis?colour=red", "colour", "unknown query parameter"),
        ("/v1/apis?pageSize=5", "pageSize", "did you mean 'page_size'"),
        ("/v1/apis?page_size=1&page_size=2", "page_size", "more than once"),
        ("/v1/apis/a1?id=a2", "id", "given by the path"),
        ("/v1/organizations?x=1", "x", "takes none"),
    ],
    ids=["not-a-number", "exponent", "out-of-range", "bad-bool", "unknown", "camel-case", "repeated",
         "path-field", "no-parameters"],
)
def test_invalid_query_parameters(client: TestClient, dispatcher: FakeDispatcher, url: str, field: str, says: str) -> None:
    problem = assert_problem(client.get(url, headers=AUTH), 400, "invalid_argument", field)
    assert says in problem["detail"]
    assert dispatcher.calls == []


def test_query_parameters_are_refused_when_the_body_is_the_request(client: TestClient) -> None:
    assert_problem(client.post("/v1/apis?name=x", json={}, headers=AUTH), 400, "invalid_argument", "name")


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"name": ', "application/json", 400, "malformed_json"),
        (b"[1, 2]", "application/json", 400, "malformed_json"),
        (b'"name"', "application/json", 400, "malformed_json"),
        (b'{"name": NaN}', "application/json", 400, "malformed_json"),
        (b'{"name": "\xff"}', "application/json", 400, "malformed_json"),
        (b"[" * 100_000, "application/json", 400, "malformed_json"),
        (b'{"name": "a", "name": "b"}', "application/json", 400, "invalid_argument"),
        (b'{"name": "a"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"name": "a"}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"name": "a"}', "application/json; charset=latin-1", 415, "unsupported_media_type"),
        (b'{"name": "a"}', None, 415, "unsupported_media_type"),
    ],
    ids=["truncated", "array", "string", "nan", "not-utf8", "too-deep", "duplicate-key", "text-plain", "form",
         "latin-1", "no-content-type"],
)
def test_bodies_that_are_not_json_objects(
    client: TestClient, dispatcher: FakeDispatcher, content: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    field = "name" if code == "invalid_argument" else None
    assert_problem(client.post("/v1/apis", content=content, headers=headers), status, code, field)
    assert dispatcher.calls == []


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "application/merge-patch+json"])
def test_json_media_type_variants_are_accepted(client: TestClient, content_type: str) -> None:
    response = client.post("/v1/apis", content=b'{"name": "a"}', headers={**AUTH, "Content-Type": content_type})
    assert response.status_code == 201, response.text


def test_oversized_body_is_413(client: TestClient, dispatcher: FakeDispatcher) -> None:
    body = b'{"description": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = client.post("/v1/apis", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert_problem(response, 413, "payload_too_large")
    assert dispatcher.calls == []


def test_oversized_chunked_body_is_413(client: TestClient, dispatcher: FakeDispatcher) -> None:
    def chunks():
        yield b'{"description": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    response = client.post("/v1/apis", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert_problem(response, 413, "payload_too_large")
    assert dispatcher.calls == []


def test_body_on_an_operation_without_one_is_400(client: TestClient, dispatcher: FakeDispatcher) -> None:
    response = client.request("DELETE", "/v1/apis/a1", json={"id": "a1"}, headers=AUTH)
    assert_problem(response, 400, "invalid_argument")
    assert dispatcher.calls == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": f"Bearer {TOKEN} extra"},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": TOKEN},
    ],
    ids=["missing", "basic", "no-token", "blank-token", "two-words", "unknown-token", "no-scheme"],
)
def test_missing_or_invalid_credential_is_401(client: TestClient, dispatcher: FakeDispatcher, headers: dict) -> None:
    response = client.post("/v1/apis", json={"name": "x"}, headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="portcullis-admin"'
    assert dispatcher.calls == []


def test_credential_is_checked_before_the_body(client: TestClient) -> None:
    # An anonymous client learns nothing about the request schema.
    response = client.post("/v1/apis", json={"nme": "x"})
    assert_problem(response, 401, "unauthenticated")


def test_scheme_is_case_insensitive_and_token_passed_alone(client: TestClient, dispatcher: FakeDispatcher) -> None:
    response = client.get("/v1/apis", headers={"Authorization": f"bearer  {TOKEN}"})
    assert response.status_code == 200, response.text
    assert dispatcher.tokens_seen == [TOKEN]


@pytest.mark.parametrize(
    "error",
    [
        errors.InvalidArgument("name must not be empty", field="name"),
        errors.Unauthenticated("invalid credential"),
        errors.PermissionDenied("role 'sync' may not call this"),
        errors.NotFound("API 'x' not found", field="id"),
        errors.AlreadyExists("an API with this context exists", field="context"),
        errors.FailedPrecondition("CREATED → RETIRED is not allowed; allowed: PUBLISHED"),
        errors.Unavailable("database is busy"),
        errors.AdminError("generic admin error"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_admin_errors_map_to_their_status_and_reason(
    client: TestClient, dispatcher: FakeDispatcher, error: errors.AdminError
) -> None:
    dispatcher.error = error
    response = client.post("/v1/apis/a1/lifecycle", json={"target_state": "RETIRED"}, headers=AUTH)
    problem = assert_problem(response, error.http_status, error.reason, error.field)
    assert problem["detail"] == error.message
    if error.http_status == 401:
        assert response.headers["www-authenticate"] == 'Bearer realm="portcullis-admin"'


def test_unexpected_exception_is_500_without_internals(
    client: TestClient, dispatcher: FakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher.error = RuntimeError("sqlite3.OperationalError: secret-table is locked")
    with caplog.at_level(logging.ERROR, logger="admin_api.transports.rest"):
        response = client.get("/v1/apis/a1", headers=AUTH)
    problem = assert_problem(response, 500, "internal_error")
    assert "secret-table" not in response.text and "RuntimeError" not in problem["detail"]
    assert any(record.exc_info and "ApiService/GetApi" in record.getMessage() for record in caplog.records)


def test_wrong_answer_type_from_the_dispatcher_is_500(client: TestClient, dispatcher: FakeDispatcher) -> None:
    dispatcher.answers["GetApi"] = admin_pb2.Application(id="not an api")
    assert_problem(client.get("/v1/apis/a1", headers=AUTH), 500, "internal_error")


@pytest.mark.parametrize(
    "url",
    ["/", "/v1", "/v1/apis/", "/v1/apis/a1/extra", "/v2/apis", "/v1/apis//lifecycle", "/v1/APIS", "/v1/api-keys/%FF"],
    ids=["root", "prefix", "trailing-slash", "too-long", "other-version", "empty-variable", "case", "not-utf8"],
)
def test_unknown_route_is_404(client: TestClient, dispatcher: FakeDispatcher, url: str) -> None:
    assert_problem(client.get(url, headers=AUTH), 404, "route_not_found")
    assert dispatcher.calls == []


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("PUT", "/v1/apis", "GET, POST"),
        ("POST", "/v1/apis/a1", "DELETE, GET, PATCH"),
        ("GET", "/v1/apis/a1/lifecycle", "POST"),
        ("OPTIONS", "/v1/api-keys/k1/application", "DELETE, PUT"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/openapi.json", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(client: TestClient, method: str, url: str, allow: str) -> None:
    response = client.request(method, url, headers=AUTH)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("DELETE", "/v1/apis/a1", 204),
        ("DELETE", "/v1/applications/a1", 204),
        ("DELETE", "/v1/subscriptions/s1", 204),
    ],
)
def test_delete_is_204_with_empty_body(client: TestClient, method: str, url: str, status: int) -> None:
    response = client.request(method, url, headers=AUTH)
    assert response.status_code == status
    assert response.content == b""


def test_answers_are_proto_json_with_defaults_and_no_store(client: TestClient, dispatcher: FakeDispatcher) -> None:
    dispatcher.answers["GenerateApiKey"] = admin_pb2.GenerateApiKeyResponse(
        api_key=admin_pb2.ApiKey(id="k1", environment=admin_pb2.SANDBOX), value="pck_secret")
    response = client.post("/v1/apis/a1/api-keys", json={"name": "k"}, headers=AUTH)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["value"] == "pck_secret"
    key = body["api_key"]
    assert key["environment"] == "SANDBOX"
    assert key["status"] == "STATUS_UNSPECIFIED"      # enum zero value is spelled out
    assert key["allowed_ips"] == [] and key["application_id"] == ""
    assert "expires_at" not in key                    # unset message fields are left out


def test_healthz_needs_no_credential(client: TestClient, dispatcher: FakeDispatcher) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert dispatcher.tokens_seen == []
