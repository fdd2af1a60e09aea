"""Key managers: a `KeyManagerRecord` compiled into what token validation reads.

Compiling is where misconfiguration is caught (ARCHITECTURE: "misconfiguration is not a
denial"): unsafe algorithms are dropped, a broken token-format pattern makes the key
manager accept no opaque token, and every drop is logged loudly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

from immutables import Map

from portcullis.admin.v1 import key_managers_pb2
from portcullis.sync.v1 import sync_pb2

from portcullis_shared.clock_leeway import DEFAULT_LEEWAY_SECONDS, MAX_LEEWAY_SECONDS
from portcullis_shared.token_format import TokenFormat, TokenFormatError

from authz_server.identity_enum import IdentityHashedEnum
from authz_server.index.errors import PolicyError
from authz_server.index.table import Table, TableEdit

log = logging.getLogger(__name__)

_KeyManager = key_managers_pb2.KeyManager

# The asymmetric JWS algorithms Portcullis verifies. Never "none", never HMAC: an HMAC
# "signature" keyed with a public key is forgeable by anyone (RFC 8725 §2.1, §3.1).
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256")
DEFAULT_CONSUMER_KEY_CLAIMS = ("azp", "client_id")
DEFAULT_SCOPES_CLAIMS = ("scope", "scp")


class KeyManagerType(IdentityHashedEnum):
    RESIDENT = "RESIDENT"
    OIDC = "OIDC"
    KEYCLOAK = "KEYCLOAK"
    OKTA = "OKTA"
    WSO2_IS = "WSO2_IS"
    UNKNOWN = "UNKNOWN"


_TYPES = {
    _KeyManager.RESIDENT: KeyManagerType.RESIDENT,
    _KeyManager.OIDC: KeyManagerType.OIDC,
    _KeyManager.KEYCLOAK: KeyManagerType.KEYCLOAK,
    _KeyManager.OKTA: KeyManagerType.OKTA,
    _KeyManager.WSO2_IS: KeyManagerType.WSO2_IS,
}


@dataclass(frozen=True)
class KeySource:
    """Where a key manager's verification keys come from; the JWKS cache's key.

    Several key managers may share one source (every organization's resident key manager
    publishes the same JWKS), and then share one cache entry and one refresh budget.
    """

    jwks_uri: str
    certificate_pem: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.jwks_uri or self.certificate_pem)


@dataclass(frozen=True)
class KeyManagerPolicy:
    id: str
    organization_id: str
    name: str
    type: KeyManagerType
    enabled: bool
    issuer: str
    key_source: KeySource
    introspection_endpoint: str
    introspection_client_id: str
    introspection_client_secret: str = field(repr=False)
    introspection_with_sync_token: bool
    accepts_jwt: bool
    accepts_reference_tokens: bool
    token_format: TokenFormat | None          # None: no pattern
    consumer_key_claims: tuple[str, ...]
    scopes_claims: tuple[str, ...]
    allowed_algorithms: frozenset[str]
    audience: str                             # "": no audience is required
    leeway_seconds: int

    def accepts_opaque(self, token: str) -> bool | None:
        """True: the pattern matches; None: no pattern (maybe mine); False: not mine."""
        if self.token_format is None:
            return None
        return self.token_format.fullmatch(token)


def _algorithms(record: sync_pb2.KeyManagerRecord) -> frozenset[str]:
    requested = list(record.allowed_algorithms) or list(DEFAULT_ALGORITHMS)
    allowed = {alg for alg in requested if alg in SUPPORTED_ALGORITHMS}
    refused = sorted(set(requested) - allowed)
    if refused:
        log.error("key manager %s: algorithms %s are never accepted and are ignored", record.id, refused)
    return frozenset(allowed)


def _token_format(record: sync_pb2.KeyManagerRecord) -> tuple[TokenFormat | None, bool]:
    """The compiled pattern, and whether opaque tokens are accepted at all."""
    handling = record.token_handling
    if not handling.accepts_reference_tokens:
        return None, False
    if not handling.token_format_pattern:
        return None, True
    try:
        return TokenFormat(handling.token_format_pattern), True
    except TokenFormatError as exc:
        # Fail closed: a pattern that cannot be read admits no token at all, rather than
        # turning into "no pattern" and receiving every opaque token. A row written before
        # admin_api checked patterns with RE2 (a lookaround, a backreference) lands here.
        log.error("key manager %s: token format pattern ignored, no opaque token accepted: %s", record.id, exc)
        return None, False


def _claims(values, default: tuple[str, ...]) -> tuple[str, ...]:
    claims = tuple(dict.fromkeys(value.strip() for value in values if value.strip()))
    return claims or default


def compile_key_manager(record: sync_pb2.KeyManagerRecord) -> KeyManagerPolicy:
    if not record.id or not record.organization_id or not record.name:
        raise PolicyError("key manager record without an id, organization or name")
    kind = _TYPES.get(record.type)
    if kind is None:
        log.error("key manager %s has type %d; it is kept, tokens are validated as for OIDC", record.id, record.type)
        kind = KeyManagerType.UNKNOWN
    token_format, accepts_reference = _token_format(record)
    leeway = record.leeway_seconds
    if leeway < 0 or leeway > MAX_LEEWAY_SECONDS:
        log.error("key manager %s: leeway %d out of range, clamped to 0..%d", record.id, leeway, MAX_LEEWAY_SECONDS)
        leeway = min(max(leeway, 0), MAX_LEEWAY_SECONDS)
    return KeyManagerPolicy(
        id=record.id,
        organization_id=record.organization_id,
        name=record.name,
        type=kind,
        enabled=record.enabled,
        issuer=record.issuer,
        key_source=KeySource(jwks_uri=record.jwks_uri.strip(), certificate_pem=record.certificate_pem.strip()),
        introspection_endpoint=record.introspection_endpoint.strip(),
        introspection_client_id=record.introspection_client_id,
        introspection_client_secret=record.introspection_client_secret,
        introspection_with_sync_token=record.introspection_with_sync_token,
        accepts_jwt=record.token_handling.accepts_jwt,
        accepts_reference_tokens=accepts_reference,
        token_format=token_format,
        consumer_key_claims=_claims(record.consumer_key_claims, DEFAULT_CONSUMER_KEY_CLAIMS),
        scopes_claims=_claims(record.scopes_claims, DEFAULT_SCOPES_CLAIMS),
        allowed_algorithms=_algorithms(record),
        audience=record.audience,
        leeway_seconds=leeway,
    )


def reference_order(key_manager: KeyManagerPolicy) -> tuple[bool, str, str]:
    """The stable order opaque-token candidates are tried in: pattern first, then by name."""
    return (key_manager.token_format is None, key_manager.name, key_manager.id)


@dataclass(frozen=True, slots=True)
class KeyManagerTable(Table):
    entity: ClassVar[str] = "key_manager"
    ref_kind: ClassVar[int] = sync_pb2.KEY_MANAGER
    by_id: Map = Map()  # id → KeyManagerPolicy
    by_issuer: Map = Map()  # (organization_id, issuer) → KeyManagerPolicy
    reference: Map = Map()  # organization_id → tuple[KeyManagerPolicy, ...] in reference_order

    def for_issuer(self, organization_id: str, issuer: str) -> KeyManagerPolicy | None:
        return self.by_issuer.get((organization_id, issuer))

    def accepting_reference_tokens(self, organization_id: str) -> tuple[KeyManagerPolicy, ...]:
        """Every key manager of the organization that accepts opaque tokens (enabled or not)."""
        return self.reference.get(organization_id, ())

    def edit(self) -> "_KeyManagerEdit":
        return _KeyManagerEdit(self)


class _KeyManagerEdit(TableEdit):
    def __init__(self, base: KeyManagerTable) -> None:
        self.base = base
        self.by_id = base.by_id.mutate()
        self.by_issuer = base.by_issuer.mutate()
        # (organization_id, key manager id) upserted or deleted: their organization's
        # list of opaque-token key managers is rebuilt in finish().
        self.touched: set[tuple[str, str]] = set()

    def upsert(self, record: sync_pb2.KeyManagerRecord) -> None:
        key_manager = compile_key_manager(record)
        lookup = (key_manager.organization_id, key_manager.issuer)
        previous: KeyManagerPolicy | None = self.by_id.get(key_manager.id)
        if previous is not None and (previous.organization_id, previous.issuer) == lookup:
            # The usual update (enable, disable, new keys): same issuer, replace in place.
            self.by_id[key_manager.id] = key_manager
            holder = self.by_issuer.get(lookup)
            if holder is not None and holder.id == key_manager.id:
                self.by_issuer[lookup] = key_manager
            self.touched.add((key_manager.organization_id, key_manager.id))
            return
        self.delete(key_manager.id)
        self.by_id[key_manager.id] = key_manager
        current: KeyManagerPolicy | None = self.by_issuer.get(lookup)
        if key_manager.issuer and current is not None and current.id != key_manager.id:
            # admin_api keeps issuers unique per organization; should two still claim one,
            # the smaller id wins on every replica, whatever the order of arrival.
            log.warning("key managers %s and %s share issuer %s", current.id, key_manager.id, key_manager.issuer)
        if key_manager.issuer and (current is None or current.id >= key_manager.id):
            self.by_issuer[lookup] = key_manager
        self.touched.add((key_manager.organization_id, key_manager.id))

    def delete(self, entity_id: str) -> None:
        old: KeyManagerPolicy | None = self.by_id.pop(entity_id, None)
        if old is None:
            return
        lookup = (old.organization_id, old.issuer)
        current = self.by_issuer.get(lookup)
        if current is not None and current.id == old.id:
            del self.by_issuer[lookup]
            # Only when two key managers shared the issuer (a misconfiguration) does another
            # one take over; finding it is a scan, on this rare path only.
            ids = {km.id for km in self.base.by_id.values()} | {kid for _, kid in self.touched}
            heirs = [
                km for km in (self.by_id.get(kid) for kid in ids)
                if km is not None and (km.organization_id, km.issuer) == lookup
            ]
            if heirs:
                self.by_issuer[lookup] = min(heirs, key=lambda km: km.id)
        self.touched.add((old.organization_id, old.id))

    def finish(self) -> KeyManagerTable:
        by_id = self.by_id.finish()
        return KeyManagerTable(by_id=by_id, by_issuer=self.by_issuer.finish(), reference=self._reference(by_id))

    def _reference(self, by_id: Map) -> Map:
        """Rebuilt only for the organizations whose key managers changed, from that
        organization's previous list plus the key managers touched: O(changed)."""
        previous = self.base.reference
        if not self.touched:
            return previous
        candidates: dict[str, set[str]] = {}
        for organization_id, key_manager_id in self.touched:
            members = candidates.setdefault(organization_id, {km.id for km in previous.get(organization_id, ())})
            members.add(key_manager_id)
        result = previous.mutate()
        for organization_id, ids in candidates.items():
            members = [
                km for km in (by_id.get(kid) for kid in ids)
                if km is not None and km.organization_id == organization_id and km.accepts_reference_tokens
            ]
            if members:
                result[organization_id] = tuple(sorted(members, key=reference_order))
            else:
                result.pop(organization_id, None)
        return result.finish()
