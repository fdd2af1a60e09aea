"""Key managers and application keys reach replicas: in the Watch snapshot, as live
changes, and replayed from the change log, where a key manager's payload is sealed."""

from __future__ import annotations


import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from admin_api.access.caller import Caller, Role
from admin_api.db.models import ChangeRecord
from admin_api.services import application_keys, applications, key_managers, organizations
from admin_api.sync import snapshot
from admin_api.sync.watch import WatchConfig, changes_after, watch
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, key_managers_pb2
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.key_helpers import PUBLIC_URL, external_km, resident

ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)
SECRET = "introspection-secret-for-replicas"


pytestmark = pytest.mark.key_store


def _entities(store) -> list[sync_pb2.PolicyEntity]:
    return snapshot.load(store)[1]


def test_snapshot_holds_key_managers_and_application_keys(store):
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    km = external_km(store, ADMIN, introspection_client_id="portcullis", introspection_client_secret=SECRET,
                     introspection_endpoint="https://idp.example.com/introspect",
                     token_handling=key_managers_pb2.TokenHandling(accepts_jwt=True, accepts_reference_tokens=True))
    application = applications.create_application(store, admin_pb2.CreateApplicationRequest(name="Mobile"), ADMIN)
    key = application_keys.generate_application_key(store, application_keys_pb2.GenerateApplicationKeyRequest(
        application_id=application.id, environment=admin_pb2.SANDBOX), ADMIN).key
    entities = _entities(store)
    kinds = [e.WhichOneof("kind") for e in entities]
    # Parents first: key managers before the application keys that name them.
    assert kinds.index("key_manager") < kinds.index("application_key")
    records = {e.key_manager.id: e.key_manager for e in entities if e.HasField("key_manager")}
    assert {r.organization_id for r in records.values()} == {"default", "acme"}
    external = records[km.id]
    assert (external.name, external.type, external.issuer) == ("Keycloak", key_managers_pb2.KeyManager.KEYCLOAK,
                                                               "https://idp.example.com/realms/demo")
    assert external.introspection_client_secret == SECRET and not external.introspection_with_sync_token
    assert list(external.consumer_key_claims) == ["azp"] and list(external.allowed_algorithms) == [
        "RS256", "PS256", "ES256"]
    own = records[resident(store, ADMIN).id]
    assert own.introspection_with_sync_token and own.issuer == PUBLIC_URL
    assert own.introspection_endpoint == PUBLIC_URL + "/oauth2/introspect"
    assert own.token_handling.token_format_pattern == "^pct_[A-Za-z0-9_-]{43}$"
    [record] = [e.application_key for e in entities if e.HasField("application_key")]
    assert record == sync_pb2.ApplicationKeyRecord(
        id=key.id, organization_id="default", application_id=application.id, environment=admin_pb2.SANDBOX,
        key_manager_id=key.key_manager_id, consumer_key=key.consumer_key)


def test_live_changes_and_replay(store):
    with store.read() as session:
        start = session.scalar(select(ChangeRecord.revision).order_by(ChangeRecord.revision.desc()).limit(1))
    km = external_km(store, ADMIN, introspection_client_id="portcullis", introspection_client_secret=SECRET)
    key_managers.update_key_manager(store, key_managers_pb2.UpdateKeyManagerRequest(
        id=km.id, key_manager=key_managers_pb2.KeyManager(enabled=False), update_mask=FieldMask(paths=["enabled"])),
        ADMIN)
    application = applications.create_application(store, admin_pb2.CreateApplicationRequest(name="Mobile"), ADMIN)
    key_managers.update_key_manager(store, key_managers_pb2.UpdateKeyManagerRequest(
        id=km.id, key_manager=key_managers_pb2.KeyManager(enabled=True), update_mask=FieldMask(paths=["enabled"])),
        ADMIN)
    mapped = application_keys.map_application_key(store, application_keys_pb2.MapApplicationKeyRequest(
        application_id=application.id, key_manager_id=km.id, consumer_key="client"), ADMIN)
    application_keys.delete_application_key(store, application_keys_pb2.DeleteApplicationKeyRequest(id=mapped.id),
                                            ADMIN)
    key_managers.delete_key_manager(store, key_managers_pb2.DeleteKeyManagerRequest(id=km.id), ADMIN)
    events = changes_after(store, start, 100)
    summary = [(e.WhichOneof("event"), e.upsert.WhichOneof("kind") if e.HasField("upsert") else e.delete.kind)
               for e in events]
    assert summary == [("upsert", "key_manager"), ("upsert", "key_manager"), ("upsert", "application"),
                       ("upsert", "key_manager"), ("upsert", "application_key"),
                       ("delete", sync_pb2.APPLICATION_KEY), ("delete", sync_pb2.KEY_MANAGER)]
    assert [e.upsert.key_manager.enabled for e in events if e.upsert.HasField("key_manager")] == [True, False, True]
    assert all(e.upsert.key_manager.introspection_client_secret == SECRET
               for e in events if e.upsert.HasField("key_manager"))
    assert events[4].upsert.application_key.consumer_key == "client"
    # The secret the replay carries is not in the change log in clear.
    with store.read() as session:
        payloads = [r.payload for r in session.scalars(select(ChangeRecord))]
    assert all(SECRET.encode() not in payload for payload in payloads)


def test_watch_streams_a_new_key_manager(store):
    stream = watch(store, 0, active=lambda: True, config=WatchConfig(poll_interval=0.05, heartbeat_interval=60))
    while not next(stream).HasField("snapshot_end"):
        pass
    km = external_km(store, ADMIN, name="Okta", type=key_managers_pb2.KeyManager.OKTA)
    event = next(stream)
    assert event.upsert.key_manager.id == km.id and list(event.upsert.key_manager.consumer_key_claims) == ["cid"]
    stream.close()
