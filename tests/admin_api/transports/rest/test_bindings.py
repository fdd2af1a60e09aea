"""Path templates and the route table read from the http options."""

from __future__ import annotations

import pytest

from admin_api.transports.rest.bindings import BindingError, PathTemplate, load_bindings
from admin_api.transports.rest.problems import Problem
from admin_api.transports.rest.routing import Router
from portcullis.admin.v1 import admin_pb2


@pytest.mark.parametrize(
    "template",
    ["v1/apis", "/v1//apis", "/v1/apis/", "/v1/{id}/{id}", "/v1/{a-b}", "/v1/x{id}", "/v1/*", " /v1"],
)
def test_bad_templates_are_refused_at_build_time(template: str) -> None:
    with pytest.raises(BindingError):
        PathTemplate.parse(template)


@pytest.mark.parametrize(
    ("raw_path", "values"),
    [
        ("/v1/apis/abc/api-keys", {"api_id": "abc"}),
        ("/v1/apis/a%2Fb/api-keys", {"api_id": "a/b"}),
        ("/v1/apis/%61pi/api-keys", {"api_id": "api"}),
        ("/v1/%61pis/x/api-keys", {"api_id": "x"}),
        ("/v1/apis//api-keys", None),
        ("/v1/apis/%FF/api-keys", None),
        ("/v1/apis/x/api-keys/y", None),
        ("/v1/apis/x", None),
    ],
)
def test_template_matching(raw_path: str, values: dict[str, str] | None) -> None:
    template = PathTemplate.parse("/v1/apis/{api_id}/api-keys")
    assert template.match(raw_path[1:].split("/")) == values


def test_literal_segments_win_over_variables() -> None:
    router: Router[str] = Router()
    router.add("GET", PathTemplate.parse("/v1/apis/{id}"), "get")
    router.add("GET", PathTemplate.parse("/v1/apis/search"), "search")
    assert router.resolve("GET", "/v1/apis/search") == ("search", {})
    assert router.resolve("GET", "/v1/apis/other") == ("get", {"id": "other"})
    with pytest.raises(Problem) as raised:
        router.resolve("POST", "/v1/apis/search")
    assert raised.value.status == 405 and raised.value.headers == {"Allow": "GET"}


def test_admin_bindings() -> None:
    bindings = {b.method_name: b for b in load_bindings(admin_pb2)}
    assert len(bindings) == 31
    organization = bindings["UpdateOrganization"]
    assert (organization.http_method, organization.body, organization.success_status) == ("PATCH", "organization", 200)
    credential = bindings["CreateOrganizationAdminCredential"]
    assert (credential.http_method, credential.path.template, credential.body, credential.success_status) == (
        "POST", "/v1/organizations/{id}/admin-credential", "*", 201)
    assert [f.name for f in credential.path_fields] == ["id"]
    update = bindings["UpdateApi"]
    assert (update.http_method, update.body, update.success_status) == ("PATCH", "api", 200)
    assert update.mask_field is not None and [f.name for f in update.query_fields] == ["update_mask"]
    assert bindings["CreateApi"].query_fields == ()
    assert bindings["DeleteApi"].success_status == 204 and bindings["DeleteApi"].response_is_empty
    assert bindings["GenerateApiKey"].full_name == "portcullis.admin.v1.ApiKeyService/GenerateApiKey"
    assert [f.name for f in bindings["GenerateApiKey"].path_fields] == ["api_id"]
    assert bindings["ChangeApiLifecycle"].mask_field is None  # only PATCH infers a mask
    definition = bindings["SetApiDefinition"]
    assert (definition.http_method, definition.body, [f.name for f in definition.path_fields]) == ("PUT", "*", ["id"])
    assert bindings["GetApiDefinition"].http_method == "GET" and not bindings["GetApiDefinition"].query_fields
    assert bindings["DeleteApiDefinition"].success_status == 204 and bindings["DeleteApiDefinition"].response_is_empty
