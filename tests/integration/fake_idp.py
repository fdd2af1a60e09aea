"""An external OpenID Connect provider for the tests, speaking the real protocols over
HTTP on 127.0.0.1: discovery, JWKS, a client_credentials token endpoint (HTTP Basic),
RFC 7662 introspection, RFC 7009 revocation and RFC 7591 Dynamic Client Registration.

Like Okta, its JWT access tokens carry the consumer key in `cid` and the scopes as a
`scp` array (both configurable). Tests also mint arbitrary tokens with its keys
(expired, future, wrong algorithm, unknown kid, tampered) through `mint`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

# The algorithms of the keys it publishes; `mint` can sign with any other (PS256, HS256).
Algorithm = Literal["RS256", "ES256"]
TokenFormat = Literal["jwt", "opaque"]
# How introspection misbehaves when a test asks it to.
IntrospectionMode = Literal["normal", "error", "garbage", "slow"]

OPAQUE_PREFIX = "fidp_"
# What the key manager's token_format_pattern should be for this provider's opaque tokens.
OPAQUE_TOKEN_PATTERN = r"^fidp_[0-9a-f]{40}$"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: Algorithm
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, alg: Algorithm = "RS256", kid: str | None = None) -> "SigningKey":
        private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg, private)

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        jwk: dict[str, Any]
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass
class Client:
    client_id: str
    client_secret: str
    token_format: TokenFormat = "jwt"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class OpaqueToken:
    client_id: str
    scopes: list[str]
    issued_at: int
    expires_at: int
    subject: str
    revoked: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]   # lower-case names
    body: Any                 # parsed JSON, or None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def tamper(token: str) -> str:
    """The same JWT with a different (well-formed) signature."""
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return ".".join((header, payload, _b64url(bytes(raw))))


def unsigned(claims: dict[str, Any]) -> str:
    """An `alg: none` JWT: must never be accepted."""
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}."


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class FakeIdp:
    """Start with `with FakeIdp() as idp:` (or start()/stop()). Thread-safe enough for
    a test: state changes happen under one lock."""

    def __init__(
        self,
        *,
        consumer_key_claim: str = "cid",
        scopes_claim: str = "scp",
        scopes_as_array: bool = True,
        token_lifetime: int = 3600,
    ) -> None:
        self.consumer_key_claim = consumer_key_claim
        self.scopes_claim = scopes_claim
        self.scopes_as_array = scopes_as_array
        self.token_lifetime = token_lifetime
        self.introspection_client = Client("portcullis-introspector", secrets.token_urlsafe(24))
        self.initial_access_token = secrets.token_urlsafe(24)
        self.introspection_mode: IntrospectionMode = "normal"
        self.slow_seconds = 10.0
        self.keys: list[SigningKey] = [SigningKey.generate("RS256"), SigningKey.generate("ES256")]
        self.clients: dict[str, Client] = {}
        self.opaque_tokens: dict[str, OpaqueToken] = {}
        self.registrations: list[RecordedRequest] = []
        self.introspections: list[RecordedRequest] = []
        self.jwks_fetches = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> "FakeIdp":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        # A short poll interval: stop() waits for the loop to notice, at most this long.
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-idp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends a "slow" introspection early
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeIdp":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeIdp not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def discovery_url(self) -> str:
        return self.base_url + "/.well-known/openid-configuration"

    def discovery(self) -> dict[str, Any]:
        base = self.base_url
        return {
            "issuer": base,
            "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/token",
            "jwks_uri": base + "/jwks",
            "introspection_endpoint": base + "/introspect",
            "revocation_endpoint": base + "/revoke",
            "registration_endpoint": base + "/register",
            "userinfo_endpoint": base + "/userinfo",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "id_token_signing_alg_values_supported": sorted({key.alg for key in self.keys}),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        }

    # --- keys --------------------------------------------------------------------------
    def key(self, alg: Algorithm = "RS256") -> SigningKey:
        """The newest published key of that algorithm."""
        with self._lock:
            for candidate in reversed(self.keys):
                if candidate.alg == alg:
                    return candidate
        raise LookupError(f"no published {alg} key")

    def add_key(self, alg: Algorithm = "RS256", kid: str | None = None) -> SigningKey:
        new = SigningKey.generate(alg, kid)
        with self._lock:
            self.keys.append(new)
        return new

    def remove_key(self, kid: str) -> None:
        with self._lock:
            self.keys = [key for key in self.keys if key.kid != kid]

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.public_jwk() for key in self.keys]}

    # --- clients and tokens -------------------------------------------------------------
    def add_client(self, client_id: str | None = None, *, token_format: TokenFormat = "jwt") -> Client:
        client = Client(client_id or f"fidp-client-{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(24), token_format)
        with self._lock:
            self.clients[client.client_id] = client
        return client

    def claims(self, client_id: str, scopes: list[str] | None = None, *, lifetime: int | None = None,
               now: int | None = None, **extra: Any) -> dict[str, Any]:
        """The claims of an access token this provider would issue to `client_id`."""
        issued = int(time.time()) if now is None else now
        scope_list = list(scopes or [])
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": client_id,
            "aud": "api://default",
            self.consumer_key_claim: client_id,
            self.scopes_claim: scope_list if self.scopes_as_array else " ".join(scope_list),
            "iat": issued,
            "nbf": issued,
            "exp": issued + (self.token_lifetime if lifetime is None else lifetime),
            "jti": uuid.uuid4().hex,
        }
        claims.update(extra)
        return claims

    def mint(self, claims: dict[str, Any], *, key: SigningKey | None = None, alg: str | None = None,
             kid: str | None = None, typ: str = "JWT", hmac_secret: bytes | None = None) -> str:
        """A JWT with exactly these claims. `key` defaults to the published RS256 key;
        `alg` overrides its algorithm (e.g. PS256 with an RSA key); `kid` overrides the
        header's kid; `hmac_secret` signs HS256 instead (never acceptable)."""
        if hmac_secret is not None:
            return jwt.encode(claims, hmac_secret, algorithm=alg or "HS256", headers={"kid": kid or "hmac", "typ": typ})
        signer = key or self.key("RS256")
        headers = {"kid": kid or signer.kid, "typ": typ}
        return jwt.encode(claims, signer.private_key, algorithm=alg or signer.alg, headers=headers)

    def access_token(self, client_id: str, scopes: list[str] | None = None, *, alg: Algorithm = "RS256",
                     lifetime: int | None = None, **extra: Any) -> str:
        """A valid JWT access token, as the token endpoint issues it."""
        return self.mint(self.claims(client_id, scopes, lifetime=lifetime, **extra), key=self.key(alg))

    def opaque_token(self, client_id: str, scopes: list[str] | None = None, *, lifetime: int | None = None) -> str:
        token = OPAQUE_PREFIX + secrets.token_hex(20)
        issued = int(time.time())
        record = OpaqueToken(client_id, list(scopes or []), issued,
                             issued + (self.token_lifetime if lifetime is None else lifetime), client_id)
        with self._lock:
            self.opaque_tokens[token] = record
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            if token in self.opaque_tokens:
                self.opaque_tokens[token].revoked = True

    def introspect(self, token: str) -> dict[str, Any]:
        """The RFC 7662 answer: the standard members, plus the mapped claims (`cid`,
        `scp`) as Okta-like providers add them."""
        with self._lock:
            record = self.opaque_tokens.get(token)
        if record is None or record.revoked or record.expires_at <= time.time():
            return {"active": False}
        return {
            "active": True,
            "token_type": "Bearer",
            "client_id": record.client_id,
            "scope": " ".join(record.scopes),
            "sub": record.subject,
            "iss": self.issuer,
            "iat": record.issued_at,
            "exp": record.expires_at,
            self.consumer_key_claim: record.client_id,
            self.scopes_claim: record.scopes if self.scopes_as_array else " ".join(record.scopes),
        }

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        client = self.add_client()
        client.metadata = metadata
        return {
            **metadata,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "client_id_issued_at": int(time.time()),
            "client_secret_expires_at": 0,
        }

    def issue(self, client: Client, scopes: list[str]) -> dict[str, Any]:
        token = (self.opaque_token(client.client_id, scopes) if client.token_format == "opaque"
                 else self.access_token(client.client_id, scopes))
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime, "scope": " ".join(scopes)}

    def authenticate_client(self, authorization: str | None) -> Client | None:
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return None
        with self._lock:
            client = self.clients.get(credentials[0])
        if client is None or not secrets.compare_digest(client.client_secret, credentials[1]):
            return None
        return client


def _handler_for(idp: FakeIdp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not access logs

        # --- plumbing -----------------------------------------------------------------
        def _body(self) -> bytes:
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _form(self, body: bytes) -> dict[str, str]:
            parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            return {name: values[0] for name, values in parsed.items()}

        def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None,
                  headers: dict[str, str] | None = None) -> None:
            data = raw if raw is not None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("cache-control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _oauth_error(self, status: int, error: str, *, basic_challenge: bool = False) -> None:
            headers = {"www-authenticate": 'Basic realm="fake-idp"'} if basic_challenge else None
            self._send(status, {"error": error}, headers=headers)

        def _record(self, body: bytes) -> RecordedRequest:
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            return RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, parsed)

        # --- routes -------------------------------------------------------------------
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/.well-known/openid-configuration":
                self._send(200, idp.discovery())
            elif path == "/jwks":
                with idp._lock:
                    idp.jwks_fetches += 1
                self._send(200, idp.jwks())
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            body = self._body()
            if path == "/token":
                self._token(self._form(body))
            elif path == "/introspect":
                self._introspect(body)
            elif path == "/revoke":
                self._revoke(self._form(body))
            elif path == "/register":
                self._register(body)
            else:
                self._send(404, {"error": "not_found"})

        def _token(self, form: dict[str, str]) -> None:
            client = idp.authenticate_client(self.headers.get("authorization"))
            if client is None:
                self._oauth_error(401, "invalid_client", basic_challenge=True)
            elif form.get("grant_type") != "client_credentials":
                self._oauth_error(400, "unsupported_grant_type")
            else:
                self._send(200, idp.issue(client, form.get("scope", "").split()))

        def _introspect(self, body: bytes) -> None:
            with idp._lock:
                idp.introspections.append(self._record(b""))
            caller = _basic_credentials(self.headers.get("authorization"))
            expected = idp.introspection_client
            if caller is None or caller[0] != expected.client_id or not secrets.compare_digest(caller[1], expected.client_secret):
                self._oauth_error(401, "invalid_client", basic_challenge=True)
                return
            mode = idp.introspection_mode
            if mode == "error":
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "server_error"})
            elif mode == "garbage":
                self._send(200, raw=b"<html>this is not JSON")
            else:
                if mode == "slow":
                    idp._stopping.wait(idp.slow_seconds)
                token = self._form(body).get("token", "")
                self._send(200, idp.introspect(token))

        def _revoke(self, form: dict[str, str]) -> None:
            if idp.authenticate_client(self.headers.get("authorization")) is None:
                self._oauth_error(401, "invalid_client", basic_challenge=True)
                return
            idp.revoke(form.get("token", ""))
            self._send(200, {})  # RFC 7009: 200 whether or not the token was known

        def _register(self, body: bytes) -> None:
            record = self._record(body)
            with idp._lock:
                idp.registrations.append(record)
            authorization = self.headers.get("authorization") or ""
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), idp.initial_access_token):
                self._send(401, {"error": "invalid_token"}, headers={"www-authenticate": 'Bearer error="invalid_token"'})
            elif not isinstance(record.body, dict):
                self._send(400, {"error": "invalid_client_metadata", "error_description": "a JSON object is required"})
            else:
                self._send(201, idp.register(record.body))

    return Handler
