"""Applications: what the decision needs of an admin `Application`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import ClassVar

from immutables import Map

from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.index.errors import PolicyError
from authz_server.index.table import Table, TableEdit


# Many of them: no __dict__, and the organization, owner and tier interned (a few distinct
# values shared by thousands of applications).
@dataclass(frozen=True, slots=True)
class ApplicationPolicy:
    id: str
    organization_id: str
    name: str
    owner: str
    throttling_tier: str

    # Part of the backend-JWT cache's key, hashed on every call: by the id alone (equal
    # applications have equal ids; equality still compares every field).
    def __hash__(self) -> int:
        return hash(self.id)


def compile_application(application: admin_pb2.Application) -> ApplicationPolicy:
    if not application.id:
        raise PolicyError("application record without an id")
    return ApplicationPolicy(
        id=application.id,
        organization_id=sys.intern(application.organization_id),
        name=application.name,
        owner=sys.intern(application.owner),
        throttling_tier=sys.intern(application.throttling_tier),
    )


@dataclass(frozen=True, slots=True)
class ApplicationTable(Table):
    entity: ClassVar[str] = "application"
    ref_kind: ClassVar[int] = sync_pb2.APPLICATION
    by_id: Map = Map()  # id → ApplicationPolicy

    def edit(self) -> "_ApplicationEdit":
        return _ApplicationEdit(self)


class _ApplicationEdit(TableEdit):
    def __init__(self, base: ApplicationTable) -> None:
        self.by_id = base.by_id.mutate()

    def upsert(self, record: admin_pb2.Application) -> None:
        application = compile_application(record)
        self.by_id[application.id] = application

    def delete(self, entity_id: str) -> None:
        self.by_id.pop(entity_id, None)

    def finish(self) -> ApplicationTable:
        return ApplicationTable(by_id=self.by_id.finish())
