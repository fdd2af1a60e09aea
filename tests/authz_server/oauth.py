"""OAuth2 test kit: signing keys, token minting, key manager / application key records,
and one in-test HTTP server on 127.0.0.1:0 that serves a JWKS and RFC 7662 introspection
and counts every request."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

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


# --- the in-test identity provider -------------------------------------------------------


@dataclass
class ProviderState:
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    jwks_status: int = 200
    answers: dict[str, Any] = field(default_factory=dict)  # token → introspection JSON (or raw bytes)
    introspect_status: int = 200
    stall: threading.Event | None = None          # set: introspection waits on it (a hung provider)
    jwks_fetches: int = 0
    introspections: int = 0
    authorizations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    state: ProviderState

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout tests): nothing to answer

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        if self.path.split("?")[0] != "/jwks":
            return self._answer(404, b"{}")
        with state.lock:
            state.jwks_fetches += 1
        self._answer(state.jwks_status, json.dumps(state.jwks).encode())

    def do_POST(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        with state.lock:
            state.introspections += 1
            state.authorizations.append(self.headers.get("authorization", ""))
        if state.stall is not None:
            state.stall.wait(10)
        token = (form.get("token") or [""])[0]
        answer = state.answers.get(token, {"active": False})
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self._answer(state.introspect_status, body)


class Provider:
    def __init__(self) -> None:
        self.state = ProviderState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.state = self.state  # type: ignore[attr-defined]
        # A short poll interval: shutdown() waits for one poll, and every test starts one.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def reset(self, state: ProviderState) -> None:
        self.state = state
        self.server.state = state  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def jwks_uri(self) -> str:
        return self.url + "/jwks"

    @property
    def introspection_endpoint(self) -> str:
        return self.url + "/introspect"

    def close(self) -> None:
        if self.state.stall is not None:
            self.state.stall.set()
        self.server.shutdown()
        self.server.server_close()


def services(*, timeout: float = 2.0, min_refresh: float = 10.0, sync_token: str | None = "pcs_sync") -> TokenServices:
    return TokenServices(
        jwks=JwksCache(timeout=timeout, min_refresh_seconds=min_refresh),
        introspection=IntrospectionClient(sync_token=lambda: sync_token, timeout=timeout),
    )
