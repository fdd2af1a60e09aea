"""Application keys: generation (resident and by RFC 7591 DCR), mapping, settings
validation, role restrictions, consumer secrets (single and multiple), hash-only storage,
and the two lookups the resident OAuth2 server uses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import update

from admin_api.access.caller import Caller, Role
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from admin_api.services import application_keys, applications, consumer_secrets, key_managers, organizations, users
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, key_managers_pb2, users_pb2
from portcullis_shared.credentials import credential_hash
from tests.admin_api.key_helpers import external_km, open_key_store, resident
from tests.fake_idp import FakeIdp

pb = application_keys_pb2
Settings = pb.OAuthClientSettings
ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)
ACME = Caller(subject="mallory", organization_id="acme", role=Role.ADMIN)


pytestmark = pytest.mark.key_store


@pytest.fixture
def multi_store(tmp_path: Path):
    store = open_key_store(tmp_path / "multi.db", multiple_consumer_secrets=True, max_consumer_secrets=3)
    yield store
    store.db.dispose()


def _application(store, owner: str = "alice", name: str = "Mobile", caller: Caller = ADMIN) -> admin_pb2.Application:
    return applications.create_application(store, admin_pb2.CreateApplicationRequest(name=name, owner=owner), caller)


def _generate(store, application_id: str, caller: Caller = ADMIN, **fields) -> pb.ApplicationKeyWithSecret:
    return application_keys.generate_application_key(
        store, pb.GenerateApplicationKeyRequest(application_id=application_id, **fields), caller)


def _user(store, username: str, roles: list[str]) -> None:
    users.create_user(store, users_pb2.CreateUserRequest(user=users_pb2.User(
        username=username, password="correct horse battery", roles=roles)), ADMIN)


def test_resident_key_with_defaults(store, db_path):
    application = _application(store)
    answer = _generate(store, application.id)
    key, value = answer.key, answer.consumer_secret
    assert key.consumer_key.startswith("pcc_") and value.startswith("pcsec_")
    assert key.environment == admin_pb2.PRODUCTION and key.origin == pb.ApplicationKey.GENERATED
    assert key.key_manager_id == resident(store, ADMIN).id
    assert list(key.settings.grant_types) == ["client_credentials", "refresh_token"]
    assert key.settings.token_type == Settings.JWT
    assert (key.settings.access_token_validity_seconds, key.settings.refresh_token_validity_seconds) == (3600, 86400)
    assert answer.secret.masked_value == value[:10] + "…" and not answer.secret.HasField("expires_at")
    listed = consumer_secrets.list_consumer_secrets(store, pb.ListConsumerSecretsRequest(
        application_key_id=key.id), ADMIN).secrets
    assert [s.masked_value for s in listed] == [answer.secret.masked_value]
    with store.read() as session:
        assert session.query(models.ConsumerSecret).one().secret_hash == credential_hash(value)
    store.db.dispose()
    for path in db_path.parent.iterdir():
        assert value.encode() not in path.read_bytes(), path.name


def test_find_oauth_client_and_verify_secret(store):
    application = _application(store, owner="bob")
    answer = _generate(store, application.id, environment=admin_pb2.SANDBOX,
                       settings=Settings(grant_types=["client_credentials"], access_token_validity_seconds=600))
    client = application_keys.find_oauth_client(store, answer.key.consumer_key)
    assert client == application_keys.OAuthClient(
        application_key_id=answer.key.id, organization_id="default", application_id=application.id,
        application_owner="bob", application_name=application.name, environment=admin_pb2.SANDBOX, key_manager_id=answer.key.key_manager_id,
        key_manager_type=key_managers_pb2.KeyManager.RESIDENT, consumer_key=answer.key.consumer_key,
        settings=client.settings)
    assert client.settings.access_token_validity_seconds == 600 and client.settings.refresh_token_validity_seconds == 86400
    assert application_keys.find_oauth_client(store, "pcc_unknown") is None
    assert application_keys.find_oauth_client(store, "") is None
    now = utcnow()
    assert consumer_secrets.verify_consumer_secret(store, answer.key.id, answer.consumer_secret, now)
    assert not consumer_secrets.verify_consumer_secret(store, answer.key.id, answer.consumer_secret + "x", now)
    assert not consumer_secrets.verify_consumer_secret(store, answer.key.id, "", now)
    assert not consumer_secrets.verify_consumer_secret(store, "other-key", answer.consumer_secret, now)


def test_expired_secret_does_not_verify(store):
    answer = _generate(store, _application(store).id, secret_validity_days=1)
    now = utcnow()
    assert consumer_secrets.verify_consumer_secret(store, answer.key.id, answer.consumer_secret, now)
    assert not consumer_secrets.verify_consumer_secret(store, answer.key.id, answer.consumer_secret,
                                                        now + timedelta(days=2))


def test_public_client_has_no_secret(store):
    settings = Settings(grant_types=["authorization_code", "refresh_token"], callback_url="https://app.example.com/cb",
                        pkce_mandatory=True, public_client=True)
    answer = _generate(store, _application(store).id, settings=settings)
    assert answer.consumer_secret == "" and not answer.HasField("secret")
    with pytest.raises(FailedPrecondition, match="public client"):
        consumer_secrets.regenerate_consumer_secret(store, pb.RegenerateConsumerSecretRequest(
            application_key_id=answer.key.id), ADMIN)


@pytest.mark.parametrize(("settings", "field", "fragment"), [
    pytest.param(Settings(grant_types=["implicit"]), "settings.grant_types", "unknown grant type", id="grant-unknown"),
    pytest.param(Settings(grant_types=["authorization_code"]), "settings.callback_url", "required with the "
                 "authorization_code grant", id="code-without-callback"),
    pytest.param(Settings(grant_types=["authorization_code"], callback_url="javascript:alert(1)"),
                 "settings.callback_url", "http:// or https://", id="callback-scheme"),
    pytest.param(Settings(pkce_plain_allowed=True), "settings.pkce_plain_allowed", "needs pkce_mandatory",
                 id="plain-without-pkce"),
    pytest.param(Settings(public_client=True, grant_types=["client_credentials"]), "settings.public_client",
                 "only authorization_code and refresh_token", id="public-client-credentials"),
    pytest.param(Settings(public_client=True, grant_types=["authorization_code"], callback_url="https://a.example/cb"),
                 "settings.public_client", "needs pkce_mandatory", id="public-without-pkce"),
    pytest.param(Settings(token_type=7), "settings.token_type", "JWT or REFERENCE", id="token-type"),
    pytest.param(Settings(access_token_validity_seconds=10), "settings.access_token_validity_seconds",
                 "between 60 and 86400", id="access-too-short"),
    pytest.param(Settings(access_token_validity_seconds=86401), "settings.access_token_validity_seconds",
                 "between 60 and 86400", id="access-too-long"),
    pytest.param(Settings(refresh_token_validity_seconds=-5), "settings.refresh_token_validity_seconds",
                 "between 60", id="refresh-negative"),
])
def test_settings_validation(store, settings, field, fragment):
    with pytest.raises(InvalidArgument, match=fragment) as caught:
        _generate(store, _application(store).id, settings=settings)
    assert caught.value.field == field


@pytest.mark.parametrize(("fields", "field", "fragment"), [
    pytest.param({"environment": 9}, "environment", "PRODUCTION or SANDBOX", id="environment"),
    pytest.param({"secret_validity_days": -1}, "secret_validity_days", "between 0", id="validity-negative"),
    pytest.param({"secret_validity_days": 3651}, "secret_validity_days", "between 0", id="validity-long"),
])
def test_request_validation(store, fields, field, fragment):
    with pytest.raises(InvalidArgument, match=fragment) as caught:
        _generate(store, _application(store).id, **fields)
    assert caught.value.field == field


def test_one_key_per_application_environment_and_key_manager(store):
    application = _application(store)
    first = _generate(store, application.id)
    with pytest.raises(AlreadyExists, match="already has a PRODUCTION key with key manager 'Resident Key Manager'"):
        _generate(store, application.id, environment=admin_pb2.PRODUCTION)
    sandbox = _generate(store, application.id, environment=admin_pb2.SANDBOX)
    keys = application_keys.list_application_keys(store, pb.ListApplicationKeysRequest(
        application_id=application.id), ADMIN).keys
    assert [k.id for k in keys] == [first.key.id, sandbox.key.id]
    assert all(first.consumer_secret not in str(k) for k in keys)


def test_disabled_key_manager_generates_no_keys(store):
    km = resident(store, ADMIN)
    key_managers.update_key_manager(store, key_managers_pb2.UpdateKeyManagerRequest(
        id=km.id, key_manager=key_managers_pb2.KeyManager(enabled=False), update_mask=FieldMask(paths=["enabled"])),
        ADMIN)
    with pytest.raises(FailedPrecondition, match="is disabled"):
        _generate(store, _application(store).id)


def test_external_without_app_creation_must_be_mapped(store):
    km = external_km(store, ADMIN)
    application = _application(store)
    with pytest.raises(FailedPrecondition, match="MapApplicationKey"):
        _generate(store, application.id, key_manager_id=km.id)
    mapped = application_keys.map_application_key(store, pb.MapApplicationKeyRequest(
        application_id=application.id, key_manager_id=km.id, consumer_key="my-keycloak-client",
        environment=admin_pb2.SANDBOX), ADMIN)
    assert mapped.origin == pb.ApplicationKey.MAPPED and mapped.consumer_key == "my-keycloak-client"
    with pytest.raises(AlreadyExists):
        application_keys.map_application_key(store, pb.MapApplicationKeyRequest(
            application_id=_application(store, name="Other").id, key_manager_id=km.id,
            consumer_key="my-keycloak-client"), ADMIN)
    with pytest.raises(FailedPrecondition, match="managed by key manager 'Keycloak'"):
        consumer_secrets.regenerate_consumer_secret(store, pb.RegenerateConsumerSecretRequest(
            application_key_id=mapped.id), ADMIN)


def test_resident_keys_are_not_mapped(store):
    with pytest.raises(FailedPrecondition, match="generated"):
        application_keys.map_application_key(store, pb.MapApplicationKeyRequest(
            application_id=_application(store).id, consumer_key="whatever"), ADMIN)


def test_map_needs_a_consumer_key(store):
    km = external_km(store, ADMIN)
    with pytest.raises(InvalidArgument, match="consumer_key is required") as caught:
        application_keys.map_application_key(store, pb.MapApplicationKeyRequest(
            application_id=_application(store).id, key_manager_id=km.id, consumer_key="has space"), ADMIN)
    assert caught.value.field == "consumer_key"


def test_dynamic_client_registration(store, db_path):
    with FakeIdp() as provider:
        km = external_km(store, ADMIN, name="IdP", issuer=provider.base_url, jwks_uri=provider.base_url + "/jwks",
                         registration_endpoint=provider.base_url + "/register", consumer_app_creation_enabled=True,
                         registration_access_token=provider.initial_access_token)
        application = _application(store)
        settings = Settings(grant_types=["authorization_code", "refresh_token"],
                            callback_url="https://app.example.com/cb")
        answer = _generate(store, application.id, key_manager_id=km.id, settings=settings)
    registered = provider.clients[answer.key.consumer_key]
    secret = registered.client_secret
    assert secret and answer.consumer_secret == secret
    assert answer.key.origin == pb.ApplicationKey.GENERATED
    [registration] = provider.registrations
    assert registration.headers["authorization"] == f"Bearer {provider.initial_access_token}"
    body = registration.body
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["redirect_uris"] == ["https://app.example.com/cb"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_name"].startswith("Mobile")
    with store.read() as session:
        assert session.query(models.ConsumerSecret).one().secret_hash == credential_hash(secret)
    store.db.dispose()
    for path in db_path.parent.iterdir():
        data = path.read_bytes()
        assert secret.encode() not in data and provider.initial_access_token.encode() not in data, path.name


def test_dynamic_client_registration_refused_is_a_clear_error(store):
    with FakeIdp() as provider:
        provider.registration_status = 400
        km = external_km(store, ADMIN, name="IdP", issuer=provider.base_url, jwks_uri=provider.base_url + "/jwks",
                         registration_endpoint=provider.base_url + "/register", consumer_app_creation_enabled=True,
                         registration_access_token=provider.initial_access_token)
        application = _application(store)
        with pytest.raises(FailedPrecondition, match="refused \\(HTTP 400, invalid_client_metadata: redirect_uris"):
            _generate(store, application.id, key_manager_id=km.id)
        # A wrong initial access token is refused by the provider too.
        key_managers.update_key_manager(store, key_managers_pb2.UpdateKeyManagerRequest(
            id=km.id, key_manager=key_managers_pb2.KeyManager(registration_access_token="wrong"),
            update_mask=FieldMask(paths=["registration_access_token"])), ADMIN)
        provider.registration_status = 201
        with pytest.raises(FailedPrecondition, match="HTTP 401, invalid_token"):
            _generate(store, application.id, key_manager_id=km.id)
    assert [r.headers["authorization"] for r in provider.registrations] == [f"Bearer {provider.initial_access_token}",
                                                                             "Bearer wrong"]
    assert application_keys.list_application_keys(store, pb.ListApplicationKeysRequest(
        application_id=application.id), ADMIN).keys == []


def test_role_based_allow_list(store):
    km = external_km(store, ADMIN, key_generation_allowed_roles=["gold", "platinum"])
    _user(store, "goldie", ["gold"])
    _user(store, "basic", ["bronze"])
    allowed = application_keys.map_application_key(store, pb.MapApplicationKeyRequest(
        application_id=_application(store, owner="goldie").id, key_manager_id=km.id, consumer_key="c1"), ADMIN)
    assert allowed.consumer_key == "c1"
    for owner in ("basic", "not-a-user"):
        with pytest.raises(PermissionDenied, match="allows key generation only to owners with a role of gold, "
                                                   f"platinum; owner '{owner}'"):
            application_keys.map_application_key(store, pb.MapApplicationKeyRequest(
                application_id=_application(store, owner=owner).id, key_manager_id=km.id, consumer_key="c-" + owner),
                ADMIN)


def test_role_based_deny_list_on_generate_keeps_existing_keys(store):
    _user(store, "guest", ["guest", "reader"])
    application = _application(store, owner="guest")
    before = _generate(store, application.id)
    km = resident(store, ADMIN)
    key_managers.update_key_manager(store, key_managers_pb2.UpdateKeyManagerRequest(
        id=km.id, key_manager=key_managers_pb2.KeyManager(key_generation_denied_roles=["guest"]),
        update_mask=FieldMask(paths=["key_generation_denied_roles"])), ADMIN)
    with pytest.raises(PermissionDenied, match="denies key generation to role\\(s\\) guest of owner 'guest'"):
        _generate(store, application.id, environment=admin_pb2.SANDBOX)
    # An owner without the denied role still may.
    assert _generate(store, _application(store, owner="carol").id).key.consumer_key
    # The key made before the restriction is still listed and still authenticates.
    keys = application_keys.list_application_keys(store, pb.ListApplicationKeysRequest(
        application_id=application.id), ADMIN).keys
    assert [k.id for k in keys] == [before.key.id]
    assert application_keys.find_oauth_client(store, before.key.consumer_key) is not None
    assert consumer_secrets.verify_consumer_secret(store, before.key.id, before.consumer_secret, utcnow())


def test_single_secret_mode(store):
    answer = _generate(store, _application(store).id)
    request = pb.CreateConsumerSecretRequest(application_key_id=answer.key.id)
    with pytest.raises(FailedPrecondition, match="PORTCULLIS_MULTIPLE_CONSUMER_SECRETS=false"):
        consumer_secrets.create_consumer_secret(store, request, ADMIN)
    with pytest.raises(FailedPrecondition, match="RegenerateConsumerSecret"):
        consumer_secrets.delete_consumer_secret(store, pb.DeleteConsumerSecretRequest(
            application_key_id=answer.key.id, id=answer.secret.id), ADMIN)
    regenerated = consumer_secrets.regenerate_consumer_secret(store, pb.RegenerateConsumerSecretRequest(
        application_key_id=answer.key.id), ADMIN)
    now = utcnow()
    assert regenerated.value.startswith("pcsec_") and regenerated.value != answer.consumer_secret
    assert consumer_secrets.verify_consumer_secret(store, answer.key.id, regenerated.value, now)
    assert not consumer_secrets.verify_consumer_secret(store, answer.key.id, answer.consumer_secret, now)
    listed = consumer_secrets.list_consumer_secrets(store, pb.ListConsumerSecretsRequest(
        application_key_id=answer.key.id), ADMIN).secrets
    assert [s.id for s in listed] == [regenerated.secret.id]


def test_multiple_secrets_each_work_and_the_maximum_is_enforced(multi_store):
    store = multi_store
    answer = _generate(store, _application(store).id, secret_description="first")
    key_id = answer.key.id
    with pytest.raises(FailedPrecondition, match="CreateConsumerSecret"):
        consumer_secrets.regenerate_consumer_secret(store, pb.RegenerateConsumerSecretRequest(
            application_key_id=key_id), ADMIN)
    second = consumer_secrets.create_consumer_secret(store, pb.CreateConsumerSecretRequest(
        application_key_id=key_id, description="CI", validity_days=30), ADMIN)
    third = consumer_secrets.create_consumer_secret(store, pb.CreateConsumerSecretRequest(
        application_key_id=key_id), ADMIN)
    assert second.secret.description == "CI" and second.secret.HasField("expires_at")
    now = utcnow()
    for value in (answer.consumer_secret, second.value, third.value):
        assert consumer_secrets.verify_consumer_secret(store, key_id, value, now)
    with pytest.raises(FailedPrecondition, match="already has 3 consumer secret\\(s\\).*"
                                                 "PORTCULLIS_MAX_CONSUMER_SECRETS=3\\): delete one first"):
        consumer_secrets.create_consumer_secret(store, pb.CreateConsumerSecretRequest(application_key_id=key_id),
                                                ADMIN)
    listed = consumer_secrets.list_consumer_secrets(store, pb.ListConsumerSecretsRequest(
        application_key_id=key_id), ADMIN).secrets
    assert [s.description for s in listed] == ["first", "CI", ""]
    assert all(s.masked_value.endswith("…") for s in listed)
    assert all(v not in str(listed) for v in (answer.consumer_secret, second.value, third.value))
    consumer_secrets.delete_consumer_secret(store, pb.DeleteConsumerSecretRequest(
        application_key_id=key_id, id=answer.secret.id), ADMIN)
    assert not consumer_secrets.verify_consumer_secret(store, key_id, answer.consumer_secret, now)
    assert consumer_secrets.verify_consumer_secret(store, key_id, second.value, now)
    with pytest.raises(NotFound):
        consumer_secrets.delete_consumer_secret(store, pb.DeleteConsumerSecretRequest(
            application_key_id=key_id, id=answer.secret.id), ADMIN)
    assert consumer_secrets.create_consumer_secret(store, pb.CreateConsumerSecretRequest(
        application_key_id=key_id), ADMIN).value


def test_update_changes_only_settings(store):
    answer = _generate(store, _application(store).id)
    changed = application_keys.update_application_key(store, pb.UpdateApplicationKeyRequest(
        id=answer.key.id, key=pb.ApplicationKey(settings=Settings(token_type=Settings.REFERENCE)),
        update_mask=FieldMask(paths=["settings"])), ADMIN)
    assert changed.settings.token_type == Settings.REFERENCE and changed.consumer_key == answer.key.consumer_key
    with pytest.raises(InvalidArgument, match="consumer_key cannot be changed"):
        application_keys.update_application_key(store, pb.UpdateApplicationKeyRequest(
            id=answer.key.id, key=pb.ApplicationKey(consumer_key="x"), update_mask=FieldMask(paths=["consumer_key"])),
            ADMIN)
    with pytest.raises(FailedPrecondition, match="has consumer secrets"):
        application_keys.update_application_key(store, pb.UpdateApplicationKeyRequest(
            id=answer.key.id, key=pb.ApplicationKey(settings=Settings(
                public_client=True, pkce_mandatory=True, grant_types=["authorization_code"],
                callback_url="https://a.example.com/cb")), update_mask=FieldMask(paths=["settings"])), ADMIN)


def test_deleting_the_application_deletes_its_keys_and_secrets(store):
    application = _application(store)
    answer = _generate(store, application.id)
    applications.delete_application(store, admin_pb2.DeleteApplicationRequest(id=application.id), ADMIN)
    assert application_keys.find_oauth_client(store, answer.key.consumer_key) is None
    with store.read() as session:
        assert session.query(models.ConsumerSecret).count() == 0


def test_delete_key(store):
    answer = _generate(store, _application(store).id)
    application_keys.delete_application_key(store, pb.DeleteApplicationKeyRequest(id=answer.key.id), ADMIN)
    assert application_keys.find_oauth_client(store, answer.key.consumer_key) is None
    assert not consumer_secrets.verify_consumer_secret(store, answer.key.id, answer.consumer_secret, utcnow())


def test_organization_isolation(store):
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    application = _application(store)
    answer = _generate(store, application.id)
    with pytest.raises(NotFound):
        _generate(store, application.id, ACME)
    with pytest.raises(NotFound):
        application_keys.get_application_key(store, pb.GetApplicationKeyRequest(id=answer.key.id), ACME)
    with pytest.raises(NotFound):
        consumer_secrets.list_consumer_secrets(store, pb.ListConsumerSecretsRequest(
            application_key_id=answer.key.id), ACME)
    with pytest.raises(NotFound):
        consumer_secrets.regenerate_consumer_secret(store, pb.RegenerateConsumerSecretRequest(
            application_key_id=answer.key.id), ACME)
    # Another organization's key manager cannot be used for our application, nor ours for theirs.
    acme_app = _application(store, owner="mallory", caller=ACME)
    with pytest.raises(NotFound):
        _generate(store, acme_app.id, ACME, key_manager_id=resident(store, ADMIN).id)
    acme_key = _generate(store, acme_app.id, ACME)
    assert acme_key.key.key_manager_id == resident(store, ACME).id
    assert application_keys.find_oauth_client(store, acme_key.key.consumer_key).organization_id == "acme"


def test_secret_validity(store):
    answer = _generate(store, _application(store).id, secret_validity_days=10)
    with store.write() as writer:
        writer.session.execute(update(models.ConsumerSecret).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert not consumer_secrets.verify_consumer_secret(store, answer.key.id, answer.consumer_secret, utcnow())
