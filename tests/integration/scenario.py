"""Building blocks for the integration tests: APIs with unique base paths, keys,
applications and subscriptions, all through the admin REST API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.admin_client import AdminClient
from tests.integration.conftest import LiveMesh

# The PizzaShack resources; `/echo` lets a test see what reached the backend.
PIZZASHACK_RESOURCES: list[dict[str, Any]] = [
    {"method": "GET", "path": "/menu"},
    {"method": "POST", "path": "/order/{orderId}"},
    {"method": "GET", "path": "/echo"},
    {"method": "GET", "path": "/echo/*"},
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class PublishedApi:
    """An API and what calling it needs."""

    live: LiveMesh
    api: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)  # key id -> value

    @property
    def id(self) -> str:
        return str(self.api["id"])

    @property
    def base_path(self) -> str:
        return str(self.api["base_path"])

    @property
    def admin(self) -> AdminClient:
        return self.live.admin

    def get(self, subpath: str, *, key: str | None = None, in_query: bool = False,
            headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> httpx.Response:
        """GET base_path + subpath through Envoy, with the key in the `apikey` header or
        query parameter."""
        all_headers = dict(headers or {})
        all_params = dict(params or {})
        if key is not None:
            if in_query:
                all_params["apikey"] = key
            else:
                all_headers["apikey"] = key
        return self.live.gateway.get(self.base_path + subpath, headers=all_headers, params=all_params)

    def new_key(self, name: str | None = None, **fields: Any) -> tuple[dict[str, Any], str]:
        key, value = self.admin.generate_key(self.id, name or unique("key"), **fields)
        self.keys[key["id"]] = value
        return key, value

    def subscribed_app(self, **subscription: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        app = self.admin.create_application(unique("app"))
        return app, self.admin.subscribe(app["id"], self.id, **subscription)


def endpoints(live: LiveMesh) -> dict[str, str]:
    host = live.settings.host
    return {
        "production_endpoint": f"http://{host}:{live.settings.backend_production_port}",
        "sandbox_endpoint": f"http://{host}:{live.settings.backend_sandbox_port}",
    }


def create_api(live: LiveMesh, *, context: str | None = None, version: str = "1.0.0",
               subscription_less: bool = False, publish: bool = True, **fields: Any) -> PublishedApi:
    body: dict[str, Any] = {
        "name": unique("api"),
        "version": version,
        "context": context or "/" + unique("shop"),
        "resources": PIZZASHACK_RESOURCES,
        "subscription_less": subscription_less,
        **endpoints(live),
        **fields,
    }
    api = live.admin.create_api(**body)
    if publish:
        api = live.admin.change_lifecycle(api["id"], "PUBLISHED")
    return PublishedApi(live, api)


def ready_key(api: PublishedApi, **key_fields: Any) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A key associated with an application subscribed (ACTIVE) to the API: the happy path."""
    app, _subscription = api.subscribed_app()
    key, value = api.new_key(application_id=app["id"], **key_fields)
    return key, value, app
