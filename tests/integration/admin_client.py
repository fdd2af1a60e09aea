"""A small admin REST client for the integration tests (paths from admin.proto's http
options; JSON field names are the proto names)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx


class AdminCallFailed(AssertionError):
    """An admin call the test relied on did not succeed: the test cannot go on."""


class AdminClient:
    def __init__(self, base_url: str, token_file: Path, *, verify: ssl.SSLContext | bool = True) -> None:
        token = token_file.read_text(encoding="utf-8").strip()
        self.http = httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {token}"}, timeout=10.0,
                                 trust_env=False, verify=verify)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, expect: int = 200) -> dict[str, Any]:
        response = self.http.request(method, path, json=body)
        if response.status_code != expect:
            raise AdminCallFailed(f"{method} {path} -> {response.status_code} (expected {expect}): {response.text}")
        return response.json() if response.content else {}

    # APIs
    def create_api(self, **fields: Any) -> dict[str, Any]:
        return self.call("POST", "/v1/apis", fields, expect=201)

    def get_api(self, api_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/apis/{api_id}")

    def change_lifecycle(self, api_id: str, target_state: str) -> dict[str, Any]:
        return self.call("POST", f"/v1/apis/{api_id}/lifecycle", {"target_state": target_state})

    # Applications and subscriptions
    def create_application(self, name: str, **fields: Any) -> dict[str, Any]:
        return self.call("POST", "/v1/applications", {"name": name, **fields}, expect=201)

    def subscribe(self, application_id: str, api_id: str, **fields: Any) -> dict[str, Any]:
        body = {"application_id": application_id, "api_id": api_id, **fields}
        return self.call("POST", "/v1/subscriptions", body, expect=201)

    def set_subscription_status(self, subscription_id: str, status: str) -> dict[str, Any]:
        return self.call("PATCH", f"/v1/subscriptions/{subscription_id}", {"status": status})

    # API keys
    def generate_key(self, api_id: str, name: str, **fields: Any) -> tuple[dict[str, Any], str]:
        answer = self.call("POST", f"/v1/apis/{api_id}/api-keys", {"name": name, **fields}, expect=201)
        return answer["api_key"], answer["value"]

    def get_key(self, key_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/api-keys/{key_id}")

    def associate(self, key_id: str, application_id: str) -> dict[str, Any]:
        return self.call("PUT", f"/v1/api-keys/{key_id}/application", {"application_id": application_id})

    def revoke(self, key_id: str) -> dict[str, Any]:
        return self.call("POST", f"/v1/api-keys/{key_id}/revoke")

    def regenerate(self, key_id: str) -> tuple[dict[str, Any], str]:
        answer = self.call("POST", f"/v1/api-keys/{key_id}/regenerate", expect=201)
        return answer["api_key"], answer["value"]

    # Key managers (key_managers.proto)
    def create_key_manager(self, **fields: Any) -> dict[str, Any]:
        return self.call("POST", "/v1/key-managers", fields, expect=201)

    def list_key_managers(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/key-managers").get("key_managers", []))

    def resident_key_manager(self) -> dict[str, Any]:
        residents = [km for km in self.list_key_managers() if km.get("type") == "RESIDENT"]
        if len(residents) != 1:
            raise AdminCallFailed(f"expected one resident key manager, found {residents}")
        return residents[0]

    def update_key_manager(self, key_manager_id: str, **fields: Any) -> dict[str, Any]:
        """PATCH: the body's top-level fields are the update mask."""
        return self.call("PATCH", f"/v1/key-managers/{key_manager_id}", fields)

    def delete_key_manager(self, key_manager_id: str) -> None:
        self.call("DELETE", f"/v1/key-managers/{key_manager_id}", expect=204)

    # Users and scopes (users.proto)
    def create_user(self, username: str, password: str, roles: list[str]) -> dict[str, Any]:
        return self.call("POST", "/v1/users", {"username": username, "password": password, "roles": roles}, expect=201)

    def create_scope(self, name: str, roles: list[str], description: str = "") -> dict[str, Any]:
        return self.call("POST", "/v1/scopes", {"name": name, "roles": roles, "description": description}, expect=201)

    # Application keys and consumer secrets (application_keys.proto)
    def generate_application_key(self, application_id: str, **fields: Any) -> dict[str, Any]:
        """ApplicationKeyWithSecret: key, secret, consumer_secret (shown once)."""
        return self.call("POST", f"/v1/applications/{application_id}/keys", fields, expect=201)

    def map_application_key(self, application_id: str, **fields: Any) -> dict[str, Any]:
        return self.call("POST", f"/v1/applications/{application_id}/mapped-keys", fields, expect=201)

    def list_application_keys(self, application_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/v1/applications/{application_id}/keys").get("keys", []))

    def create_consumer_secret(self, application_key_id: str, **fields: Any) -> dict[str, Any]:
        """ConsumerSecretWithValue: secret, value (shown once)."""
        return self.call("POST", f"/v1/application-keys/{application_key_id}/secrets", fields, expect=201)

    def list_consumer_secrets(self, application_key_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/v1/application-keys/{application_key_id}/secrets").get("secrets", []))

    def delete_consumer_secret(self, application_key_id: str, secret_id: str) -> None:
        self.call("DELETE", f"/v1/application-keys/{application_key_id}/secrets/{secret_id}", expect=204)

    # Resident signing keys
    def rotate_signing_keys(self, algorithm: str = "") -> dict[str, Any]:
        """SigningKey: the new active key (the previous one stays published)."""
        return self.call("POST", "/v1/signing-keys/rotate", {"algorithm": algorithm}, expect=201)

    def list_signing_keys(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/signing-keys").get("keys", []))
