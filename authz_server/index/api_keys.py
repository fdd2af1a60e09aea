"""API keys: an `ApiKeyRecord` (hash only, never the value) compiled for authentication."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import ClassVar

from immutables import Map

from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.identity_enum import IdentityHashedEnum
from authz_server.index.errors import PolicyError
from authz_server.index.ids import StoredId, id_text, stored_id
from authz_server.index.ip_rules import IpAllowList, parse_network
from authz_server.index.referrers import ReferrerAllowList, compile_referrer
from authz_server.index.table import Table, TableEdit, unfile

log = logging.getLogger(__name__)


class KeyEnvironment(IdentityHashedEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


@dataclass(frozen=True, slots=True)
class KeyRestrictions:
    """What only some keys carry. A key with none of it holds None instead: two slots
    fewer on every key."""

    allowed_ips: IpAllowList | None         # None: any address
    allowed_referrers: ReferrerAllowList | None   # None: any referrer
    expires_at: int | None                  # unix seconds; None: never


# slots and interned ids: a million keys cost a few hundred MB less (no per-object __dict__,
# one string per API, organization and application instead of one per key). The hash is
# kept as its 32 raw bytes, not 64 hex characters: 48 bytes less per key, twice (it is
# also the key of the by-hash lookup); the id is held compact (index.ids). Eight slots: 96
# bytes with the GC header.
@dataclass(frozen=True, slots=True)
class ApiKeyPolicy:
    stored_id: StoredId                     # the id in its compact form (index.ids)
    organization_id: str
    api_id: str
    key_digest: bytes                       # SHA-256 of the key value (credential_digest)
    environment: KeyEnvironment | None     # None: unknown environment, serves nowhere
    application_id: str | None
    restrictions: KeyRestrictions | None    # None: no IP or referrer list, no expiry
    revoked: bool

    @property
    def id(self) -> str:
        return id_text(self.stored_id)

    @property
    def allowed_ips(self) -> IpAllowList | None:
        return None if self.restrictions is None else self.restrictions.allowed_ips

    @property
    def allowed_referrers(self) -> ReferrerAllowList | None:
        return None if self.restrictions is None else self.restrictions.allowed_referrers

    @property
    def expires_at(self) -> int | None:
        return None if self.restrictions is None else self.restrictions.expires_at

    def expired(self, now: float) -> bool:
        expires_at = self.expires_at
        return expires_at is not None and now >= expires_at


_ENVIRONMENTS = {
    admin_pb2.PRODUCTION: KeyEnvironment.PRODUCTION,
    admin_pb2.SANDBOX: KeyEnvironment.SANDBOX,
}


def environment_of(value: int) -> KeyEnvironment | None:
    """The admin Environment enum as a KeyEnvironment; None for a value this replica does not know."""
    return _ENVIRONMENTS.get(value)


def _ip_allow_list(record: sync_pb2.ApiKeyRecord) -> IpAllowList | None:
    if not record.allowed_ips:
        return None
    networks = []
    for text in record.allowed_ips:
        try:
            networks.append(parse_network(text))
        except PolicyError as exc:
            # Fail closed: a broken entry is dropped but the restriction stays in force,
            # so a list of only broken entries admits nobody.
            log.error("API key %s: IP restriction entry ignored: %s", record.id, exc)
    return IpAllowList(tuple(networks))


def _referrer_allow_list(record: sync_pb2.ApiKeyRecord) -> ReferrerAllowList | None:
    if not record.allowed_referrers:
        return None
    patterns = []
    for text in record.allowed_referrers:
        try:
            patterns.append(compile_referrer(text))
        except PolicyError as exc:
            log.error("API key %s: referrer restriction entry ignored: %s", record.id, exc)
    return ReferrerAllowList(tuple(patterns))


def key_digest_of(key_hash: str) -> bytes | None:
    """The raw SHA-256 of a hex key hash (either case); None when it is not one."""
    if len(key_hash) != 2 * _DIGEST_BYTES:
        return None
    try:
        digest = bytes.fromhex(key_hash)
    except ValueError:
        return None
    return digest if len(digest) == _DIGEST_BYTES else None  # fromhex skips whitespace


_DIGEST_BYTES = 32


def compile_api_key(record: sync_pb2.ApiKeyRecord) -> ApiKeyPolicy:
    if not record.id or not record.key_hash:
        raise PolicyError("API key record without an id or a key hash")
    digest = key_digest_of(record.key_hash)
    if digest is None:
        # No presented key hashes to anything but 64 hex characters: such a record could
        # never authenticate, so dropping it changes no decision.
        raise PolicyError("API key record whose key hash is not a hex SHA-256")
    environment = environment_of(record.environment)
    if environment is None:
        log.error("API key %s has environment %d; it will be refused", record.id, record.environment)
    return ApiKeyPolicy(
        stored_id=stored_id(record.id),
        organization_id=sys.intern(record.organization_id),
        api_id=sys.intern(record.api_id),
        key_digest=digest,
        environment=environment,
        application_id=sys.intern(record.application_id) if record.application_id else None,
        restrictions=_restrictions(record),
        revoked=record.revoked,
    )


def _restrictions(record: sync_pb2.ApiKeyRecord) -> KeyRestrictions | None:
    restrictions = KeyRestrictions(
        allowed_ips=_ip_allow_list(record),
        allowed_referrers=_referrer_allow_list(record),
        expires_at=record.expires_at_unix or None,
    )
    return None if restrictions == _UNRESTRICTED else restrictions


_UNRESTRICTED = KeyRestrictions(allowed_ips=None, allowed_referrers=None, expires_at=None)


@dataclass(frozen=True, slots=True)
class ApiKeyTable(Table):
    entity: ClassVar[str] = "api_key"
    ref_kind: ClassVar[int] = sync_pb2.API_KEY
    by_id: Map = Map()  # stored_id (index.ids) → ApiKeyPolicy
    by_digest: Map = Map()  # key_digest (32 bytes) → ApiKeyPolicy

    def for_digest(self, digest: bytes) -> ApiKeyPolicy | None:
        """The key whose value has this SHA-256 (`credential_digest` of the presented value)."""
        return self.by_digest.get(digest)

    def edit(self) -> "_ApiKeyEdit":
        return _ApiKeyEdit(self)


class _ApiKeyEdit(TableEdit):
    def __init__(self, base: ApiKeyTable) -> None:
        self.by_id = base.by_id.mutate()
        self.by_digest = base.by_digest.mutate()

    def upsert(self, record: sync_pb2.ApiKeyRecord) -> None:
        key = compile_api_key(record)
        # The hash of a key id never changes in practice, but if it did the old hash must
        # stop authenticating: drop the old entry before filing the new one.
        self._drop(key.stored_id)
        self.by_id[key.stored_id] = key
        self.by_digest[key.key_digest] = key

    def delete(self, entity_id: str) -> None:
        self._drop(stored_id(entity_id))

    def _drop(self, entity_key: StoredId) -> None:
        old: ApiKeyPolicy | None = self.by_id.pop(entity_key, None)
        if old is not None:
            unfile(self.by_digest, old.key_digest, entity_key, id_of=lambda current: current.stored_id)

    def finish(self) -> ApiKeyTable:
        return ApiKeyTable(by_id=self.by_id.finish(), by_digest=self.by_digest.finish())
