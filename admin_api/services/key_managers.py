"""Key managers: the OAuth2 authorization servers whose tokens an organization accepts.

Every organization has its resident key manager (Portcullis's own OAuth2 server, type
RESIDENT, made by `ensure_resident`): it cannot be deleted, and its type, endpoints and
token handling are Portcullis's (only its display name, description, enabled flag,
leeway and key-generation roles change). External ones (OIDC, KEYCLOAK, OKTA, WSO2_IS)
are configured by explicit fields, or from a discovery URL whose document fills the
fields left empty.

Secrets (introspection client secret, DCR initial access token) are write-only: stored
encrypted with the KEK, answered only as *_set flags.

Deleting a key manager that application keys or APIs still use is refused
(FAILED_PRECONDITION) rather than cascaded: deleting keys silently would cut off
applications, and an API naming a missing key manager would deny every token.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.empty_pb2 import Empty
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin_api import presets
from admin_api.access.caller import Caller
from admin_api.config import ServiceConfig
from admin_api.crypto.key_manager_secrets import key_manager_aad
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from admin_api.services import discovery, isolation, key_manager_rules, masks, paging, validation
from admin_api.store.unit_of_work import Store, Writer, new_id
from admin_api.views.key_managers import key_manager_pb
from portcullis.admin.v1 import key_managers_pb2

KmType = key_managers_pb2.KeyManager.Type

ENDPOINT_FIELDS = ("issuer", "jwks_uri", "token_endpoint", "authorization_endpoint", "revocation_endpoint",
                   "introspection_endpoint", "registration_endpoint", "userinfo_endpoint")
SECRET_FIELDS = ("introspection_client_secret", "registration_access_token")
MUTABLE = frozenset({
    "display_name", "description", "type", "enabled", "discovery_url", *ENDPOINT_FIELDS, "certificate_pem",
    "introspection_client_id", *SECRET_FIELDS, "token_handling", "claim_mappings", "allowed_algorithms",
    "audience", "leeway_seconds", "consumer_app_creation_enabled", "key_generation_allowed_roles",
    "key_generation_denied_roles",
})
IMMUTABLE = frozenset({"id", "organization_id", "name", "created_at", "updated_at",
                       "introspection_client_secret_set", "registration_access_token_set"})
RESIDENT_MUTABLE = frozenset({"display_name", "description", "enabled", "leeway_seconds",
                              "key_generation_allowed_roles", "key_generation_denied_roles"})
MAX_SECRET = 4096


def ensure_resident(writer: Writer, organization_id: str) -> models.KeyManager:
    """The organization's resident key manager, created when missing (idempotent)."""
    existing = resident_of(writer.session, organization_id)
    if existing is not None:
        return existing
    now = utcnow()
    row = models.KeyManager(
        id=new_id(), organization_id=organization_id, name=presets.RESIDENT_NAME,
        display_name=presets.RESIDENT_NAME, description="Portcullis's own OAuth2 authorization server",
        type=KmType.Name(KmType.RESIDENT), enabled=True, accepts_jwt=True, accepts_reference_tokens=True,
        token_format_pattern=presets.RESIDENT_TOKEN_FORMAT_PATTERN, allowed_algorithms=list(presets.DEFAULT_ALGORITHMS),
        leeway_seconds=presets.DEFAULT_LEEWAY_SECONDS, key_generation_allowed_roles=[],
        key_generation_denied_roles=[], created_at=now, updated_at=now, **_blank_external_fields())
    writer.upsert(row)
    return row


def resident_of(session: Session, organization_id: str) -> models.KeyManager | None:
    return session.scalars(select(models.KeyManager).where(
        models.KeyManager.organization_id == organization_id,
        models.KeyManager.type == KmType.Name(KmType.RESIDENT))).first()


def check_allowed_names(session: Session, organization_id: str, names: Iterable[str], field: str) -> None:
    """Every name an API allows is a key manager of its organization."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    known = set(session.scalars(select(models.KeyManager.name).where(
        models.KeyManager.organization_id == organization_id, models.KeyManager.name.in_(wanted))))
    missing = [name for name in wanted if name not in known]
    if missing:
        raise InvalidArgument(f"{field}: no key manager named {', '.join(repr(n) for n in missing)} in organization "
                              f"{organization_id!r}", field=field)


def create_key_manager(store: Store, request: key_managers_pb2.CreateKeyManagerRequest,
                       caller: Caller) -> key_managers_pb2.KeyManager:
    given = request.key_manager
    organization_id = isolation.organization(given.organization_id, caller)
    km_type = _external_type(given.type, "key_manager.type", default=KmType.OIDC)
    name = validation.name(given.name, "key_manager.name")
    now = utcnow()
    row = models.KeyManager(id=new_id(), organization_id=organization_id, name=name, type=KmType.Name(km_type),
                            created_at=now, updated_at=now, **_blank_external_fields())
    row.display_name, row.description, row.enabled = "", "", True
    row.accepts_jwt, row.accepts_reference_tokens, row.token_format_pattern = True, False, ""
    row.allowed_algorithms = list(presets.DEFAULT_ALGORITHMS)
    row.leeway_seconds = presets.DEFAULT_LEEWAY_SECONDS
    row.key_generation_allowed_roles, row.key_generation_denied_roles = [], []
    paths = [p for p in sorted(MUTABLE - {"type"}) if _given(given, p)]
    _store_secrets(row, _apply(row, given, paths, store.config, prefix="key_manager"), store.config)
    if row.discovery_url:
        _discover(row, store.config, "key_manager.discovery_url")
    key_manager_rules.check_cross_fields(row, "key_manager")
    with store.write() as writer:
        _check_unique(writer.session, row, store.config)
        writer.upsert(row)
        return key_manager_pb(row, store.config)


def get_key_manager(store: Store, request: key_managers_pb2.GetKeyManagerRequest,
                    caller: Caller) -> key_managers_pb2.KeyManager:
    with store.read() as session:
        return key_manager_pb(_get(session, request.id, caller), store.config)


def list_key_managers(store: Store, request: key_managers_pb2.ListKeyManagersRequest,
                      caller: Caller) -> key_managers_pb2.ListKeyManagersResponse:
    organization_id = isolation.organization(request.organization_id, caller)
    size = paging.page_size(request.page_size)
    statement = select(models.KeyManager).where(models.KeyManager.organization_id == organization_id)
    with store.read() as session:
        rows, token = paging.paginate(session, statement, models.KeyManager, size=size, token=request.page_token,
                                      filters=["key_managers", organization_id])
        return key_managers_pb2.ListKeyManagersResponse(
            key_managers=[key_manager_pb(row, store.config) for row in rows], next_page_token=token)


def update_key_manager(store: Store, request: key_managers_pb2.UpdateKeyManagerRequest,
                       caller: Caller) -> key_managers_pb2.KeyManager:
    paths = masks.paths(request.update_mask, mutable=MUTABLE, immutable=IMMUTABLE)
    given = request.key_manager
    with store.read() as session:
        current = _get(session, request.id, caller)
        is_resident = current.type == KmType.Name(KmType.RESIDENT)
    if is_resident:
        fixed = [p for p in paths if p not in RESIDENT_MUTABLE]
        if fixed:
            raise FailedPrecondition(
                f"update_mask: {', '.join(fixed)} of the resident key manager cannot be changed (Portcullis "
                f"manages them); only {', '.join(sorted(RESIDENT_MUTABLE))} can", field="update_mask")
    # Fetched before the write transaction: a slow provider must not hold the write lock.
    discovered = None
    if "discovery_url" in paths and given.discovery_url:
        validation.endpoint(given.discovery_url, "key_manager.discovery_url")
        discovered = discovery.fetch(given.discovery_url, expected_issuer=given.issuer if "issuer" in paths
                                     else current.issuer, timeout=store.config.http_timeout,
                                     field="key_manager.discovery_url")
    with store.write() as writer:
        row = _get(writer.session, request.id, caller)
        if "type" in paths:
            row.type = KmType.Name(_external_type(given.type, "key_manager.type"))
        secrets = _apply(row, given, [p for p in paths if p != "type"], store.config, prefix="key_manager")
        _store_secrets(row, secrets, store.config)
        if discovered is not None:
            _fill(row, discovered)
        key_manager_rules.check_cross_fields(row, "key_manager")
        _check_issuer_unique(writer.session, row, store.config)
        row.updated_at = utcnow()
        writer.upsert(row)
        return key_manager_pb(row, store.config)


def delete_key_manager(store: Store, request: key_managers_pb2.DeleteKeyManagerRequest, caller: Caller) -> Empty:
    with store.write() as writer:
        row = _get(writer.session, request.id, caller)
        if row.type == KmType.Name(KmType.RESIDENT):
            raise FailedPrecondition("the resident key manager cannot be deleted (disable it instead)", field="id")
        keys = writer.session.scalar(select(func.count()).select_from(models.ApplicationKey)
                                     .where(models.ApplicationKey.key_manager_id == row.id))
        if keys:
            raise FailedPrecondition(f"key manager {row.name!r} still has {keys} application key(s): delete them "
                                     "first (or disable the key manager)", field="id")
        users = [api.name for api in writer.session.scalars(select(models.Api).where(
            models.Api.organization_id == row.organization_id)) if row.name in _allowed_names(api)]
        if users:
            raise FailedPrecondition(f"key manager {row.name!r} is allowed by API(s) {', '.join(sorted(users))}: "
                                     "remove it from their security.oauth2.allowed_key_managers first", field="id")
        writer.delete(row)
    return Empty()


def _allowed_names(api: models.Api) -> list[str]:
    return list((api.security or {}).get("oauth2", {}).get("allowed_key_managers", []))


def _get(session: Session, key_manager_id: str, caller: Caller) -> models.KeyManager:
    return isolation.get(session, models.KeyManager, key_manager_id, caller, what="key manager")


def _blank_external_fields() -> dict[str, object]:
    return {"discovery_url": "", **{f: "" for f in ENDPOINT_FIELDS}, "certificate_pem": "",
            "introspection_client_id": "", "introspection_client_secret_encrypted": None,
            "registration_access_token_encrypted": None, "consumer_key_claim": "", "scopes_claim": "",
            "audience": "", "consumer_app_creation_enabled": False}


def _given(message: key_managers_pb2.KeyManager, path: str) -> bool:
    """On create, the fields the request sets (so the defaults stay for the others)."""
    if path in ("token_handling", "claim_mappings"):
        return message.HasField(path)
    value = getattr(message, path)
    return bool(len(value)) if not isinstance(value, (bool, int, str)) else bool(value)


def _external_type(value: int, field: str, default: int | None = None) -> int:
    if value == KmType.TYPE_UNSPECIFIED and default is not None:
        return default
    if value == KmType.RESIDENT:
        raise InvalidArgument(f"{field}: RESIDENT key managers are made by Portcullis (one per organization); "
                              "choose OIDC, KEYCLOAK, OKTA or WSO2_IS", field=field)
    if value not in presets.EXTERNAL_TYPES:
        raise InvalidArgument(f"{field} must be one of OIDC, KEYCLOAK, OKTA, WSO2_IS", field=field)
    return value


def _apply(row: models.KeyManager, given: key_managers_pb2.KeyManager, paths: list[str], config: ServiceConfig,
           *, prefix: str) -> dict[str, str]:
    """Copy the validated `paths` of `given` onto `row`; returns the secrets to store
    (field → value, "" to clear), written once the row's id and the KEK are at hand."""
    secrets: dict[str, str] = {}
    for path in paths:
        field = f"{prefix}.{path}"
        value = getattr(given, path)
        if path in ("display_name",):
            row.display_name = key_manager_rules.bounded_text(value, field, 200)
        elif path == "description":
            row.description = validation.description(value, field)
        elif path == "enabled":
            row.enabled = bool(value)
        elif path == "discovery_url" or path in ENDPOINT_FIELDS:
            setattr(row, path, validation.endpoint(value.strip(), field))
        elif path == "certificate_pem":
            row.certificate_pem = key_manager_rules.certificate(value, field)
        elif path == "introspection_client_id":
            row.introspection_client_id = key_manager_rules.bounded_text(value, field, 500)
        elif path in SECRET_FIELDS:
            if len(value) > MAX_SECRET or any(c.isspace() for c in value):
                raise InvalidArgument(f"{field} must be at most {MAX_SECRET} characters without spaces", field=field)
            secrets[path] = value
        elif path == "token_handling":
            row.accepts_jwt = value.accepts_jwt
            row.accepts_reference_tokens = value.accepts_reference_tokens
            row.token_format_pattern = key_manager_rules.pattern(value.token_format_pattern,
                                                                 f"{field}.token_format_pattern")
        elif path == "claim_mappings":
            row.consumer_key_claim = key_manager_rules.claim(value.consumer_key_claim, f"{field}.consumer_key_claim")
            row.scopes_claim = key_manager_rules.claim(value.scopes_claim, f"{field}.scopes_claim")
        elif path == "allowed_algorithms":
            row.allowed_algorithms = key_manager_rules.algorithms(list(value), field)
        elif path == "audience":
            row.audience = key_manager_rules.bounded_text(value, field, 2000)
        elif path == "leeway_seconds":
            row.leeway_seconds = key_manager_rules.leeway(value, field)
        elif path == "consumer_app_creation_enabled":
            row.consumer_app_creation_enabled = bool(value)
        elif path in ("key_generation_allowed_roles", "key_generation_denied_roles"):
            setattr(row, path, validation.roles(list(value), field))
    return secrets


def _store_secrets(row: models.KeyManager, secrets: dict[str, str], config: ServiceConfig) -> None:
    for path, value in secrets.items():
        ciphertext = config.require_kek().encrypt(value.encode(), key_manager_aad(row.id, path)) if value else None
        setattr(row, path + "_encrypted", ciphertext)


def _discover(row: models.KeyManager, config: ServiceConfig, field: str) -> None:
    _fill(row, discovery.fetch(row.discovery_url, expected_issuer=row.issuer, timeout=config.http_timeout,
                               field=field))


def _fill(row: models.KeyManager, found: discovery.Discovered) -> None:
    """Fields left empty take the discovered values (explicit fields win)."""
    if not row.issuer:
        row.issuer = found.issuer
    for target, url in found.endpoints.items():
        if not getattr(row, target):
            setattr(row, target, validation.endpoint(url, f"discovery document {target}"))


def _check_unique(session: Session, row: models.KeyManager, config: ServiceConfig) -> None:
    with session.no_autoflush:
        twin = session.scalars(select(models.KeyManager).where(
            models.KeyManager.organization_id == row.organization_id, models.KeyManager.name == row.name,
            models.KeyManager.id != row.id)).first()
    if twin is not None:
        raise AlreadyExists(f"a key manager named {row.name!r} already exists (id {twin.id!r})",
                            field="key_manager.name")
    _check_issuer_unique(session, row, config)


def _check_issuer_unique(session: Session, row: models.KeyManager, config: ServiceConfig) -> None:
    """A JWT's `iss` selects the key manager: two in one organization must not share it."""
    if row.type == KmType.Name(KmType.RESIDENT):
        return
    if row.issuer.rstrip("/") == config.public_url.rstrip("/"):
        raise AlreadyExists(f"issuer {row.issuer!r} is the resident key manager's", field="key_manager.issuer")
    with session.no_autoflush:
        clash = session.scalars(select(models.KeyManager).where(
            models.KeyManager.organization_id == row.organization_id, models.KeyManager.issuer == row.issuer,
            models.KeyManager.id != row.id)).first()
    if clash is not None:
        raise AlreadyExists(f"key manager {clash.name!r} already has issuer {row.issuer!r}: a token's issuer must "
                            "select one key manager", field="key_manager.issuer")


def get_for_keys(session: Session, organization_id: str, key_manager_id: str, caller: Caller,
                 field: str) -> models.KeyManager:
    """The key manager keys are generated or mapped with: the given one, or the resident."""
    if key_manager_id:
        return isolation.get(session, models.KeyManager, key_manager_id, caller, field=field, what="key manager")
    row = resident_of(session, organization_id)
    if row is None:
        raise NotFound(f"organization {organization_id!r} has no resident key manager", field=field)
    return row
