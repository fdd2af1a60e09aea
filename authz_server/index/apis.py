"""APIs: an admin `Api` compiled into what routing and credential extraction read."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Sequence

from immutables import Map

from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2
from portcullis_shared import backend_jwt as backend_contract

from authz_server.identity_enum import IdentityHashedEnum
from authz_server.index.errors import PolicyError
from authz_server.index.resources import ResourceMatcher, best_match, compile_resource, split_path
from authz_server.index.routes import NO_ROUTES, RouteTable
from authz_server.index.table import Table, TableEdit

log = logging.getLogger(__name__)

DEFAULT_API_KEY_HEADER = "apikey"
DEFAULT_API_KEY_QUERY_PARAM = "apikey"

_Api = admin_pb2.Api


class Lifecycle(IdentityHashedEnum):
    CREATED = "CREATED"
    PUBLISHED = "PUBLISHED"
    DEPRECATED = "DEPRECATED"
    RETIRED = "RETIRED"
    BLOCKED = "BLOCKED"

    @property
    def serves(self) -> bool:
        return self in (Lifecycle.PUBLISHED, Lifecycle.DEPRECATED)

    @property
    def deployed(self) -> bool:
        return self not in (Lifecycle.CREATED, Lifecycle.RETIRED)


_LIFECYCLE = {
    _Api.CREATED: Lifecycle.CREATED,
    _Api.PUBLISHED: Lifecycle.PUBLISHED,
    _Api.DEPRECATED: Lifecycle.DEPRECATED,
    _Api.RETIRED: Lifecycle.RETIRED,
    _Api.BLOCKED: Lifecycle.BLOCKED,
}


@dataclass(frozen=True)
class ApiKeyScheme:
    header: str                 # lower case
    query_param: str | None     # None: the query parameter is disabled


@dataclass(frozen=True)
class BackendJwtPolicy:
    """The API's backend JWT, validated by admin_api (defaults filled in)."""

    header: str                                   # lower case
    validity_seconds: int
    algorithm: str
    claim_mappings: tuple[tuple[str, str], ...]   # (claim of the caller's token, claim of the backend JWT)
    static_claims: tuple[tuple[str, str], ...]
    include_on_open_resources: bool

    # Part of the backend-JWT cache's key, hashed on every call: hashed once (same value
    # as the dataclass's own hash of its fields; equality is still field by field).
    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.header, self.validity_seconds, self.algorithm, self.claim_mappings, self.static_claims,
                     self.include_on_open_resources))


@dataclass(frozen=True)
class ApiPolicy:
    id: str
    organization_id: str
    name: str
    version: str
    base_path: str
    base_segments: tuple[str, ...]
    lifecycle: Lifecycle
    resources: tuple[ResourceMatcher, ...]
    api_key: ApiKeyScheme | None        # None: API keys are not accepted
    oauth2: bool                        # OAuth2 bearer tokens enabled
    # Key manager NAMES whose tokens this API takes; empty: every key manager of the org.
    allowed_key_managers: frozenset[str]
    subscription_less: bool
    has_production: bool
    has_sandbox: bool
    context: str = ""
    backend_jwt: BackendJwtPolicy | None = None   # None: no backend JWT
    pass_authorization_header: bool = False
    dry_run: bool = False               # enforcement DRY_RUN: denials are logged and counted, not answered
    # The backend JWT's header name, also when it is off: a client-sent copy is removed.
    backend_jwt_header: str = backend_contract.DEFAULT_HEADER
    throttling_policy: str = ""         # an API-kind policy's name for all calls; "": none

    def allows_key_manager(self, name: str) -> bool:
        return not self.allowed_key_managers or name in self.allowed_key_managers

    def resource_for(self, method: str, segments: tuple[str, ...]) -> ResourceMatcher | None:
        return best_match(self.resources, method, segments)


def _api_key_scheme(api: admin_pb2.Api) -> ApiKeyScheme | None:
    # admin_api fills in API-key security when none was given; an Api record without a
    # security message at all is read the same way.
    if api.HasField("security") and not api.security.HasField("api_key"):
        return None
    scheme = api.security.api_key
    header = (scheme.header or DEFAULT_API_KEY_HEADER).strip().lower()
    query = None if scheme.disable_query_param else (scheme.query_param or DEFAULT_API_KEY_QUERY_PARAM)
    return ApiKeyScheme(header=header, query_param=query)


def _backend_jwt(api: admin_pb2.Api) -> BackendJwtPolicy | None:
    config = api.backend_jwt
    if not api.HasField("backend_jwt") or not config.enabled:
        return None
    validity = config.validity_seconds or backend_contract.DEFAULT_VALIDITY_SECONDS
    if not backend_contract.MIN_VALIDITY_SECONDS <= validity <= backend_contract.MAX_VALIDITY_SECONDS:
        raise PolicyError(f"API {api.id}: backend JWT validity {validity} s is out of bounds")
    algorithm = config.algorithm or backend_contract.DEFAULT_ALGORITHM
    if algorithm not in backend_contract.ALGORITHMS:
        raise PolicyError(f"API {api.id}: backend JWT algorithm {algorithm!r} is not supported")
    # Claims Portcullis sets are never replaced, whatever a record says.
    reserved = backend_contract.RESERVED_CLAIMS
    return BackendJwtPolicy(
        header=(config.header or backend_contract.DEFAULT_HEADER).strip().lower(),
        validity_seconds=validity,
        algorithm=algorithm,
        claim_mappings=tuple((m.from_claim, m.to_claim or m.from_claim) for m in config.claim_mappings
                             if (m.to_claim or m.from_claim) not in reserved),
        static_claims=tuple((c.name, c.value) for c in config.static_claims if c.name not in reserved),
        include_on_open_resources=config.include_on_open_resources,
    )


def compile_api(api: admin_pb2.Api) -> ApiPolicy:
    if not api.id:
        raise PolicyError("API record without an id")
    if not api.base_path.startswith("/"):
        raise PolicyError(f"API {api.id}: base path {api.base_path!r} must start with '/'")
    lifecycle = _LIFECYCLE.get(api.lifecycle_state)
    if lifecycle is None:
        # Unknown is not deployed: the API answers 404 rather than serving by accident.
        log.error("API %s has lifecycle state %d; treated as CREATED", api.id, api.lifecycle_state)
        lifecycle = Lifecycle.CREATED
    resources = []
    for resource in api.resources:
        try:
            resources.append(
                compile_resource(resource.method, resource.path, open=resource.open, scopes=resource.scopes,
                                 throttling_policy=resource.throttling_policy)
            )
        except PolicyError as exc:
            # Fail closed: a resource that cannot be compiled matches nothing.
            log.error("API %s: resource %s %s ignored: %s", api.id, resource.method, resource.path, exc)
    return ApiPolicy(
        id=api.id,
        organization_id=api.organization_id,
        name=api.name,
        version=api.version,
        base_path=api.base_path,
        base_segments=split_path(api.base_path),
        lifecycle=lifecycle,
        resources=tuple(resources),
        api_key=_api_key_scheme(api),
        oauth2=api.HasField("security") and api.security.HasField("oauth2"),
        allowed_key_managers=frozenset(api.security.oauth2.allowed_key_managers),
        subscription_less=api.subscription_less,
        has_production=bool(api.production_endpoint),
        has_sandbox=bool(api.sandbox_endpoint),
        context=api.context,
        backend_jwt=_backend_jwt(api),
        pass_authorization_header=api.pass_authorization_header,
        dry_run=api.enforcement == admin_pb2.DRY_RUN,
        backend_jwt_header=(api.backend_jwt.header or backend_contract.DEFAULT_HEADER).strip().lower(),
        throttling_policy=sys.intern(api.throttling_policy),
    )


@dataclass(frozen=True, slots=True)
class ApiTable(Table):
    entity: ClassVar[str] = "api"
    ref_kind: ClassVar[int] = sync_pb2.API
    by_id: Map = Map()  # id → ApiPolicy
    routes: RouteTable = NO_ROUTES  # base path → ApiPolicy

    def for_path(self, segments: Sequence[str]) -> ApiPolicy | None:
        return self.routes.match(segments)

    def edit(self) -> "_ApiEdit":
        return _ApiEdit(self)


class _ApiEdit(TableEdit):
    def __init__(self, base: ApiTable) -> None:
        self.base = base
        self.by_id = base.by_id.mutate()
        self.changed = False

    def upsert(self, record: admin_pb2.Api) -> None:
        api = compile_api(record)
        self.by_id[api.id] = api
        self.changed = True

    def delete(self, entity_id: str) -> None:
        if self.by_id.pop(entity_id, None) is not None:
            self.changed = True

    def finish(self) -> ApiTable:
        by_id = self.by_id.finish()
        # APIs are few (hundreds), so their route table is rebuilt whole.
        return ApiTable(by_id=by_id, routes=RouteTable.build(by_id.values()) if self.changed else self.base.routes)
