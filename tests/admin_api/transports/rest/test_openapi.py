"""The OpenAPI document: complete (every RPC with an http option), self-consistent (every
$ref resolves, every schema is valid JSON Schema 2020-12) and true to the server (real
answers validate against it; bodies the server refuses, it refuses too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.testclient import TestClient

from admin_api.transports.rest.bindings import load_bindings
from admin_api.transports.rest.openapi import build_openapi
from admin_api.schema import ADMIN_PROTO_MODULES, admin_services
from portcullis.admin.v1 import admin_pb2
from portcullis.options.v1 import http_pb2
from tests.admin_api.transports.rest.conftest import AUTH, FakeDispatcher

BINDINGS = load_bindings(*ADMIN_PROTO_MODULES)
DOC = build_openapi(BINDINGS)
SCHEMAS = DOC["components"]["schemas"]
DOC_URI = "urn:portcullis:openapi"
REGISTRY = Registry().with_resource(DOC_URI, Resource(contents=DOC, specification=DRAFT202012))


def validator(ref: str) -> Draft202012Validator:
    """A validator for a schema of the document, given by its local ref ("#/components/...")."""
    return Draft202012Validator(
        {"$ref": DOC_URI + ref}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def http_rpcs() -> Iterator[tuple[str, str, http_pb2.HttpRule]]:
    """(service, method, rule) read straight from the descriptors, independently of the app."""
    for service in admin_services():
        for method in service.methods:
            if method.GetOptions().HasExtension(http_pb2.http):
                yield service.name, method.name, method.GetOptions().Extensions[http_pb2.http]


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def resolve(ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = DOC
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_document_header_and_security() -> None:
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    assert DOC["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert DOC["security"] == [{"bearerAuth": []}]
    assert DOC["paths"]["/healthz"]["get"]["security"] == []
    assert DOC["paths"]["/openapi.json"]["get"]["security"] == []


def test_every_rpc_with_an_http_option_is_an_operation() -> None:
    expected = list(http_rpcs())
    # admin.proto's own 31; the other modules of ADMIN_PROTO_MODULES add theirs.
    assert len([e for e in expected if e[0] in admin_pb2.DESCRIPTOR.services_by_name]) == 31
    for service, method, rule in expected:
        operation = DOC["paths"][rule.path][rule.method.lower()]
        assert operation["operationId"] == method
        assert operation["tags"] == [service]
    documented = [op for path, _, op in operations() if path.startswith("/v1/")]
    assert len(documented) == len(expected)
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids))


def test_every_ref_resolves() -> None:
    refs = [node["$ref"] for node in walk(DOC) if isinstance(node, dict) and "$ref" in node]
    assert "#/components/schemas/Api" in refs
    for ref in refs:
        assert resolve(ref), ref


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_component_schemas_are_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(SCHEMAS[name])


def test_object_schemas_refuse_unknown_properties() -> None:
    for name, schema in SCHEMAS.items():
        if schema.get("type") == "object":
            assert schema["additionalProperties"] is False, name


def test_api_schema_types() -> None:
    api = SCHEMAS["Api"]["properties"]
    assert api["lifecycle_state"] == {"$ref": "#/components/schemas/Api.LifecycleState"}
    assert SCHEMAS["Api.LifecycleState"] == {
        "type": "string",
        "enum": ["LIFECYCLE_STATE_UNSPECIFIED", "CREATED", "PUBLISHED", "DEPRECATED", "RETIRED", "BLOCKED"],
    }
    assert api["created_at"] == {"type": "string", "format": "date-time"}
    assert api["resources"] == {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}}
    assert api["security"] == {"$ref": "#/components/schemas/SecuritySchemes"}
    assert api["subscription_less"] == {"type": "boolean"}
    assert set(api) == {f.name for f in admin_pb2.Api.DESCRIPTOR.fields}


def test_parameters_follow_the_bindings() -> None:
    get_api = DOC["paths"]["/v1/apis/{id}"]["get"]
    assert get_api["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    ]
    list_keys = {p["name"]: p for p in DOC["paths"]["/v1/api-keys"]["get"]["parameters"]}
    assert set(list_keys) == {"page_size", "page_token", "api_id", "application_id", "include_revoked",
                              "organization_id"}
    assert all(p["in"] == "query" and p["required"] is False for p in list_keys.values())
    assert list_keys["include_revoked"]["schema"] == {"type": "boolean"}
    assert list_keys["page_size"]["schema"]["type"] == "integer"
    patch = {p["name"]: p for p in DOC["paths"]["/v1/apis/{id}"]["patch"]["parameters"]}
    assert set(patch) == {"id", "update_mask"}
    assert patch["update_mask"]["schema"]["type"] == "string"
    for path, _, operation in operations():
        in_path = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert in_path == {s[1:-1] for s in path.split("/") if s.startswith("{")}, path


def test_request_bodies() -> None:
    create = DOC["paths"]["/v1/apis"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create == {"$ref": "#/components/schemas/CreateApiRequest"}
    generate = DOC["paths"]["/v1/apis/{api_id}/api-keys"]["post"]["requestBody"]
    body = resolve(generate["content"]["application/json"]["schema"]["$ref"])
    assert "api_id" not in body["properties"] and "name" in body["properties"]
    assert body["properties"]["environment"] == {"$ref": "#/components/schemas/Environment"}
    patch = DOC["paths"]["/v1/apis/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert patch == {"$ref": "#/components/schemas/Api"}
    for path, method, operation in operations():
        if method in ("get", "delete") or path.endswith(("/regenerate", "/revoke")):
            assert "requestBody" not in operation, (method, path)


def test_responses() -> None:
    for path, _, operation in operations():
        if not path.startswith("/v1/"):
            continue
        responses = operation["responses"]
        for status in ("400", "401", "403", "404", "409", "500"):
            problem = resolve(responses[status]["$ref"])
            assert problem["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        successes = [s for s in responses if s.startswith("2")]
        assert len(successes) == 1, path
    delete = DOC["paths"]["/v1/apis/{id}"]["delete"]["responses"]
    assert "content" not in delete["204"]
    create = DOC["paths"]["/v1/apis"]["post"]["responses"]["201"]
    assert create["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Api"}
    assert "WWW-Authenticate" in DOC["components"]["responses"]["Unauthenticated"]["headers"]


def test_served_document_needs_no_credential(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == DOC


# --- the document against the server -------------------------------------------------

def filled(descriptor: Descriptor, depth: int = 0) -> Message:
    """A message with every field set to a non-default value (answers at their fullest)."""
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        _fill(message, field, depth)
    return message


def _fill(message: Message, field: FieldDescriptor, depth: int) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            getattr(message, field.name).FromSeconds(1_760_000_000)
        elif depth < 4:
            target = getattr(message, field.name)
            if field.is_repeated:
                target.add().CopyFrom(filled(field.message_type, depth + 1))
            else:
                target.CopyFrom(filled(field.message_type, depth + 1))
        return
    value: Any
    if field.type == FieldDescriptor.TYPE_ENUM:
        value = field.enum_type.values[-1].number
    elif field.type == FieldDescriptor.TYPE_BOOL:
        value = True
    elif field.type == FieldDescriptor.TYPE_STRING:
        value = f"{field.name}-value"
    else:
        value = 7
    if field.is_repeated:
        getattr(message, field.name).extend([value, value])
    else:
        setattr(message, field.name, value)


def _call(client: TestClient, binding, body: Any = None):
    url = binding.path.template
    for field in binding.path_fields:
        url = url.replace("{" + field.name + "}", "x1")
    kwargs: dict[str, Any] = {"headers": AUTH}
    if binding.has_body:
        kwargs["json"] = body if body is not None else _minimal_body(binding)
    return client.request(binding.http_method, url, **kwargs)


def _minimal_body(binding) -> dict[str, Any]:
    if binding.mask_field is None:
        return {}
    # A PATCH must name something to update: the first string field that is not the id.
    field = next(f for f in binding.body_descriptor.fields
                 if f.type == FieldDescriptor.TYPE_STRING and f.name != "id")
    return {field.name: "new"}


@pytest.mark.parametrize("fullness", ["filled", "empty"])
@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.method_name)
def test_answers_validate_against_the_documented_schema(
    client: TestClient, dispatcher: FakeDispatcher, binding, fullness: str
) -> None:
    descriptor = binding.response_descriptor
    answer = filled(descriptor) if fullness == "filled" else binding.response_class()
    dispatcher.answers[binding.method_name] = answer
    response = _call(client, binding)
    assert response.status_code == binding.success_status, response.text
    documented = DOC["paths"][binding.path.template][binding.http_method.lower()]["responses"]
    success = documented[str(binding.success_status)]
    if binding.response_is_empty:
        assert response.content == b"" and "content" not in success
        return
    schema_ref = success["content"]["application/json"]["schema"]["$ref"]
    validator(schema_ref).validate(response.json())


def test_problem_answers_validate_against_problem(client: TestClient) -> None:
    problems = [
        client.get("/v1/apis?page_size=x", headers=AUTH),
        client.get("/v1/apis"),
        client.get("/nowhere", headers=AUTH),
        client.put("/v1/apis", headers=AUTH),
    ]
    for response in problems:
        validator("#/components/schemas/Problem").validate(response.json())


def _body_schema(url_template: str, method: str) -> Draft202012Validator:
    content = DOC["paths"][url_template][method]["requestBody"]["content"]["application/json"]
    return validator(content["schema"]["$ref"])


@pytest.mark.parametrize(
    "body",
    [
        {"nme": "x"},
        {"name": 1},
        {"name": None},
        {"productionEndpoint": "http://x"},
        {"subscription_less": "true"},
        {"resources": {}},
        {"resources": [{"opn": True}]},
        {"security": {"api_key": {"headr": "k"}}},
    ],
)
def test_bodies_refused_by_the_server_are_refused_by_the_schema(client: TestClient, body: dict) -> None:
    assert client.post("/v1/apis", json=body, headers=AUTH).status_code == 400
    assert not _body_schema("/v1/apis", "post").is_valid(body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "PizzaShack", "version": "1.0.0", "context": "/pizzashack",
         "resources": [{"method": "GET", "path": "/menu", "open": True, "scopes": []}],
         "security": {"api_key": {"header": "apikey", "disable_query_param": True}, "oauth2": {}},
         "subscription_less": False},
    ],
)
def test_bodies_valid_for_the_schema_are_accepted_by_the_server(client: TestClient, body: dict) -> None:
    assert _body_schema("/v1/apis", "post").is_valid(body)
    assert client.post("/v1/apis", json=body, headers=AUTH).status_code == 201


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"name": "k", "environment": "SANDBOX", "validity_days": 30}, True),
        ({"environment": "STAGING"}, False),
        ({"validity_days": "30"}, False),
        ({"validity_days": 2**31}, False),
        ({"allowed_ips": "10.0.0.1"}, False),
    ],
)
def test_server_and_schema_agree_on_key_bodies(client: TestClient, body: dict, accepted: bool) -> None:
    status = client.post("/v1/apis/a1/api-keys", json=body, headers=AUTH).status_code
    assert (status == 201) is accepted
    assert _body_schema("/v1/apis/{api_id}/api-keys", "post").is_valid(body) is accepted
