"""OAuth2 test kit: signing keys, token minting, key manager / application key records,
and the JWKS the tests' fake IdP serves to authz_server's unit tests."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from portcullis.admin.v1 import admin_pb2, key_managers_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.key_managers.introspection import IntrospectionClient
from authz_server.key_managers.jwks_cache import JwksCache
from authz_server.key_managers.services import TokenServices

from .factories import PIZZA_BASE, make_application, make_subscription

KM = key_managers_pb2.KeyManager
ISSUER = "https://idp.example.test"
RESIDENT_ISSUER = "http://127.0.0.1:8081"
CLIENT = "pcc_client-one"
SANDBOX_CLIENT = "pcc_client-sandbox"

# Generated once per test run: RSA generation is the slow part.
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key, kid: str, alg: str | None = None) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(private_key.public_key()))
    jwk["kid"] = kid
    jwk["use"] = "sig"
    if alg:
        jwk["alg"] = alg
    return jwk


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "alice", "azp": CLIENT, "scope": "menu:read", "iat": now, "nbf": now,
            "exp": now + 600, "jti": "jti-1"}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(payload: dict[str, Any] | None = None, *, key=None, alg: str = "RS256", kid: str | None = "rsa-1",
         headers: dict[str, Any] | None = None) -> str:
    extra = {"typ": "at+jwt"}
    if kid is not None:
        extra["kid"] = kid
    extra.update(headers or {})
    return jwt.encode(payload if payload is not None else claims(), key or RSA_KEY, algorithm=alg, headers=extra)


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join((b64(json.dumps(header)), b64(json.dumps(payload)), b64(signature)))


# --- records ---------------------------------------------------------------------------


def make_key_manager(
    id: str = "km-idp",
    *,
    name: str = "IdP",
    organization_id: str = "default",
    issuer: str = ISSUER,
    jwks_uri: str = "",
    certificate_pem: str = "",
    enabled: bool = True,
    kind: int = KM.OIDC,
    accepts_jwt: bool = True,
    accepts_reference: bool = False,
    pattern: str = "",
    introspection_endpoint: str = "",
    client_id: str = "",
    client_secret: str = "",
    with_sync_token: bool = False,
    consumer_key_claims: tuple[str, ...] = ("azp", "client_id"),
    scopes_claims: tuple[str, ...] = ("scope", "scp"),
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256"),
    audience: str = "",
    leeway: int = 30,
) -> sync_pb2.KeyManagerRecord:
    return sync_pb2.KeyManagerRecord(
        id=id, organization_id=organization_id, name=name, type=kind, enabled=enabled, issuer=issuer,
        jwks_uri=jwks_uri, certificate_pem=certificate_pem, introspection_endpoint=introspection_endpoint,
        introspection_client_id=client_id, introspection_client_secret=client_secret,
        introspection_with_sync_token=with_sync_token,
        token_handling=key_managers_pb2.TokenHandling(
            accepts_jwt=accepts_jwt, accepts_reference_tokens=accepts_reference, token_format_pattern=pattern
        ),
        consumer_key_claims=list(consumer_key_claims), scopes_claims=list(scopes_claims),
        allowed_algorithms=list(algorithms), audience=audience, leeway_seconds=leeway,
    )


def make_application_key(
    id: str = "ak-1", consumer_key: str = CLIENT, *, key_manager_id: str = "km-idp", application_id: str = "app-1",
    environment: int = admin_pb2.PRODUCTION, organization_id: str = "default",
) -> sync_pb2.ApplicationKeyRecord:
    return sync_pb2.ApplicationKeyRecord(
        id=id, organization_id=organization_id, application_id=application_id, environment=environment,
        key_manager_id=key_manager_id, consumer_key=consumer_key,
    )


def oauth_api(
    id: str = "api-pizza", base_path: str = PIZZA_BASE, *, allowed: tuple[str, ...] = (), organization_id: str = "default",
    api_key: bool = True,
) -> admin_pb2.Api:
    security = admin_pb2.SecuritySchemes(oauth2=admin_pb2.OAuth2Scheme(allowed_key_managers=list(allowed)))
    if api_key:
        security.api_key.CopyFrom(admin_pb2.ApiKeyScheme())
    return admin_pb2.Api(
        id=id, organization_id=organization_id, name=id, version="1.0.0", context=base_path, base_path=base_path,
        production_endpoint="http://127.0.0.1:8091", sandbox_endpoint="http://127.0.0.1:8092",
        lifecycle_state=admin_pb2.Api.PUBLISHED, security=security,
        resources=[
            admin_pb2.Resource(method="GET", path="/menu"),
            admin_pb2.Resource(method="GET", path="/orders", scopes=["orders:read", "orders:admin"]),
            admin_pb2.Resource(method="GET", path="/open", open=True),
        ],
    )


def oauth_world(*key_managers, extra=()) -> list:
    return [
        admin_pb2.Organization(id="default", name="Default"),
        oauth_api(),
        make_application(),
        make_subscription(),
        *(key_managers or (make_key_manager(),)),
        make_application_key(),
        make_application_key("ak-sandbox", SANDBOX_CLIENT, environment=admin_pb2.SANDBOX),
        *extra,
    ]


# --- the identity provider ----------------------------------------------------------------
# The tests' one fake IdP (tests/fake_idp.py) serves the kit's keys: the `provider`
# fixture (tests/conftest.py) resets it to this JWKS before each test.

KIT_JWKS = {"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")]}


def services(*, timeout: float = 2.0, min_refresh: float = 10.0, sync_token: str | None = "pcs_sync") -> TokenServices:
    return TokenServices(
        jwks=JwksCache(timeout=timeout, min_refresh_seconds=min_refresh),
        introspection=IntrospectionClient(sync_token=lambda: sync_token, timeout=timeout),
    )
