"""Key managers: validation, presets, discovery, the resident key manager, write-only
secrets encrypted at rest, deletion rules, API allow-lists and organization isolation."""

from __future__ import annotations


import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.field_mask_pb2 import FieldMask

from admin_api.access.caller import Caller, Role
from admin_api.db import models
from admin_api.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied,
                              Unavailable)
from admin_api.services import apis, application_keys, key_managers, organizations
from admin_api.sync_records.key_managers import key_manager_record
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, key_managers_pb2
from tests.admin_api.conftest import create_api, create_application
from tests.admin_api.key_helpers import PUBLIC_URL, external_km, open_key_store, resident
from tests.fake_idp import FakeIdp

KM = key_managers_pb2.KeyManager
ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)
ACME = Caller(subject="mallory", organization_id="acme", role=Role.ADMIN)
PUBLIC_KEY_PEM = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


pytestmark = pytest.mark.key_store


def _update(store, km_id: str, paths: list[str], caller: Caller = ADMIN, **fields) -> KM:
    message = KM()
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(message, name).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return key_managers.update_key_manager(store, key_managers_pb2.UpdateKeyManagerRequest(
        id=km_id, key_manager=message, update_mask=FieldMask(paths=paths)), caller)


def _record(store, km_id: str):
    with store.read() as session:
        return key_manager_record(session.get_one(models.KeyManager, km_id), store.config)


@pytest.mark.parametrize(("fields", "field", "fragment"), [
    pytest.param({"name": ""}, "key_manager.name", "required", id="name-missing"),
    pytest.param({"name": "bad/name"}, "key_manager.name", "letters, digits", id="name-characters"),
    pytest.param({"type": KM.RESIDENT}, "key_manager.type", "made by Portcullis", id="type-resident"),
    pytest.param({"type": 42}, "key_manager.type", "one of OIDC", id="type-unknown"),
    pytest.param({"issuer": ""}, "key_manager.issuer", "issuer is required", id="issuer-missing"),
    pytest.param({"issuer": "ftp://idp.example.com"}, "key_manager.issuer", "http:// or https://", id="issuer-scheme"),
    pytest.param({"jwks_uri": ""}, "key_manager.jwks_uri", "needs jwks_uri or certificate_pem", id="jwt-without-keys"),
    pytest.param({"jwks_uri": "not a url"}, "key_manager.jwks_uri", "http:// or https://", id="jwks-not-url"),
    pytest.param({"token_handling": key_managers_pb2.TokenHandling(accepts_reference_tokens=True, accepts_jwt=True)},
                 "key_manager.introspection_endpoint", "needs an introspection_endpoint", id="opaque-without-introspection"),
    pytest.param({"token_handling": key_managers_pb2.TokenHandling()}, "key_manager.token_handling",
                 "JWTs, reference tokens or both", id="accepts-nothing"),
    pytest.param({"token_handling": key_managers_pb2.TokenHandling(accepts_jwt=True, token_format_pattern="^(pct_")},
                 "key_manager.token_handling.token_format_pattern", "not a valid regular expression", id="pattern-broken"),
    pytest.param({"allowed_algorithms": ["none"]}, "key_manager.allowed_algorithms", "never accepted", id="alg-none"),
    pytest.param({"allowed_algorithms": ["RS256", "HS256"]}, "key_manager.allowed_algorithms", "no HMAC",
                 id="alg-hmac"),
    pytest.param({"allowed_algorithms": ["RS999"]}, "key_manager.allowed_algorithms", "unknown algorithm",
                 id="alg-unknown"),
    pytest.param({"leeway_seconds": 301}, "key_manager.leeway_seconds", "between 1 and 300", id="leeway-too-long"),
    pytest.param({"leeway_seconds": -1}, "key_manager.leeway_seconds", "between 1 and 300", id="leeway-negative"),
    pytest.param({"key_generation_allowed_roles": ["admin"], "key_generation_denied_roles": ["guest"]},
                 "key_manager.key_generation_denied_roles", "never both", id="roles-both"),
    pytest.param({"key_generation_allowed_roles": ["bad role"]}, "key_manager.key_generation_allowed_roles",
                 "role 'bad role'", id="role-name"),
    pytest.param({"certificate_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"},
                 "key_manager.certificate_pem", "neither a PEM", id="certificate-garbage"),
    pytest.param({"consumer_app_creation_enabled": True}, "key_manager.registration_endpoint",
                 "needs a registration_endpoint", id="dcr-without-endpoint"),
    pytest.param({"introspection_client_secret": "s3cret"}, "key_manager.introspection_client_id",
                 "introspection_client_id is required", id="secret-without-client-id"),
    pytest.param({"claim_mappings": key_managers_pb2.ClaimMappings(consumer_key_claim="a b")},
                 "key_manager.claim_mappings.consumer_key_claim", "claim name", id="claim-with-space"),
])
def test_create_validation_names_the_field(store, fields, field, fragment):
    with pytest.raises(InvalidArgument, match=fragment) as caught:
        external_km(store, ADMIN, **fields)
    assert caught.value.field == field


def test_allowed_and_denied_roles_never_both_on_update(store):
    km = external_km(store, ADMIN, key_generation_allowed_roles=["gold"])
    with pytest.raises(InvalidArgument, match="never both"):
        _update(store, km.id, ["key_generation_denied_roles"], key_generation_denied_roles=["guest"])
    changed = _update(store, km.id, ["key_generation_allowed_roles", "key_generation_denied_roles"],
                      key_generation_denied_roles=["guest"])
    assert list(changed.key_generation_denied_roles) == ["guest"] and not changed.key_generation_allowed_roles


@pytest.mark.parametrize(("km_type", "consumer_key_claims"), [
    pytest.param(KM.OIDC, ["azp", "client_id"], id="oidc"),
    pytest.param(KM.KEYCLOAK, ["azp"], id="keycloak"),
    pytest.param(KM.OKTA, ["cid"], id="okta"),
    pytest.param(KM.WSO2_IS, ["azp"], id="wso2is"),
])
def test_presets_by_type(store, km_type, consumer_key_claims):
    km = external_km(store, ADMIN, type=km_type)
    assert list(km.allowed_algorithms) == ["RS256", "PS256", "ES256"]
    assert km.leeway_seconds == 30 and km.enabled
    assert km.token_handling.accepts_jwt and not km.token_handling.accepts_reference_tokens
    record = _record(store, km.id)
    assert list(record.consumer_key_claims) == consumer_key_claims
    assert list(record.scopes_claims) == ["scope", "scp"]
    assert not record.introspection_with_sync_token


def test_claim_mappings_override_the_preset(store):
    km = external_km(store, ADMIN, type=KM.OKTA,
                     claim_mappings=key_managers_pb2.ClaimMappings(consumer_key_claim="client_id", scopes_claim="scp"))
    record = _record(store, km.id)
    assert (list(record.consumer_key_claims), list(record.scopes_claims)) == (["client_id"], ["scp"])


def test_certificate_instead_of_jwks(store):
    km = external_km(store, ADMIN, jwks_uri="", certificate_pem=PUBLIC_KEY_PEM)
    assert km.certificate_pem == PUBLIC_KEY_PEM and not km.jwks_uri


def test_name_is_unique_in_the_organization_and_immutable(store, db_path):
    km = external_km(store, ADMIN)
    with pytest.raises(AlreadyExists, match="already exists"):
        external_km(store, ADMIN)
    with pytest.raises(InvalidArgument, match="name cannot be changed"):
        _update(store, km.id, ["name"], name="Other")


def test_issuer_selects_one_key_manager(store):
    km = external_km(store, ADMIN)
    with pytest.raises(AlreadyExists, match="already has issuer") as caught:
        external_km(store, ADMIN, name="Twin")
    assert caught.value.field == "key_manager.issuer"
    other = external_km(store, ADMIN, name="Other", issuer="https://other.example.com")
    with pytest.raises(AlreadyExists, match="already has issuer"):
        _update(store, other.id, ["issuer"], issuer=km.issuer)
    with pytest.raises(AlreadyExists, match="resident key manager's"):
        external_km(store, ADMIN, name="Fake resident", issuer=PUBLIC_URL)


def test_discovery_fills_empty_fields_and_explicit_fields_win(store):
    with FakeIdp() as provider:
        km = external_km(store, ADMIN, name="Discovered", issuer="", jwks_uri="", discovery_url=provider.base_url,
                         token_endpoint="https://explicit.example.com/token")
    assert km.issuer == provider.base_url
    assert km.jwks_uri == provider.base_url + "/jwks"
    assert km.introspection_endpoint == provider.base_url + "/introspect"
    assert km.registration_endpoint == provider.base_url + "/register"
    assert km.token_endpoint == "https://explicit.example.com/token"


def test_discovery_accepts_the_full_document_url(store):
    with FakeIdp() as provider:
        km = external_km(store, ADMIN, issuer="", jwks_uri="",
                         discovery_url=provider.base_url + "/.well-known/openid-configuration")
    assert km.issuer == provider.base_url and km.jwks_uri == provider.base_url + "/jwks"


def test_discovery_refuses_a_document_for_another_issuer(store):
    with FakeIdp() as provider:
        provider.issuer_override = "https://evil.example.com"
        with pytest.raises(FailedPrecondition, match="is for issuer 'https://evil.example.com'") as caught:
            external_km(store, ADMIN, issuer="", jwks_uri="", discovery_url=provider.base_url)
    assert caught.value.field == "key_manager.discovery_url"


def test_discovery_checks_the_configured_issuer(store):
    with FakeIdp() as provider:
        with pytest.raises(FailedPrecondition, match="not 'https://other.example.com'"):
            external_km(store, ADMIN, issuer="https://other.example.com", jwks_uri="",
                        discovery_url=provider.base_url)


def test_discovery_http_error_is_a_clear_error(store):
    with FakeIdp() as provider:
        provider.discovery_status = 503
        with pytest.raises(Unavailable, match=f"{provider.base_url}/.well-known/openid-configuration answered HTTP 503"):
            external_km(store, ADMIN, issuer="", jwks_uri="", discovery_url=provider.base_url)
        provider.discovery_status = 404
        with pytest.raises(FailedPrecondition, match="answered HTTP 404"):
            external_km(store, ADMIN, issuer="", jwks_uri="", discovery_url=provider.base_url)


def test_discovery_unreachable_names_the_url(store):
    with FakeIdp() as provider:
        url = provider.base_url
    with pytest.raises(Unavailable, match=f"{url}/.well-known/openid-configuration could not be fetched"):
        external_km(store, ADMIN, issuer="", jwks_uri="", discovery_url=url)
    with store.read() as session:
        assert session.query(models.KeyManager).count() == 1  # only the resident


def test_discovery_on_update(store):
    km = external_km(store, ADMIN)
    with FakeIdp() as provider:
        changed = _update(store, km.id, ["discovery_url", "issuer", "jwks_uri"], discovery_url=provider.base_url)
    assert changed.issuer == provider.base_url and changed.jwks_uri == provider.base_url + "/jwks"


def test_resident_exists_and_is_derived_from_the_public_url(store):
    km = resident(store, ADMIN)
    assert km.name == "Resident Key Manager" and km.enabled
    assert km.issuer == PUBLIC_URL
    assert km.jwks_uri == PUBLIC_URL + "/oauth2/jwks"
    assert km.token_endpoint == PUBLIC_URL + "/oauth2/token"
    assert km.introspection_endpoint == PUBLIC_URL + "/oauth2/introspect"
    assert km.discovery_url == PUBLIC_URL + "/.well-known/openid-configuration"
    assert km.token_handling.accepts_jwt and km.token_handling.accepts_reference_tokens
    assert km.token_handling.token_format_pattern == "^pct_[A-Za-z0-9_-]{43}$"
    record = _record(store, km.id)
    assert record.introspection_with_sync_token and record.issuer == PUBLIC_URL
    assert list(record.consumer_key_claims) == ["azp", "client_id"]
    with store.read() as session:
        assert session.get_one(models.KeyManager, km.id).issuer == ""  # not stored: derived


def test_resident_is_not_stored_with_a_port(tmp_path):
    first = open_key_store(tmp_path / "db.sqlite", public_url="http://127.0.0.1:18081")
    km_id = resident(first, ADMIN).id
    first.db.dispose()
    second = open_key_store(tmp_path / "db.sqlite", public_url="https://api.example.com")
    try:
        km = resident(second, ADMIN)
        assert km.id == km_id and km.issuer == "https://api.example.com"
        assert _record(second, km.id).jwks_uri == "https://api.example.com/oauth2/jwks"
    finally:
        second.db.dispose()


def test_resident_can_be_disabled_but_not_retyped_nor_deleted(store):
    km = resident(store, ADMIN)
    assert not _update(store, km.id, ["enabled"], enabled=False).enabled
    assert _update(store, km.id, ["enabled"], enabled=True).enabled
    for path, value in (("type", KM.OIDC), ("issuer", "https://x.example.com"),
                        ("jwks_uri", "https://x.example.com/jwks"), ("token_handling", key_managers_pb2.TokenHandling())):
        with pytest.raises(FailedPrecondition, match="of the resident key manager cannot be changed"):
            _update(store, km.id, [path], **{path: value})
    with pytest.raises(FailedPrecondition, match="cannot be deleted"):
        key_managers.delete_key_manager(store, key_managers_pb2.DeleteKeyManagerRequest(id=km.id), ADMIN)
    with pytest.raises(InvalidArgument, match="never both"):
        _update(store, km.id, ["key_generation_allowed_roles", "key_generation_denied_roles"],
                key_generation_allowed_roles=["a"], key_generation_denied_roles=["b"])


def test_every_organization_gets_its_resident(store):
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    assert resident(store, ACME).organization_id == "acme"
    assert resident(store, ACME).id != resident(store, ADMIN).id


def test_an_upgraded_database_gives_existing_organizations_a_resident(tmp_path):
    path = tmp_path / "db.sqlite"
    store = open_key_store(path)
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    with store.write() as writer:  # as if acme predated key managers
        writer.session.query(models.KeyManager).filter(models.KeyManager.organization_id == "acme").delete()
    store.db.dispose()
    reopened = open_key_store(path)
    try:
        assert resident(reopened, ACME).name == "Resident Key Manager"
    finally:
        reopened.db.dispose()


def test_secrets_are_write_only_and_encrypted_at_rest(store, db_path):
    secret, token = "introspection-s3cret-value-1234", "initial-access-token-value-5678"
    km = external_km(store, ADMIN, introspection_client_id="portcullis", introspection_client_secret=secret,
                     registration_access_token=token, registration_endpoint="https://idp.example.com/register",
                     introspection_endpoint="https://idp.example.com/introspect")
    assert km.introspection_client_secret_set and km.registration_access_token_set
    assert not km.introspection_client_secret and not km.registration_access_token
    fetched = key_managers.get_key_manager(store, key_managers_pb2.GetKeyManagerRequest(id=km.id), ADMIN)
    assert secret not in str(fetched) and token not in str(fetched)
    assert _record(store, km.id).introspection_client_secret == secret  # replicas need it
    store.db.dispose()
    for path in db_path.parent.iterdir():
        data = path.read_bytes()
        assert secret.encode() not in data and token.encode() not in data, path.name


def test_secret_can_be_cleared_and_replaced(store):
    km = external_km(store, ADMIN, introspection_client_id="portcullis", introspection_client_secret="first-secret")
    assert not _update(store, km.id, ["introspection_client_secret"]).introspection_client_secret_set
    assert _record(store, km.id).introspection_client_secret == ""
    assert _update(store, km.id, ["introspection_client_secret"], introspection_client_secret="second").\
        introspection_client_secret_set
    assert _record(store, km.id).introspection_client_secret == "second"


def test_a_secret_needs_a_kek(tmp_path):
    store = open_key_store(tmp_path / "db.sqlite", kek=None)
    try:
        with pytest.raises(FailedPrecondition, match="no key-encryption key"):
            external_km(store, ADMIN, introspection_client_id="c", introspection_client_secret="s")
    finally:
        store.db.dispose()


def test_delete_is_refused_while_keys_or_apis_use_it(store):
    km = external_km(store, ADMIN)
    application = create_application(store)
    key = application_keys.map_application_key(store, application_keys_pb2.MapApplicationKeyRequest(
        application_id=application.id, key_manager_id=km.id, consumer_key="existing-client"), ADMIN)
    with pytest.raises(FailedPrecondition, match="still has 1 application key"):
        key_managers.delete_key_manager(store, key_managers_pb2.DeleteKeyManagerRequest(id=km.id), ADMIN)
    application_keys.delete_application_key(store, application_keys_pb2.DeleteApplicationKeyRequest(id=key.id), ADMIN)
    api = create_api(store, security=admin_pb2.SecuritySchemes(
        oauth2=admin_pb2.OAuth2Scheme(allowed_key_managers=["Keycloak"])))
    with pytest.raises(FailedPrecondition, match="is allowed by API"):
        key_managers.delete_key_manager(store, key_managers_pb2.DeleteKeyManagerRequest(id=km.id), ADMIN)
    apis.delete_api(store, admin_pb2.DeleteApiRequest(id=api.id), ADMIN)
    key_managers.delete_key_manager(store, key_managers_pb2.DeleteKeyManagerRequest(id=km.id), ADMIN)
    with pytest.raises(NotFound):
        key_managers.get_key_manager(store, key_managers_pb2.GetKeyManagerRequest(id=km.id), ADMIN)


def test_api_allowed_key_managers_must_exist_in_the_organization(store):
    external_km(store, ADMIN)
    oauth = admin_pb2.SecuritySchemes(oauth2=admin_pb2.OAuth2Scheme(
        allowed_key_managers=["Resident Key Manager", "Keycloak"]))
    api = create_api(store, security=oauth)
    assert list(api.security.oauth2.allowed_key_managers) == ["Resident Key Manager", "Keycloak"]
    with pytest.raises(InvalidArgument, match="no key manager named 'Okta'") as caught:
        create_api(store, name="Other", context="/other", security=admin_pb2.SecuritySchemes(
            oauth2=admin_pb2.OAuth2Scheme(allowed_key_managers=["Okta"])))
    assert caught.value.field == "security.oauth2.allowed_key_managers"
    with pytest.raises(InvalidArgument, match="no key manager named 'Okta'"):
        apis.update_api(store, admin_pb2.UpdateApiRequest(
            id=api.id, api=admin_pb2.Api(security=admin_pb2.SecuritySchemes(
                oauth2=admin_pb2.OAuth2Scheme(allowed_key_managers=["Okta"]))),
            update_mask=FieldMask(paths=["security"])), ADMIN)


def test_organization_isolation(store):
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    km = external_km(store, ADMIN)
    with pytest.raises(NotFound):
        key_managers.get_key_manager(store, key_managers_pb2.GetKeyManagerRequest(id=km.id), ACME)
    with pytest.raises(NotFound):
        _update(store, km.id, ["enabled"], caller=ACME)
    with pytest.raises(NotFound):
        key_managers.delete_key_manager(store, key_managers_pb2.DeleteKeyManagerRequest(id=km.id), ACME)
    names = [k.name for k in key_managers.list_key_managers(store, key_managers_pb2.ListKeyManagersRequest(),
                                                            ACME).key_managers]
    assert names == ["Resident Key Manager"]
    with pytest.raises(PermissionDenied):
        key_managers.list_key_managers(store, key_managers_pb2.ListKeyManagersRequest(organization_id="default"),
                                       ACME)
    # Same name in another organization is fine; an API there cannot name ours.
    assert external_km(store, ACME).organization_id == "acme"
    with pytest.raises(InvalidArgument, match="no key manager named 'Other'"):
        create_api(store, ACME, security=admin_pb2.SecuritySchemes(
            oauth2=admin_pb2.OAuth2Scheme(allowed_key_managers=["Other"])))
