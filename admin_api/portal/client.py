"""The portal's own OAuth clients, one at each organization's resident key manager.

A first-party client built in, not stored: no application or application key row (so it
appears in no admin list, dump or prune, and no one can delete or re-own it). It is a
public client with the authorization_code grant only, PKCE mandatory, its callback the
portal's `/portal/callback` under the public URL, JWT access tokens valid an hour. The
resident server answers it from `ResidentAuthorizationServer.first_party` before the
stored clients. Its tokens are recorded like any other (consumer key `portcullis-portal`)
and act for the user on the admin API; the gateway knows no application with that
consumer key, so they are refused there (`token_client_unknown`).

The default organization's client is `portcullis-portal`; another organization's is
`portcullis-portal.<organization id>` (a '.' is in no generated consumer key), found
when asked for (`client_for_id`), so every admin_api replica knows the clients of
organizations created after it started. All are recorded with the application key id
`portcullis-portal` (portcullis_shared.scopes.BUILT_IN_CLIENTS).
"""

from __future__ import annotations

from admin_api.services import key_managers
from admin_api.services.application_keys import OAuthClient
from admin_api.services.organizations import DEFAULT_ORGANIZATION, ORGANIZATION_ID_RE
from admin_api.store.unit_of_work import Store
from admin_api.transports.oauth2.clients import ResidentClient
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, key_managers_pb2
from portcullis_shared.scopes import PORTAL_CLIENT_ID

CALLBACK_PATH = "/portal/callback"
ACCESS_TOKEN_VALIDITY_SECONDS = 3600   # the portal session lasts as long as its token


def client_settings(public_url: str) -> application_keys_pb2.OAuthClientSettings:
    return application_keys_pb2.OAuthClientSettings(
        grant_types=["authorization_code"], callback_url=public_url.rstrip("/") + CALLBACK_PATH,
        pkce_mandatory=True, pkce_plain_allowed=False, public_client=True, first_party=True,
        token_type=application_keys_pb2.OAuthClientSettings.JWT,
        access_token_validity_seconds=ACCESS_TOKEN_VALIDITY_SECONDS)


def client_id_of(organization_id: str) -> str:
    return PORTAL_CLIENT_ID if organization_id == DEFAULT_ORGANIZATION else f"{PORTAL_CLIENT_ID}.{organization_id}"


def organization_of(client_id: str) -> str | None:
    """The organization whose portal client this is; None for any other client id."""
    if client_id == PORTAL_CLIENT_ID:
        return DEFAULT_ORGANIZATION
    prefix = PORTAL_CLIENT_ID + "."
    if client_id.startswith(prefix) and ORGANIZATION_ID_RE.fullmatch(client_id[len(prefix):]):
        return client_id[len(prefix):]
    return None


def portal_client(store: Store, public_url: str, organization_id: str = DEFAULT_ORGANIZATION) -> ResidentClient:
    """The portal's client at the organization's resident key manager (RuntimeError when
    the organization has none)."""
    with store.read() as session:
        km = key_managers.resident_of(session, organization_id)
        if km is None:
            raise RuntimeError(f"the organization {organization_id!r} has no resident key manager")
        km_id = km.id
    info = OAuthClient(application_key_id=PORTAL_CLIENT_ID, organization_id=organization_id,
                       application_id="", application_owner="", environment=admin_pb2.PRODUCTION,
                       key_manager_id=km_id, key_manager_type=key_managers_pb2.KeyManager.RESIDENT,
                       consumer_key=client_id_of(organization_id), settings=client_settings(public_url))
    return ResidentClient(info, store)


def client_for_id(store: Store, public_url: str, client_id: str) -> ResidentClient | None:
    """The portal client named by `client_id`; None when it names none (no such
    organization, or one without a resident key manager)."""
    organization_id = organization_of(client_id)
    if organization_id is None:
        return None
    try:
        return portal_client(store, public_url, organization_id)
    except RuntimeError:
        return None
