"""The benchmark's mesh and policy: a real mesh on free loopback ports, one API with an
open resource and a secured one (API key or OAuth2, subscription, scope), an application
subscribed to it with an API key, a resident JWT and a resident opaque token."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import httpx

from authz_server.settings import worker_count, worker_ports
from mesh.ports import free_ports
from mesh.runner import Mesh, free_port_block
from portcullis_shared.settings import MeshSettings

SCOPE = "bench:read"
RESOURCES = [
    {"method": "GET", "path": "/open", "open": True},
    {"method": "GET", "path": "/menu", "scopes": [SCOPE]},
]
_PORT_FIELDS = ("gateway_port", "envoy_admin_port", "admin_rest_port", "admin_grpc_port",
                "backend_production_port", "backend_sandbox_port", "authz_metrics_port")


class SetupFailed(RuntimeError):
    pass


def mesh_settings(data_dir: Path, workers: int, *, admin_replicas: int = 1, database_url: str = "") -> MeshSettings:
    """Free ports: `workers` consecutive from authz_port and, with several admin_api
    replicas, `admin_replicas` consecutive from each of the admin REST and gRPC ports."""
    authz = free_port_block(workers)
    if admin_replicas == 1:
        others = free_ports(len(_PORT_FIELDS), range(authz, authz + workers))
        return MeshSettings(data_dir=data_dir, authz_port=authz, **dict(zip(_PORT_FIELDS, others)),
                            database_url_override=database_url)
    taken = set(range(authz, authz + workers))
    blocks: dict[str, int] = {}
    for name in ("admin_rest_port", "admin_grpc_port"):
        while (base := free_port_block(admin_replicas)) in taken or taken & set(range(base, base + admin_replicas)):
            pass
        taken |= set(range(base, base + admin_replicas))
        blocks[name] = base
    fields = [name for name in _PORT_FIELDS if name not in blocks]
    others = [port for port in free_ports(len(fields) + len(taken), range(0)) if port not in taken][:len(fields)]
    return MeshSettings(data_dir=data_dir, authz_port=authz, admin_replicas=admin_replicas,
                        database_url_override=database_url, **blocks, **dict(zip(fields, others)))


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without its PORTCULLIS_* settings, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTCULLIS_")}
    env.update(extra or {})
    return env


class Admin:
    """The few admin REST calls the benchmark needs."""

    def __init__(self, settings: MeshSettings) -> None:
        self.base = f"http://{settings.host}:{settings.admin_rest_port}"
        token = settings.admin_token_file.read_text(encoding="utf-8").strip()
        self.http = httpx.Client(base_url=self.base, headers={"authorization": f"Bearer {token}"},
                                 timeout=30.0, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, expect: int = 200) -> dict[str, Any]:
        response = self.http.request(method, path, json=body)
        if response.status_code != expect:
            raise SetupFailed(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else {}

    def token(self, consumer_key: str, consumer_secret: str, scope: str) -> str:
        response = httpx.post(f"{self.base}/oauth2/token", data={"grant_type": "client_credentials", "scope": scope},
                              auth=(consumer_key, consumer_secret), timeout=30.0, trust_env=False)
        if response.status_code != 200:
            raise SetupFailed(f"token endpoint -> {response.status_code}: {response.text[:500]}")
        return str(response.json()["access_token"])

    def jwks(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/oauth2/jwks", timeout=30.0, trust_env=False).json()


def ensure_scope(admin: Admin, scope: str) -> None:
    response = admin.http.post("/v1/scopes", json={"name": scope, "roles": []})
    if response.status_code not in (201, 409):
        raise SetupFailed(f"POST /v1/scopes -> {response.status_code}: {response.text[:500]}")


@dataclass
class BenchPolicy:
    api: dict[str, Any]
    api_key: dict[str, Any]
    api_key_value: str
    jwt: str
    opaque_token: str
    issuer: str
    jwks: dict[str, Any]
    application: dict[str, Any] = field(default_factory=dict)
    jwt2: str = ""                              # a second token of the same client (another jti)
    backend_jwt_header: str | None = None       # the header an allow must set, when the API has a backend JWT

    @property
    def base_path(self) -> str:
        return str(self.api["base_path"])


def create_policy(admin: Admin, settings: MeshSettings, *, backend_jwt: dict[str, Any] | None = None,
                  name: str = "bench", tier: str = "") -> BenchPolicy:
    """`tier`: the subscription's throttling policy (default: Unlimited, nothing counted)."""
    suffix = uuid.uuid4().hex[:8]
    endpoint = f"http://{settings.host}:{settings.backend_production_port}"
    body: dict[str, Any] = {
        "name": f"{name}-{suffix}", "version": "1.0.0", "context": f"/{name}-{suffix}",
        "resources": RESOURCES, "production_endpoint": endpoint, "sandbox_endpoint": endpoint,
        "security": {"api_key": {}, "oauth2": {}},
    }
    if backend_jwt is not None:
        body["backend_jwt"] = backend_jwt
    api = admin.call("POST", "/v1/apis", body, expect=201)
    api = admin.call("POST", f"/v1/apis/{api['id']}/lifecycle", {"target_state": "PUBLISHED"})
    ensure_scope(admin, SCOPE)
    app = admin.call("POST", "/v1/applications", {"name": f"app-{suffix}"}, expect=201)
    subscription: dict[str, Any] = {"application_id": app["id"], "api_id": api["id"]}
    if tier:
        subscription["tier"] = tier
    admin.call("POST", "/v1/subscriptions", subscription, expect=201)
    key = admin.call("POST", f"/v1/apis/{api['id']}/api-keys", {"name": f"key-{suffix}", "application_id": app["id"]},
                     expect=201)
    jwt_key = admin.call("POST", f"/v1/applications/{app['id']}/keys", {"environment": "PRODUCTION"}, expect=201)
    jwt = admin.token(jwt_key["key"]["consumer_key"], jwt_key["consumer_secret"], SCOPE)
    jwt2 = admin.token(jwt_key["key"]["consumer_key"], jwt_key["consumer_secret"], SCOPE)  # another jti
    # One key per application, environment and key manager: the opaque client is the sandbox one.
    opaque_key = admin.call("POST", f"/v1/applications/{app['id']}/keys",
                            {"environment": "SANDBOX", "settings": {"token_type": "REFERENCE"}}, expect=201)
    opaque = admin.token(opaque_key["key"]["consumer_key"], opaque_key["consumer_secret"], SCOPE)
    return BenchPolicy(api=api, api_key=key["api_key"], api_key_value=key["value"], jwt=jwt, opaque_token=opaque,
                       issuer=admin.base, jwks=admin.jwks(), application=app, jwt2=jwt2,
                       backend_jwt_header=(backend_jwt or {}).get("header") or "X-JWT-Assertion" if backend_jwt else None)


@dataclass
class BenchMesh:
    mesh: Mesh
    admin: Admin

    @property
    def settings(self) -> MeshSettings:
        return self.mesh.settings

    @property
    def authz_ports(self) -> list[int]:
        return worker_ports(self.settings.authz_port, self.mesh.authz_workers)


def serving(mesh: Mesh, start: Callable[[], None]) -> Iterator[BenchMesh]:
    """`start` the mesh (all of it or a part), yield it with an admin client, then stop it."""
    start()
    try:
        admin = Admin(mesh.settings)
        try:
            yield BenchMesh(mesh, admin)
        finally:
            admin.close()
    finally:
        mesh.stop()


def start_mesh(data_dir: Path, env: Mapping[str, str]) -> Iterator[BenchMesh]:
    mesh = Mesh(mesh_settings(data_dir, worker_count(env)), base_env=env, log_dir=data_dir / "logs")
    yield from serving(mesh, mesh.start)


def start_admin_only(data_dir: Path, env: Mapping[str, str]) -> Iterator[BenchMesh]:
    """A mesh of which only admin_api runs (the scale benchmark starts authz_server itself)."""
    from mesh.components import ADMIN_API

    settings = mesh_settings(data_dir, worker_count(env))
    mesh = Mesh(settings, base_env=env, log_dir=data_dir / "logs")
    try:
        mesh[ADMIN_API].start()
        mesh[ADMIN_API].wait_ready()
        admin = Admin(settings)
        try:
            yield BenchMesh(mesh, admin)
        finally:
            admin.close()
    finally:
        mesh.stop()


def create_counting_tier(admin: Admin) -> str:
    """A subscription tier no bench run reaches (10^12 a month): every call is counted
    against it and none is refused, so that a run compares counting with not counting."""
    name = f"bench-tier-{uuid.uuid4().hex[:8]}"
    admin.call("POST", "/v1/throttling-policies", {"name": name, "kind": "SUBSCRIPTION",
                                                   "request_count": 10**12, "unit": "MONTH"}, expect=201)
    return name
