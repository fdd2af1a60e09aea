"""API-bound API keys: generate, list masked, regenerate, revoke, associate, restrictions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from admin_api.access.caller import Caller, Role
from admin_api.db import models
from admin_api.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from admin_api.services import api_keys, apis
from portcullis.admin.v1 import admin_pb2
from portcullis_shared.credentials import credential_hash
from tests.admin_api.conftest import ADMIN, create_api, create_application, generate_key, published_api

pytestmark = pytest.mark.both_databases


def test_generate_returns_value_once_and_stores_only_its_hash(store, db_path):
    api = published_api(store)
    answer = generate_key(store, api.id)
    value = answer.value
    assert value.startswith("pck_") and len(value) > 40
    assert answer.api_key.masked_value == value[:8] + "…"
    assert answer.api_key.status == admin_pb2.ApiKey.ACTIVE
    assert answer.api_key.environment == admin_pb2.PRODUCTION
    assert not answer.api_key.HasField("expires_at")
    with store.read() as session:
        row = session.get(models.ApiKey, answer.api_key.id)
        assert row.key_hash == credential_hash(value)
    store.db.dispose()  # checkpoint the WAL so the whole database is in one file
    for path in db_path.parent.iterdir():
        assert value.encode() not in path.read_bytes(), path.name
    fetched = api_keys.get_api_key(store, admin_pb2.GetApiKeyRequest(id=answer.api_key.id), ADMIN)
    assert value not in str(fetched)


def test_list_is_masked_and_filters(store):
    api = published_api(store)
    other = published_api(store, name="Other", context="/other")
    first = generate_key(store, api.id)
    generate_key(store, other.id)
    listed = api_keys.list_api_keys(store, admin_pb2.ListApiKeysRequest(api_id=api.id), ADMIN).api_keys
    assert [k.id for k in listed] == [first.api_key.id]
    assert listed[0].masked_value.endswith("…") and first.value not in str(listed[0])
    assert len(api_keys.list_api_keys(store, admin_pb2.ListApiKeysRequest(), ADMIN).api_keys) == 2


@pytest.mark.parametrize(("state", "allowed"), [
    pytest.param("CREATED", False, id="created"),
    pytest.param("PUBLISHED", True, id="published"),
    pytest.param("DEPRECATED", True, id="deprecated"),
    pytest.param("BLOCKED", False, id="blocked"),
    pytest.param("RETIRED", False, id="retired"),
])
def test_generate_needs_published_or_deprecated_api(store, state, allowed):
    api = create_api(store)
    with store.write() as writer:
        writer.session.execute(update(models.Api).where(models.Api.id == api.id).values(lifecycle_state=state))
    if allowed:
        assert generate_key(store, api.id).value
    else:
        with pytest.raises(FailedPrecondition, match=f"is {state}: API keys are issued only for PUBLISHED or DEPRECATED"):
            generate_key(store, api.id)


@pytest.mark.parametrize(("fields", "field", "fragment"), [
    pytest.param({"name": ""}, "name", "required", id="name-missing"),
    pytest.param({"validity_days": -1}, "validity_days", "between 0", id="validity-negative"),
    pytest.param({"validity_days": 3651}, "validity_days", "between 0", id="validity-too-long"),
    pytest.param({"environment": 7}, "environment", "PRODUCTION or SANDBOX", id="environment-unknown"),
    pytest.param({"allowed_ips": ["10.0.0.300"]}, "allowed_ips", "not an IPv4 or IPv6", id="ip-octet"),
    pytest.param({"allowed_ips": ["10.0.0.0/33"]}, "allowed_ips", "not an IPv4 or IPv6", id="ip-prefix"),
    pytest.param({"allowed_ips": ["fe80::1::2"]}, "allowed_ips", "not an IPv4 or IPv6", id="ipv6-garbage"),
    pytest.param({"allowed_ips": ["example.com"]}, "allowed_ips", "not an IPv4 or IPv6", id="ip-hostname"),
    pytest.param({"allowed_ips": ["1.2.3.4"] * 101}, "allowed_ips", "more than 100", id="ip-too-many"),
    pytest.param({"allowed_referrers": ["https://www.example.com/x"]}, "allowed_referrers", "no scheme",
                 id="referrer-scheme"),
    pytest.param({"allowed_referrers": ["www.example.com"]}, "allowed_referrers", "must look like",
                 id="referrer-no-path"),
    pytest.param({"allowed_referrers": ["www.example.com:8080/x"]}, "allowed_referrers", "must look like",
                 id="referrer-port"),
    pytest.param({"allowed_referrers": ["*.com/*"]}, "allowed_referrers", "two labels", id="referrer-wild-tld"),
    pytest.param({"allowed_referrers": ["ex*ample.com/*"]}, "allowed_referrers", "must look like",
                 id="referrer-inner-star"),
    pytest.param({"allowed_referrers": ["example.com/a*"]}, "allowed_referrers", "last segment",
                 id="referrer-path-star"),
    pytest.param({"allowed_referrers": ["*.*.example.com/*"]}, "allowed_referrers", "must look like",
                 id="referrer-double-wildcard"),
])
def test_generate_rejects(store, fields, field, fragment):
    api = published_api(store)
    with pytest.raises(InvalidArgument) as caught:
        generate_key(store, api.id, **fields)
    assert caught.value.field == field and fragment in caught.value.message


def test_restrictions_are_normalized(store):
    api = published_api(store)
    key = generate_key(store, api.id, environment=admin_pb2.SANDBOX, validity_days=30,
                       allowed_ips=["192.168.1.7/24", "10.0.0.1", "2001:DB8::1/64", "::1", "10.0.0.1"],
                       allowed_referrers=["WWW.Example.com/path", "sub.example.com/*", "*.example.com/*"]).api_key
    assert list(key.allowed_ips) == ["192.168.1.0/24", "10.0.0.1", "2001:db8::/64", "::1"]
    assert list(key.allowed_referrers) == ["www.example.com/path", "sub.example.com/*", "*.example.com/*"]
    assert key.environment == admin_pb2.SANDBOX
    lifetime = key.expires_at.ToDatetime() - key.created_at.ToDatetime()
    assert lifetime == timedelta(days=30)


def test_regenerate_revokes_old_and_keeps_settings(store):
    api = published_api(store)
    application = create_application(store)
    old = generate_key(store, api.id, validity_days=10, allowed_ips=["10.0.0.0/8"],
                       allowed_referrers=["*.example.com/*"], application_id=application.id)
    new = api_keys.regenerate_api_key(store, admin_pb2.RegenerateApiKeyRequest(id=old.api_key.id), ADMIN)
    assert new.value != old.value and new.api_key.id != old.api_key.id
    for field in ("api_id", "name", "environment", "application_id", "allowed_ips", "allowed_referrers",
                  "expires_at", "owner"):
        assert getattr(new.api_key, field) == getattr(old.api_key, field), field
    revoked = api_keys.get_api_key(store, admin_pb2.GetApiKeyRequest(id=old.api_key.id), ADMIN)
    assert revoked.status == admin_pb2.ApiKey.REVOKED
    assert revoked.replaced_by == new.api_key.id and revoked.revoked_by == "alice" and revoked.HasField("revoked_at")
    with pytest.raises(FailedPrecondition, match="revoked"):
        api_keys.regenerate_api_key(store, admin_pb2.RegenerateApiKeyRequest(id=old.api_key.id), ADMIN)


def test_revoke(store):
    api = published_api(store)
    key = generate_key(store, api.id).api_key
    revoked = api_keys.revoke_api_key(store, admin_pb2.RevokeApiKeyRequest(id=key.id), ADMIN)
    assert revoked.status == admin_pb2.ApiKey.REVOKED and revoked.replaced_by == ""
    assert api_keys.list_api_keys(store, admin_pb2.ListApiKeysRequest(), ADMIN).api_keys == []
    listed = api_keys.list_api_keys(store, admin_pb2.ListApiKeysRequest(include_revoked=True), ADMIN).api_keys
    assert [k.status for k in listed] == [admin_pb2.ApiKey.REVOKED]
    with pytest.raises(FailedPrecondition, match="revoked"):
        api_keys.revoke_api_key(store, admin_pb2.RevokeApiKeyRequest(id=key.id), ADMIN)


@pytest.mark.parametrize(("caller", "allowed"), [
    pytest.param(Caller("bob", "default", Role.ADMIN), True, id="admin-not-owner"),
    pytest.param(Caller("alice", "default", Role.SYNC), True, id="owner-not-admin"),
    pytest.param(Caller("bob", "default", Role.SYNC), False, id="neither-owner-nor-admin"),
])
def test_revoke_needs_owner_or_admin(store, caller, allowed):
    api = published_api(store)
    key = generate_key(store, api.id).api_key
    if allowed:
        assert api_keys.revoke_api_key(store, admin_pb2.RevokeApiKeyRequest(id=key.id), caller).revoked_by == caller.subject
    else:
        with pytest.raises(PermissionDenied, match="owner"):
            api_keys.revoke_api_key(store, admin_pb2.RevokeApiKeyRequest(id=key.id), caller)


def test_associate_and_dissociate(store):
    api = published_api(store)
    application = create_application(store)
    key = generate_key(store, api.id).api_key
    associated = api_keys.associate_api_key(
        store, admin_pb2.AssociateApiKeyRequest(id=key.id, application_id=application.id), ADMIN)
    assert associated.application_id == application.id
    listed = api_keys.list_api_keys(store, admin_pb2.ListApiKeysRequest(application_id=application.id), ADMIN)
    assert [k.id for k in listed.api_keys] == [key.id]
    dissociated = api_keys.dissociate_api_key(store, admin_pb2.DissociateApiKeyRequest(id=key.id), ADMIN)
    assert dissociated.application_id == ""
    with pytest.raises(FailedPrecondition, match="not associated"):
        api_keys.dissociate_api_key(store, admin_pb2.DissociateApiKeyRequest(id=key.id), ADMIN)
    with pytest.raises(InvalidArgument) as caught:
        api_keys.associate_api_key(store, admin_pb2.AssociateApiKeyRequest(id=key.id), ADMIN)
    assert caught.value.field == "application_id"


def test_regenerate_expired_key_is_refused(store):
    api = published_api(store)
    key = generate_key(store, api.id, validity_days=1).api_key
    with store.write() as writer:
        row = writer.session.get(models.ApiKey, key.id)
        row.expires_at = row.created_at - timedelta(days=1)
    with pytest.raises(FailedPrecondition, match="expired"):
        api_keys.regenerate_api_key(store, admin_pb2.RegenerateApiKeyRequest(id=key.id), ADMIN)


def test_deleting_api_cascades_to_keys_and_subscriptions(store):
    from admin_api.services import subscriptions
    api = published_api(store)
    application = create_application(store)
    subscriptions.create_subscription(
        store, admin_pb2.CreateSubscriptionRequest(application_id=application.id, api_id=api.id), ADMIN)
    generate_key(store, api.id)
    apis.delete_api(store, admin_pb2.DeleteApiRequest(id=api.id), ADMIN)
    with store.read() as session:
        assert session.scalars(select(models.ApiKey)).all() == []
        assert session.scalars(select(models.Subscription)).all() == []
        kinds = [(r.entity_kind, r.op) for r in session.scalars(select(models.ChangeRecord)
                                                                .order_by(models.ChangeRecord.revision))][-3:]
    assert kinds == [("API_KEY", "delete"), ("SUBSCRIPTION", "delete"), ("API", "delete")]


@pytest.mark.parametrize("value, shown", [
    ("pck_" + "A" * 43, "pck_AAAA…"),                     # Portcullis's own prefix is shown whole
    ("pcsec_" + "b" * 40, "pcsec_bbbb…"),
    # An identity provider's client_secret with a late "_" (token_urlsafe): never more
    # than four characters (the first "_" once counted as a prefix: the whole secret).
    ("dVPTQImTOpw4x25TfYHQeNZmqXOSCx_x", "dVPT…"),
    ("aNfsW2EpoxS0r5w8BaiRwYq0etL_sRFK", "aNfs…"),
    ("abc_" + "z" * 28, "abc_…"),                        # "abc_" is not a prefix of ours
    ("short", "s…"),                                     # at most a quarter of a short value
    ("abc", "…"),
    ("", "…"),
])
def test_a_masked_credential_shows_only_its_prefix_and_a_few_characters(value, shown):
    from portcullis_shared.credentials import mask

    assert mask(value) == shown
    visible = shown[:-1]
    assert value.startswith(visible) and len(visible) <= len(value) // 4 + 6
