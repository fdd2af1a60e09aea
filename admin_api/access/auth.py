"""Admin credentials, established per call: stored bearer tokens (the bootstrap admin
token, organizations' admin credentials, the sync token; SHA-256 lookups) and the resident key manager's user tokens
(admin_api.access.user_auth)."""

from __future__ import annotations

import re

from sqlalchemy import select

from admin_api.access import user_auth
from admin_api.access.caller import Caller, Credential, Role
from admin_api.db.models import AdminCredential
from admin_api.errors import Unauthenticated
from admin_api.db.types import utcnow
from admin_api.store.unit_of_work import Store
from portcullis_shared.credentials import credential_hash, hashes_match

_VALID_FOR = {Role.SYNC.value: "PolicySync/Watch only", Role.GATEWAY.value: "Envoy's xDS stream only"}
_CREDENTIAL_KINDS = {Role.SYNC.value: Credential.SYNC_TOKEN, Role.GATEWAY.value: Credential.GATEWAY_TOKEN}
_BEARER_RE = re.compile(r"\s*bearer\s+(\S+)\s*", re.IGNORECASE)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None when absent or another scheme."""
    if not authorization:
        return None
    match = _BEARER_RE.fullmatch(authorization)
    return match.group(1) if match else None


def caller_for(store: Store, token: str | None, *, role: Role) -> Caller:
    """The caller holding `token`, which must carry `role`; Unauthenticated otherwise."""
    if not token:
        raise Unauthenticated("missing credential: send 'authorization: Bearer <token>'")
    token_hash = credential_hash(token)
    with store.read() as session:
        row = session.scalars(select(AdminCredential).where(AdminCredential.token_hash == token_hash)).first()
    if row is None or not hashes_match(token, row.token_hash):
        raise Unauthenticated("invalid credential")
    if row.role != role.value:
        scope = _VALID_FOR.get(row.role, "the admin services, not PolicySync or xDS")
        raise Unauthenticated(f"this credential ({row.role}) is valid for {scope}")
    credential = _CREDENTIAL_KINDS.get(row.role, Credential.ADMIN_TOKEN)
    return Caller(subject=row.subject, organization_id=row.organization_id, role=Role(row.role),
                  credential=credential)


def admin_caller(store: Store, token: str | None) -> Caller:
    """The admin API caller holding `token`: a stored admin credential, or a resident
    key manager access token of a user (JWT or reference token)."""
    if token and not _is_stored(store, token) and user_auth.looks_like_resident_token(token):
        return user_auth.caller_for_token(store, token, utcnow())
    return caller_for(store, token, role=Role.ADMIN)


def _is_stored(store: Store, token: str) -> bool:
    with store.read() as session:
        return session.scalars(select(AdminCredential.id)
                               .where(AdminCredential.token_hash == credential_hash(token))).first() is not None


def metadata_token(metadata: object) -> str | None:
    """The bearer token in gRPC invocation metadata (pairs of key and value), if any."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "authorization" and isinstance(value, str):
            return bearer_token(value)
    return None
