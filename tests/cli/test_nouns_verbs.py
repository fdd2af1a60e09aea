"""Every noun and verb of `portcullis` against a real admin_api, as a user types them."""

from __future__ import annotations

import json
import uuid

import httpx
import yaml

from tests.cli.conftest import Deployment

RESOURCES = json.dumps([{"method": "GET", "path": "/menu"}, {"method": "POST", "path": "/order/{orderId}"}])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_api(cli: Deployment, name: str | None = None) -> dict:
    name = name or unique("Api")
    return cli.ok("apis", "create", "--name", name, "--version", "1.0.0", "--context", f"/{name.lower()}",
                  "--production-endpoint", "http://127.0.0.1:8091", "--resources", RESOURCES)


def test_apis_create_get_list_update_lifecycle_delete(cli: Deployment) -> None:
    api = new_api(cli)
    assert api["lifecycle_state"] == "CREATED" and len(api["resources"]) == 2
    assert cli.ok("apis", "get", api["id"])["name"] == api["name"]
    assert api["id"] in [a["id"] for a in cli.ok("apis", "list")]

    updated = cli.ok("apis", "update", api["id"], "--description", "the menu", "--set",
                     "security.api_key.header=x-pizza-key")
    assert updated["description"] == "the menu"
    assert updated["security"]["api_key"]["header"] == "x-pizza-key"
    assert updated["name"] == api["name"]  # only the given fields change

    assert cli.ok("apis", "lifecycle", api["id"], "--target-state", "published")["lifecycle_state"] == "PUBLISHED"
    for verb, state in (("deprecate", "DEPRECATED"), ("block", "BLOCKED"), ("publish", "PUBLISHED"),
                        ("retire", "RETIRED")):
        assert cli.ok("apis", verb, api["id"])["lifecycle_state"] == state
    # A refused request: exit code 1 and the problem's detail on stderr.
    refused = cli.run("apis", "publish", api["id"])
    assert refused.code == 1 and refused.out == ""
    assert refused.err.startswith("error: 409 failed_precondition:") and "RETIRED is final" in refused.err

    deleted = cli.run("apis", "delete", api["id"])
    assert deleted.code == 0 and deleted.out == ""
    gone = cli.run("apis", "get", api["id"])
    assert gone.code == 1 and "404 not_found" in gone.err


def test_table_output_is_for_people(cli: Deployment) -> None:
    api = new_api(cli)
    listing = cli.run("apis", "list")
    assert listing.code == 0
    header = listing.out.splitlines()[0].split()
    assert header[:3] == ["ID", "NAME", "VERSION"]
    assert any(api["id"] in line and api["name"] in line for line in listing.out.splitlines())
    single = cli.run("apis", "get", api["id"])
    assert any(line.split()[:2] == ["lifecycle_state", "CREATED"] for line in single.out.splitlines())


def test_yaml_and_value_output(cli: Deployment) -> None:
    api = new_api(cli)
    assert cli.yaml("apis", "get", api["id"], "-o", "yaml")["id"] == api["id"]
    value = cli.run("apis", "get", api["id"], "-o", "value:resources.1.path")
    assert value.code == 0 and value.out == "/order/{orderId}\n"


def test_create_from_a_file_with_options_overriding(cli: Deployment, tmp_path) -> None:
    name = unique("FileApi")
    body = tmp_path / "api.yaml"
    body.write_text(yaml.safe_dump({"name": "overridden", "version": "2.0.0", "context": f"/{name.lower()}",
                                    "production_endpoint": "http://127.0.0.1:8091",
                                    "resources": [{"method": "GET", "path": "/menu", "open": True}]}))
    api = cli.ok("apis", "create", "-f", str(body), "--name", name)
    assert (api["name"], api["version"], api["resources"][0]["open"]) == (name, "2.0.0", True)


def test_api_keys_generate_list_associate_regenerate_revoke(cli: Deployment) -> None:
    api = new_api(cli)
    cli.ok("apis", "publish", api["id"])
    generated = cli.run("api-keys", "generate", api["id"], "--name", "my-key", "--environment", "production",
                        "--allowed-ips", "10.0.0.0/8", "--allowed-ips", "127.0.0.1")
    assert generated.code == 0
    # The value is shown once, plainly marked.
    assert "value (shown once)" in generated.out
    assert "shown once and cannot be read again" in generated.err
    answer = cli.ok("api-keys", "list", "--api-id", api["id"])
    assert len(answer) == 1
    key = answer[0]
    assert key["allowed_ips"] == ["10.0.0.0/8", "127.0.0.1"] and key["masked_value"].endswith("…") is not None
    value_in_listing = cli.run("api-keys", "list", "--api-id", api["id"])
    assert "shown once" not in value_in_listing.out + value_in_listing.err

    app = cli.ok("applications", "create", "--name", unique("App"))
    associated = cli.ok("api-keys", "associate", key["id"], "--application-id", app["id"])
    assert associated["application_id"] == app["id"]
    assert cli.ok("api-keys", "dissociate", key["id"])["application_id"] == ""

    regenerated = cli.ok("api-keys", "regenerate", key["id"])
    assert regenerated["value"] and regenerated["api_key"]["id"] != key["id"]
    assert cli.ok("api-keys", "get", key["id"])["status"] == "REVOKED"
    assert cli.ok("api-keys", "revoke", regenerated["api_key"]["id"])["status"] == "REVOKED"
    assert cli.ok("api-keys", "list", "--api-id", api["id"]) == []
    assert len(cli.ok("api-keys", "list", "--api-id", api["id"], "--include-revoked")) == 2


def test_applications_subscriptions(cli: Deployment) -> None:
    api = new_api(cli)
    cli.ok("apis", "publish", api["id"])
    app = cli.ok("applications", "create", "--name", unique("App"), "--description", "pizza")
    assert cli.ok("applications", "get", app["id"])["description"] == "pizza"
    assert cli.ok("applications", "update", app["id"], "--throttling-tier", "20PerMin")["throttling_tier"] == "20PerMin"
    sub = cli.ok("subscriptions", "create", "--application-id", app["id"], "--api-id", api["id"], "--tier", "Gold")
    assert sub["status"] == "ACTIVE"
    assert [s["id"] for s in cli.ok("subscriptions", "list", "--api-id", api["id"])] == [sub["id"]]
    assert cli.ok("subscriptions", "update", sub["id"], "--status", "blocked")["status"] == "BLOCKED"
    assert cli.ok("subscriptions", "get", sub["id"])["tier"] == "Gold"
    assert cli.run("subscriptions", "delete", sub["id"]).code == 0
    assert cli.run("applications", "delete", app["id"]).code == 0


def test_application_keys_and_consumer_secrets(cli: Deployment) -> None:
    app = cli.ok("applications", "create", "--name", unique("OAuthApp"))
    generated = cli.run("application-keys", "generate", app["id"], "--environment", "sandbox", "--settings",
                        '{"grant_types": ["client_credentials"]}', "-o", "json")
    assert generated.code == 0 and "consumer_secret is shown once" in generated.err
    key = json.loads(generated.out)
    assert key["consumer_secret"] and key["key"]["environment"] == "SANDBOX"
    key_id = key["key"]["id"]
    assert [k["id"] for k in cli.ok("application-keys", "list", app["id"])] == [key_id]
    assert cli.ok("application-keys", "get", key_id)["consumer_key"] == key["key"]["consumer_key"]
    updated = cli.ok("application-keys", "update", key_id, "--set", "settings.access_token_validity_seconds=600")
    assert updated["settings"]["access_token_validity_seconds"] == 600

    secret = cli.ok("consumer-secrets", "create", key_id, "--description", "ci", "--validity-days", "30")
    assert secret["value"] and secret["secret"]["description"] == "ci"
    assert len(cli.ok("consumer-secrets", "list", key_id)) == 2
    assert cli.run("consumer-secrets", "delete", key_id, secret["secret"]["id"]).code == 0
    assert len(cli.ok("consumer-secrets", "list", key_id)) == 1
    assert cli.run("application-keys", "delete", key_id).code == 0


def test_users_scopes_key_managers_audit(cli: Deployment) -> None:
    username = unique("user")
    user = cli.ok("users", "create", "--username", username, "--password", "a long password 1",
                  "--roles", "publisher")
    assert user["roles"] == ["publisher"] and not user.get("password")
    assert cli.ok("users", "update", user["id"], "--roles", "subscriber")["roles"] == ["subscriber"]
    assert cli.ok("users", "get", user["id"])["username"] == username
    assert username in [u["username"] for u in cli.ok("users", "list")]

    scope = cli.ok("scopes", "create", "--name", unique("menu") + ":read", "--roles", "subscriber")
    assert cli.ok("scopes", "update", scope["id"], "--description", "read")["description"] == "read"
    assert scope["id"] in [s["id"] for s in cli.ok("scopes", "list")]

    name = unique("idp")
    km = cli.ok("key-managers", "create", "--name", name, "--type", "oidc", "--issuer", f"https://{name}.example",
                "--jwks-uri", f"https://{name}.example/jwks", "--introspection-client-id", "portcullis",
                "--introspection-client-secret", "s3cret")
    assert km["introspection_client_secret_set"] and not km.get("introspection_client_secret")
    assert cli.ok("key-managers", "update", km["id"], "--no-enabled")["enabled"] is False
    assert cli.ok("key-managers", "get", km["id"])["name"] == name
    assert name in [k["name"] for k in cli.ok("key-managers", "list")]

    for noun, one in (("users", user), ("scopes", scope), ("key-managers", km)):
        assert cli.run(noun, "delete", one["id"]).code == 0
    records = cli.ok("audit", "list", "--target-kind", "key_manager")
    assert {"CreateKeyManager", "DeleteKeyManager"} <= {r["method"].split("/")[-1] for r in records}


def test_signing_keys_and_organizations(cli: Deployment) -> None:
    before = cli.ok("signing-keys", "list")
    cli.ok("signing-keys", "rotate")
    assert len(cli.ok("signing-keys", "list")) == len(before) + 1
    assert cli.ok("backend-signing-keys", "list") is not None
    org = cli.ok("organizations", "create", "--id", unique("org"), "--name", "An organization")
    assert org["id"] in [o["id"] for o in cli.ok("organizations", "list")]


def test_organizations_admin_credential_is_shown_once_then_409_until_rotated(cli: Deployment) -> None:
    org = cli.ok("organizations", "create", "--id", unique("org"))["id"]
    shown = cli.run("organizations", "admin-credential", org)
    assert shown.code == 0, shown.err
    assert "value (shown once)" in shown.out and "shown once and cannot be read again" in shown.err
    token = next(line.split()[-1] for line in shown.out.splitlines() if line.strip().startswith("value"))
    assert token.startswith("pca_")
    users = httpx.post(f"{cli.server}/v1/users", json={"username": "olga", "password": "correct-horse-battery-9",
                                                       "roles": ["admin"]},
                       headers={"authorization": f"Bearer {token}"}, trust_env=False, timeout=10.0,
                       verify=cli.verify)
    assert users.status_code == 201 and users.json()["organization_id"] == org, users.text
    again = cli.run("organizations", "admin-credential", org)
    assert again.code == 1 and "409 already_exists" in again.err and "rotate" in again.err
    rotated = cli.ok("organizations", "admin-credential", org, "--rotate")
    assert rotated["rotated"] is True and rotated["value"] != token
    old = httpx.get(f"{cli.server}/v1/users", headers={"authorization": f"Bearer {token}"}, trust_env=False,
                    timeout=10.0, verify=cli.verify)
    assert old.status_code == 401


def test_list_follows_every_page(cli: Deployment) -> None:
    prefix = unique("paged")
    for index in range(3):
        cli.ok("applications", "create", "--name", f"{prefix}-{index}")
    answer = cli.ok("applications", "list")
    assert {f"{prefix}-{i}" for i in range(3)} <= {a["name"] for a in answer}
