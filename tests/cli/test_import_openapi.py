"""`portcullis apis import-openapi` (OpenAPI 3.0 and 3.1) against a real admin_api."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.conftest import Deployment

DATA = Path(__file__).parent / "data"
COMPARED = ("name", "version", "context", "description", "production_endpoint", "sandbox_endpoint", "resources",
            "security", "subscription_less", "lifecycle_state")

# The API of the README's walkthrough, as its curl body creates it by hand.
BY_HAND = {
    "name": "PizzaShackAPI", "version": "1.0.0", "context": "/pizzashack", "description": "Order pizza, read the menu",
    "production_endpoint": "http://127.0.0.1:8091", "sandbox_endpoint": "http://127.0.0.1:8092",
    "resources": [{"method": "GET", "path": "/menu"}, {"method": "POST", "path": "/order/{orderId}"}],
    "security": {"api_key": {"header": "apikey"}},
}


def test_the_pizzashack_document_imports_into_the_walkthroughs_api(fresh: Deployment, second: Deployment,
                                                                    tmp_path: Path) -> None:
    result = fresh.run("apis", "import-openapi", str(DATA / "pizzashack-openapi-3.0.yaml"), "--publish")
    assert result.code == 0, result.err
    assert "+ create api PizzaShackAPI:1.0.0" in result.out
    assert '~ definition api PizzaShackAPI:1.0.0: openapi "(none)" -> "sha256:' in result.out
    assert "set the OpenAPI document of api PizzaShackAPI:1.0.0" in result.err
    # What cannot be mapped is listed.
    assert "Not mapped (3):" in result.err
    assert "paths./order/{orderId}.trace: Portcullis resources take" in result.err
    assert "components.schemas (2): not used by Portcullis" in result.err
    imported = fresh.ok("apis", "list")[0]
    # The document is kept as given: the developer portal renders it.
    kept = fresh.ok("api-definitions", "get", imported["id"])
    assert kept["document"] == (DATA / "pizzashack-openapi-3.0.yaml").read_text()
    assert (kept["format"], kept["spec_version"], kept["title"]) == ("yaml", "3.0.3", "PizzaShackAPI")

    body = tmp_path / "by-hand.json"
    body.write_text(json.dumps(BY_HAND))
    by_hand = second.ok("apis", "create", "-f", str(body))
    by_hand = second.ok("apis", "publish", by_hand["id"])
    assert {k: imported[k] for k in COMPARED} == {k: by_hand[k] for k in COMPARED}

    again = fresh.run("apis", "import-openapi", str(DATA / "pizzashack-openapi-3.0.yaml"), "--publish")
    assert again.code == 0 and "No changes" in again.out


def test_a_changed_document_is_uploaded_again_and_only_then(fresh: Deployment, tmp_path: Path) -> None:
    spec = tmp_path / "pizza.yaml"
    spec.write_text((DATA / "pizzashack-openapi-3.0.yaml").read_text())
    assert fresh.run("apis", "import-openapi", str(spec)).code == 0
    spec.write_text(spec.read_text().replace("summary: The menu", "summary: Everything we bake"))
    changed = fresh.run("apis", "import-openapi", str(spec))
    assert changed.code == 0, changed.err
    assert '~ definition api PizzaShackAPI:1.0.0: openapi "sha256:' in changed.out
    assert "Plan: 0 to create, 1 to change, 0 to delete." in changed.out
    api = fresh.ok("apis", "list")[0]
    assert "Everything we bake" in fresh.ok("api-definitions", "get", api["id"])["document"]


def test_openapi_3_1_scopes_open_resources_and_schemes(fresh: Deployment) -> None:
    result = fresh.run("apis", "import-openapi", str(DATA / "pizzashack-openapi-3.1.json"),
                       "--context", "/pizzashack-oauth")
    assert result.code == 0, result.err
    assert "webhooks: not mapped" in result.err
    api = fresh.ok("apis", "list")[0]
    assert api["context"] == "/pizzashack-oauth" and "oauth2" in api["security"]
    assert api["security"]["api_key"]["query_param"] == "key"
    resources = {(r["method"], r["path"]): r for r in api["resources"]}
    assert resources[("GET", "/menu")]["scopes"] == ["menu:read"]
    assert resources[("GET", "/health")]["open"] is True
    assert resources[("POST", "/order/{orderId}")]["open"] is False


def test_dry_run_and_overrides(fresh: Deployment) -> None:
    result = fresh.run("apis", "import-openapi", str(DATA / "pizzashack-openapi-3.0.yaml"), "--dry-run",
                       "--production-endpoint", "https://pizza.example.com", "--name", "Pizza", "--version", "2")
    assert result.code == 0 and "+ create api Pizza:2" in result.out
    assert fresh.ok("apis", "list") == []


def test_write_a_declarative_file_then_apply_it(fresh: Deployment, tmp_path: Path) -> None:
    target = tmp_path / "api.yaml"
    result = fresh.run("apis", "import-openapi", str(DATA / "pizzashack-openapi-3.0.yaml"), "--write", str(target))
    assert result.code == 0 and fresh.ok("apis", "list") == []
    document = yaml.safe_load(target.read_text())
    assert document["apiVersion"] == "portcullis/v1" and document["apis"][0]["name"] == "PizzaShackAPI"
    # The file names the document relative to itself, so apply uploads it too.
    assert (target.parent / document["apis"][0]["openapi"]).resolve() == (DATA / "pizzashack-openapi-3.0.yaml")
    assert fresh.run("apply", "-f", str(target)).code == 0
    api = fresh.ok("apis", "list")[0]
    assert api["context"] == "/pizzashack"
    assert fresh.ok("api-definitions", "get", api["id"])["spec_version"] == "3.0.3"
    assert "No changes" in fresh.run("apply", "-f", str(target)).out


def test_a_file_naming_a_missing_or_refused_document(fresh: Deployment, tmp_path: Path) -> None:
    target = tmp_path / "api.yaml"
    target.write_text("apiVersion: portcullis/v1\napis:\n  - name: A\n    version: '1'\n    context: /a\n"
                      "    production_endpoint: http://127.0.0.1:8091\n    openapi: missing.yaml\n")
    missing = fresh.run("apply", "-f", str(target))
    assert missing.code == 1 and "api.yaml:7" in missing.err and "cannot read" in missing.err
    (tmp_path / "missing.yaml").write_text("not: openapi\n")
    refused = fresh.run("apply", "-f", str(target))
    assert refused.code == 1 and "400 invalid_argument" in refused.err and "no `openapi`" in refused.err


def test_not_openapi_3(fresh: Deployment, tmp_path: Path) -> None:
    swagger = tmp_path / "swagger.yaml"
    swagger.write_text("swagger: '2.0'\ninfo: {title: Old, version: '1'}\npaths: {}\n")
    result = fresh.run("apis", "import-openapi", str(swagger))
    assert result.code == 1 and "OpenAPI 3.0 or 3.1 expected, found swagger 2.0" in result.err
