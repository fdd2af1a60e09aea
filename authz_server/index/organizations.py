"""Organizations (tenants): kept so that every record can be checked against its tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from immutables import Map

from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.index.errors import PolicyError
from authz_server.index.table import Table, TableEdit


@dataclass(frozen=True)
class OrganizationPolicy:
    id: str
    name: str


def compile_organization(organization: admin_pb2.Organization) -> OrganizationPolicy:
    if not organization.id:
        raise PolicyError("organization record without an id")
    return OrganizationPolicy(id=organization.id, name=organization.name)


@dataclass(frozen=True, slots=True)
class OrganizationTable(Table):
    entity: ClassVar[str] = "organization"
    ref_kind: ClassVar[int] = sync_pb2.ORGANIZATION
    by_id: Map = Map()  # id → OrganizationPolicy

    def edit(self) -> "_OrganizationEdit":
        return _OrganizationEdit(self)


class _OrganizationEdit(TableEdit):
    def __init__(self, base: OrganizationTable) -> None:
        self.by_id = base.by_id.mutate()

    def upsert(self, record: admin_pb2.Organization) -> None:
        organization = compile_organization(record)
        self.by_id[organization.id] = organization

    def delete(self, entity_id: str) -> None:
        self.by_id.pop(entity_id, None)

    def finish(self) -> OrganizationTable:
        return OrganizationTable(by_id=self.by_id.finish())
