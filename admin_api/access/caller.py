"""Who is calling the admin API, as established from their credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Role(str, Enum):
    ADMIN = "admin"             # everything in its organization
    PUBLISHER = "publisher"     # APIs and their lifecycle
    CREATOR = "creator"         # APIs, no lifecycle
    SUBSCRIBER = "subscriber"   # applications, subscriptions and keys of their own
    SYNC = "sync"               # authz_server replicas: PolicySync.Watch only
    GATEWAY = "gateway"         # Envoy gateways: the xDS stream only


# The roles a user of the resident key manager may hold for the admin API; other role
# names on a user (e.g. ones that entitle OAuth2 scopes) give no admin permission.
USER_ROLES = (Role.ADMIN, Role.PUBLISHER, Role.CREATOR, Role.SUBSCRIBER)
_PRECEDENCE = (*USER_ROLES, Role.SYNC, Role.GATEWAY)


class Credential(str, Enum):
    """What kind of credential established the caller (recorded in the audit log)."""

    ADMIN_TOKEN = "admin_token"           # a stored admin credential (the bootstrap token, an organization's)
    SYNC_TOKEN = "sync_token"
    GATEWAY_TOKEN = "gateway_token"
    JWT = "jwt"                           # a resident key manager JWT access token
    REFERENCE_TOKEN = "reference_token"   # a resident key manager opaque (pct_) token
    OAUTH_CLIENT = "oauth_client"         # a client authenticated at the resident OAuth2 endpoints
    PASSWORD = "password"                 # a user's password at the resident key manager (failed logins)
    SELF_SIGNUP = "self_signup"           # someone signing up on the developer portal (no credential yet)
    INTERNAL = "internal"                 # built in-process (tests, start-up)


@dataclass(frozen=True)
class Caller:
    """`Caller(subject, organization_id, Role.ADMIN)` (one role) and
    `Caller(subject, organization_id, roles=frozenset({...}))` are both accepted; either
    way `roles` holds every role and `role` the most privileged one (None without any)."""

    subject: str            # the username for user tokens; e.g. "bootstrap-admin"
    organization_id: str    # "default" for the default organization
    role: Role | None = None
    roles: frozenset[Role] = frozenset()
    credential: Credential = field(default=Credential.INTERNAL, compare=False)
    # Set by the Dispatcher for one call: the caller acts on its own resources only
    # (owner == subject), e.g. a subscriber on applications and keys.
    own_resources_only: bool = False

    def __post_init__(self) -> None:
        roles = frozenset(self.roles) | ({self.role} if self.role is not None else set())
        object.__setattr__(self, "roles", roles)
        object.__setattr__(self, "role", next((r for r in _PRECEDENCE if r in roles), None))

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles
