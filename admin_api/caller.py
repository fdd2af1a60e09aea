"""Who is calling the admin API, as established from their credential."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    ADMIN = "admin"   # everything in its organization
    SYNC = "sync"     # authz_server replicas: PolicySync.Watch only


@dataclass(frozen=True)
class Caller:
    subject: str            # e.g. "bootstrap-admin"
    organization_id: str    # "default" for the default organization
    role: Role
