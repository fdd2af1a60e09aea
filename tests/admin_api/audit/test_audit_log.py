"""The audit log: every change and every denied attempt is recorded (who, what, when,
outcome) in the change's transaction; reads are not; only admins read it, filtered and
paged; nothing secret is ever in it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from admin_api.audit import log as audit_log
from admin_api.access.caller import Caller, Role
from admin_api.db.audit_models import AuditRecord
from admin_api.errors import InvalidArgument
from admin_api.services import apis, organizations
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, audit_pb2, signing_keys_pb2, users_pb2
from tests.admin_api.roles_world import OTHER, ROOT, USERS, World, build_world, stop_world

TRANSPORTS = ("grpc", "rest")
LIST = "AuditService/ListAuditRecords"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world, server = build_world(tmp_path_factory.mktemp("audit"))
    try:
        yield world
    finally:
        stop_world(world, server)


def _records(world: World, **filters: object) -> list[dict]:
    outcome = world.call("rest", LIST, audit_pb2.ListAuditRecordsRequest(page_size=500, **filters),
                         world.token_of("admin"))
    assert outcome.status == "OK", outcome.body
    return outcome.body["records"]


def _create_api_request(world: World) -> admin_pb2.CreateApiRequest:
    name = world.unique("Audited")
    return admin_pb2.CreateApiRequest(name=name, version="1.0.0", context=f"/{name.lower()}",
                                      production_endpoint="http://127.0.0.1:8091")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_change_is_recorded_with_who_what_and_when(world: World, transport: str) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    outcome = world.call(transport, "ApiService/CreateApi", _create_api_request(world), world.token_of("publisher"))
    assert outcome.status == "OK"
    api_id = outcome.body["id"]
    [record] = _records(world, target_id=api_id)
    assert record["subject"] == USERS["publisher"]
    assert record["organization_id"] == "default"
    assert record["roles"] == ["publisher"]
    assert record["credential_kind"] == "jwt"
    assert record["method"] == "portcullis.admin.v1.ApiService/CreateApi"
    assert record["target_kind"] == "api"
    assert record["outcome"] == "SUCCEEDED"
    assert datetime.fromisoformat(record["time"].replace("Z", "+00:00")) >= before


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_denied_attempt_is_recorded_with_its_outcome(world: World, transport: str) -> None:
    api = world.api()
    outcome = world.call(transport, "ApiService/ChangeApiLifecycle", admin_pb2.ChangeApiLifecycleRequest(
        id=api.id, target_state=admin_pb2.Api.BLOCKED), world.token_of("creator"))
    assert outcome.status == "PERMISSION_DENIED"
    [record] = _records(world, target_id=api.id, subject=USERS["creator"])
    assert record["outcome"] == "PERMISSION_DENIED"
    assert record["method"] == "portcullis.admin.v1.ApiService/ChangeApiLifecycle"
    assert record["roles"] == ["creator"] and "publisher" in record["detail"]


def test_a_denial_inside_a_service_is_recorded(world: World) -> None:
    """A subscriber may not create an application for someone else: refused by the
    service, after the permission table let the call in."""
    outcome = world.call("grpc", "ApplicationService/CreateApplication", admin_pb2.CreateApplicationRequest(
        name=world.unique("Theirs"), owner=OTHER), world.token_of("subscriber"))
    assert outcome.status == "PERMISSION_DENIED"
    records = _records(world, subject=USERS["subscriber"], target_kind="application")
    assert records[-1]["outcome"] == "PERMISSION_DENIED" and records[-1]["target_id"] == ""


def test_reads_and_failed_changes_are_not_recorded(world: World) -> None:
    token = world.token_of("admin")
    count = len(_records(world))
    assert world.call("grpc", "ApiService/ListApis", admin_pb2.ListApisRequest(), token).status == "OK"
    bad = admin_pb2.CreateApiRequest(name="", version="1.0.0", context="/x")
    assert world.call("grpc", "ApiService/CreateApi", bad, token).status == "INVALID_ARGUMENT"
    assert len(_records(world)) == count


def test_a_change_without_its_record_does_not_commit(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    request = _create_api_request(world)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit_log, "append", broken)
    with pytest.raises(RuntimeError):
        world.dispatcher.call("portcullis.admin.v1.ApiService/CreateApi", request, ROOT)
    monkeypatch.undo()
    names = {a.name for a in apis.list_apis(world.store, admin_pb2.ListApisRequest(page_size=500), ROOT).apis}
    assert request.name not in names


def test_the_created_entity_and_rotations_are_targets(world: World) -> None:
    token = world.token_of("admin")
    rotated = world.call("grpc", "SigningKeyService/RotateSigningKey", signing_keys_pb2.RotateSigningKeyRequest(),
                         token)
    assert rotated.status == "OK"
    [record] = _records(world, target_kind="signing_key", target_id=rotated.body["kid"])
    assert record["method"] == "portcullis.admin.v1.SigningKeyService/RotateSigningKey"
    key = world.call("rest", "ApiKeyService/GenerateApiKey", admin_pb2.GenerateApiKeyRequest(
        api_id=world.api().id, name="web"), world.token_of("subscriber"))
    world.secrets_seen.append(key.body["value"])
    [record] = _records(world, target_id=key.body["api_key"]["id"])
    assert record["target_kind"] == "api_key" and record["subject"] == USERS["subscriber"]


def test_oauth_revocation_is_recorded(world: World) -> None:
    token = world.password_token(USERS["creator"])
    response = world.http.post("/oauth2/revoke", data={"token": token}, auth=(world.client_id, world.client_secret))
    assert response.status_code == 200
    records = [r for r in _records(world, target_kind="oauth_token") if r["method"] == "oauth2/revoke"]
    assert records and records[-1]["subject"] == world.client_id
    assert records[-1]["credential_kind"] == "oauth_client" and records[-1]["outcome"] == "SUCCEEDED"


@pytest.mark.parametrize("role", ["publisher", "creator", "subscriber"])
def test_only_admins_read_the_audit_log(world: World, role: str) -> None:
    for transport in TRANSPORTS:
        outcome = world.call(transport, LIST, audit_pb2.ListAuditRecordsRequest(), world.token_of(role))
        assert outcome.status == "PERMISSION_DENIED"


def test_filters_and_paging(world: World) -> None:
    for _ in range(3):
        world.call("grpc", "ApiService/CreateApi", _create_api_request(world), world.token_of("creator"))
    mine = _records(world, subject=USERS["creator"])
    assert len(mine) >= 3 and {r["subject"] for r in mine} == {USERS["creator"]}
    pages: list[dict] = []
    token = ""
    while True:
        outcome = world.call("grpc", LIST, audit_pb2.ListAuditRecordsRequest(
            subject=USERS["creator"], page_size=2, page_token=token), world.token_of("admin"))
        assert outcome.status == "OK"
        pages += outcome.body.get("records", [])
        token = outcome.body.get("next_page_token", "")
        if not token:
            break
    assert [r["id"] for r in pages] == [r["id"] for r in mine]
    middle = datetime.fromisoformat(mine[1]["time"].replace("Z", "+00:00"))
    start = Timestamp()
    start.FromDatetime(middle)
    after = _records(world, subject=USERS["creator"], start_time=start)
    assert [r["id"] for r in after] == [r["id"] for r in mine if
                                        datetime.fromisoformat(r["time"].replace("Z", "+00:00")) >= middle]
    end = Timestamp()
    end.FromDatetime(middle - timedelta(days=1))
    bad = world.call("rest", LIST, audit_pb2.ListAuditRecordsRequest(start_time=start, end_time=end),
                     world.token_of("admin"))
    assert bad.status == "INVALID_ARGUMENT"


def test_records_of_another_organization_are_not_visible(world: World) -> None:
    organizations.create_organization(world.store, admin_pb2.CreateOrganizationRequest(id="audit-other"), ROOT)
    stranger = Caller("root", "audit-other", Role.ADMIN)
    world.dispatcher.call("portcullis.admin.v1.ApiService/CreateApi", admin_pb2.CreateApiRequest(
        name="Elsewhere", version="1.0.0", context="/elsewhere", production_endpoint="http://127.0.0.1:8091"),
        stranger)
    assert all(r["organization_id"] == "default" for r in _records(world))
    theirs = world.dispatcher.call("portcullis.admin.v1.AuditService/ListAuditRecords",
                                   audit_pb2.ListAuditRecordsRequest(), stranger)
    assert [r.subject for r in theirs.records] == ["root"]
    with pytest.raises(InvalidArgument):
        world.dispatcher.call("portcullis.admin.v1.AuditService/ListAuditRecords",
                              audit_pb2.ListAuditRecordsRequest(page_token="forged"), stranger)


def test_no_secret_is_ever_recorded(world: World) -> None:
    # Changes that handle secrets: users with passwords, keys, consumer secrets, tokens.
    token = world.token_of("subscriber")
    application = world.call("grpc", "ApplicationService/CreateApplication",
                             admin_pb2.CreateApplicationRequest(name=world.unique("Secretive")), token)
    generated = world.call("rest", "ApplicationKeyService/GenerateApplicationKey",
                           application_keys_pb2.GenerateApplicationKeyRequest(
                               application_id=application.body["id"]), token)
    world.secrets_seen.append(generated.body["consumer_secret"])
    regenerated = world.call("grpc", "ApplicationKeyService/RegenerateConsumerSecret",
                             application_keys_pb2.RegenerateConsumerSecretRequest(
                                 application_key_id=generated.body["key"]["id"]), token)
    world.secrets_seen.append(regenerated.body["value"])
    world.call("rest", "UserService/CreateUser", users_pb2.CreateUserRequest(user=users_pb2.User(
        username=world.unique("pw"), password="an-uncommon-passphrase", roles=["creator"])), world.token_of("admin"))
    world.secrets_seen.append("an-uncommon-passphrase")
    with world.store.read() as session:
        rows = session.scalars(select(AuditRecord)).all()
        text = "\n".join(repr({c.name: getattr(r, c.name) for c in AuditRecord.__table__.columns}) for r in rows)
    assert len(rows) > 5
    leaked = [s for s in world.secrets_seen if s and s in text]
    assert not leaked
