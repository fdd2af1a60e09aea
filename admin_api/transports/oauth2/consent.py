"""The consent step of the authorization endpoint: a third-party client (an application
key that is not first-party) gets a code only after the signed-in user allowed it on a
page naming the application, its owner and the scopes. First-party clients skip it.

Between the sign-in and the user's answer the server keeps nothing: the consent form
carries a ticket, `<payload>.<HMAC-SHA256>` under a key derived from the KEK (so every
admin_api replica accepts it), binding the user, the client and the exact authorization
request, valid for five minutes. The form is guarded against CSRF like the sign-in form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import time
from dataclasses import dataclass

from admin_api.crypto.kek import Kek

TICKET_FIELD = "consent_ticket"
ANSWER_FIELD = "consent"
ALLOW, DENY = "allow", "deny"
FIELDS = (TICKET_FIELD, ANSWER_FIELD)
TICKET_SECONDS = 300


class BadTicket(Exception):
    """The consent form's ticket is forged, expired or for another request."""


@dataclass(frozen=True)
class Consent:
    user_id: str
    username: str


def _key(kek: Kek) -> bytes:
    return hmac.new(kek.key, b"portcullis authorization consent ticket", hashlib.sha256).digest()


def _request_digest(client_id: str, params: list[tuple[str, str]]) -> str:
    canonical = json.dumps([client_id, sorted(params)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def ticket(kek: Kek, consent: Consent, client_id: str, params: list[tuple[str, str]]) -> str:
    payload = json.dumps({"sub": consent.user_id, "usr": consent.username,
                          "req": _request_digest(client_id, params), "exp": int(time.time()) + TICKET_SECONDS},
                         separators=(",", ":")).encode()
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=")
    return encoded.decode() + "." + hmac.new(_key(kek), encoded, hashlib.sha256).hexdigest()


def verify(kek: Kek, value: str, client_id: str, params: list[tuple[str, str]]) -> Consent:
    encoded, _, signature = value.partition(".")
    expected = hmac.new(_key(kek), encoded.encode(), hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
        raise BadTicket("the consent form was not issued by this server")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    if payload["exp"] < time.time():
        raise BadTicket("the consent form has expired")
    if payload["req"] != _request_digest(client_id, params):
        raise BadTicket("the consent form is for another authorization request")
    return Consent(user_id=payload["sub"], username=payload["usr"])


def page_body(*, action: str, csrf_field: str, csrf: str, ticket_value: str, application: str, owner: str,
              client_id: str, scope: str, username: str) -> str:
    e = html.escape
    scopes = "".join(f"<li><code>{e(s)}</code></li>" for s in scope.split()) or "<li>(no scopes)</li>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Allow access? - Portcullis</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto}}</style>
</head><body>
<h1>Allow access?</h1>
<p>Signed in as <strong>{e(username)}</strong>.</p>
<p>The application <strong>{e(application)}</strong> (owner <code>{e(owner)}</code>, client
<code>{e(client_id)}</code>) is not part of Portcullis. It asks for access with these scopes:</p>
<ul>{scopes}</ul>
<form method="post" action="{e(action, quote=True)}">
<input type="hidden" name="{csrf_field}" value="{csrf}">
<input type="hidden" name="{TICKET_FIELD}" value="{e(ticket_value, quote=True)}">
<button type="submit" name="{ANSWER_FIELD}" value="{ALLOW}">Allow</button>
<button type="submit" name="{ANSWER_FIELD}" value="{DENY}">Deny</button>
</form>
</body></html>
"""
