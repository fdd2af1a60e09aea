"""Revoked JWT access tokens (RFC 7009 at the resident key manager), by jti per organization.

A record only matters until the token it names expires; after that the token is refused
as expired anyway, so lookups ignore it and `PolicyStore.prune` drops it.
"""

from __future__ import annotations

from dataclasses import dataclass

from portcullis.sync.v1 import sync_pb2

from authz_server.index.errors import PolicyError


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
        return self.expires_at != 0 and now >= self.expires_at


def compile_revoked_token(record: sync_pb2.RevokedTokenRecord) -> RevokedTokenPolicy:
    if not record.id or not record.organization_id:
        raise PolicyError("revoked token record without a jti or organization")
    return RevokedTokenPolicy(
        jti=record.id,
        organization_id=record.organization_id,
        key_manager_id=record.key_manager_id,
        expires_at=max(record.expires_at_unix, 0),
    )
