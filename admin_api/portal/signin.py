"""Sign-in with the resident key manager: the authorization request (state, PKCE S256)
and the code exchange, run in-process against the same authlib server that answers
`/oauth2/token` (no HTTP round trip to ourselves, the same grant rules)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode

from admin_api.transports.oauth2 import metadata
from admin_api.transports.oauth2.resident import ResidentKeyManager
from admin_api.transports.oauth2.server import FormRequest


class SigninFailed(Exception):
    """The code could not be exchanged; the message is for the user."""


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_request(issuer: str, client_id: str, redirect_uri: str, scope: str) -> AuthorizationRequest:
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)   # 86 characters of the RFC 7636 alphabet
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
              "code_challenge": code_challenge(verifier), "code_challenge_method": "S256"}
    if scope:
        params["scope"] = scope
    return AuthorizationRequest(f"{issuer}{metadata.AUTHORIZE_PATH}?{urlencode(params)}", state, verifier)


def exchange_code(resident: ResidentKeyManager, client_id: str, redirect_uri: str, code: str,
                  code_verifier: str) -> Tokens:
    """Runs the authorization_code grant (blocking: call it in a worker thread)."""
    params = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri),
              ("client_id", client_id), ("code_verifier", code_verifier)]
    request = FormRequest("POST", resident.issuer + metadata.TOKEN_PATH, {}, params)
    answer = resident.server.create_token_response(request)
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status != 200 or not isinstance(body.get("access_token"), str):
        raise SigninFailed(str(body.get("error_description") or body.get("error") or "the sign-in was refused"))
    return Tokens(access_token=body["access_token"], expires_in=int(body.get("expires_in") or 0))


def revoke(resident: ResidentKeyManager, client_id: str, token: str) -> None:
    """RFC 7009 revocation of the session's token at sign-out (blocking)."""
    request = FormRequest("POST", resident.issuer + metadata.REVOKE_PATH, {},
                          [("token", token), ("token_type_hint", "access_token"), ("client_id", client_id)])
    resident.server.create_endpoint_response("revocation", request)


def client_token(resident: ResidentKeyManager, consumer_key: str, consumer_secret: str, scope: str) -> dict[str, object]:
    """A test access token for an application key (client_credentials, HTTP Basic); the
    token endpoint's own answer, error or not (blocking)."""
    basic = base64.b64encode(f"{_form(consumer_key)}:{_form(consumer_secret)}".encode()).decode("ascii")
    params = [("grant_type", "client_credentials")] + ([("scope", scope)] if scope else [])
    request = FormRequest("POST", resident.issuer + metadata.TOKEN_PATH, {"Authorization": f"Basic {basic}"}, params)
    answer = resident.server.create_token_response(request)
    return answer.body if isinstance(answer.body, dict) else {"error": "server_error"}


def _form(value: str) -> str:
    # RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
    return quote_plus(value)
