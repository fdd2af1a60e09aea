"""Applications: what the decision needs of an admin `Application`."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from portcullis.admin.v1 import admin_pb2

from authz_server.index.errors import PolicyError


# Many of them: no __dict__, and the organization, owner and tier interned (a few distinct
# values shared by thousands of applications).
@dataclass(frozen=True, slots=True)
class ApplicationPolicy:
    id: str
    organization_id: str
    name: str
    owner: str
    throttling_tier: str


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
