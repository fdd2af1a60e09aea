"""Applications and subscriptions: defaults, uniqueness, lifecycle gate, cascade, paging."""

from __future__ import annotations

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import update

from admin_api.db import models
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from admin_api.services import api_keys, applications, subscriptions
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import ADMIN, create_api, create_application, generate_key, published_api

pytestmark = pytest.mark.both_databases

Status = admin_pb2.Subscription.Status


def _subscribe(store, application_id, api_id, **fields):
    return subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(
        application_id=application_id, api_id=api_id, **fields), ADMIN)


def test_application_defaults_and_uniqueness(store):
    application = create_application(store)
    assert (application.owner, application.throttling_tier) == ("alice", "Unlimited")
    with pytest.raises(AlreadyExists, match="already has an application named 'Mobile'"):
        create_application(store)
    other_owner = applications.create_application(
        store, admin_pb2.CreateApplicationRequest(name="Mobile", owner="bob"), ADMIN)
    assert other_owner.owner == "bob"


def test_subscription_defaults_and_uniqueness(store):
    api = published_api(store)
    application = create_application(store)
    subscription = _subscribe(store, application.id, api.id)
    assert (subscription.tier, subscription.status) == ("Unlimited", Status.ACTIVE)
    with pytest.raises(AlreadyExists, match="already subscribed"):
        _subscribe(store, application.id, api.id, tier="Gold")


@pytest.mark.parametrize(("state", "allowed"), [
    pytest.param(state, state == "PUBLISHED", id=state.lower())
    for state in ("CREATED", "PUBLISHED", "DEPRECATED", "BLOCKED", "RETIRED")])
def test_new_subscriptions_only_for_published_apis(store, state, allowed):
    api = create_api(store)
    with store.write() as writer:
        writer.session.execute(update(models.Api).where(models.Api.id == api.id).values(lifecycle_state=state))
    application = create_application(store)
    if allowed:
        assert _subscribe(store, application.id, api.id).api_id == api.id
    else:
        with pytest.raises(FailedPrecondition, match="only for PUBLISHED APIs"):
            _subscribe(store, application.id, api.id)


@pytest.mark.parametrize(("fields", "field"), [
    pytest.param({"application_id": ""}, "application_id", id="application-missing"),
    pytest.param({"api_id": ""}, "api_id", id="api-missing"),
    pytest.param({"status": 42}, "status", id="status-unknown"),
    pytest.param({"tier": "no spaces allowed"}, "tier", id="tier-syntax"),
])
def test_subscription_validation(store, fields, field):
    api = published_api(store)
    application = create_application(store)
    request = {"application_id": application.id, "api_id": api.id, **fields}
    with pytest.raises(InvalidArgument) as caught:
        subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(**request), ADMIN)
    assert caught.value.field == field


def test_update_subscription_status_and_immutables(store):
    api = published_api(store)
    subscription = _subscribe(store, create_application(store).id, api.id)
    updated = subscriptions.update_subscription(store, admin_pb2.UpdateSubscriptionRequest(
        id=subscription.id, subscription=admin_pb2.Subscription(status=Status.PROD_ONLY_BLOCKED, tier="Gold"),
        update_mask=FieldMask(paths=["status"])), ADMIN)
    assert (updated.status, updated.tier) == (Status.PROD_ONLY_BLOCKED, "Unlimited")
    with pytest.raises(InvalidArgument, match="api_id cannot be changed"):
        subscriptions.update_subscription(store, admin_pb2.UpdateSubscriptionRequest(
            id=subscription.id, update_mask=FieldMask(paths=["api_id"])), ADMIN)


def test_deleting_application_deletes_subscriptions_and_dissociates_keys(store):
    api = published_api(store)
    application = create_application(store)
    _subscribe(store, application.id, api.id)
    key = generate_key(store, api.id, application_id=application.id).api_key
    applications.delete_application(store, admin_pb2.DeleteApplicationRequest(id=application.id), ADMIN)
    assert subscriptions.list_subscriptions(store, admin_pb2.ListSubscriptionsRequest(), ADMIN).subscriptions == []
    kept = api_keys.get_api_key(store, admin_pb2.GetApiKeyRequest(id=key.id), ADMIN)
    assert kept.application_id == "" and kept.status == admin_pb2.ApiKey.ACTIVE


def test_paging_walks_every_application_once(store):
    names = [f"App{i}" for i in range(7)]
    for name in names:
        create_application(store, name=name)
    seen, token, pages = [], "", 0
    while True:
        page = applications.list_applications(
            store, admin_pb2.ListApplicationsRequest(page_size=3, page_token=token), ADMIN)
        seen += [a.name for a in page.applications]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == names and pages == 3


@pytest.mark.parametrize(("request_fields", "field"), [
    pytest.param({"page_size": -1}, "page_size", id="negative-size"),
    pytest.param({"page_size": 501}, "page_size", id="size-too-big"),
    pytest.param({"page_token": "garbage!"}, "page_token", id="garbage-token"),
    pytest.param({"page_token": "e30"}, "page_token", id="empty-json-token"),
])
def test_paging_errors(store, request_fields, field):
    with pytest.raises(InvalidArgument) as caught:
        applications.list_applications(store, admin_pb2.ListApplicationsRequest(**request_fields), ADMIN)
    assert caught.value.field == field


def test_page_token_is_bound_to_its_filters(store):
    for name in ("A", "B"):
        create_application(store, name=name)
    token = applications.list_applications(
        store, admin_pb2.ListApplicationsRequest(page_size=1), ADMIN).next_page_token
    assert token
    with pytest.raises(InvalidArgument, match="page_token"):
        applications.list_applications(
            store, admin_pb2.ListApplicationsRequest(page_size=1, page_token=token, owner="alice"), ADMIN)
