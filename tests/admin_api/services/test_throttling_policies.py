"""Throttling policies in admin_api: defaults per organization, CRUD and its checks, the
tiers and policies other entities name, and the migration from free tier labels."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from google.protobuf.field_mask_pb2 import FieldMask

from admin_api.app import open_store
from admin_api.db.throttling_models import ThrottlingPolicy
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from admin_api.migrations import upgrade
from admin_api.services import apis, applications, subscriptions, throttling_policies
from portcullis.admin.v1 import admin_pb2, throttling_pb2
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.conftest import ADMIN, create_api, create_application, published_api

Policy = throttling_pb2.ThrottlingPolicy


def _create(store, caller=ADMIN, **fields):
    policy = Policy(**fields)
    return throttling_policies.create_throttling_policy(
        store, throttling_pb2.CreateThrottlingPolicyRequest(policy=policy), caller)


def _list(store, kind=Policy.KIND_UNSPECIFIED, caller=ADMIN):
    return throttling_policies.list_throttling_policies(
        store, throttling_pb2.ListThrottlingPoliciesRequest(kind=kind, page_size=500), caller).policies


def test_every_organization_starts_with_the_wso2_defaults(store, acme):
    for caller in (ADMIN, acme):
        policies = {(Policy.Kind.Name(p.kind), p.name): (p.request_count, Policy.TimeUnit.Name(p.unit))
                    for p in _list(store, caller=caller)}
        assert policies == {
            ("SUBSCRIPTION", "Gold"): (5000, "MINUTE"), ("SUBSCRIPTION", "Silver"): (2000, "MINUTE"),
            ("SUBSCRIPTION", "Bronze"): (1000, "MINUTE"), ("SUBSCRIPTION", "Unlimited"): (0, "MINUTE"),
            ("APPLICATION", "10PerMin"): (10, "MINUTE"), ("APPLICATION", "20PerMin"): (20, "MINUTE"),
            ("APPLICATION", "50PerMin"): (50, "MINUTE"), ("APPLICATION", "Unlimited"): (0, "MINUTE"),
            ("API", "Unlimited"): (0, "MINUTE"),
        }
    assert all(p.stop_on_quota_reach for p in _list(store))


def test_list_filters_by_kind(store):
    assert {p.name for p in _list(store, Policy.APPLICATION)} == {"10PerMin", "20PerMin", "50PerMin", "Unlimited"}


def test_create_get_update_delete(store):
    made = _create(store, name="Platinum", kind=Policy.SUBSCRIPTION, request_count=100, unit=Policy.SECOND,
                   burst_request_count=0, description="for partners")
    assert made.stop_on_quota_reach and made.id
    got = throttling_policies.get_throttling_policy(store, throttling_pb2.GetThrottlingPolicyRequest(id=made.id), ADMIN)
    assert got == made
    updated = throttling_policies.update_throttling_policy(store, throttling_pb2.UpdateThrottlingPolicyRequest(
        id=made.id, policy=Policy(request_count=6000, unit=Policy.MINUTE, burst_request_count=200,
                                  burst_unit=Policy.SECOND, stop_on_quota_reach=False),
        update_mask=FieldMask(paths=["request_count", "unit", "burst_request_count", "burst_unit",
                                     "stop_on_quota_reach"])), ADMIN)
    assert (updated.request_count, updated.unit, updated.burst_request_count, updated.stop_on_quota_reach) == (
        6000, Policy.MINUTE, 200, False)
    assert updated.description == "for partners"
    throttling_policies.delete_throttling_policy(store, throttling_pb2.DeleteThrottlingPolicyRequest(id=made.id), ADMIN)
    with pytest.raises(NotFound):
        throttling_policies.get_throttling_policy(store, throttling_pb2.GetThrottlingPolicyRequest(id=made.id), ADMIN)


@pytest.mark.parametrize(("fields", "error", "message"), [
    pytest.param(dict(name="", kind=Policy.SUBSCRIPTION), InvalidArgument, "policy.name is required", id="no-name"),
    pytest.param(dict(name="x y!", kind=Policy.SUBSCRIPTION), InvalidArgument, "policy.name", id="bad-name"),
    pytest.param(dict(name="P", kind=Policy.KIND_UNSPECIFIED), InvalidArgument, "policy.kind", id="no-kind"),
    pytest.param(dict(name="P", kind=Policy.API, request_count=5), InvalidArgument, "policy.unit is required",
                 id="count-without-unit"),
    pytest.param(dict(name="P", kind=Policy.API, request_count=-1, unit=Policy.MINUTE), InvalidArgument,
                 "policy.request_count", id="negative"),
    pytest.param(dict(name="P", kind=Policy.API, request_count=100, unit=Policy.MINUTE, burst_request_count=10,
                      burst_unit=Policy.HOUR), InvalidArgument, "policy.burst_unit must be one of", id="burst-hour"),
    pytest.param(dict(name="P", kind=Policy.API, request_count=100, unit=Policy.MINUTE, burst_request_count=10,
                      burst_unit=Policy.MINUTE), InvalidArgument, "shorter than", id="burst-not-shorter"),
    pytest.param(dict(name="P", kind=Policy.API, request_count=100, unit=Policy.HOUR, burst_request_count=101,
                      burst_unit=Policy.MINUTE), InvalidArgument, "must not exceed", id="burst-above-limit"),
    pytest.param(dict(name="Gold", kind=Policy.SUBSCRIPTION), AlreadyExists, "already has", id="duplicate"),
    pytest.param(dict(name="Unlimited", kind=Policy.API), AlreadyExists, "Unlimited", id="unlimited"),
])
def test_bad_policies_are_refused_with_the_field_named(store, fields, error, message):
    with pytest.raises(error, match=message):
        _create(store, **fields)


def test_the_same_name_may_exist_once_per_kind(store):
    made = _create(store, name="Gold", kind=Policy.APPLICATION, request_count=10, unit=Policy.SECOND)
    assert made.kind == Policy.APPLICATION


def test_unlimited_never_changes_and_is_never_deleted(store):
    unlimited = next(p for p in _list(store, Policy.SUBSCRIPTION) if p.name == "Unlimited")
    with pytest.raises(FailedPrecondition, match="cannot be changed"):
        throttling_policies.update_throttling_policy(store, throttling_pb2.UpdateThrottlingPolicyRequest(
            id=unlimited.id, policy=Policy(request_count=1), update_mask=FieldMask(paths=["request_count"])), ADMIN)
    with pytest.raises(FailedPrecondition, match="cannot be deleted"):
        throttling_policies.delete_throttling_policy(
            store, throttling_pb2.DeleteThrottlingPolicyRequest(id=unlimited.id), ADMIN)


def test_name_and_kind_never_change(store):
    gold = next(p for p in _list(store, Policy.SUBSCRIPTION) if p.name == "Gold")
    with pytest.raises(InvalidArgument):
        throttling_policies.update_throttling_policy(store, throttling_pb2.UpdateThrottlingPolicyRequest(
            id=gold.id, policy=Policy(name="Golder"), update_mask=FieldMask(paths=["name"])), ADMIN)


def test_another_organizations_policy_is_not_found(store, acme):
    gold = next(p for p in _list(store, Policy.SUBSCRIPTION) if p.name == "Gold")
    with pytest.raises(NotFound):
        throttling_policies.get_throttling_policy(store, throttling_pb2.GetThrottlingPolicyRequest(id=gold.id), acme)


def test_tiers_must_name_a_policy_of_the_right_kind(store):
    api = published_api(store)
    with pytest.raises(InvalidArgument, match="'Gld' is not a SUBSCRIPTION throttling policy.*Gold"):
        subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(
            application_id=create_application(store).id, api_id=api.id, tier="Gld"), ADMIN)
    with pytest.raises(InvalidArgument, match="'Gold' is not a APPLICATION throttling policy"):
        applications.create_application(store, admin_pb2.CreateApplicationRequest(name="A", throttling_tier="Gold"),
                                        ADMIN)
    application = applications.create_application(
        store, admin_pb2.CreateApplicationRequest(name="B", throttling_tier="10PerMin"), ADMIN)
    subscription = subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(
        application_id=application.id, api_id=api.id, tier="Bronze"), ADMIN)
    with pytest.raises(InvalidArgument, match="subscription.tier"):
        subscriptions.update_subscription(store, admin_pb2.UpdateSubscriptionRequest(
            id=subscription.id, subscription=admin_pb2.Subscription(tier="10PerMin"),
            update_mask=FieldMask(paths=["tier"])), ADMIN)


def test_apis_and_resources_name_api_policies(store):
    _create(store, name="10KPerMin", kind=Policy.API, request_count=10_000, unit=Policy.MINUTE)
    api = create_api(store, throttling_policy="10KPerMin",
                     resources=[admin_pb2.Resource(method="GET", path="/menu", throttling_policy="10KPerMin")])
    assert api.throttling_policy == "10KPerMin" and api.resources[0].throttling_policy == "10KPerMin"
    with pytest.raises(InvalidArgument, match=r"resources\[0\].throttling_policy 'Gold' is not a API"):
        create_api(store, name="Other", context="/other",
                   resources=[admin_pb2.Resource(method="GET", path="/x", throttling_policy="Gold")])
    with pytest.raises(InvalidArgument, match="api.throttling_policy"):
        apis.update_api(store, admin_pb2.UpdateApiRequest(id=api.id, api=admin_pb2.Api(throttling_policy="nope"),
                                                          update_mask=FieldMask(paths=["throttling_policy"])), ADMIN)


def test_a_policy_in_use_cannot_be_deleted_and_the_error_names_a_user(store):
    bronze = next(p for p in _list(store, Policy.SUBSCRIPTION) if p.name == "Bronze")
    api = published_api(store)
    subscription = subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(
        application_id=create_application(store).id, api_id=api.id, tier="Bronze"), ADMIN)
    with pytest.raises(FailedPrecondition, match=f"in use \\(subscription '{subscription.id}'\\)"):
        throttling_policies.delete_throttling_policy(store, throttling_pb2.DeleteThrottlingPolicyRequest(id=bronze.id),
                                                     ADMIN)
    resource_policy = _create(store, name="PerResource", kind=Policy.API, request_count=5, unit=Policy.SECOND)
    create_api(store, name="R", context="/r",
               resources=[admin_pb2.Resource(method="POST", path="/order", throttling_policy="PerResource")])
    with pytest.raises(FailedPrecondition, match="resource POST /order"):
        throttling_policies.delete_throttling_policy(
            store, throttling_pb2.DeleteThrottlingPolicyRequest(id=resource_policy.id), ADMIN)


def test_policies_and_their_changes_reach_the_change_log(store):
    made = _create(store, name="Sync", kind=Policy.API, request_count=3, unit=Policy.HOUR)
    with store.read() as session:
        from admin_api.db.models import ChangeRecord
        record = session.scalars(sa.select(ChangeRecord).where(ChangeRecord.entity_id == made.id)).one()
    entity = sync_pb2.PolicyEntity.FromString(record.payload)
    assert entity.throttling_policy.name == "Sync" and entity.throttling_policy.request_count == 3
    assert record.entity_kind == "THROTTLING_POLICY"


def test_the_migration_maps_free_tier_labels(tmp_path, caplog):
    """A database from before throttling policies, with free labels, upgraded."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    upgrade(engine, "0009_api_enforcement")
    now = "2026-01-01 00:00:00.000000"
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO organizations (id, name, created_at) VALUES ('default', 'D', :t)"),
                           {"t": now})
        connection.execute(sa.text(
            "INSERT INTO applications (id, organization_id, name, owner, throttling_tier, description, created_at, "
            "updated_at) VALUES ('app1', 'default', 'A', 'alice', 'Premium', '', :t, :t), "
            "('app2', 'default', 'B', 'alice', '10PerMin', '', :t, :t)"), {"t": now})
        connection.execute(sa.text(
            "INSERT INTO apis (id, organization_id, name, version, context, base_path, production_endpoint, "
            "sandbox_endpoint, resources, security, subscription_less, lifecycle_state, description, created_at, "
            "updated_at, pass_authorization_header) VALUES ('api1', 'default', 'P', '1', '/p', '/p/1', '', '', '[]', "
            "'{}', 0, 'PUBLISHED', '', :t, :t, 0)"), {"t": now})
        connection.execute(sa.text(
            "INSERT INTO subscriptions (id, organization_id, application_id, api_id, tier, status, created_at, "
            "updated_at) VALUES ('sub1', 'default', 'app1', 'api1', 'Gold', 'ACTIVE', :t, :t), "
            "('sub2', 'default', 'app2', 'api1', 'Gld', 'ACTIVE', :t, :t)"), {"t": now})
        connection.execute(sa.text("UPDATE revision_counter SET value = 41"))
        connection.execute(sa.text(
            "INSERT INTO change_log (revision, organization_id, entity_kind, entity_id, op, payload, committed_at) "
            "VALUES (41, 'default', 'API', 'api1', 'upsert', x'00', :t)"), {"t": now})
    with caplog.at_level(logging.WARNING, logger="admin_api.migrations"):
        upgrade(engine)
    assert "'Premium'" in caplog.text and "'Gld'" in caplog.text and "'Gold'" not in caplog.text
    with engine.connect() as connection:
        rows = {(kind, name): count for kind, name, count in connection.execute(sa.text(
            "SELECT kind, name, request_count FROM throttling_policies WHERE organization_id = 'default'"))}
        assert rows[("SUBSCRIPTION", "Gold")] == 5000 and rows[("APPLICATION", "10PerMin")] == 10
        assert rows[("APPLICATION", "Premium")] == 0 and rows[("SUBSCRIPTION", "Gld")] == 0
        assert len(rows) == 11
        assert connection.execute(sa.text("SELECT COUNT(*) FROM change_log")).scalar() == 0
        assert connection.execute(sa.text("SELECT value FROM revision_counter")).scalar() == 42
    engine.dispose()
    store = open_store(url)        # and admin_api serves it: the labels are valid tiers now
    try:
        gld = [p for p in _list(store, Policy.SUBSCRIPTION) if p.name == "Gld"]
        assert len(gld) == 1 and gld[0].request_count == 0
    finally:
        store.db.dispose()
