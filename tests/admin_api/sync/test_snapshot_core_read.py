"""The snapshot reads applications, subscriptions and API keys as Core rows: every record
must equal the one the ORM path (the change log's converter) builds from the same row."""

from __future__ import annotations

from sqlalchemy import select

from admin_api.services import api_keys, subscriptions
from admin_api.sync import snapshot
from admin_api.sync_records.entities import policy_entity
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import ADMIN, create_application, generate_key, published_api


def _orm_entities(store):
    with store.read() as session:
        return [policy_entity(row, store.config) for model in snapshot._MODELS
                for row in session.scalars(select(model).order_by(model.id))]


def test_core_read_records_equal_orm_records(store):
    api = published_api(store)
    other = published_api(store, name="Other", context="/other")
    mobile = create_application(store)
    web = create_application(store, name="Web")
    subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(
        application_id=mobile.id, api_id=api.id, tier="Gold"), ADMIN)
    subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(
        application_id=web.id, api_id=other.id, tier="Bronze", status=admin_pb2.Subscription.BLOCKED), ADMIN)
    generate_key(store, api.id)  # no application, never expires
    generate_key(store, api.id, name="limited", environment=admin_pb2.SANDBOX, validity_days=30,
                 allowed_ips=["10.0.0.0/8", "192.168.1.1"], allowed_referrers=["*.example.com/*"],
                 application_id=mobile.id)
    revoked = generate_key(store, other.id, name="gone", application_id=web.id)
    api_keys.revoke_api_key(store, admin_pb2.RevokeApiKeyRequest(id=revoked.api_key.id), ADMIN)

    revision, entities = snapshot.load(store)
    assert revision > 0
    expected = _orm_entities(store)
    assert entities == expected
    kinds = {entity.WhichOneof("kind") for entity in entities}
    assert {"application", "subscription", "api_key"} <= kinds
    keys = [entity.api_key for entity in entities if entity.HasField("api_key")]
    assert any(key.revoked for key in keys) and any(key.expires_at_unix for key in keys)
    assert any(list(key.allowed_ips) == ["10.0.0.0/8", "192.168.1.1"] for key in keys)
