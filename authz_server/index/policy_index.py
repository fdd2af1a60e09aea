"""The immutable policy index and how snapshots and single changes produce a new one.

Every map is a persistent HAMT (`immutables.Map`): a change copies O(log n) nodes and
shares the rest, so applying one change costs O(changed), not O(state), even with a
million keys, and a request holding the previous index keeps a consistent view.
The per-entity compilers live in their own modules; this one only files their output.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from typing import Callable, Iterable

from immutables import Map
from portcullis.sync.v1 import sync_pb2

from authz_server.index.api_keys import ApiKeyPolicy, compile_api_key, key_digest_of
from authz_server.index.apis import ApiPolicy, compile_api
from authz_server.index.application_keys import ApplicationKeyPolicy, compile_application_key
from authz_server.index.applications import ApplicationPolicy, compile_application
from authz_server.index.backend_keys import BackendKeyPolicy, compile_backend_key, signing_keys_by_algorithm
from authz_server.index.errors import PolicyError
from authz_server.index.ids import StoredId, stored_id
from authz_server.index.key_managers import KeyManagerPolicy, compile_key_manager, reference_order
from authz_server.index.organizations import OrganizationPolicy, compile_organization
from authz_server.index.revoked_tokens import RevokedTokenPolicy, compile_revoked_token
from authz_server.index.routes import RouteTable
from authz_server.index.subscriptions import SubscriptionPolicy, compile_subscription

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyIndex:
    revision: int
    organizations: Map  # id → OrganizationPolicy
    apis: Map  # id → ApiPolicy
    routes: RouteTable
    applications: Map  # id → ApplicationPolicy
    api_keys: Map  # stored_id (index.ids) → ApiKeyPolicy
    api_keys_by_digest: Map  # key_digest (32 bytes) → ApiKeyPolicy
    subscriptions: Map  # stored_id (index.ids) → SubscriptionPolicy
    subscriptions_by_application: Map  # application_id → Map(api_id → SubscriptionPolicy)
    key_managers: Map  # id → KeyManagerPolicy
    key_managers_by_issuer: Map  # (organization_id, issuer) → KeyManagerPolicy
    reference_key_managers: Map  # organization_id → tuple[KeyManagerPolicy, ...] in reference_order
    application_keys: Map  # id → ApplicationKeyPolicy
    application_keys_by_client: Map  # (organization_id, key_manager_id, consumer_key) → ApplicationKeyPolicy
    revoked_tokens: Map  # jti → RevokedTokenPolicy
    revoked_by_org: Map  # (organization_id, jti) → RevokedTokenPolicy
    backend_keys: Map = Map()  # kid → BackendKeyPolicy
    backend_signing_keys: Map = Map()  # algorithm → the BackendKeyPolicy that signs it

    # --- what requests read -------------------------------------------------------------

    def api_for_path(self, segments: tuple[str, ...]) -> ApiPolicy | None:
        return self.routes.match(segments)

    def api_key_by_digest(self, digest: bytes) -> ApiKeyPolicy | None:
        """The key whose value has this SHA-256 (`credential_digest` of the presented value)."""
        return self.api_keys_by_digest.get(digest)

    def api_key_by_hash(self, key_hash: str) -> ApiKeyPolicy | None:
        """The same lookup by hex SHA-256 (`credential_hash`), for callers that hold one."""
        digest = key_digest_of(key_hash)
        return None if digest is None else self.api_keys_by_digest.get(digest)

    def application(self, application_id: str) -> ApplicationPolicy | None:
        return self.applications.get(application_id)

    def subscription_for(self, application_id: str, api_id: str) -> SubscriptionPolicy | None:
        by_api = self.subscriptions_by_application.get(application_id)
        return None if by_api is None else by_api.get(api_id)

    def key_manager(self, key_manager_id: str) -> KeyManagerPolicy | None:
        return self.key_managers.get(key_manager_id)

    def key_manager_for_issuer(self, organization_id: str, issuer: str) -> KeyManagerPolicy | None:
        return self.key_managers_by_issuer.get((organization_id, issuer))

    def reference_token_key_managers(self, organization_id: str) -> tuple[KeyManagerPolicy, ...]:
        """Every key manager of the organization that accepts opaque tokens (enabled or not)."""
        return self.reference_key_managers.get(organization_id, ())

    def application_key(self, organization_id: str, key_manager_id: str, consumer_key: str) -> ApplicationKeyPolicy | None:
        return self.application_keys_by_client.get((organization_id, key_manager_id, consumer_key))

    def backend_signing_key(self, algorithm: str) -> BackendKeyPolicy | None:
        return self.backend_signing_keys.get(algorithm)

    def token_revoked(self, organization_id: str, jti: str, now: float) -> bool:
        revoked: RevokedTokenPolicy | None = self.revoked_by_org.get((organization_id, jti))
        return revoked is not None and not revoked.expired(now)

    # --- how a new index is made ---------------------------------------------------------

    @classmethod
    def empty(cls, revision: int = 0) -> "PolicyIndex":
        return cls(
            revision=revision,
            organizations=Map(),
            apis=Map(),
            routes=RouteTable.build(()),
            applications=Map(),
            api_keys=Map(),
            api_keys_by_digest=Map(),
            subscriptions=Map(),
            subscriptions_by_application=Map(),
            key_managers=Map(),
            key_managers_by_issuer=Map(),
            reference_key_managers=Map(),
            application_keys=Map(),
            application_keys_by_client=Map(),
            revoked_tokens=Map(),
            revoked_by_org=Map(),
        )

    @classmethod
    def from_snapshot(cls, entities: Iterable[sync_pb2.PolicyEntity], revision: int) -> "PolicyIndex":
        edit = _Edit(cls.empty())
        for entity in entities:
            edit.upsert(entity)
        return edit.finish(revision)

    @classmethod
    def builder(cls) -> "_Edit":
        """An empty index filled entity by entity (`upsert`), then `finish(revision)`: a
        snapshot compiled chunk by chunk as it arrives, never held whole as protobuf."""
        return _Edit(cls.empty(), freeze_every=_FREEZE_EVERY)

    def with_upsert(self, entity: sync_pb2.PolicyEntity, revision: int) -> "PolicyIndex":
        edit = _Edit(self)
        edit.upsert(entity)
        return edit.finish(revision)

    def with_delete(self, ref: sync_pb2.EntityRef, revision: int) -> "PolicyIndex":
        edit = _Edit(self)
        edit.delete(ref)
        return edit.finish(revision)

    def without_expired_revocations(self, now: float) -> "PolicyIndex":
        """The same index at the same revision, minus revocations of tokens already expired."""
        expired = [revoked.jti for revoked in self.revoked_tokens.values() if revoked.expired(now)]
        if not expired:
            return self
        edit = _Edit(self)
        for jti in expired:
            _delete_revoked_token(edit, jti)
        return edit.finish(self.revision)


class _Edit:
    """Mutations of every map of one index, finished into a new index."""

    def __init__(self, base: PolicyIndex, freeze_every: int = 0) -> None:
        self.base = base
        self._freeze_every = freeze_every
        self._upserts = 0
        self.organizations = base.organizations.mutate()
        self.apis = base.apis.mutate()
        self.applications = base.applications.mutate()
        self.api_keys = base.api_keys.mutate()
        self.api_keys_by_digest = base.api_keys_by_digest.mutate()
        self.subscriptions = base.subscriptions.mutate()
        self.subscriptions_by_application = base.subscriptions_by_application.mutate()
        self.key_managers = base.key_managers.mutate()
        self.key_managers_by_issuer = base.key_managers_by_issuer.mutate()
        self.application_keys = base.application_keys.mutate()
        self.application_keys_by_client = base.application_keys_by_client.mutate()
        self.revoked_tokens = base.revoked_tokens.mutate()
        self.revoked_by_org = base.revoked_by_org.mutate()
        self.backend_keys = base.backend_keys.mutate()
        self.backend_keys_changed = False
        self.apis_changed = False
        # (organization_id, key manager id) upserted or deleted: their organization's
        # list of opaque-token key managers is rebuilt in finish().
        self.touched_key_managers: set[tuple[str, str]] = set()

    def upsert(self, entity: sync_pb2.PolicyEntity) -> None:
        self._upserts += 1
        if self._freeze_every and self._upserts % self._freeze_every == 0:
            gc.freeze()
        kind = entity.WhichOneof("kind")
        handler = _UPSERTS.get(kind or "")
        if handler is None:
            log.error("policy entity of unknown kind %r ignored", kind)
            return
        record = getattr(entity, kind)  # type: ignore[arg-type]
        try:
            handler(self, record)
        except PolicyError as exc:
            # Fail closed: a record that cannot be compiled is treated as absent.
            log.error("policy %s %r could not be compiled and is dropped: %s", kind, record.id, exc)
            delete = _DELETES_BY_NAME[kind]  # type: ignore[index]
            if record.id:
                delete(self, record.id)

    def delete(self, ref: sync_pb2.EntityRef) -> None:
        handler = _DELETES.get(ref.kind)
        if handler is None:
            log.error("delete of unknown entity kind %d ignored", ref.kind)
            return
        handler(self, ref.id)

    def finish(self, revision: int) -> PolicyIndex:
        if self._freeze_every and self._upserts >= self._freeze_every:
            gc.freeze()
        apis = self.apis.finish()
        key_managers = self.key_managers.finish()
        backend_keys = self.backend_keys.finish()
        return PolicyIndex(
            revision=revision,
            organizations=self.organizations.finish(),
            apis=apis,
            # APIs are few (hundreds), so their route table is rebuilt whole.
            routes=RouteTable.build(apis.values()) if self.apis_changed else self.base.routes,
            applications=self.applications.finish(),
            api_keys=self.api_keys.finish(),
            api_keys_by_digest=self.api_keys_by_digest.finish(),
            subscriptions=self.subscriptions.finish(),
            subscriptions_by_application=self.subscriptions_by_application.finish(),
            key_managers=key_managers,
            key_managers_by_issuer=self.key_managers_by_issuer.finish(),
            reference_key_managers=self._reference_key_managers(key_managers),
            application_keys=self.application_keys.finish(),
            application_keys_by_client=self.application_keys_by_client.finish(),
            revoked_tokens=self.revoked_tokens.finish(),
            revoked_by_org=self.revoked_by_org.finish(),
            backend_keys=backend_keys,
            # A handful of keys: the signing choice is recomputed whole when one changes.
            backend_signing_keys=(Map(signing_keys_by_algorithm(backend_keys.values())) if self.backend_keys_changed
                                  else self.base.backend_signing_keys),
        )

    def _reference_key_managers(self, key_managers: Map) -> Map:
        """Rebuilt only for the organizations whose key managers changed, from that
        organization's previous list plus the key managers touched: O(changed)."""
        if not self.touched_key_managers:
            return self.base.reference_key_managers
        candidates: dict[str, set[str]] = {}
        for organization_id, key_manager_id in self.touched_key_managers:
            members = candidates.setdefault(organization_id, {
                km.id for km in self.base.reference_key_managers.get(organization_id, ())
            })
            members.add(key_manager_id)
        result = self.base.reference_key_managers.mutate()
        for organization_id, ids in candidates.items():
            members = [
                km for km in (key_managers.get(kid) for kid in ids)
                if km is not None and km.organization_id == organization_id and km.accepts_reference_tokens
            ]
            if members:
                result[organization_id] = tuple(sorted(members, key=reference_order))
            else:
                result.pop(organization_id, None)
        return result.finish()


# --- one upsert and one delete per entity kind ----------------------------------------------


# A snapshot builds millions of long-lived objects (records, HAMT nodes, interned ids).
# The cyclic GC would rescan all of them at every full collection while they pile up:
# at a million keys that was 33 of a 44 s compile. Moving what exists into the permanent
# generation every so often (`gc.freeze`) leaves each collection only the newest objects.
# The index holds no reference cycles, so anything frozen that is later dropped is still
# freed by reference counting; it also keeps full collections off the serving path.
# Small snapshots (tests, small states) never freeze.
_FREEZE_EVERY = 20_000


def _upsert_organization(edit: _Edit, record) -> None:
    organization: OrganizationPolicy = compile_organization(record)
    edit.organizations[organization.id] = organization


def _delete_organization(edit: _Edit, entity_id: str) -> None:
    edit.organizations.pop(entity_id, None)


def _upsert_api(edit: _Edit, record) -> None:
    api = compile_api(record)
    edit.apis[api.id] = api
    edit.apis_changed = True


def _delete_api(edit: _Edit, entity_id: str) -> None:
    if edit.apis.pop(entity_id, None) is not None:
        edit.apis_changed = True


def _upsert_application(edit: _Edit, record) -> None:
    application = compile_application(record)
    edit.applications[application.id] = application


def _delete_application(edit: _Edit, entity_id: str) -> None:
    edit.applications.pop(entity_id, None)


def _unfile(lookup, key, entity_id: StoredId, id_of=lambda entity: entity.id) -> None:
    """Remove a secondary lookup entry, but only while it still names the entity being
    removed: another entity may have been filed under the same key since."""
    current = lookup.get(key)
    if current is not None and id_of(current) == entity_id:
        del lookup[key]


# Subscriptions are filed per application, then per API: an application has a handful of
# them, so one small map per application costs less than a (application_id, api_id) tuple
# and a top-level entry per subscription (~50 bytes less each, a million of them).


def _upsert_subscription(edit: _Edit, record) -> None:
    subscription = compile_subscription(record)
    _drop_subscription(edit, subscription.stored_id)
    edit.subscriptions[subscription.stored_id] = subscription
    lookup = edit.subscriptions_by_application
    by_api: Map = lookup.get(subscription.application_id, _NO_SUBSCRIPTIONS)
    lookup[subscription.application_id] = by_api.set(subscription.api_id, subscription)


def _delete_subscription(edit: _Edit, entity_id: str) -> None:
    _drop_subscription(edit, stored_id(entity_id))


def _drop_subscription(edit: _Edit, entity_key: StoredId) -> None:
    old: SubscriptionPolicy | None = edit.subscriptions.pop(entity_key, None)
    if old is None:
        return
    lookup = edit.subscriptions_by_application
    by_api: Map | None = lookup.get(old.application_id)
    if by_api is None:
        return
    current = by_api.get(old.api_id)
    if current is None or current.stored_id != old.stored_id:
        return  # another subscription of the same pair has been filed since
    by_api = by_api.delete(old.api_id)
    if by_api:
        lookup[old.application_id] = by_api
    else:
        del lookup[old.application_id]


_NO_SUBSCRIPTIONS: Map = Map()


def _upsert_api_key(edit: _Edit, record) -> None:
    key = compile_api_key(record)
    # The hash of a key id never changes in practice, but if it did the old hash must
    # stop authenticating: drop the old entry before filing the new one.
    _drop_api_key(edit, key.stored_id)
    edit.api_keys[key.stored_id] = key
    edit.api_keys_by_digest[key.key_digest] = key


def _delete_api_key(edit: _Edit, entity_id: str) -> None:
    _drop_api_key(edit, stored_id(entity_id))


def _drop_api_key(edit: _Edit, entity_key: StoredId) -> None:
    old: ApiKeyPolicy | None = edit.api_keys.pop(entity_key, None)
    if old is not None:
        _unfile(edit.api_keys_by_digest, old.key_digest, entity_key, id_of=lambda current: current.stored_id)


def _upsert_key_manager(edit: _Edit, record) -> None:
    key_manager = compile_key_manager(record)
    lookup = (key_manager.organization_id, key_manager.issuer)
    previous: KeyManagerPolicy | None = edit.key_managers.get(key_manager.id)
    if previous is not None and (previous.organization_id, previous.issuer) == lookup:
        # The usual update (enable, disable, new keys): same issuer, replace in place.
        edit.key_managers[key_manager.id] = key_manager
        holder = edit.key_managers_by_issuer.get(lookup)
        if holder is not None and holder.id == key_manager.id:
            edit.key_managers_by_issuer[lookup] = key_manager
        edit.touched_key_managers.add((key_manager.organization_id, key_manager.id))
        return
    _delete_key_manager(edit, key_manager.id)
    edit.key_managers[key_manager.id] = key_manager
    current: KeyManagerPolicy | None = edit.key_managers_by_issuer.get(lookup)
    if key_manager.issuer and current is not None and current.id != key_manager.id:
        # admin_api keeps issuers unique per organization; should two still claim one,
        # the smaller id wins on every replica, whatever the order of arrival.
        log.warning("key managers %s and %s share issuer %s", current.id, key_manager.id, key_manager.issuer)
    if key_manager.issuer and (current is None or current.id >= key_manager.id):
        edit.key_managers_by_issuer[lookup] = key_manager
    edit.touched_key_managers.add((key_manager.organization_id, key_manager.id))


def _delete_key_manager(edit: _Edit, entity_id: str) -> None:
    old: KeyManagerPolicy | None = edit.key_managers.pop(entity_id, None)
    if old is None:
        return
    lookup = (old.organization_id, old.issuer)
    current = edit.key_managers_by_issuer.get(lookup)
    if current is not None and current.id == old.id:
        del edit.key_managers_by_issuer[lookup]
        # Only when two key managers shared the issuer (a misconfiguration) does another
        # one take over; finding it is a scan, on this rare path only.
        ids = {km.id for km in edit.base.key_managers.values()} | {kid for _, kid in edit.touched_key_managers}
        heirs = [
            km for km in (edit.key_managers.get(kid) for kid in ids)
            if km is not None and (km.organization_id, km.issuer) == lookup
        ]
        if heirs:
            edit.key_managers_by_issuer[lookup] = min(heirs, key=lambda km: km.id)
    edit.touched_key_managers.add((old.organization_id, old.id))


def _upsert_application_key(edit: _Edit, record) -> None:
    key = compile_application_key(record)
    _delete_application_key(edit, key.id)
    edit.application_keys[key.id] = key
    edit.application_keys_by_client[key.lookup] = key


def _delete_application_key(edit: _Edit, entity_id: str) -> None:
    old: ApplicationKeyPolicy | None = edit.application_keys.pop(entity_id, None)
    if old is not None:
        _unfile(edit.application_keys_by_client, old.lookup, old.id)


def _upsert_revoked_token(edit: _Edit, record) -> None:
    revoked = compile_revoked_token(record)
    _delete_revoked_token(edit, revoked.jti)
    edit.revoked_tokens[revoked.jti] = revoked
    edit.revoked_by_org[revoked.lookup] = revoked


def _delete_revoked_token(edit: _Edit, entity_id: str) -> None:
    old: RevokedTokenPolicy | None = edit.revoked_tokens.pop(entity_id, None)
    if old is not None:
        _unfile(edit.revoked_by_org, old.lookup, old.jti, id_of=lambda token: token.jti)


def _upsert_backend_key(edit: _Edit, record) -> None:
    key = compile_backend_key(record)
    edit.backend_keys[key.kid] = key
    edit.backend_keys_changed = True


def _delete_backend_key(edit: _Edit, entity_id: str) -> None:
    if edit.backend_keys.pop(entity_id, None) is not None:
        edit.backend_keys_changed = True


_Handler = Callable[[_Edit, object], None]
_UPSERTS: dict[str, _Handler] = {
    "organization": _upsert_organization,
    "api": _upsert_api,
    "application": _upsert_application,
    "subscription": _upsert_subscription,
    "api_key": _upsert_api_key,
    "key_manager": _upsert_key_manager,
    "application_key": _upsert_application_key,
    "revoked_token": _upsert_revoked_token,
    "backend_signing_key": _upsert_backend_key,
}
_DELETES_BY_NAME: dict[str, Callable[[_Edit, str], None]] = {
    "organization": _delete_organization,
    "api": _delete_api,
    "application": _delete_application,
    "subscription": _delete_subscription,
    "api_key": _delete_api_key,
    "key_manager": _delete_key_manager,
    "application_key": _delete_application_key,
    "revoked_token": _delete_revoked_token,
    "backend_signing_key": _delete_backend_key,
}
_DELETES: dict[int, Callable[[_Edit, str], None]] = {
    sync_pb2.ORGANIZATION: _delete_organization,
    sync_pb2.API: _delete_api,
    sync_pb2.APPLICATION: _delete_application,
    sync_pb2.SUBSCRIPTION: _delete_subscription,
    sync_pb2.API_KEY: _delete_api_key,
    sync_pb2.KEY_MANAGER: _delete_key_manager,
    sync_pb2.APPLICATION_KEY: _delete_application_key,
    sync_pb2.REVOKED_TOKEN: _delete_revoked_token,
    sync_pb2.BACKEND_SIGNING_KEY: _delete_backend_key,
}
