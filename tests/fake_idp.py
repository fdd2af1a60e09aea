"""The one external OpenID Connect provider of the tests (unit, hostile and integration),
speaking the real protocols over HTTP on 127.0.0.1: discovery, JWKS, a client_credentials
token endpoint (HTTP Basic), RFC 7662 introspection, RFC 7009 revocation, RFC 7591
Dynamic Client Registration and RFC 7592 client configuration.

Over 400 lines: one server and its protocols; splitting it would split one fake.

Like Okta, its JWT access tokens carry the consumer key in `cid` and the scopes as a
`scp` array (both configurable). Tests also mint arbitrary tokens with its keys
(expired, future, wrong algorithm, unknown kid, tampered) through `mint`, and script
how it misbehaves (the knobs `reset()` puts back: a JWKS document or status of their
own, introspection answers per token, a failing or hung introspection, a discovery
document for another issuer, a refused registration). It records what it was asked.
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
    client_secret: str           # "" for a public client
    token_format: TokenFormat = "jwt"
    metadata: dict[str, Any] = field(default_factory=dict)
    registration_access_token: str = ""    # RFC 7592; "" for a client not registered over HTTP
    issued_at: int = field(default_factory=lambda: int(time.time()))


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
    method: str = "POST"


# RFC 7592 §2.2: members only the server sets; a client's update must not carry them.
SERVER_MEMBERS = ("registration_access_token", "registration_client_uri", "client_secret_expires_at",
                  "client_id_issued_at")


def metadata_error(metadata: dict[str, Any]) -> tuple[str, str] | None:
    """RFC 7591 §2 read strictly, as a provider that follows it does: omitted
    `response_types` means ["code"] and omitted `grant_types` ["authorization_code"]; the
    code response type needs `redirect_uris`; the grant and the response type go together."""
    response_types = metadata.get("response_types", ["code"])
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(response_types, list) or not isinstance(grant_types, list):
        return "invalid_client_metadata", "grant_types and response_types are arrays"
    if ("code" in response_types) != ("authorization_code" in grant_types):
        return "invalid_client_metadata", "the code response type goes with the authorization_code grant (RFC 7591 §2.1)"
    redirect_uris = metadata.get("redirect_uris")
    if "code" in response_types and (not isinstance(redirect_uris, list) or not redirect_uris):
        return "invalid_redirect_uri", "redirect_uris is required for the code response type"
    return None


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
        self.keys: list[SigningKey] = [SigningKey.generate("RS256"), SigningKey.generate("ES256")]
        self.clients: dict[str, Client] = {}
        self.opaque_tokens: dict[str, OpaqueToken] = {}
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self, **script: Any) -> "FakeIdp":
        """Back to a well-behaved provider with nothing recorded, then `script` (any of
        the attributes below). Keys and clients stay."""
        if getattr(self, "stall", None) is not None:
            self.stall.set()  # a test that left introspection hung must not hang the next
        # How it answers (a test's script).
        self.jwks_document: dict[str, Any] | None = None   # None: the JWKS of `keys`
        self.jwks_status = 200
        self.answers: dict[str, Any] = {}   # token -> introspection JSON (or raw bytes), before issued tokens
        self.introspect_status = 200
        self.introspection_mode: IntrospectionMode = "normal"
        self.slow_seconds = 10.0
        self.stall: threading.Event | None = None   # set: introspection waits on it (a hung provider)
        # RFC 7662 leaves the caller's authentication to the server: this one asks for the
        # introspection client's HTTP Basic credentials unless told to answer anyone.
        self.verify_introspection_caller = True
        self.discovery_status = 200
        self.issuer_override: str | None = None     # discovery names another issuer
        self.registration_status = 201              # else RFC 7591 invalid_client_metadata
        self.configuration_status: int | None = None   # RFC 7592 calls answer this (with an error body)
        self.rotate_on_update = False   # RFC 7592 §2.2 allows a new registration access token per update
        # What it saw.
        self.registrations: list[RecordedRequest] = []
        self.configurations: list[RecordedRequest] = []   # RFC 7592 GET, PUT and DELETE
        self.introspections: list[RecordedRequest] = []
        self.jwks_fetches = 0
        for name, value in script.items():
            if not hasattr(self, name):
                raise AttributeError(f"FakeIdp has no knob {name!r}")
            setattr(self, name, value)
        return self

    @property
    def introspection_count(self) -> int:
        return len(self.introspections)

    @property
    def authorizations(self) -> list[str]:
        """The authorization header of every introspection call, in order ("" if none)."""
        return [request.headers.get("authorization", "") for request in self.introspections]

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
        if self.stall is not None:
            self.stall.set()
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
    def jwks_uri(self) -> str:
        return self.base_url + "/jwks"

    @property
    def introspection_endpoint(self) -> str:
        return self.base_url + "/introspect"

    @property
    def discovery_url(self) -> str:
        return self.base_url + "/.well-known/openid-configuration"

    def discovery(self) -> dict[str, Any]:
        base = self.base_url
        return {
            "issuer": self.issuer_override if self.issuer_override is not None else base,
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
        with self.lock:
            for candidate in reversed(self.keys):
                if candidate.alg == alg:
                    return candidate
        raise LookupError(f"no published {alg} key")

    def add_key(self, alg: Algorithm = "RS256", kid: str | None = None) -> SigningKey:
        new = SigningKey.generate(alg, kid)
        with self.lock:
            self.keys.append(new)
        return new

    def remove_key(self, kid: str) -> None:
        with self.lock:
            self.keys = [key for key in self.keys if key.kid != kid]

    def jwks(self) -> dict[str, Any]:
        with self.lock:
            if self.jwks_document is not None:
                return self.jwks_document
            return {"keys": [key.public_jwk() for key in self.keys]}

    # --- clients and tokens -------------------------------------------------------------
    def add_client(self, client_id: str | None = None, *, token_format: TokenFormat = "jwt") -> Client:
        client = Client(client_id or f"fidp-client-{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(24), token_format)
        with self.lock:
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
        with self.lock:
            self.opaque_tokens[token] = record
        return token

    def revoke(self, token: str) -> None:
        with self.lock:
            if token in self.opaque_tokens:
                self.opaque_tokens[token].revoked = True

    def introspect(self, token: str) -> Any:
        """The RFC 7662 answer: a scripted one (`answers`), else for an issued token the
        standard members, plus the mapped claims (`cid`, `scp`) as Okta-like providers
        add them."""
        with self.lock:
            if token in self.answers:
                return self.answers[token]
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
        """RFC 7591 §3.2.1: the client's information response. A public client
        (`token_endpoint_auth_method: none`) gets no secret; every client gets its RFC 7592
        configuration endpoint and the token that reads, updates or deletes it there."""
        client = self.add_client()
        client.metadata = dict(metadata)
        client.registration_access_token = secrets.token_urlsafe(24)
        if metadata.get("token_endpoint_auth_method") == "none":
            client.client_secret = ""
        return self.client_information(client)

    def client_information(self, client: Client) -> dict[str, Any]:
        answer = {**client.metadata, "client_id": client.client_id, "client_id_issued_at": client.issued_at,
                  "registration_client_uri": f"{self.base_url}/register/{client.client_id}",
                  "registration_access_token": client.registration_access_token}
        if client.client_secret:
            answer.update(client_secret=client.client_secret, client_secret_expires_at=0)
        return answer

    def configured_client(self, client_id: str, authorization: str | None) -> Client | None:
        """The client whose RFC 7592 registration access token `authorization` bears."""
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            client = self.clients.get(client_id)
        if client is None or scheme.lower() != "bearer" or not client.registration_access_token or \
                not secrets.compare_digest(token.strip(), client.registration_access_token):
            return None
        return client

    def issue(self, client: Client, scopes: list[str]) -> dict[str, Any]:
        token = (self.opaque_token(client.client_id, scopes) if client.token_format == "opaque"
                 else self.access_token(client.client_id, scopes))
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime, "scope": " ".join(scopes)}

    def authenticate_client(self, authorization: str | None) -> Client | None:
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return None
        with self.lock:
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
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("cache-control", "no-store")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout tests): nothing to answer

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
                self._send(idp.discovery_status, idp.discovery())
            elif path == "/jwks":
                with idp.lock:
                    idp.jwks_fetches += 1
                self._send(idp.jwks_status, idp.jwks())
            elif path.startswith("/register/"):
                self._client_configuration("GET", path.removeprefix("/register/"), b"")
            else:
                self._send(404, {"error": "not_found"})

        def do_PUT(self) -> None:
            path = self.path.split("?", 1)[0]
            body = self._body()
            if path.startswith("/register/"):
                self._client_configuration("PUT", path.removeprefix("/register/"), body)
            else:
                self._send(404, {"error": "not_found"})

        def do_DELETE(self) -> None:
            path = self.path.split("?", 1)[0]
            if path.startswith("/register/"):
                self._client_configuration("DELETE", path.removeprefix("/register/"), b"")
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
            with idp.lock:
                idp.introspections.append(self._record(b""))
            caller = _basic_credentials(self.headers.get("authorization"))
            expected = idp.introspection_client
            if idp.verify_introspection_caller and (caller is None or caller[0] != expected.client_id
                                                    or not secrets.compare_digest(caller[1], expected.client_secret)):
                self._oauth_error(401, "invalid_client", basic_challenge=True)
                return
            if idp.stall is not None:
                idp.stall.wait(10)
            mode = idp.introspection_mode
            if mode == "error":
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "server_error"})
            elif mode == "garbage":
                self._send(200, raw=b"<html>this is not JSON")
            else:
                if mode == "slow":
                    idp._stopping.wait(idp.slow_seconds)
                answer = idp.introspect(self._form(body).get("token", ""))
                raw = answer if isinstance(answer, bytes) else None
                self._send(idp.introspect_status, answer, raw=raw)

        def _revoke(self, form: dict[str, str]) -> None:
            if idp.authenticate_client(self.headers.get("authorization")) is None:
                self._oauth_error(401, "invalid_client", basic_challenge=True)
                return
            idp.revoke(form.get("token", ""))
            self._send(200, {})  # RFC 7009: 200 whether or not the token was known

        def _register(self, body: bytes) -> None:
            record = self._record(body)
            with idp.lock:
                idp.registrations.append(record)
            authorization = self.headers.get("authorization") or ""
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), idp.initial_access_token):
                self._send(401, {"error": "invalid_token"}, headers={"www-authenticate": 'Bearer error="invalid_token"'})
            elif not isinstance(record.body, dict):
                self._send(400, {"error": "invalid_client_metadata", "error_description": "a JSON object is required"})
            elif idp.registration_status != 201:
                self._send(idp.registration_status, {"error": "invalid_client_metadata",
                                                     "error_description": "redirect_uris refused (the test's script)"})
            elif (refusal := metadata_error(record.body)) is not None:
                self._send(400, {"error": refusal[0], "error_description": refusal[1]})
            else:
                self._send(201, idp.register(record.body))

        def _client_configuration(self, method: str, client_id: str, body: bytes) -> None:
            """RFC 7592: read (GET), replace (PUT) or delete (DELETE) a registration with
            its registration access token; 401 for a wrong token, as §2 says."""
            record = self._record(body)
            with idp.lock:
                idp.configurations.append(RecordedRequest(record.path, record.headers, record.body, method))
            client = idp.configured_client(client_id, self.headers.get("authorization"))
            if idp.configuration_status is not None:
                self._send(idp.configuration_status, {"error": "invalid_client_metadata",
                                                      "error_description": "refused (the test's script)"})
            elif client is None:
                self._send(401, {"error": "invalid_token"}, headers={"www-authenticate": 'Bearer error="invalid_token"'})
            elif method == "GET":
                self._send(200, idp.client_information(client))
            elif method == "DELETE":
                with idp.lock:
                    idp.clients.pop(client.client_id, None)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()
            else:
                try:
                    metadata = json.loads(body)
                except ValueError:
                    metadata = None
                if not isinstance(metadata, dict) or metadata.get("client_id") != client.client_id:
                    # §2.2: the request carries the client_id; the server never takes another one.
                    self._send(400, {"error": "invalid_client_metadata", "error_description": "client_id must match"})
                    return
                sent = sorted(name for name in SERVER_MEMBERS if name in metadata)
                if sent:
                    self._send(400, {"error": "invalid_client_metadata",
                                     "error_description": f"{', '.join(sent)} must not be sent (RFC 7592 §2.2)"})
                    return
                if "client_secret" in metadata and metadata["client_secret"] != client.client_secret:
                    self._send(400, {"error": "invalid_client_metadata", "error_description": "client_secret differs"})
                    return
                if (refusal := metadata_error(metadata)) is not None:
                    self._send(400, {"error": refusal[0], "error_description": refusal[1]})
                    return
                # §2.2: the update replaces the metadata; what is left out is dropped.
                client.metadata = {name: value for name, value in metadata.items()
                                   if name not in ("client_id", "client_secret")}
                if idp.rotate_on_update:
                    client.registration_access_token = secrets.token_urlsafe(24)
                self._send(200, idp.client_information(client))

    return Handler
