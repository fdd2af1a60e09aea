"""The caller's environment (production or sandbox) must have an endpoint on the API."""

from __future__ import annotations

from authz_server.denials import EnvironmentUnavailable
from authz_server.index.api_keys import KeyEnvironment
from authz_server.index.apis import ApiPolicy


def require_environment(api: ApiPolicy, environment: KeyEnvironment | None, *, what: str, api_key_id: str = "") -> KeyEnvironment:
    if environment is None:
        raise EnvironmentUnavailable(f"The {what} has no known environment.", api_key_id=api_key_id)
    available = api.has_production if environment is KeyEnvironment.PRODUCTION else api.has_sandbox
    if not available:
        raise EnvironmentUnavailable(f"The API has no {environment.value} endpoint.", api_key_id=api_key_id)
    return environment
