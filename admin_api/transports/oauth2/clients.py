"""The OAuth clients of the resident key manager, as authlib sees them.

A client is an application key of a RESIDENT key manager (admin_api.services.
application_keys.find_oauth_client); its settings say which grants, callback URL, PKCE
options and token type it has. Any unexpired consumer secret authenticates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from admin_api.db.types import utcnow
from admin_api.access.caller import Credential
from admin_api.services import application_keys, consumer_secrets, failed_logins
from admin_api.services.application_keys import OAuthClient
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import application_keys_pb2, key_managers_pb2

RESIDENT = key_managers_pb2.KeyManager.RESIDENT
REFERENCE = application_keys_pb2.OAuthClientSettings.REFERENCE
CLIENT_CREDENTIALS = "client_credentials"
REFRESH_TOKEN = "refresh_token"
AUTHORIZATION_CODE = "authorization_code"
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
PUBLIC_METHOD = "none"


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]"})


def _without_port(url: SplitResult) -> tuple[str, str, str, str, str]:
    host = url.netloc.rpartition(":")[0] if url.port is not None else url.netloc
    return (url.scheme, host, url.path, url.query, url.fragment)


def same_loopback_callback(redirect_uri: str, callback: str) -> bool:
    """True when both are `http://127.0.0.1` (or `[::1]`) URLs equal but for the port."""
    try:
        given, registered = urlsplit(redirect_uri), urlsplit(callback)
        given.port, registered.port  # noqa: B018 (raise ValueError on a bad port)
    except ValueError:
        return False
    if given.scheme != "http" or registered.scheme != "http" or "@" in given.netloc:
        return False
    if _without_port(given)[1] not in LOOPBACK_HOSTS:
        return False
    return _without_port(given) == _without_port(registered)


@dataclass(frozen=True)
class ResidentClient(ClientMixin):
    info: OAuthClient
    store: Store

    @property
    def client_id(self) -> str:
        return self.info.consumer_key

    @property
    def organization_id(self) -> str:
        return self.info.organization_id

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(self.info.settings.grant_types)

    @property
    def public(self) -> bool:
        return bool(self.info.settings.public_client)

    @property
    def first_party(self) -> bool:
        """Portcullis's own client (CLI, portal, admin tool): may obtain portcullis:admin, no consent page."""
        return bool(self.info.settings.first_party)

    @property
    def reference_tokens(self) -> bool:
        return self.info.settings.token_type == REFERENCE

    @property
    def access_validity(self) -> int:
        return int(self.info.settings.access_token_validity_seconds) or 3600

    @property
    def refresh_validity(self) -> int:
        return int(self.info.settings.refresh_token_validity_seconds) or 86400

    @property
    def pkce_mandatory(self) -> bool:
        # A public client has nothing else binding the code to it.
        return bool(self.info.settings.pkce_mandatory) or self.public

    @property
    def pkce_plain_allowed(self) -> bool:
        return bool(self.info.settings.pkce_plain_allowed)

    # authlib's ClientMixin ------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.info.consumer_key

    def get_default_redirect_uri(self) -> str | None:
        return self.info.settings.callback_url or None

    def get_allowed_scope(self, scope: str | None) -> str:
        # Entitlement is decided per user when the token is issued (see server.py).
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match (RFC 6749 §3.1.2.3, OAuth 2.0 Security BCP §4.1.3), except
        # the port of a loopback IP callback: a native app (the `portcullis login` CLI)
        # listens on whatever port is free (RFC 8252 §7.3).
        callback = self.info.settings.callback_url
        return bool(callback) and (redirect_uri == callback or same_loopback_callback(redirect_uri, callback))

    def check_client_secret(self, client_secret: str) -> bool:
        # Per client: too many wrong secrets in a row lock it out (admin_api.login_guard).
        return failed_logins.check(
            self.store, organization_id=self.organization_id, subject=self.client_id,
            credential=Credential.OAUTH_CLIENT, via=failed_logins.CLIENT_AUTHENTICATION, target_kind="oauth_client",
            verify=lambda: consumer_secrets.verify_consumer_secret(self.store, self.info.application_key_id,
                                                                   client_secret, utcnow()) or None) is not None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == PUBLIC_METHOD:
            return self.public
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and AUTHORIZATION_CODE in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def find_client(store: Store, consumer_key: str) -> ResidentClient | None:
    """The resident client with this consumer key; None for unknown keys and for keys of
    external key managers (their tokens are not ours to issue)."""
    if not consumer_key or len(consumer_key) > 255:
        return None
    info = application_keys.find_oauth_client(store, consumer_key)
    if info is None or info.key_manager_type != RESIDENT:
        return None
    return ResidentClient(info, store)
