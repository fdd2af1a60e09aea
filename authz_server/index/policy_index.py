"""The immutable policy index and how snapshots and single changes produce a new one.

Every map is a persistent HAMT (`immutables.Map`): a change copies O(log n) nodes and
shares the rest, so applying one change costs O(changed), not O(state), even with a
million keys, and a request holding the previous index keeps a consistent view.
Each entity kind is one table in its own module (its maps, its lookups, its upsert and
delete from a sync record); this one only says which tables there are and routes each
sync record to its table.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, fields, replace
from typing import Iterable, Iterator

from portcullis.sync.v1 import sync_pb2

from authz_server.index.api_keys import ApiKeyTable
from authz_server.index.apis import ApiTable
from authz_server.index.application_keys import ApplicationKeyTable
from authz_server.index.applications import ApplicationTable
from authz_server.index.backend_keys import BackendKeyTable
from authz_server.index.errors import PolicyError
from authz_server.index.key_managers import KeyManagerTable
from authz_server.index.organizations import OrganizationTable
from authz_server.index.revoked_tokens import RevokedTokenTable
from authz_server.index.subscriptions import SubscriptionTable
from authz_server.index.table import Table, TableEdit
from authz_server.index.throttling_policies import ThrottlingPolicyTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyIndex:
    revision: int = 0
    # The tables, one per entity kind; each field's default is that kind's empty table.
    # Adding an entity kind is its module (a Table) and one line here.
    organizations: OrganizationTable = OrganizationTable()
    apis: ApiTable = ApiTable()
    applications: ApplicationTable = ApplicationTable()
    subscriptions: SubscriptionTable = SubscriptionTable()
    api_keys: ApiKeyTable = ApiKeyTable()
    key_managers: KeyManagerTable = KeyManagerTable()
    application_keys: ApplicationKeyTable = ApplicationKeyTable()
    revoked_tokens: RevokedTokenTable = RevokedTokenTable()
    backend_keys: BackendKeyTable = BackendKeyTable()
    throttling_policies: ThrottlingPolicyTable = ThrottlingPolicyTable()

    def tables(self) -> Iterator[tuple[str, Table]]:
        for name in _TABLES:
            yield name, getattr(self, name)

    # --- how a new index is made ---------------------------------------------------------

    @classmethod
    def empty(cls, revision: int = 0) -> "PolicyIndex":
        return cls(revision=revision)

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
        """The same index at the same revision, minus revocations of tokens expired beyond any leeway."""
        revoked_tokens = self.revoked_tokens.without_expired(now)
        return self if revoked_tokens is self.revoked_tokens else replace(self, revoked_tokens=revoked_tokens)


# Field name of each table, and which table files each PolicyEntity kind / EntityRef kind.
_TABLES: tuple[str, ...] = tuple(field.name for field in fields(PolicyIndex) if field.name != "revision")
_BY_ENTITY: dict[str, str] = {type(getattr(PolicyIndex, name)).entity: name for name in _TABLES}
_BY_REF_KIND: dict[int, str] = {type(getattr(PolicyIndex, name)).ref_kind: name for name in _TABLES}


class _Edit:
    """Changes to one index, table by table (a table is copied only once it is changed),
    finished into a new index."""

    def __init__(self, base: PolicyIndex, freeze_every: int = 0) -> None:
        self.base = base
        self._freeze_every = freeze_every
        self._upserts = 0
        self._edits: dict[str, TableEdit] = {}

    def _open(self, name: str) -> TableEdit:
        edit = self._edits[name] = getattr(self.base, name).edit()
        return edit

    def upsert(self, entity: sync_pb2.PolicyEntity) -> None:
        self._upserts += 1
        if self._freeze_every and self._upserts % self._freeze_every == 0:
            gc.freeze()
        kind = entity.WhichOneof("kind")
        name = _BY_ENTITY.get(kind or "")
        if name is None:
            log.error("policy entity of unknown kind %r ignored", kind)
            return
        record = getattr(entity, kind)  # type: ignore[arg-type]
        table = self._edits.get(name) or self._open(name)
        try:
            table.upsert(record)
        except PolicyError as exc:
            # Fail closed: a record that cannot be compiled is treated as absent.
            log.error("policy %s %r could not be compiled and is dropped: %s", kind, record.id, exc)
            if record.id:
                table.delete(record.id)

    def delete(self, ref: sync_pb2.EntityRef) -> None:
        name = _BY_REF_KIND.get(ref.kind)
        if name is None:
            log.error("delete of unknown entity kind %d ignored", ref.kind)
            return
        (self._edits.get(name) or self._open(name)).delete(ref.id)

    def finish(self, revision: int) -> PolicyIndex:
        if self._freeze_every and self._upserts >= self._freeze_every:
            gc.freeze()
        return replace(self.base, revision=revision, **{name: edit.finish() for name, edit in self._edits.items()})


# A snapshot builds millions of long-lived objects (records, HAMT nodes, interned ids).
# The cyclic GC would rescan all of them at every full collection while they pile up:
# at a million keys that was 33 of a 44 s compile. Moving what exists into the permanent
# generation every so often (`gc.freeze`) leaves each collection only the newest objects.
# The index holds no reference cycles, so anything frozen that is later dropped is still
# freed by reference counting; it also keeps full collections off the serving path.
# Small snapshots (tests, small states) never freeze.
_FREEZE_EVERY = 20_000
