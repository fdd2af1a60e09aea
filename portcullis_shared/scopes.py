"""Scopes that Portcullis itself gives meaning to.

`portcullis:admin` is the audience of the admin API: a resident access token acts on the
admin API only when it carries this scope, and only first-party clients (application
keys with `settings.first_party`, which only admins set: the `portcullis` CLI's client,
the developer portal, an admin tool) obtain it. Tokens of every other client keep working
at the gateway. The `portcullis:` prefix is reserved: no organization defines a scope
with it.
"""

from __future__ import annotations

ADMIN_SCOPE = "portcullis:admin"
# Built-in first-party clients, not stored as application keys (admin_api.portal.client):
# the `application_key_id` their tokens are recorded with.
PORTAL_CLIENT_ID = "portcullis-portal"
BUILT_IN_CLIENTS = frozenset({PORTAL_CLIENT_ID})
RESERVED_PREFIX = "portcullis:"


def is_reserved(scope: str) -> bool:
    return scope.startswith(RESERVED_PREFIX)
