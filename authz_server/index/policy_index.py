"""The immutable policy index and how snapshots and single changes produce a new one.

Every map is a persistent HAMT (`immutables.Map`): a change copies O(log n) nodes and
shares the rest, so applying one change costs O(changed), not O(state), even with a
million keys, and a request holding the previous index keeps a consistent view.
The per-entity compilers live in their own modules; this one only files their output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

from immutables import Map
from portcullis.sync.v1 import sync_pb2

from authz_server.index.api_keys import ApiKeyPolicy, compile_api_key
from authz_server.index.apis import ApiPolicy, compile_api
from authz_server.index.applications import ApplicationPolicy, compile_application
from authz_server.index.errors import PolicyError
from authz_server.index.organizations import OrganizationPolicy, compile_organization
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
    api_keys: Map  # id → ApiKeyPolicy
    api_keys_by_hash: Map  # key_hash → ApiKeyPolicy
    subscriptions: Map  # id → SubscriptionPolicy
    subscriptions_by_pair: Map  # (application_id, api_id) → SubscriptionPolicy

    # --- what requests read -------------------------------------------------------------

    def api_for_path(self, segments: tuple[str, ...]) -> ApiPolicy | None:
        return self.routes.match(segments)

    def api_key_by_hash(self, key_hash: str) -> ApiKeyPolicy | None:
        return self.api_keys_by_hash.get(key_hash)

    def application(self, application_id: str) -> ApplicationPolicy | None:
        return self.applications.get(application_id)

    def subscription_for(self, application_id: str, api_id: str) -> SubscriptionPolicy | None:
        return self.subscriptions_by_pair.get((application_id, api_id))

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
            api_keys_by_hash=Map(),
            subscriptions=Map(),
            subscriptions_by_pair=Map(),
        )

    @classmethod
    def from_snapshot(cls, entities: Iterable[sync_pb2.PolicyEntity], revision: int) -> "PolicyIndex":
        edit = _Edit(cls.empty())
        for entity in entities:
            edit.upsert(entity)
        return edit.finish(revision)

    def with_upsert(self, entity: sync_pb2.PolicyEntity, revision: int) -> "PolicyIndex":
        edit = _Edit(self)
        edit.upsert(entity)
        return edit.finish(revision)

    def with_delete(self, ref: sync_pb2.EntityRef, revision: int) -> "PolicyIndex":
        edit = _Edit(self)
        edit.delete(ref)
        return edit.finish(revision)


class _Edit:
    """Mutations of every map of one index, finished into a new index."""

    def __init__(self, base: PolicyIndex) -> None:
        self.base = base
        self.organizations = base.organizations.mutate()
        self.apis = base.apis.mutate()
        self.applications = base.applications.mutate()
        self.api_keys = base.api_keys.mutate()
        self.api_keys_by_hash = base.api_keys_by_hash.mutate()
        self.subscriptions = base.subscriptions.mutate()
        self.subscriptions_by_pair = base.subscriptions_by_pair.mutate()
        self.apis_changed = False

    def upsert(self, entity: sync_pb2.PolicyEntity) -> None:
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
        apis = self.apis.finish()
        return PolicyIndex(
            revision=revision,
            organizations=self.organizations.finish(),
            apis=apis,
            # APIs are few (hundreds), so their route table is rebuilt whole.
            routes=RouteTable.build(apis.values()) if self.apis_changed else self.base.routes,
            applications=self.applications.finish(),
            api_keys=self.api_keys.finish(),
            api_keys_by_hash=self.api_keys_by_hash.finish(),
            subscriptions=self.subscriptions.finish(),
            subscriptions_by_pair=self.subscriptions_by_pair.finish(),
        )


# --- one upsert and one delete per entity kind ----------------------------------------------


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


def _upsert_subscription(edit: _Edit, record) -> None:
    subscription = compile_subscription(record)
    _delete_subscription(edit, subscription.id)
    edit.subscriptions[subscription.id] = subscription
    edit.subscriptions_by_pair[subscription.pair] = subscription


def _delete_subscription(edit: _Edit, entity_id: str) -> None:
    old: SubscriptionPolicy | None = edit.subscriptions.pop(entity_id, None)
    if old is not None:
        current = edit.subscriptions_by_pair.get(old.pair)
        if current is not None and current.id == old.id:
            del edit.subscriptions_by_pair[old.pair]


def _upsert_api_key(edit: _Edit, record) -> None:
    key = compile_api_key(record)
    # The hash of a key id never changes in practice, but if it did the old hash must
    # stop authenticating: drop the old entry before filing the new one.
    _delete_api_key(edit, key.id)
    edit.api_keys[key.id] = key
    edit.api_keys_by_hash[key.key_hash] = key


def _delete_api_key(edit: _Edit, entity_id: str) -> None:
    old: ApiKeyPolicy | None = edit.api_keys.pop(entity_id, None)
    if old is not None:
        current = edit.api_keys_by_hash.get(old.key_hash)
        if current is not None and current.id == old.id:
            del edit.api_keys_by_hash[old.key_hash]


_Handler = Callable[[_Edit, object], None]
_UPSERTS: dict[str, _Handler] = {
    "organization": _upsert_organization,
    "api": _upsert_api,
    "application": _upsert_application,
    "subscription": _upsert_subscription,
    "api_key": _upsert_api_key,
}
_DELETES_BY_NAME: dict[str, Callable[[_Edit, str], None]] = {
    "organization": _delete_organization,
    "api": _delete_api,
    "application": _delete_application,
    "subscription": _delete_subscription,
    "api_key": _delete_api_key,
}
_DELETES: dict[int, Callable[[_Edit, str], None]] = {
    sync_pb2.ORGANIZATION: _delete_organization,
    sync_pb2.API: _delete_api,
    sync_pb2.APPLICATION: _delete_application,
    sync_pb2.SUBSCRIPTION: _delete_subscription,
    sync_pb2.API_KEY: _delete_api_key,
}
