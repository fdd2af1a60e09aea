"""CreateApi/UpdateApi validation: every bad field is refused with a message naming it."""

from __future__ import annotations

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from admin_api.errors import AlreadyExists, InvalidArgument
from admin_api.services import apis, validation
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import ADMIN, create_api

R = admin_pb2.Resource
S = admin_pb2.SecuritySchemes


@pytest.mark.parametrize(("fields", "field", "fragment"), [
    pytest.param({"name": ""}, "name", "required", id="name-missing"),
    pytest.param({"name": "bad/name"}, "name", "letters", id="name-slash"),
    pytest.param({"version": ""}, "version", "required", id="version-missing"),
    pytest.param({"version": "1 0"}, "version", "letters", id="version-space"),
    pytest.param({"context": ""}, "context", "required", id="context-missing"),
    pytest.param({"context": "pizzashack"}, "context", "start with '/'", id="context-no-slash"),
    pytest.param({"context": "/pizzashack/"}, "context", "not end with '/'", id="context-trailing-slash"),
    pytest.param({"context": "/"}, "context", "start with '/'", id="context-root"),
    pytest.param({"context": "/a//b"}, "context", "invalid segment", id="context-empty-segment"),
    pytest.param({"context": "/a/{ver}"}, "context", "invalid segment", id="context-bad-placeholder"),
    pytest.param({"context": "/a/v{version}"}, "context", "invalid segment", id="context-partial-placeholder"),
    pytest.param({"context": "/{version}/{version}"}, "context", "once", id="context-two-placeholders"),
    pytest.param({"context": "/t/acme/x"}, "context", "reserved", id="context-tenant-prefix"),
    pytest.param({"production_endpoint": "ftp://x"}, "production_endpoint", "http", id="endpoint-ftp"),
    pytest.param({"production_endpoint": "not a url"}, "production_endpoint", "", id="endpoint-garbage"),
    pytest.param({"sandbox_endpoint": "http://"}, "sandbox_endpoint", "host", id="endpoint-no-host"),
    pytest.param({"sandbox_endpoint": "http://u:p@host/"}, "sandbox_endpoint", "credentials", id="endpoint-userinfo"),
    pytest.param({"production_endpoint": "http://h:99999/"}, "production_endpoint", "not a valid URL",
                 id="endpoint-bad-port"),
    pytest.param({"production_endpoint": "", "sandbox_endpoint": ""}, "production_endpoint", "at least one",
                 id="no-endpoint"),
    pytest.param({"resources": [R(method="FETCH", path="/x")]}, "resources[0].method", "one of",
                 id="resource-bad-method"),
    pytest.param({"resources": [R(method="", path="/x")]}, "resources[0].method", "required",
                 id="resource-no-method"),
    pytest.param({"resources": [R(method="GET", path="menu")]}, "resources[0].path", "start with '/'",
                 id="resource-relative-path"),
    pytest.param({"resources": [R(method="GET", path="/a/*/b")]}, "resources[0].path", "final '*'",
                 id="resource-inner-star"),
    pytest.param({"resources": [R(method="GET", path="/a/{1x}")]}, "resources[0].path", "invalid segment",
                 id="resource-bad-param"),
    pytest.param({"resources": [R(method="GET", path="/a"), R(method="get", path="/a")]}, "resources[1]",
                 "twice", id="resource-duplicate"),
    pytest.param({"resources": [R(method="GET", path="/a", scopes=["read write"])]}, "resources[0].scopes",
                 "spaces", id="resource-bad-scope"),
    pytest.param({"security": S()}, "security", "at least one scheme", id="security-empty"),
    pytest.param({"security": S(api_key=admin_pb2.ApiKeyScheme(header="bad header"))}, "security.api_key.header",
                 "header name", id="security-bad-header"),
    pytest.param({"security": S(api_key=admin_pb2.ApiKeyScheme(query_param="a&b"))},
                 "security.api_key.query_param", "letters", id="security-bad-query-param"),
    pytest.param({"description": "x" * 2001}, "description", "longer", id="description-too-long"),
])
def test_create_api_rejects(store, fields, field, fragment):
    with pytest.raises(InvalidArgument) as caught:
        create_api(store, **fields)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_create_api_fills_defaults(store):
    api = create_api(store)
    assert api.lifecycle_state == admin_pb2.Api.CREATED
    assert [(r.method, r.path, r.open) for r in api.resources] == [("*", "/*", False)]
    assert api.security.HasField("api_key") and not api.security.HasField("oauth2")
    assert (api.security.api_key.header, api.security.api_key.query_param) == ("apikey", "apikey")


def test_create_api_normalizes_resources_and_header(store):
    api = create_api(store, resources=[R(method="get", path="/menu"), R(method="POST", path="/order/{id}", open=True),
                                       R(method="*", path="/files/*")],
                     security=S(api_key=admin_pb2.ApiKeyScheme(header="X-API-Key", disable_query_param=True)))
    assert [(r.method, r.path, r.open) for r in api.resources] == [
        ("GET", "/menu", False), ("POST", "/order/{id}", True), ("*", "/files/*", False)]
    assert api.security.api_key.header == "x-api-key"
    assert api.security.api_key.disable_query_param


@pytest.mark.parametrize(("context", "version", "organization", "expected"), [
    pytest.param("/pizzashack", "1.0.0", "default", "/pizzashack/1.0.0", id="appends-version"),
    pytest.param("/pizzashack/1.0.0", "1.0.0", "default", "/pizzashack/1.0.0", id="ends-with-version"),
    pytest.param("/pizzashack/{version}", "2.0", "default", "/pizzashack/2.0", id="placeholder-last"),
    pytest.param("/{version}/pizzashack", "v1", "default", "/v1/pizzashack", id="placeholder-first"),
    pytest.param("/pizzashack1.0.0", "1.0.0", "default", "/pizzashack1.0.0/1.0.0", id="suffix-not-segment"),
    pytest.param("/pizzashack", "1.0.0", "acme", "/t/acme/pizzashack/1.0.0", id="organization-prefix"),
    pytest.param("/p/{version}", "3", "acme", "/t/acme/p/3", id="organization-prefix-placeholder"),
])
def test_base_path(context, version, organization, expected):
    assert validation.base_path(context, version, organization) == expected


def test_base_path_is_unique_across_apis(store):
    create_api(store, name="A", version="1.0.0", context="/shop")
    with pytest.raises(AlreadyExists) as caught:
        create_api(store, name="B", version="1.0.0", context="/shop/{version}")
    assert "/shop/1.0.0" in caught.value.message and caught.value.field == "context"


def test_name_and_version_are_unique_in_organization(store):
    create_api(store, context="/one")
    with pytest.raises(AlreadyExists, match="already exists"):
        create_api(store, context="/two")


def _update(store, api_id, paths, **api_fields):
    return apis.update_api(store, admin_pb2.UpdateApiRequest(
        id=api_id, api=admin_pb2.Api(**api_fields), update_mask=FieldMask(paths=paths)), ADMIN)


@pytest.mark.parametrize(("paths", "fragment"), [
    pytest.param([], "must name the fields", id="empty-mask"),
    pytest.param(["id"], "cannot be changed", id="id"),
    pytest.param(["base_path"], "cannot be changed", id="base-path"),
    pytest.param(["lifecycle_state"], "cannot be changed", id="lifecycle-state"),
    pytest.param(["organization_id"], "cannot be changed", id="organization"),
    pytest.param(["colour"], "unknown", id="unknown-field"),
    pytest.param(["security.api_key.header"], "unknown or nested", id="nested-field"),
])
def test_update_mask_errors(store, paths, fragment):
    api = create_api(store)
    with pytest.raises(InvalidArgument) as caught:
        _update(store, api.id, paths, name="Other")
    assert caught.value.field == "update_mask" and fragment in caught.value.message


def test_update_changes_only_masked_fields_and_recomputes_base_path(store):
    api = create_api(store, description="old")
    updated = _update(store, api.id, ["version", "name"], version="2.0.0", name="Pizza", description="ignored")
    assert (updated.name, updated.version, updated.base_path, updated.description) == (
        "Pizza", "2.0.0", "/pizzashack/2.0.0", "old")
    assert apis.get_api(store, admin_pb2.GetApiRequest(id=api.id), ADMIN) == updated


def test_update_validates_new_values(store):
    api = create_api(store)
    with pytest.raises(InvalidArgument) as caught:
        _update(store, api.id, ["context"], context="no-slash")
    assert caught.value.field == "api.context"
    assert apis.get_api(store, admin_pb2.GetApiRequest(id=api.id), ADMIN).context == "/pizzashack"


def test_update_cannot_take_another_apis_base_path(store):
    create_api(store, name="A", context="/a")
    b = create_api(store, name="B", context="/b")
    with pytest.raises(AlreadyExists):
        _update(store, b.id, ["context"], context="/a")
