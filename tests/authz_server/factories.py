"""Builders for admin/sync records and request contexts used across authz_server tests."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.context import RequestContext
from authz_server.index.policy_index import PolicyIndex
from authz_server.pipeline.client_ip import resolve_client_ip
from authz_server.pipeline.paths import parse_path, parse_query, split_target
from portcullis_shared.credentials import credential_hash

Api = admin_pb2.Api
Subscription = admin_pb2.Subscription
PRODUCTION = admin_pb2.PRODUCTION
SANDBOX = admin_pb2.SANDBOX

NOW = 1_800_000_000.0
PIZZA_BASE = "/pizzashack/1.0.0"
PROD_KEY = "pck_production-key-value"
SANDBOX_KEY = "pck_sandbox-key-value"


def make_api(
    id: str = "api-pizza",
    base_path: str = PIZZA_BASE,
    *,
    state: int = Api.PUBLISHED,
    resources: Sequence[tuple[str, str] | tuple[str, str, bool]] = (("GET", "/menu"), ("*", "/echo/*"), ("GET", "/open", True)),
    security: admin_pb2.SecuritySchemes | None = None,
    subscription_less: bool = False,
    production: str = "http://127.0.0.1:8091",
    sandbox: str = "http://127.0.0.1:8092",
    organization_id: str = "default",
) -> admin_pb2.Api:
    api = admin_pb2.Api(
        id=id,
        organization_id=organization_id,
        name=id,
        version="1.0.0",
        context=base_path,
        base_path=base_path,
        production_endpoint=production,
        sandbox_endpoint=sandbox,
        subscription_less=subscription_less,
        lifecycle_state=state,
        resources=[
            admin_pb2.Resource(method=r[0], path=r[1], open=bool(r[2]) if len(r) > 2 else False) for r in resources
        ],
    )
    if security is not None:
        api.security.CopyFrom(security)
    return api


def make_key(
    id: str = "key-prod",
    value: str = PROD_KEY,
    *,
    api_id: str = "api-pizza",
    environment: int = PRODUCTION,
    application_id: str = "app-1",
    allowed_ips: Iterable[str] = (),
    allowed_referrers: Iterable[str] = (),
    expires_at: int = 0,
    revoked: bool = False,
    organization_id: str = "default",
) -> sync_pb2.ApiKeyRecord:
    return sync_pb2.ApiKeyRecord(
        id=id,
        organization_id=organization_id,
        api_id=api_id,
        key_hash=credential_hash(value),
        environment=environment,
        application_id=application_id,
        allowed_ips=list(allowed_ips),
        allowed_referrers=list(allowed_referrers),
        expires_at_unix=expires_at,
        revoked=revoked,
    )


def make_application(id: str = "app-1", organization_id: str = "default") -> admin_pb2.Application:
    return admin_pb2.Application(id=id, organization_id=organization_id, name=id, owner="alice", throttling_tier="Unlimited")


def make_subscription(
    id: str = "sub-1", application_id: str = "app-1", api_id: str = "api-pizza", status: int = Subscription.ACTIVE
) -> admin_pb2.Subscription:
    return admin_pb2.Subscription(
        id=id, organization_id="default", application_id=application_id, api_id=api_id, tier="Unlimited", status=status
    )


def entity(record) -> sync_pb2.PolicyEntity:
    field = {
        "Organization": "organization",
        "Api": "api",
        "Application": "application",
        "Subscription": "subscription",
        "ApiKeyRecord": "api_key",
        "KeyManagerRecord": "key_manager",
        "ApplicationKeyRecord": "application_key",
        "RevokedTokenRecord": "revoked_token",
        "ThrottlingPolicy": "throttling_policy",
    }[type(record).DESCRIPTOR.name]
    return sync_pb2.PolicyEntity(**{field: record})


def pizza_world() -> list:
    """The PizzaShack scenario: API, production and sandbox keys, app, active subscription."""
    return [
        admin_pb2.Organization(id="default", name="Default"),
        make_api(),
        make_application(),
        make_subscription(),
        make_key(),
        make_key("key-sandbox", SANDBOX_KEY, environment=SANDBOX),
    ]


def index_of(*records, revision: int = 1) -> PolicyIndex:
    return PolicyIndex.from_snapshot([entity(r) for r in records], revision)


def make_request(
    target: str = PIZZA_BASE + "/menu",
    *,
    method: str = "GET",
    headers: Mapping[str, str | Sequence[str]] | None = None,
    peer: str = "203.0.113.7",
    trusted_hops: int = 0,
) -> RequestContext:
    normalized = {}
    for name, value in (headers or {}).items():
        normalized[name.lower()] = (value,) if isinstance(value, str) else tuple(value)
    raw_path, raw_query = split_target(target)
    return RequestContext(
        method=method,
        raw_path=raw_path,
        segments=parse_path(raw_path),
        query=parse_query(raw_query),
        headers=normalized,
        peer_address=peer,
        client_ip=resolve_client_ip(peer, normalized.get("x-forwarded-for", ()), trusted_hops),
    )
