"""Path variables, JSON bodies and query strings → the request message the dispatcher gets."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format
from starlette.testclient import TestClient

from portcullis.admin.v1 import admin_pb2
from tests.admin_api.transports.rest.conftest import AUTH, CALLER, PACKAGE, FakeDispatcher


def expect(cls: type, fields: dict[str, Any]):
    return json_format.ParseDict(fields, cls())


@pytest.mark.parametrize(
    ("method", "url", "rpc", "expected"),
    [
        ("GET", "/v1/apis/abc", "ApiService/GetApi", expect(admin_pb2.GetApiRequest, {"id": "abc"})),
        ("GET", "/v1/apis/a%2Fb%20c", "ApiService/GetApi", expect(admin_pb2.GetApiRequest, {"id": "a/b c"})),
        ("GET", "/v1/apis/caf%C3%A9", "ApiService/GetApi", expect(admin_pb2.GetApiRequest, {"id": "café"})),
        ("DELETE", "/v1/apis/abc", "ApiService/DeleteApi", expect(admin_pb2.DeleteApiRequest, {"id": "abc"})),
        ("GET", "/v1/api-keys/k1", "ApiKeyService/GetApiKey", expect(admin_pb2.GetApiKeyRequest, {"id": "k1"})),
        ("POST", "/v1/api-keys/k1/regenerate", "ApiKeyService/RegenerateApiKey",
         expect(admin_pb2.RegenerateApiKeyRequest, {"id": "k1"})),
        ("POST", "/v1/api-keys/k1/revoke", "ApiKeyService/RevokeApiKey",
         expect(admin_pb2.RevokeApiKeyRequest, {"id": "k1"})),
        ("DELETE", "/v1/api-keys/k1/application", "ApiKeyService/DissociateApiKey",
         expect(admin_pb2.DissociateApiKeyRequest, {"id": "k1"})),
        ("GET", "/v1/subscriptions/s-1", "SubscriptionService/GetSubscription",
         expect(admin_pb2.GetSubscriptionRequest, {"id": "s-1"})),
        ("GET", "/v1/organizations", "OrganizationService/ListOrganizations",
         admin_pb2.ListOrganizationsRequest()),
    ],
    ids=["get", "encoded-slash-and-space", "utf8", "delete", "api-key", "regenerate", "revoke",
         "dissociate", "subscription", "no-fields"],
)
def test_path_variables_fill_request_fields(
    client: TestClient, dispatcher: FakeDispatcher, method: str, url: str, rpc: str, expected
) -> None:
    response = client.request(method, url, headers=AUTH)
    assert response.status_code < 300, response.text
    assert dispatcher.last.method == f"{PACKAGE}.{rpc}"
    assert dispatcher.last.request == expected
    assert dispatcher.last.caller == CALLER


@pytest.mark.parametrize(
    ("method", "url", "body", "expected"),
    [
        ("POST", "/v1/apis", {
            "name": "PizzaShack", "version": "1.0.0", "context": "/pizzashack",
            "production_endpoint": "http://127.0.0.1:8091",
            "resources": [{"method": "GET", "path": "/menu", "open": True, "scopes": ["read"]}],
            "security": {"api_key": {"header": "x-key"}}, "subscription_less": True,
        }, expect(admin_pb2.CreateApiRequest, {
            "name": "PizzaShack", "version": "1.0.0", "context": "/pizzashack",
            "production_endpoint": "http://127.0.0.1:8091",
            "resources": [{"method": "GET", "path": "/menu", "open": True, "scopes": ["read"]}],
            "security": {"api_key": {"header": "x-key"}}, "subscription_less": True,
        })),
        ("POST", "/v1/apis/api-1/api-keys", {
            "name": "k", "environment": "SANDBOX", "validity_days": 30,
            "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"], "allowed_referrers": ["*.example.com/*"],
        }, expect(admin_pb2.GenerateApiKeyRequest, {
            "api_id": "api-1", "name": "k", "environment": "SANDBOX", "validity_days": 30,
            "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"], "allowed_referrers": ["*.example.com/*"],
        })),
        ("POST", "/v1/apis/api-1/api-keys", {"api_id": "api-1", "name": "same id in body"},
         expect(admin_pb2.GenerateApiKeyRequest, {"api_id": "api-1", "name": "same id in body"})),
        ("POST", "/v1/apis/a1/lifecycle", {"target_state": "PUBLISHED"},
         expect(admin_pb2.ChangeApiLifecycleRequest, {"id": "a1", "target_state": "PUBLISHED"})),
        ("PUT", "/v1/api-keys/k1/application", {"application_id": "app-1"},
         expect(admin_pb2.AssociateApiKeyRequest, {"id": "k1", "application_id": "app-1"})),
        ("POST", "/v1/subscriptions", {"application_id": "app", "api_id": "api", "status": "ON_HOLD"},
         expect(admin_pb2.CreateSubscriptionRequest, {"application_id": "app", "api_id": "api", "status": "ON_HOLD"})),
        ("POST", "/v1/organizations", {"id": "acme", "name": "Acme"},
         expect(admin_pb2.CreateOrganizationRequest, {"id": "acme", "name": "Acme"})),
        ("PATCH", "/v1/applications/app-1", {"throttling_tier": "Gold"},
         expect(admin_pb2.UpdateApplicationRequest, {
             "id": "app-1", "application": {"throttling_tier": "Gold"}, "update_mask": "throttlingTier"})),
    ],
    ids=["create-api-nested", "generate-key-path-and-body", "body-repeats-path-value", "lifecycle-enum",
         "associate-put", "create-subscription", "create-organization", "patch-sub-message"],
)
def test_json_body_fills_the_request(
    client: TestClient, dispatcher: FakeDispatcher, method: str, url: str, body: dict, expected
) -> None:
    response = client.request(method, url, json=body, headers=AUTH)
    assert response.status_code < 300, response.text
    assert dispatcher.last.request == expected


def test_empty_body_reads_as_empty_object(client: TestClient, dispatcher: FakeDispatcher) -> None:
    response = client.post("/v1/organizations", headers=AUTH)
    assert response.status_code == 201, response.text
    assert dispatcher.last.request == admin_pb2.CreateOrganizationRequest()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/v1/apis?page_size=10&page_token=abc&organization_id=acme",
         expect(admin_pb2.ListApisRequest, {"page_size": 10, "page_token": "abc", "organization_id": "acme"})),
        ("/v1/api-keys?api_id=a1&include_revoked=true",
         expect(admin_pb2.ListApiKeysRequest, {"api_id": "a1", "include_revoked": True})),
        ("/v1/api-keys?include_revoked=false", admin_pb2.ListApiKeysRequest()),
        ("/v1/applications?owner=alice%40example.com",
         expect(admin_pb2.ListApplicationsRequest, {"owner": "alice@example.com"})),
        ("/v1/subscriptions?application_id=&api_id=x",
         expect(admin_pb2.ListSubscriptionsRequest, {"api_id": "x"})),
        ("/v1/apis?page_size=-1", expect(admin_pb2.ListApisRequest, {"page_size": -1})),
    ],
    ids=["list-apis", "bool-true", "bool-false", "percent-decoded", "blank-value", "negative-int"],
)
def test_query_parameters_fill_scalar_fields(
    client: TestClient, dispatcher: FakeDispatcher, url: str, expected
) -> None:
    response = client.get(url, headers=AUTH)
    assert response.status_code == 200, response.text
    assert dispatcher.last.request == expected


@pytest.mark.parametrize(
    ("url", "body", "mask"),
    [
        ("/v1/apis/a1", {"name": "n", "description": "d"}, ["name", "description"]),
        ("/v1/apis/a1", {"description": "d", "name": "n"}, ["name", "description"]),
        ("/v1/apis/a1", {"id": "a1", "resources": []}, ["resources"]),
        ("/v1/apis/a1?update_mask=description", {"name": "n", "description": "d"}, ["description"]),
        ("/v1/apis/a1?update_mask=productionEndpoint,subscription_less", {"name": "n"},
         ["production_endpoint", "subscription_less"]),
        ("/v1/apis/a1?update_mask=security.api_key", {"security": {}}, ["security.api_key"]),
        ("/v1/apis/a1?update_mask=", {"version": "2"}, ["version"]),
        ("/v1/subscriptions/s1", {"status": "BLOCKED", "tier": "Gold"}, ["tier", "status"]),
        ("/v1/applications/app1", {"description": ""}, ["description"]),
    ],
    ids=["inferred", "inferred-declaration-order", "path-field-not-in-mask", "given-in-query",
         "camel-case-accepted", "nested-path", "empty-means-absent", "subscription", "clear-a-field"],
)
def test_patch_update_mask(
    client: TestClient, dispatcher: FakeDispatcher, url: str, body: dict, mask: list[str]
) -> None:
    response = client.patch(url, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert list(dispatcher.last.request.update_mask.paths) == mask


def test_patch_body_lands_in_the_named_sub_message(client: TestClient, dispatcher: FakeDispatcher) -> None:
    response = client.patch("/v1/apis/a1", json={"lifecycle_state": "BLOCKED", "resources": [
        {"method": "GET", "path": "/x"}]}, headers=AUTH)
    assert response.status_code == 200, response.text
    request = dispatcher.last.request
    assert request.id == "a1"
    assert request.api.lifecycle_state == admin_pb2.Api.BLOCKED
    assert [r.path for r in request.api.resources] == ["/x"]
