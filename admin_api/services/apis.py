"""APIs: create, read, list, update, delete and lifecycle changes.

A caller that reads APIs only as a subscriber sees the APIs it could use: PUBLISHED and
DEPRECATED. Any other is NOT_FOUND for it, like another organization's, so that
unreleased APIs cannot be probed; admins, publishers and creators see all.

Deleting an API cascades: its API keys and subscriptions are deleted in the same
transaction, each with its own delete change record, so replicas drop them too (a key
of a deleted API could never be used again anyway); its OpenAPI document goes with it.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller, Role
from admin_api.backend_jwt.keys import ensure_active_in
from admin_api.db import models
from admin_api.db.definition_models import ApiDefinition
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from admin_api.services import (backend_jwt_config, isolation, key_managers, masks, paging, path_ownership,
                                throttling_policies, validation)
from admin_api.store.unit_of_work import Store, Writer, new_id
from admin_api.views.apis import api_pb, backend_jwt_json, backend_jwt_pb, resource_json, security_json, upstream_json
from admin_api.services.upstream import upstream as checked_upstream
from google.protobuf.empty_pb2 import Empty
from portcullis.admin.v1 import admin_pb2

State = admin_pb2.Api.LifecycleState
DEFAULT_API_KEY_HEADER = "apikey"
DEFAULT_API_KEY_QUERY_PARAM = "apikey"

# The admin lifecycle, exactly as in the brief. RETIRED is final.
TRANSITIONS: dict[int, frozenset[int]] = {
    State.CREATED: frozenset({State.PUBLISHED}),
    State.PUBLISHED: frozenset({State.DEPRECATED, State.BLOCKED, State.RETIRED}),
    State.DEPRECATED: frozenset({State.PUBLISHED, State.RETIRED, State.BLOCKED}),
    State.BLOCKED: frozenset({State.PUBLISHED, State.DEPRECATED, State.RETIRED}),
    State.RETIRED: frozenset(),
}

# What a subscriber may see (and so discover and subscribe to).
CONSUMER_STATES = frozenset({State.Name(State.PUBLISHED), State.Name(State.DEPRECATED)})
_SEE_EVERY_STATE = frozenset({Role.ADMIN, Role.PUBLISHER, Role.CREATOR})

MUTABLE = frozenset({"name", "version", "context", "production_endpoint", "sandbox_endpoint", "resources",
                     "security", "subscription_less", "description", "backend_jwt",
                     "pass_authorization_header", "upstream", "enforcement",
                     "throttling_policy"})
IMMUTABLE = frozenset({"id", "organization_id", "base_path", "lifecycle_state", "created_at", "updated_at"})


def _enforcement(value: int, field: str = "enforcement") -> str:
    if value not in admin_pb2.Enforcement.values():
        raise InvalidArgument(f"{field}: unknown enforcement {value}", field=field)
    return admin_pb2.Enforcement.Name(value)


def create_api(store: Store, request: admin_pb2.CreateApiRequest, caller: Caller) -> admin_pb2.Api:
    organization_id = isolation.organization(request.organization_id, caller)
    now = utcnow()
    row = models.Api(
        id=new_id(),
        organization_id=organization_id,
        name=validation.name(request.name),
        version=validation.version(request.version),
        context=validation.context(request.context),
        production_endpoint=validation.endpoint(request.production_endpoint, "production_endpoint"),
        sandbox_endpoint=validation.endpoint(request.sandbox_endpoint, "sandbox_endpoint"),
        resources=_resources(request.resources),
        security=security_json(_security(request.security, request.HasField("security"))),
        subscription_less=request.subscription_less,
        enforcement=_enforcement(request.enforcement),
        lifecycle_state=State.Name(State.CREATED),
        description=validation.description(request.description),
        created_at=now,
        updated_at=now,
        pass_authorization_header=request.pass_authorization_header,
        throttling_policy=request.throttling_policy,
    )
    if request.HasField("backend_jwt"):
        row.backend_jwt = backend_jwt_json(_backend_jwt(request.backend_jwt, row, "backend_jwt"))
    if request.HasField("upstream"):
        row.upstream = upstream_json(checked_upstream(request.upstream))
    _check_endpoints(row)
    row.base_path = validation.base_path(row.context, row.version, organization_id)
    with store.write() as writer:
        _check_unique(writer.session, row, caller)
        _check_key_managers(writer.session, row, "security.oauth2.allowed_key_managers")
        _check_throttling_policies(writer.session, row, "")
        _ensure_signing_key(writer, row, store)
        writer.upsert(row)
        return api_pb(row)


def consumer_view(caller: Caller) -> bool:
    """True when the caller reads APIs as a subscriber only (no admin, publisher or creator role)."""
    return caller.has(Role.SUBSCRIBER) and caller.roles.isdisjoint(_SEE_EVERY_STATE)


def get_api(store: Store, request: admin_pb2.GetApiRequest, caller: Caller) -> admin_pb2.Api:
    with store.read() as session:
        return api_pb(visible_api(session, request.id, caller))


def visible_api(session: Session, api_id: str, caller: Caller, *, field: str = "id") -> models.Api:
    """The API with this id as the caller may see it; NOT_FOUND, as for a missing one, when
    it may not (another organization's, or one a subscriber may not read yet): every RPC
    that names an API answers alike, so that its state cannot be probed."""
    row = isolation.get(session, models.Api, api_id, caller, field=field, what="API")
    if not may_see(caller, row):
        raise NotFound(f"API {api_id!r} not found", field=field)
    return row


def list_apis(store: Store, request: admin_pb2.ListApisRequest, caller: Caller) -> admin_pb2.ListApisResponse:
    organization_id = isolation.organization(request.organization_id, caller)
    size = paging.page_size(request.page_size)
    statement = select(models.Api).where(models.Api.organization_id == organization_id)
    view = "consumer" if consumer_view(caller) else "all"
    if view == "consumer":
        statement = statement.where(models.Api.lifecycle_state.in_(sorted(CONSUMER_STATES)))
    with store.read() as session:
        rows, token = paging.paginate(session, statement, models.Api, size=size, token=request.page_token,
                                      filters=["apis", organization_id, view])
        return admin_pb2.ListApisResponse(apis=[api_pb(row) for row in rows], next_page_token=token)


def update_api(store: Store, request: admin_pb2.UpdateApiRequest, caller: Caller) -> admin_pb2.Api:
    paths = masks.paths(request.update_mask, mutable=MUTABLE, immutable=IMMUTABLE)
    new = request.api
    with store.write() as writer:
        row = isolation.get(writer.session, models.Api, request.id, caller, what="API")
        for path in paths:
            field = f"api.{path}"
            if path == "name":
                row.name = validation.name(new.name, field)
            elif path == "version":
                row.version = validation.version(new.version, field)
            elif path == "context":
                row.context = validation.context(new.context, field)
            elif path in ("production_endpoint", "sandbox_endpoint"):
                setattr(row, path, validation.endpoint(getattr(new, path), field))
            elif path == "resources":
                row.resources = _resources(new.resources, field)
            elif path == "security":
                row.security = security_json(_security(new.security, new.HasField("security"), field))
            elif path == "subscription_less":
                row.subscription_less = new.subscription_less
            elif path == "enforcement":
                row.enforcement = _enforcement(new.enforcement, field)
            elif path == "description":
                row.description = validation.description(new.description, field)
            elif path == "backend_jwt":
                row.backend_jwt = (backend_jwt_json(_backend_jwt(new.backend_jwt, row, field))
                                   if new.HasField("backend_jwt") else None)
            elif path == "pass_authorization_header":
                row.pass_authorization_header = new.pass_authorization_header
            elif path == "upstream":
                row.upstream = (upstream_json(checked_upstream(new.upstream, field))
                                if new.HasField("upstream") else None)
            elif path == "throttling_policy":
                row.throttling_policy = new.throttling_policy
        if "security" in paths and "backend_jwt" not in paths and row.backend_jwt is not None:
            # A new API key header may not take the backend JWT's header.
            _backend_jwt(backend_jwt_pb(row.backend_jwt), row, "api.security.api_key.header")
        _check_endpoints(row)
        row.base_path = validation.base_path(row.context, row.version, row.organization_id,
                                             "api.context" if "context" in paths else "api.version")
        row.updated_at = utcnow()
        _check_unique(writer.session, row, caller)
        if "security" in paths:
            _check_key_managers(writer.session, row, "api.security.oauth2.allowed_key_managers")
        if "throttling_policy" in paths or "resources" in paths:
            _check_throttling_policies(writer.session, row, "api.")
        _ensure_signing_key(writer, row, store)
        writer.upsert(row)
        return api_pb(row)


def delete_api(store: Store, request: admin_pb2.DeleteApiRequest, caller: Caller) -> Empty:
    with store.write() as writer:
        row = isolation.get(writer.session, models.Api, request.id, caller, what="API")
        for key in writer.session.scalars(select(models.ApiKey).where(models.ApiKey.api_id == row.id)):
            writer.delete(key)
        for subscription in writer.session.scalars(select(models.Subscription)
                                                   .where(models.Subscription.api_id == row.id)):
            writer.delete(subscription)
        writer.session.execute(delete(ApiDefinition).where(ApiDefinition.api_id == row.id))
        writer.delete(row)
    return Empty()


def change_api_lifecycle(store: Store, request: admin_pb2.ChangeApiLifecycleRequest,
                         caller: Caller) -> admin_pb2.Api:
    target = request.target_state
    if target not in TRANSITIONS:
        raise InvalidArgument("target_state is required: one of " + ", ".join(State.Name(s) for s in TRANSITIONS),
                              field="target_state")
    with store.write() as writer:
        row = isolation.get(writer.session, models.Api, request.id, caller, what="API")
        current = State.Value(row.lifecycle_state)
        allowed = TRANSITIONS[current]
        if target not in allowed:
            targets = ", ".join(State.Name(s) for s in sorted(allowed)) or "none (RETIRED is final)"
            what = "is already" if target == current else "cannot go to"
            raise FailedPrecondition(f"API {row.id!r} is {row.lifecycle_state} and {what} {State.Name(target)}; "
                                     f"allowed targets: {targets}", field="target_state")
        row.lifecycle_state = State.Name(target)
        row.updated_at = utcnow()
        writer.upsert(row)
        return api_pb(row)


def _resources(items: list[admin_pb2.Resource], field: str = "resources") -> list[dict]:
    """Validated resources; none given means one secured catch-all `* /*`."""
    if not items:
        return [resource_json(admin_pb2.Resource(method="*", path="/*"))]
    if len(items) > validation.MAX_RESOURCES:
        raise InvalidArgument(f"{field} has more than {validation.MAX_RESOURCES} entries", field=field)
    result: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        item_field = f"{field}[{index}]"
        method = validation.http_method(validation.required(item.method, f"{item_field}.method"),
                                        f"{item_field}.method")
        path = validation.resource_path(item.path, f"{item_field}.path")
        for scope_name in item.scopes:
            if not scope_name or any(c.isspace() for c in scope_name):
                raise InvalidArgument(f"{item_field}.scopes: {scope_name!r} must be non-empty without spaces",
                                      field=f"{item_field}.scopes")
        if (method, path) in seen:
            raise InvalidArgument(f"{item_field}: {method} {path} is listed twice", field=item_field)
        seen.add((method, path))
        result.append(resource_json(admin_pb2.Resource(method=method, path=path, open=item.open,
                                                       scopes=item.scopes, throttling_policy=item.throttling_policy)))
    return result


def _check_throttling_policies(session, row: models.Api, prefix: str) -> None:
    """The API's policy and its resources' must be API-kind policies of its organization."""
    if row.throttling_policy:
        throttling_policies.require(session, row.organization_id, "API", row.throttling_policy,
                                    f"{prefix}throttling_policy")
    for index, resource in enumerate(row.resources):
        name = resource.get("throttling_policy", "")
        if name:
            throttling_policies.require(session, row.organization_id, "API", name,
                                        f"{prefix}resources[{index}].throttling_policy")


def _security(given: admin_pb2.SecuritySchemes, present: bool, field: str = "security") -> admin_pb2.SecuritySchemes:
    """Validated schemes with defaults filled in; none given means API key security."""
    if not present:
        return admin_pb2.SecuritySchemes(api_key=admin_pb2.ApiKeyScheme(
            header=DEFAULT_API_KEY_HEADER, query_param=DEFAULT_API_KEY_QUERY_PARAM))
    if not given.HasField("api_key") and not given.HasField("oauth2"):
        raise InvalidArgument(f"{field} must enable at least one scheme (api_key or oauth2)", field=field)
    result = admin_pb2.SecuritySchemes()
    if given.HasField("api_key"):
        result.api_key.header = validation.header_name(given.api_key.header or DEFAULT_API_KEY_HEADER,
                                                       f"{field}.api_key.header")
        result.api_key.query_param = validation.query_param(
            given.api_key.query_param or DEFAULT_API_KEY_QUERY_PARAM, f"{field}.api_key.query_param")
        result.api_key.disable_query_param = given.api_key.disable_query_param
    if given.HasField("oauth2"):
        for name in given.oauth2.allowed_key_managers:
            validation.name(name, f"{field}.oauth2.allowed_key_managers")
        result.oauth2.allowed_key_managers.extend(given.oauth2.allowed_key_managers)
        result.oauth2.SetInParent()
    return result


def _backend_jwt(given: admin_pb2.BackendJwtConfig, row: models.Api, field: str) -> admin_pb2.BackendJwtConfig:
    api_key = row.security.get("api_key")
    return backend_jwt_config.backend_jwt(given, field, api_key.get("header") if api_key else None)


def _ensure_signing_key(writer: Writer, row: models.Api, store: Store) -> None:
    """An API that signs with an algorithm nobody signs with yet gets its key now, in the
    same transaction, so that replicas never see the API without a key to sign with."""
    config = row.backend_jwt
    if config and config.get("enabled"):
        ensure_active_in(writer, store.config.require_kek(), config["algorithm"])


def _check_key_managers(session: Session, row: models.Api, field: str) -> None:
    """Key managers are allowed by name: each must exist in the API's organization."""
    names = row.security.get("oauth2", {}).get("allowed_key_managers", [])
    with session.no_autoflush:
        key_managers.check_allowed_names(session, row.organization_id, names, field)


def _check_endpoints(row: models.Api) -> None:
    if not row.production_endpoint and not row.sandbox_endpoint:
        raise InvalidArgument("at least one of production_endpoint and sandbox_endpoint is required",
                              field="production_endpoint")


def _check_unique(session: Session, row: models.Api, caller: Caller) -> None:
    with session.no_autoflush:  # check before the row's own UPDATE reaches the constraints
        _check_unique_now(session, row, caller)


def may_see(caller: Caller, row: models.Api) -> bool:
    """Whether `get_api` would answer this row to the caller (else it is NOT_FOUND)."""
    if row.organization_id != caller.organization_id:
        return False
    return not consumer_view(caller) or row.lifecycle_state in CONSUMER_STATES


def _check_unique_now(session: Session, row: models.Api, caller: Caller) -> None:
    path_ownership.check(session, row, may_see=lambda other: may_see(caller, other))
    twin = session.scalars(select(models.Api).where(models.Api.organization_id == row.organization_id,
                                                    models.Api.name == row.name,
                                                    models.Api.version == row.version,
                                                    models.Api.id != row.id)).first()
    if twin is not None:
        raise AlreadyExists(f"an API named {row.name!r} with version {row.version!r} already exists "
                            f"(id {twin.id!r})", field="name")
