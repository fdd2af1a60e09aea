"""Organization isolation: another organization's entities do not exist for a caller."""

from __future__ import annotations

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from admin_api.access.caller import Caller, Role
from admin_api.errors import NotFound, PermissionDenied
from admin_api.services import api_keys, apis, applications, organizations, subscriptions
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import ADMIN, create_api, create_application, generate_key, published_api

pytestmark = pytest.mark.both_databases


@pytest.fixture
def default_entities(store):
    api = published_api(store)
    application = create_application(store)
    subscription = subscriptions.create_subscription(
        store, admin_pb2.CreateSubscriptionRequest(application_id=application.id, api_id=api.id), ADMIN)
    key = generate_key(store, api.id).api_key
    return {"api": api.id, "application": application.id, "subscription": subscription.id, "key": key.id}


@pytest.mark.parametrize(("call", "kind"), [
    pytest.param(lambda s, c, i: apis.get_api(s, admin_pb2.GetApiRequest(id=i), c), "api", id="get-api"),
    pytest.param(lambda s, c, i: apis.delete_api(s, admin_pb2.DeleteApiRequest(id=i), c), "api", id="delete-api"),
    pytest.param(lambda s, c, i: apis.update_api(s, admin_pb2.UpdateApiRequest(
        id=i, api=admin_pb2.Api(name="X"), update_mask=FieldMask(paths=["name"])), c), "api", id="update-api"),
    pytest.param(lambda s, c, i: apis.change_api_lifecycle(s, admin_pb2.ChangeApiLifecycleRequest(
        id=i, target_state=admin_pb2.Api.BLOCKED), c), "api", id="lifecycle-api"),
    pytest.param(lambda s, c, i: applications.get_application(s, admin_pb2.GetApplicationRequest(id=i), c),
                 "application", id="get-application"),
    pytest.param(lambda s, c, i: applications.delete_application(s, admin_pb2.DeleteApplicationRequest(id=i), c),
                 "application", id="delete-application"),
    pytest.param(lambda s, c, i: subscriptions.get_subscription(s, admin_pb2.GetSubscriptionRequest(id=i), c),
                 "subscription", id="get-subscription"),
    pytest.param(lambda s, c, i: subscriptions.delete_subscription(s, admin_pb2.DeleteSubscriptionRequest(id=i), c),
                 "subscription", id="delete-subscription"),
    pytest.param(lambda s, c, i: api_keys.get_api_key(s, admin_pb2.GetApiKeyRequest(id=i), c), "key",
                 id="get-key"),
    pytest.param(lambda s, c, i: api_keys.revoke_api_key(s, admin_pb2.RevokeApiKeyRequest(id=i), c), "key",
                 id="revoke-key"),
    pytest.param(lambda s, c, i: api_keys.regenerate_api_key(s, admin_pb2.RegenerateApiKeyRequest(id=i), c), "key",
                 id="regenerate-key"),
    pytest.param(lambda s, c, i: generate_key(s, i, c), "api", id="generate-key-for-foreign-api"),
])
def test_other_organization_gets_not_found(store, acme, default_entities, call, kind):
    with pytest.raises(NotFound):
        call(store, acme, default_entities[kind])


def test_lists_show_only_own_organization(store, acme, default_entities):
    create_api(store, acme, name="AcmeApi", context="/acme")
    listed = apis.list_apis(store, admin_pb2.ListApisRequest(), acme).apis
    assert [(a.name, a.base_path) for a in listed] == [("AcmeApi", "/t/acme/acme/1.0.0")]
    assert applications.list_applications(store, admin_pb2.ListApplicationsRequest(), acme).applications == []
    assert subscriptions.list_subscriptions(store, admin_pb2.ListSubscriptionsRequest(), acme).subscriptions == []
    assert api_keys.list_api_keys(store, admin_pb2.ListApiKeysRequest(include_revoked=True), acme).api_keys == []


def test_explicit_foreign_organization_is_refused(store, acme):
    with pytest.raises(PermissionDenied) as caught:
        apis.list_apis(store, admin_pb2.ListApisRequest(organization_id="default"), acme)
    assert caught.value.field == "organization_id"


def test_cross_organization_subscription_and_association_refused(store, acme, default_entities):
    acme_application = create_application(store, acme)
    with pytest.raises(NotFound) as caught:
        subscriptions.create_subscription(store, admin_pb2.CreateSubscriptionRequest(
            application_id=acme_application.id, api_id=default_entities["api"]), acme)
    assert caught.value.field == "api_id"
    with pytest.raises(NotFound) as caught:
        api_keys.associate_api_key(store, admin_pb2.AssociateApiKeyRequest(
            id=default_entities["key"], application_id=acme_application.id), ADMIN)
    assert caught.value.field == "application_id"


def test_only_default_organization_admins_create_organizations(store, acme):
    with pytest.raises(PermissionDenied):
        organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="other"), acme)
    own = organizations.list_organizations(store, admin_pb2.ListOrganizationsRequest(), acme).organizations
    assert [o.id for o in own] == ["acme"]
    everyone = organizations.list_organizations(store, admin_pb2.ListOrganizationsRequest(), ADMIN).organizations
    assert [o.id for o in everyone] == ["default", "acme"]


@pytest.mark.parametrize("bad_id", ["A", "x", "-ab", "ab-", "has_underscore", "a" * 64, ""])
def test_organization_id_syntax(store, bad_id):
    from admin_api.errors import InvalidArgument
    with pytest.raises(InvalidArgument) as caught:
        organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id=bad_id), ADMIN)
    assert caught.value.field == "id"


def test_tenant_api_base_path_has_organization_prefix(store, acme):
    api = create_api(store, Caller("mallory", "acme", Role.ADMIN))
    assert api.base_path == "/t/acme/pizzashack/1.0.0" and api.organization_id == "acme"
