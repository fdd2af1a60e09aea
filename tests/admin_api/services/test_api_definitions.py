"""An API's OpenAPI document: who may set and read it, what is accepted, and that it is
audited, deleted with its API and never sent to replicas."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from admin_api.access.caller import Caller, Role
from admin_api.dispatch import Dispatcher
from admin_api.errors import InvalidArgument, NotFound, PayloadTooLarge, PermissionDenied
from admin_api.services import api_definitions, apis
from admin_api.services.openapi_documents import MAX_DOCUMENT_BYTES
from admin_api.store.outbox import current_revision
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import admin_pb2, audit_pb2
from tests.admin_api.conftest import ADMIN, create_api

DATA = Path(__file__).parents[2] / "cli" / "data"
PIZZA_YAML = (DATA / "pizzashack-openapi-3.0.yaml").read_text()
PIZZA_JSON = (DATA / "pizzashack-openapi-3.1.json").read_text()
SWAGGER = json.dumps({"swagger": "2.0", "info": {"title": "Old", "version": "1"},
                      "paths": {"/menu": {"get": {"responses": {"200": {"description": "ok"}}}}}})
SUBSCRIBER = Caller(subject="sam", organization_id="default", role=Role.SUBSCRIBER)
CREATOR = Caller(subject="cat", organization_id="default", role=Role.CREATOR)
P = "portcullis.admin.v1.ApiService/"
pytestmark = pytest.mark.both_databases


def call(store: Store, method: str, caller: Caller, **fields: str):
    request = {"SetApiDefinition": admin_pb2.SetApiDefinitionRequest, "GetApiDefinition":
               admin_pb2.GetApiDefinitionRequest, "DeleteApiDefinition": admin_pb2.DeleteApiDefinitionRequest}[method]
    return Dispatcher(store).call(P + method, request(**fields), caller)


def publish(store: Store, api_id: str) -> None:
    apis.change_api_lifecycle(store, admin_pb2.ChangeApiLifecycleRequest(id=api_id, target_state=admin_pb2.Api.PUBLISHED),
                              ADMIN)


@pytest.mark.parametrize("document, format_, version", [
    (PIZZA_YAML, "yaml", "3.0.3"), (PIZZA_JSON, "json", "3.1.0"), (SWAGGER, "json", "2.0"),
    ("swagger: 2.0\ninfo: {title: T, version: 1}\npaths: {}\n", "yaml", "2.0"),
], ids=["openapi-3.0-yaml", "openapi-3.1-json", "swagger-2.0-json", "swagger-2.0-unquoted"])
def test_set_and_get(store: Store, document: str, format_: str, version: str) -> None:
    api = create_api(store)
    answer = call(store, "SetApiDefinition", CREATOR, id=api.id, document=document)
    assert (answer.format, answer.spec_version, answer.updated_by) == (format_, version, "cat")
    assert answer.sha256 == hashlib.sha256(document.encode()).hexdigest()
    assert answer.size_bytes == len(document.encode())
    read = call(store, "GetApiDefinition", ADMIN, id=api.id)
    assert read.document == document and read.api_id == api.id


def test_replaced_then_deleted(store: Store) -> None:
    api = create_api(store)
    call(store, "SetApiDefinition", ADMIN, id=api.id, document=PIZZA_YAML)
    call(store, "SetApiDefinition", ADMIN, id=api.id, document=SWAGGER)
    assert call(store, "GetApiDefinition", ADMIN, id=api.id).spec_version == "2.0"
    call(store, "DeleteApiDefinition", ADMIN, id=api.id)
    with pytest.raises(NotFound, match="has no OpenAPI document"):
        call(store, "GetApiDefinition", ADMIN, id=api.id)
    with pytest.raises(NotFound):
        call(store, "DeleteApiDefinition", ADMIN, id=api.id)


def test_subscribers_read_only_published_and_deprecated_apis(store: Store) -> None:
    api = create_api(store)
    call(store, "SetApiDefinition", ADMIN, id=api.id, document=PIZZA_YAML)
    with pytest.raises(NotFound, match="not found"):   # CREATED: like a missing API
        call(store, "GetApiDefinition", SUBSCRIBER, id=api.id)
    publish(store, api.id)
    assert call(store, "GetApiDefinition", SUBSCRIBER, id=api.id).document == PIZZA_YAML
    apis.change_api_lifecycle(store, admin_pb2.ChangeApiLifecycleRequest(id=api.id,
                              target_state=admin_pb2.Api.RETIRED), ADMIN)
    with pytest.raises(NotFound):
        call(store, "GetApiDefinition", SUBSCRIBER, id=api.id)


def test_subscribers_may_not_set_or_delete(store: Store) -> None:
    api = create_api(store)
    publish(store, api.id)
    with pytest.raises(PermissionDenied):
        call(store, "SetApiDefinition", SUBSCRIBER, id=api.id, document=PIZZA_YAML)
    with pytest.raises(PermissionDenied):
        call(store, "DeleteApiDefinition", SUBSCRIBER, id=api.id)


def test_another_organizations_api_is_not_found(store: Store, acme: Caller) -> None:
    api = create_api(store)
    call(store, "SetApiDefinition", ADMIN, id=api.id, document=PIZZA_YAML)
    with pytest.raises(NotFound):
        call(store, "GetApiDefinition", acme, id=api.id)
    with pytest.raises(NotFound):
        call(store, "SetApiDefinition", acme, id=api.id, document=PIZZA_YAML)


def test_audited_and_not_in_the_change_log(store: Store) -> None:
    api = create_api(store)
    with store.read() as session:
        before = current_revision(session)
    call(store, "SetApiDefinition", ADMIN, id=api.id, document=PIZZA_YAML)
    call(store, "DeleteApiDefinition", ADMIN, id=api.id)
    with store.read() as session:
        assert current_revision(session) == before
    records = Dispatcher(store).call("portcullis.admin.v1.AuditService/ListAuditRecords",
                                     audit_pb2.ListAuditRecordsRequest(target_kind="api_definition"), ADMIN)
    assert [(r.method.split("/")[-1], r.target_id, r.outcome) for r in records.records] == [
        ("SetApiDefinition", api.id, audit_pb2.AuditRecord.SUCCEEDED),
        ("DeleteApiDefinition", api.id, audit_pb2.AuditRecord.SUCCEEDED)]


def test_deleted_with_its_api(store: Store) -> None:
    api = create_api(store)
    call(store, "SetApiDefinition", ADMIN, id=api.id, document=PIZZA_YAML)
    apis.delete_api(store, admin_pb2.DeleteApiRequest(id=api.id), ADMIN)
    again = create_api(store)
    with pytest.raises(NotFound):
        call(store, "GetApiDefinition", ADMIN, id=api.id)
    with pytest.raises(NotFound):
        call(store, "GetApiDefinition", ADMIN, id=again.id)


def test_too_large_is_refused_with_413(store: Store) -> None:
    api = create_api(store)
    big = PIZZA_YAML + "x-padding: '" + "a" * MAX_DOCUMENT_BYTES + "'\n"
    with pytest.raises(PayloadTooLarge, match="at most 524288") as refused:
        call(store, "SetApiDefinition", ADMIN, id=api.id, document=big)
    assert refused.value.http_status == 413


@pytest.mark.parametrize("document, words", [
    ("", "document is required"),
    ("{not json", "not valid JSON"),
    ("a: [1, 2\n", "not valid YAML"),
    ("- a list\n", "mapping at the top"),
    ("info: {title: T, version: '1'}\npaths: {}\n", "no `openapi`"),
    ("openapi: 4.0.0\ninfo: {title: T, version: '1'}\npaths: {}\n", "3.x version"),
    ("swagger: '1.2'\ninfo: {title: T, version: '1'}\npaths: {}\n", "must be \"2.0\""),
    ("openapi: 3.0.3\npaths: {}\n", "info must be a mapping"),
    ("openapi: 3.0.3\ninfo: {version: '1'}\npaths: {}\n", "info.title"),
    ("openapi: 3.0.3\ninfo: {title: T}\npaths: {}\n", "info.version"),
    ("openapi: 3.0.3\ninfo: {title: T, version: '1'}\n", "paths is required"),
    ("openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths: {menu: {}}\n", "must start with /"),
    ("openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths: {/menu: {get: 1}}\n", "an operation"),
    ("openapi: 3.0.3\ninfo: &i {title: T, version: '1'}\nx: *i\npaths: {}\n", "anchors"),
    ("openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths: {}\nx: " + "[" * 100 + "]" * 100 + "\n",
     "nested more than"),
    ('{"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {}, "x": '
     + "[" * 5000 + "]" * 5000 + "}", "nested more than"),
], ids=["empty", "bad-json", "bad-yaml", "list", "no-version", "openapi-4", "swagger-1.2", "no-info", "no-title",
        "no-version-in-info", "no-paths", "relative-path", "operation-not-mapping", "yaml-alias", "deep-yaml",
        "deep-json"])
def test_refused_documents_say_why(store: Store, document: str, words: str) -> None:
    api = create_api(store)
    with pytest.raises(InvalidArgument, match=words) as refused:
        call(store, "SetApiDefinition", ADMIN, id=api.id, document=document)
    assert refused.value.field == "document"


def test_openapi_3_1_may_have_no_paths(store: Store) -> None:
    api = create_api(store)
    document = "openapi: 3.1.0\ninfo: {title: Hooks, version: '1'}\nwebhooks: {}\n"
    assert api_definitions.set_api_definition(
        store, admin_pb2.SetApiDefinitionRequest(id=api.id, document=document), ADMIN).spec_version == "3.1.0"
