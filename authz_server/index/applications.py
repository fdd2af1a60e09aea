"""Applications: what the decision needs of an admin `Application`."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from portcullis.admin.v1 import admin_pb2

from authz_server.index.errors import PolicyError


@dataclass(frozen=True, slots=True)  # many of them: no __dict__, interned ids
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
        owner=application.owner,
        throttling_tier=application.throttling_tier,
    )
