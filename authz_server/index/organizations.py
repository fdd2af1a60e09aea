"""Organizations (tenants): kept so that every record can be checked against its tenant."""

from __future__ import annotations

from dataclasses import dataclass

from portcullis.admin.v1 import admin_pb2

from authz_server.index.errors import PolicyError


@dataclass(frozen=True)
class OrganizationPolicy:
    id: str
    name: str


def compile_organization(organization: admin_pb2.Organization) -> OrganizationPolicy:
    if not organization.id:
        raise PolicyError("organization record without an id")
    return OrganizationPolicy(id=organization.id, name=organization.name)
