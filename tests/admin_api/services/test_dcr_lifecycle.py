"""Issue 14: a client registered by Dynamic Client Registration at a provider that follows
RFC 7591 strictly (tests/fake_idp.py) — the metadata its grants imply, updated when the
key's settings change and deleted with the key or its application (RFC 7592, with the
registration access token), the provider's refusals said clearly and nothing changed."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from admin_api.access.caller import Caller, Role
from admin_api.db import models
from admin_api.errors import FailedPrecondition, Unavailable
from admin_api.services import application_keys, applications
from portcullis.admin.v1 import admin_pb2, application_keys_pb2
from tests.admin_api.key_helpers import external_km
from tests.fake_idp import FakeIdp

pb = application_keys_pb2
Settings = pb.OAuthClientSettings
ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)

pytestmark = pytest.mark.key_store


@pytest.fixture
def provider() -> Iterator[FakeIdp]:
    with FakeIdp() as idp:
        yield idp


@pytest.fixture
def world(store, provider: FakeIdp):
    km = external_km(store, ADMIN, name="IdP", issuer=provider.base_url, jwks_uri=provider.base_url + "/jwks",
                     registration_endpoint=provider.base_url + "/register", consumer_app_creation_enabled=True,
                     registration_access_token=provider.initial_access_token)
    application = applications.create_application(store, admin_pb2.CreateApplicationRequest(name="Mobile",
                                                                                             owner="alice"), ADMIN)
    return km, application


def _generate(store, world, settings: Settings, environment=admin_pb2.PRODUCTION) -> pb.ApplicationKeyWithSecret:
    km, application = world
    return application_keys.generate_application_key(store, pb.GenerateApplicationKeyRequest(
        application_id=application.id, key_manager_id=km.id, environment=environment, settings=settings), ADMIN)


def _update(store, key_id: str, settings: Settings) -> pb.ApplicationKey:
    return application_keys.update_application_key(store, pb.UpdateApplicationKeyRequest(
        id=key_id, key=pb.ApplicationKey(settings=settings), update_mask=FieldMask(paths=["settings"])), ADMIN)


def _stored_settings(store, key_id: str) -> dict:
    with store.read() as session:
        return dict(session.get(models.ApplicationKey, key_id).settings)


@pytest.mark.parametrize("grants", [["client_credentials"], ["client_credentials", "refresh_token"], ["password"]],
                         ids=["client-credentials", "with-refresh", "password"])
def test_a_client_without_the_code_grant_registers_at_a_strict_provider(store, world, provider, grants):
    answer = _generate(store, world, Settings(grant_types=grants))
    [registration] = provider.registrations
    assert registration.body["response_types"] == [] and "redirect_uris" not in registration.body
    assert registration.body["grant_types"] == grants
    assert provider.clients[answer.key.consumer_key].client_secret == answer.consumer_secret


def test_a_code_client_sends_its_redirect_uri_and_the_code_response_type(store, world, provider):
    _generate(store, world, Settings(grant_types=["authorization_code"], callback_url="https://app.example/cb"))
    [registration] = provider.registrations
    assert registration.body["response_types"] == ["code"]
    assert registration.body["redirect_uris"] == ["https://app.example/cb"]


def test_a_settings_change_updates_the_registration_with_its_own_token(store, world, provider):
    answer = _generate(store, world, Settings(grant_types=["client_credentials"]))
    client = provider.clients[answer.key.consumer_key]
    updated = _update(store, answer.key.id, Settings(grant_types=["authorization_code", "refresh_token"],
                                                     callback_url="https://app.example/new-cb"))
    assert list(updated.settings.grant_types) == ["authorization_code", "refresh_token"]
    [put] = provider.configurations
    assert put.method == "PUT" and put.path == f"/register/{client.client_id}"
    assert put.headers["authorization"] == f"Bearer {client.registration_access_token}"
    assert put.body["client_id"] == client.client_id
    assert client.metadata["grant_types"] == ["authorization_code", "refresh_token"]
    assert client.metadata["response_types"] == ["code"]
    assert client.metadata["redirect_uris"] == ["https://app.example/new-cb"]
    # The provider may rotate the registration access token: the next call uses the new one.
    provider.rotate_on_update = True
    _update(store, answer.key.id, Settings(grant_types=["password"]))
    rotated = client.registration_access_token
    _update(store, answer.key.id, Settings(grant_types=["client_credentials"]))
    assert provider.configurations[-1].headers["authorization"] == f"Bearer {rotated}"
    assert client.metadata["response_types"] == [] and "redirect_uris" not in client.metadata


def test_a_refused_update_is_said_clearly_and_changes_nothing(store, world, provider):
    answer = _generate(store, world, Settings(grant_types=["client_credentials"]))
    before = _stored_settings(store, answer.key.id)
    provider.configuration_status = 400
    with pytest.raises(FailedPrecondition, match=r"client update at .* was refused \(HTTP 400, "
                                                 r"invalid_client_metadata: refused \(the test's script\)\)"):
        _update(store, answer.key.id, Settings(grant_types=["password"]))
    assert _stored_settings(store, answer.key.id) == before
    provider.configuration_status = 503
    with pytest.raises(Unavailable, match="HTTP 503"):
        _update(store, answer.key.id, Settings(grant_types=["password"]))
    assert _stored_settings(store, answer.key.id) == before


def test_deleting_the_key_deletes_the_client_at_the_provider(store, world, provider):
    answer = _generate(store, world, Settings(grant_types=["client_credentials"]))
    client_id = answer.key.consumer_key
    application_keys.delete_application_key(store, pb.DeleteApplicationKeyRequest(id=answer.key.id), ADMIN)
    assert [(r.method, r.path) for r in provider.configurations] == [("DELETE", f"/register/{client_id}")]
    assert client_id not in provider.clients


def test_a_refused_deletion_keeps_the_key(store, world, provider):
    answer = _generate(store, world, Settings(grant_types=["client_credentials"]))
    provider.configuration_status = 400
    with pytest.raises(FailedPrecondition, match="client deletion at .* was refused"):
        application_keys.delete_application_key(store, pb.DeleteApplicationKeyRequest(id=answer.key.id), ADMIN)
    assert application_keys.get_application_key(store, pb.GetApplicationKeyRequest(id=answer.key.id), ADMIN).id
    provider.configuration_status = None
    application_keys.delete_application_key(store, pb.DeleteApplicationKeyRequest(id=answer.key.id), ADMIN)


def test_a_client_the_provider_forgot_is_deleted_here(store, world, provider):
    answer = _generate(store, world, Settings(grant_types=["client_credentials"]))
    provider.clients.pop(answer.key.consumer_key)          # RFC 7592 §2.3: then 401
    application_keys.delete_application_key(store, pb.DeleteApplicationKeyRequest(id=answer.key.id), ADMIN)
    with store.read() as session:
        assert session.get(models.ApplicationKey, answer.key.id) is None


def test_deleting_the_application_deletes_its_clients_at_the_provider(store, world, provider):
    production = _generate(store, world, Settings(grant_types=["client_credentials"]))
    sandbox = _generate(store, world, Settings(grant_types=["client_credentials"]), environment=admin_pb2.SANDBOX)
    applications.delete_application(store, admin_pb2.DeleteApplicationRequest(id=world[1].id), ADMIN)
    assert sorted(r.path for r in provider.configurations if r.method == "DELETE") == sorted(
        f"/register/{key.key.consumer_key}" for key in (production, sandbox))
    assert not {production.key.consumer_key, sandbox.key.consumer_key} & set(provider.clients)


def test_the_registration_access_token_is_sealed_at_rest(store, world, provider, db_path: Path):
    answer = _generate(store, world, Settings(grant_types=["client_credentials"]))
    token = provider.clients[answer.key.consumer_key].registration_access_token
    store.db.dispose()
    for path in db_path.parent.iterdir():
        assert token.encode() not in path.read_bytes(), path.name
