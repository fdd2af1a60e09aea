"""Helpers for the key-management tests: a store with a KEK and a tiny OIDC provider
(discovery and RFC 7591 registration) on 127.0.0.1, port 0."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from admin_api.app import open_store
from admin_api.access.caller import Caller
from admin_api.crypto.kek import Kek
from admin_api.services import key_managers
from admin_api.config import ServiceConfig
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import key_managers_pb2

PUBLIC_URL = "http://127.0.0.1:18081"


def open_key_store(path: Path, **config: Any) -> Store:
    settings = {"public_url": PUBLIC_URL, "kek": Kek.generate(), **config}
    return open_store(f"sqlite:///{path}", ServiceConfig(**settings))


def external_km(store: Store, caller: Caller, **fields: Any) -> key_managers_pb2.KeyManager:
    values: dict[str, Any] = {"name": "Keycloak", "type": key_managers_pb2.KeyManager.KEYCLOAK,
                              "issuer": "https://idp.example.com/realms/demo",
                              "jwks_uri": "https://idp.example.com/realms/demo/certs", **fields}
    message = key_managers_pb2.KeyManager()
    for name, value in values.items():
        if isinstance(value, list):
            getattr(message, name).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return key_managers.create_key_manager(store, key_managers_pb2.CreateKeyManagerRequest(key_manager=message),
                                           caller)


def resident(store: Store, caller: Caller) -> key_managers_pb2.KeyManager:
    listed = key_managers.list_key_managers(store, key_managers_pb2.ListKeyManagersRequest(), caller).key_managers
    return next(km for km in listed if km.type == key_managers_pb2.KeyManager.RESIDENT)


@dataclass
class FakeProvider:
    """What the provider saw and how it answers."""

    base_url: str = ""
    issuer_override: str | None = None
    discovery_status: int = 200
    registration_status: int = 201
    public_answer: bool = False
    registrations: list[dict[str, Any]] = field(default_factory=list)
    next_client: int = 0

    @property
    def issuer(self) -> str:
        return self.issuer_override if self.issuer_override is not None else self.base_url

    def document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.base_url + "/jwks",
            "token_endpoint": self.base_url + "/token",
            "authorization_endpoint": self.base_url + "/authorize",
            "introspection_endpoint": self.base_url + "/introspect",
            "revocation_endpoint": self.base_url + "/revoke",
            "registration_endpoint": self.base_url + "/register",
            "userinfo_endpoint": self.base_url + "/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }


@contextmanager
def fake_provider() -> Iterator[FakeProvider]:
    state = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/.well-known/openid-configuration":
                self._send(state.discovery_status, state.document())
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/register":
                self._send(404, {"error": "not_found"})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
            state.registrations.append({"authorization": self.headers.get("authorization"), "body": body})
            if self.headers.get("authorization") != "Bearer initial-access-token":
                self._send(401, {"error": "invalid_token", "error_description": "bad initial access token"})
                return
            if state.registration_status != 201:
                self._send(state.registration_status,
                           {"error": "invalid_client_metadata", "error_description": "redirect_uris refused"})
                return
            state.next_client += 1
            answer = {"client_id": f"dcr-client-{state.next_client}", **body}
            if body.get("token_endpoint_auth_method") != "none":
                answer["client_secret"] = f"dcr-secret-{state.next_client}-s3cr3t"
            self._send(201, answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
