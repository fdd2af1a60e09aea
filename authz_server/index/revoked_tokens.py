"""Revoked access tokens (RFC 7009 at the resident key manager), per organization: JWTs by
jti, reference (pct_) tokens by the SHA-256 hex of the token (checked before introspection,
so a cached "active" answer does not outlive the revocation).

A record matters until the token it names is refused as expired: `exp` plus the key
manager's clock-skew leeway, which may be up to MAX_LEEWAY_SECONDS (a JWT validated with
a 300 s leeway is still accepted 299 s after its `exp`). Until then a lookup honours it;
after that lookups ignore it and `PolicyStore.prune` drops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from immutables import Map

from portcullis.sync.v1 import sync_pb2

from portcullis_shared.clock_leeway import MAX_LEEWAY_SECONDS

from authz_server.index.errors import PolicyError
from authz_server.index.table import Table, TableEdit, unfile


@dataclass(frozen=True)
class RevokedTokenPolicy:
    jti: str
    organization_id: str
    key_manager_id: str
    expires_at: int          # unix seconds; 0: never expires (kept until deleted)

    @property
    def lookup(self) -> tuple[str, str]:
        return (self.organization_id, self.jti)

    def expired(self, now: float) -> bool:
        """True once no leeway any key manager may allow would still accept the token."""
        return self.expires_at != 0 and now >= self.expires_at + MAX_LEEWAY_SECONDS


def compile_revoked_token(record: sync_pb2.RevokedTokenRecord) -> RevokedTokenPolicy:
    if not record.id or not record.organization_id:
        raise PolicyError("revoked token record without a jti or organization")
    return RevokedTokenPolicy(
        jti=record.id,
        organization_id=record.organization_id,
        key_manager_id=record.key_manager_id,
        expires_at=max(record.expires_at_unix, 0),
    )


@dataclass(frozen=True, slots=True)
class RevokedTokenTable(Table):
    entity: ClassVar[str] = "revoked_token"
    ref_kind: ClassVar[int] = sync_pb2.REVOKED_TOKEN
    by_id: Map = Map()  # jti → RevokedTokenPolicy
    by_organization: Map = Map()  # (organization_id, jti) → RevokedTokenPolicy

    def is_revoked(self, organization_id: str, jti: str, now: float) -> bool:
        revoked: RevokedTokenPolicy | None = self.by_organization.get((organization_id, jti))
        return revoked is not None and not revoked.expired(now)

    def without_expired(self, now: float) -> "RevokedTokenTable":
        """This table minus revocations of tokens expired beyond any leeway (itself when there are none)."""
        expired = [revoked.jti for revoked in self.by_id.values() if revoked.expired(now)]
        if not expired:
            return self
        edit = self.edit()
        for jti in expired:
            edit.delete(jti)
        return edit.finish()

    def edit(self) -> "_RevokedTokenEdit":
        return _RevokedTokenEdit(self)


class _RevokedTokenEdit(TableEdit):
    def __init__(self, base: RevokedTokenTable) -> None:
        self.by_id = base.by_id.mutate()
        self.by_organization = base.by_organization.mutate()

    def upsert(self, record: sync_pb2.RevokedTokenRecord) -> None:
        revoked = compile_revoked_token(record)
        self.delete(revoked.jti)
        self.by_id[revoked.jti] = revoked
        self.by_organization[revoked.lookup] = revoked

    def delete(self, entity_id: str) -> None:
        old: RevokedTokenPolicy | None = self.by_id.pop(entity_id, None)
        if old is not None:
            unfile(self.by_organization, old.lookup, old.jti, id_of=lambda token: token.jti)

    def finish(self) -> RevokedTokenTable:
        return RevokedTokenTable(by_id=self.by_id.finish(), by_organization=self.by_organization.finish())
