"""The API page's reference, rendered from the API's OpenAPI document: operations,
parameters, bodies and responses readable; everything from the document escaped (a
hostile document changes no markup); the download carries the gateway, not the backends."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import yaml
from starlette.testclient import TestClient

from admin_api.portal import openapi_view
from admin_api.portal.web import CSP
from admin_api.services import api_definitions, apis, openapi_documents
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import published_api
from tests.admin_api.portal.conftest import ADMIN, GATEWAY_URL, PortalEnv

PIZZA = (Path(__file__).parents[2] / "cli" / "data" / "pizzashack-openapi-3.0.yaml").read_text()
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HOSTILE_DOCUMENT = json.dumps({
    "openapi": "3.0.3",
    "info": {"title": HOSTILE, "version": HOSTILE, "description": HOSTILE + "\n</p><form action=//evil>"},
    "servers": [{"url": "http://10.1.2.3:8091/internal"}],
    "paths": {
        "/menu/{id}": {
            "servers": [{"url": "http://10.9.9.9"}],
            "get": {
                "summary": HOSTILE, "description": '"><a href="javascript:alert(1)">x</a>',
                "parameters": [{"name": HOSTILE, "in": "query", "description": HOSTILE,
                                "schema": {"type": HOSTILE}},
                               {"$ref": "#/components/parameters/Id"}],
                "responses": {"200": {"description": HOSTILE, "content": {HOSTILE: {"schema": {
                    "$ref": "#/components/schemas/Node"}}}}},
            },
        },
    },
    "components": {
        "parameters": {"Id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}},
        # A schema that refers to itself: shown once, then "as above".
        "schemas": {"Node": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "description": HOSTILE, "enum": [HOSTILE, "b"]},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}},
    },
})


def with_document(env: PortalEnv, document: str, **fields) -> admin_pb2.Api:
    api = published_api(env.store, **fields)
    api_definitions.set_api_definition(env.store, admin_pb2.SetApiDefinitionRequest(id=api.id, document=document),
                                       ADMIN)
    return api


def text_of(html: str) -> str:
    inline = re.sub(r"</?(code|em|span)\b[^>]*>", "", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def test_operations_parameters_bodies_and_responses_are_shown(env: PortalEnv, signed_in: TestClient) -> None:
    api = with_document(env, PIZZA)
    page = signed_in.get(f"/portal/apis/{api.id}")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    reference = text_of(page.text.split('id="api-reference"')[1])
    assert text_of(page.text.split("<dt>Reference</dt>")[1].split("</dd>")[0]) == "OpenAPI 3.0.3 document: 3 operations"
    assert "From the API's OpenAPI 3.0.3 document PizzaShackAPI 1.0.0" in reference
    assert "GET /menu The menu" in reference
    assert "POST /order/{orderId} Place an order" in reference
    assert "orderId (required) path string" in reference
    assert "Request body application/json Order (object) item: string" in reference
    assert "200 the menu application/json array of MenuItem (object) name: string price: number" in reference
    assert "201 placed" in reference
    assert "TRACE /order/{orderId}" in reference
    assert f'href="/portal/apis/{api.id}/openapi"' in page.text


def test_an_api_without_a_document_says_so(env: PortalEnv, signed_in: TestClient) -> None:
    api = published_api(env.store)
    page = signed_in.get(f"/portal/apis/{api.id}")
    assert "No OpenAPI document was imported for this API" in page.text
    assert signed_in.get(f"/portal/apis/{api.id}/openapi").status_code == 404


def test_a_hostile_document_is_escaped_everywhere(env: PortalEnv, signed_in: TestClient) -> None:
    api = with_document(env, HOSTILE_DOCUMENT, description=HOSTILE)
    page = signed_in.get(f"/portal/apis/{api.id}")
    assert page.status_code == 200
    for raw in ("<script>alert", "<img src=x", 'href="javascript:', "<form action=//evil"):
        assert raw not in page.text, raw
    assert page.text.count("&lt;script&gt;") >= 8   # title, version, summary, parameter, descriptions, enum ...
    reference = text_of(page.text.split('id="reference"')[1])
    assert "children: array of Node (object)" in reference and "(Node: as above)" in reference
    assert "id (required) path string" in reference
    assert "10.1.2.3" not in page.text and "10.9.9.9" not in page.text   # the backends' addresses


def test_the_download_has_the_gateway_as_its_server(env: PortalEnv, signed_in: TestClient) -> None:
    api = with_document(env, PIZZA)
    answer = signed_in.get(f"/portal/apis/{api.id}/openapi")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/yaml")
    assert answer.headers["content-disposition"] == 'attachment; filename="PizzaShack-1.0.0.yaml"'
    assert answer.headers["content-security-policy"] == CSP and answer.headers["x-content-type-options"] == "nosniff"
    document = yaml.safe_load(answer.text)
    assert document["servers"] == [{"url": GATEWAY_URL + api.base_path, "description": "the gateway"}]
    assert document["paths"]["/menu"]["get"]["summary"] == "The menu"

    hostile = with_document(env, HOSTILE_DOCUMENT, name="Hostile", context="/hostile")
    answer = signed_in.get(f"/portal/apis/{hostile.id}/openapi")
    assert answer.headers["content-type"].startswith("application/json")
    assert "10.1.2.3" not in answer.text and "10.9.9.9" not in answer.text


def test_a_document_of_an_api_the_subscriber_may_not_see_is_not_found(env: PortalEnv,
                                                                       signed_in: TestClient) -> None:
    api = with_document(env, PIZZA)
    apis.change_api_lifecycle(env.store, admin_pb2.ChangeApiLifecycleRequest(
        id=api.id, target_state=admin_pb2.Api.RETIRED), ADMIN)
    assert signed_in.get(f"/portal/apis/{api.id}").status_code == 404
    assert signed_in.get(f"/portal/apis/{api.id}/openapi").status_code == 404


def test_swagger_2_bodies_and_parameters() -> None:
    document = yaml.safe_dump({
        "swagger": "2.0", "info": {"title": "Old", "version": "1"}, "host": "10.0.0.1", "basePath": "/v1",
        "consumes": ["application/json"], "produces": ["application/json"],
        "paths": {"/orders": {"post": {
            "parameters": [{"name": "body", "in": "body", "schema": {"$ref": "#/definitions/Order"}},
                           {"name": "dry", "in": "query", "type": "boolean"}],
            "responses": {"201": {"description": "made", "schema": {"$ref": "#/definitions/Order"}}}}}},
        "definitions": {"Order": {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}},
    })
    parsed = openapi_documents.parse(document)
    view = openapi_view.document_view(parsed)
    (operation,) = view.operations
    assert [(p.name, p.location, p.summary) for p in operation.parameters] == [("dry", "query", "boolean")]
    assert [(line.name, line.summary) for line in operation.request_bodies[0].lines] == [
        ("", "Order (object)"), ("at", "string (date-time)")]
    assert operation.responses[0].bodies[0].media_type == "application/json"
    download = yaml.safe_load(openapi_view.for_download(parsed, "https://gw.example:8443/old/1"))
    assert (download["schemes"], download["host"], download["basePath"]) == (["https"], "gw.example:8443", "/old/1")


def test_a_large_document_is_shortened_not_unbounded() -> None:
    paths = {f"/p{i}": {"get": {"summary": f"op {i}"}} for i in range(openapi_view.MAX_OPERATIONS + 5)}
    wide = {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(500)}}
    paths["/p0"]["get"]["responses"] = {"200": {"description": "x", "content": {"a/b": {"schema": wide}}}}
    parsed = openapi_documents.parse(json.dumps({"openapi": "3.1.0", "info": {"title": "Big", "version": "1"},
                                                 "paths": paths}))
    view = openapi_view.document_view(parsed)
    assert len(view.operations) == openapi_view.MAX_OPERATIONS and view.shortened
    lines = view.operations[0].responses[0].bodies[0].lines
    assert len(lines) <= openapi_view.MAX_SCHEMA_LINES + 1 and lines[-1].summary == "…"
