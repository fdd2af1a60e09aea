"""apply / diff / dump against real admin_api processes, each test on empty deployments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Deployment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pizzashack"
LOCAL = EXAMPLES / "params" / "local.yaml"


@pytest.fixture(autouse=True)
def passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_PASSWORD", "correct horse battery staple")


def apply(cli: Deployment, *args: str):
    return cli.run("apply", "-f", str(EXAMPLES), "--params", str(LOCAL), *args)


def test_apply_the_example_then_again_changes_nothing(fresh: Deployment) -> None:
    planned = fresh.run("diff", "-f", str(EXAMPLES), "--params", str(LOCAL))
    assert planned.code == 0, planned.err
    assert "+ create api PizzaShackAPI:1.0.0" in planned.out and "Plan: 10 to create" in planned.out
    assert fresh.ok("apis", "list") == []  # diff changes nothing

    first = apply(fresh)
    assert first.code == 0, first.err
    assert "+ create api PizzaShackAPI:1.0.0" in first.out
    assert "shown once: api key PizzaShackAPI:1.0.0:my-key: value pck_" in first.out
    assert "shown once: application key PizzaOAuthApp:PRODUCTION:: consumer_secret " in first.out
    apis = {a["name"]: a for a in fresh.ok("apis", "list")}
    assert apis["PizzaShackAPI"]["lifecycle_state"] == "PUBLISHED"
    assert apis["PizzaShackAPI"]["production_endpoint"] == "http://127.0.0.1:8091"
    keys = fresh.ok("api-keys", "list")
    assert [k["name"] for k in keys] == ["my-key"] and keys[0]["application_id"]

    second = apply(fresh)
    assert second.code == 0, second.err
    assert second.out == "No changes: the organization matches the files.\n"


def test_dry_run_stops_after_the_plan(fresh: Deployment) -> None:
    result = apply(fresh, "--dry-run")
    assert result.code == 0 and "Plan: 10 to create" in result.out
    assert fresh.ok("apis", "list") == [] and fresh.ok("users", "list") == []


def test_a_change_in_the_file_is_an_update(fresh: Deployment, tmp_path: Path) -> None:
    assert apply(fresh).code == 0
    changed = tmp_path / "pizzashack.yaml"
    text = (EXAMPLES / "pizzashack.yaml").read_text()
    changed.write_text(text.replace("Order pizza, read the menu", "Pizza, now")
                       .replace("lifecycle_state: PUBLISHED\n\n  - name: PizzaShackOAuth",
                                "lifecycle_state: DEPRECATED\n\n  - name: PizzaShackOAuth"))
    result = fresh.run("apply", "-f", str(changed), "--params", str(LOCAL))
    assert result.code == 0, result.err
    assert '~ update api PizzaShackAPI:1.0.0: description "Order pizza, read the menu" -> "Pizza, now"' in result.out
    assert '~ state api PizzaShackAPI:1.0.0: lifecycle_state "PUBLISHED" -> "DEPRECATED"' in result.out
    api = next(a for a in fresh.ok("apis", "list") if a["name"] == "PizzaShackAPI")
    assert (api["description"], api["lifecycle_state"]) == ("Pizza, now", "DEPRECATED")


def test_dump_then_apply_into_an_empty_deployment_reproduces_it(fresh: Deployment, second: Deployment,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert apply(fresh).code == 0
    fresh.ok("key-managers", "create", "--name", "corp", "--type", "oidc", "--issuer", "https://corp.example",
             "--jwks-uri", "https://corp.example/jwks", "--introspection-client-id", "pc",
             "--introspection-client-secret", "s3cret")
    dumped = fresh.run("dump")
    assert dumped.code == 0, dumped.err
    document = yaml.safe_load(dumped.out)
    assert document["apiVersion"] == "portcullis/v1"
    # Secrets are never dumped: references to fill in instead.
    assert document["key_managers"][0]["introspection_client_secret"] == {
        "from_env": "KEY_MANAGERS_CORP_INTROSPECTION_CLIENT_SECRET"}
    assert document["users"][0]["password"] == {"from_env": "PASSWORD_ALICE"}
    monkeypatch.setenv("KEY_MANAGERS_CORP_INTROSPECTION_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("PASSWORD_ALICE", "correct horse battery staple")
    path = tmp_path / "dump.yaml"
    path.write_text(dumped.out)

    assert second.run("apply", "-f", str(path)).code == 0
    again = second.run("dump")
    assert again.code == 0
    again_document = yaml.safe_load(again.out)
    for section in document:
        assert again_document[section] == document[section], section
    assert second.run("apply", "-f", str(path)).out.startswith("No changes")


MALFORMED = """\
apiVersion: portcullis/v1
apis:
  - name: Broken
    version: 1.0.0
    context: /broken
    resources:
      - {method: GET, path: /menu, opne: true}
    lifecycle_state: LAUNCHED
applications:
  - name: App
    flavour: pepperoni
  - name: 42
subscriptions:
  - {application: App, api: "Missing:1.0.0"}
users:
  - username: bob
    password: hunter2
"""


def test_a_malformed_file_names_every_line_and_changes_nothing(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(MALFORMED)
    result = fresh.run("apply", "-f", str(path))
    assert result.code == 1 and result.out == ""
    assert "nothing was changed" in result.err
    for line, text in ((7, "apis[0].resources[0].opne: Resource has no field 'opne'"),
                       (8, "apis[0].lifecycle_state: expected one of CREATED, PUBLISHED"),
                       (11, "applications[0]: applications have no field 'flavour'"),
                       (12, "applications[1].name: expected text; quote it"),
                       (17, "users[0].password: a secret is never written in the file")):
        assert f"{path}:{line}: {text}" in result.err, result.err
    assert fresh.ok("apis", "list") == [] and fresh.ok("applications", "list") == []


def test_bad_yaml_and_wrong_version(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: portcullis/v1\napis:\n  - name: [unclosed\n")
    result = fresh.run("apply", "-f", str(path))
    assert result.code == 1 and f"{path}:4: not valid YAML" in result.err
    path.write_text("apiVersion: portcullis/v2\n")
    result = fresh.run("diff", "-f", str(path))
    assert result.code == 1 and f"{path}:1: apiVersion must be 'portcullis/v1'" in result.err


def test_a_reference_to_nothing_changes_nothing(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "refs.yaml"
    path.write_text("apiVersion: portcullis/v1\napplications:\n  - name: App\n"
                    "subscriptions:\n  - {application: App, api: \"Missing:1.0.0\"}\n")
    result = fresh.run("apply", "-f", str(path))
    assert result.code == 1 and "api 'Missing:1.0.0' is neither in the files nor in the organization" in result.err
    assert f"{path}:5" in result.err
    assert fresh.ok("applications", "list") == []


def test_params_per_environment(fresh: Deployment, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("context: /shop\nenvironments:\n  dev: {backend: 'http://127.0.0.1:9001'}\n"
                      "  prod: {backend: 'https://shop.example.com'}\n")
    path = tmp_path / "shop.yaml"
    path.write_text("apiVersion: portcullis/v1\napis:\n  - {name: Shop, version: '1', context: '${context}',"
                    " production_endpoint: '${backend}'}\n")
    no_environment = fresh.run("apply", "-f", str(path), "--params", str(params))
    assert no_environment.code == 1 and "pick one with --environment" in no_environment.err
    missing = fresh.run("apply", "-f", str(path))
    assert missing.code == 1 and f"{path}:3: no parameter 'context'" in missing.err
    assert fresh.run("apply", "-f", str(path), "--params", str(params), "--environment", "prod").code == 0
    assert fresh.ok("apis", "list")[0]["production_endpoint"] == "https://shop.example.com"
    dev = fresh.run("diff", "-f", str(path), "--params", str(params), "--environment", "dev")
    assert ('~ update api Shop:1: production_endpoint "https://shop.example.com" -> "http://127.0.0.1:9001"'
            in dev.out)


def test_secrets_from_a_file(fresh: Deployment, tmp_path: Path) -> None:
    (tmp_path / "bob.secret").write_text("a long password 2\n")
    path = tmp_path / "users.yaml"
    path.write_text("apiVersion: portcullis/v1\nusers:\n  - username: bob\n    password: {from_file: bob.secret}\n"
                    "    roles: [publisher]\n")
    assert fresh.run("apply", "-f", str(path)).code == 0
    assert fresh.ok("users", "list")[0]["username"] == "bob"
    missing = tmp_path / "users-missing.yaml"
    missing.write_text("apiVersion: portcullis/v1\nusers:\n  - username: eve\n    password: {from_env: NO_SUCH_VAR}\n")
    result = fresh.run("apply", "-f", str(missing))
    assert result.code == 1 and f"{missing}:4: users[0].password: the environment has no NO_SUCH_VAR" in result.err


def team_file(tmp_path: Path, team: str, apis: list[str]) -> Path:
    path = tmp_path / f"{team}.yaml"
    document = {"apiVersion": "portcullis/v1", "labels": {"team": team},
                "apis": [{"name": name, "version": "1", "context": f"/{name.lower()}",
                          "production_endpoint": "http://127.0.0.1:8091", "lifecycle_state": "PUBLISHED"}
                         for name in apis],
                "applications": [{"name": f"{team}-app"}],
                "subscriptions": [{"application": f"{team}-app", "api": f"{name}:1"} for name in apis]}
    path.write_text(yaml.safe_dump(document))
    return path


def test_prune_removes_only_what_the_files_labels_own(fresh: Deployment, tmp_path: Path) -> None:
    pizza = team_file(tmp_path, "pizza", ["Menu", "Orders"])
    pasta = team_file(tmp_path, "pasta", ["Pasta"])
    assert fresh.run("apply", "-f", str(pizza)).code == 0
    assert fresh.run("apply", "-f", str(pasta)).code == 0
    by_hand = fresh.ok("apis", "create", "--name", "ByHand", "--version", "1", "--context", "/byhand",
                       "--production-endpoint", "http://127.0.0.1:8091")
    labelled = {(o["kind"], o["object_id"]) for o in fresh.ok("labels", "list", "--selector", "team=pizza")}
    assert len(labelled) == 5, fresh.run("labels", "list").out  # two APIs, the application, two subscriptions

    smaller = team_file(tmp_path, "pizza", ["Menu"])
    without_prune = fresh.run("apply", "-f", str(smaller))
    assert without_prune.out.startswith("No changes")  # nothing is deleted without --prune
    planned = fresh.run("diff", "-f", str(smaller), "--prune")
    assert "- delete api Orders:1 (pruned: it carries the files' labels)" in planned.out
    assert "- delete subscription pizza-app:Orders:1" in planned.out
    assert planned.out.index("delete subscription") < planned.out.index("delete api")  # dependents first
    pruned = fresh.run("apply", "-f", str(smaller), "--prune")
    assert pruned.code == 0, pruned.err
    names = {a["name"] for a in fresh.ok("apis", "list")}
    assert names == {"Menu", "Pasta", "ByHand"}  # the other team's and the unlabelled API stay
    assert by_hand["id"] in {a["id"] for a in fresh.ok("apis", "list")}
    assert len(fresh.ok("subscriptions", "list")) == 2
    assert fresh.run("apply", "-f", str(smaller), "--prune").out.startswith("No changes")


def test_objects_made_before_get_the_files_labels(fresh: Deployment, tmp_path: Path) -> None:
    api = fresh.ok("apis", "create", "--name", "Menu", "--version", "1", "--context", "/menu",
                   "--production-endpoint", "http://127.0.0.1:8091")
    pizza = team_file(tmp_path, "pizza", ["Menu"])
    result = fresh.run("apply", "-f", str(pizza))
    assert "~ label api Menu:1" in result.out
    assert ("api", api["id"]) in {(o["kind"], o["object_id"]) for o in fresh.ok("labels", "list")}
    dumped = yaml.safe_load(fresh.run("dump", "--selector", "team=pizza").out)
    assert dumped["labels"] == {"team": "pizza"} and [a["name"] for a in dumped["apis"]] == ["Menu"]


def test_prune_needs_labels(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("apiVersion: portcullis/v1\napplications:\n  - name: App\n")
    result = fresh.run("apply", "-f", str(path), "--prune")
    assert result.code == 2 and "--prune deletes only objects that carry the files' labels" in result.err


TIERS = """\
apiVersion: portcullis/v1
throttling_policies:
  - {name: Pizza10, kind: SUBSCRIPTION, request_count: 10, unit: MINUTE, description: ten a minute}
  - {name: Pizza10, kind: APPLICATION, request_count: 10, unit: HOUR, burst_request_count: 2, burst_unit: SECOND}
  - {name: Soft, kind: API, request_count: 100, unit: DAY, stop_on_quota_reach: false}
apis:
  - {name: Tiered, version: '1', context: /tiered, production_endpoint: 'http://127.0.0.1:8091',
     throttling_policy: Soft, lifecycle_state: PUBLISHED}
applications:
  - {name: TieredApp, throttling_tier: Pizza10}
subscriptions:
  - {application: TieredApp, api: "Tiered:1", tier: Pizza10}
"""


def _policies(cli: Deployment) -> dict[tuple[str, str], dict]:
    return {(p["kind"], p["name"]): p for p in cli.ok("throttling-policies", "list")}


def test_throttling_policies_of_one_name_and_two_kinds(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(TIERS)
    first = fresh.run("apply", "-f", str(path))
    assert first.code == 0, first.err
    assert "+ create throttling policy SUBSCRIPTION:Pizza10" in first.out
    assert "+ create throttling policy APPLICATION:Pizza10" in first.out
    policies = _policies(fresh)
    assert policies["SUBSCRIPTION", "Pizza10"]["request_count"] == "10"
    assert policies["SUBSCRIPTION", "Pizza10"]["unit"] == "MINUTE"
    assert (policies["APPLICATION", "Pizza10"]["unit"], policies["APPLICATION", "Pizza10"]["burst_request_count"]) == (
        "HOUR", "2")
    assert policies["API", "Soft"]["stop_on_quota_reach"] is False
    assert ("SUBSCRIPTION", "Gold") in policies  # the organization's defaults stay
    assert fresh.ok("apis", "list")[0]["throttling_policy"] == "Soft"
    assert fresh.ok("applications", "list")[0]["throttling_tier"] == "Pizza10"
    assert fresh.ok("subscriptions", "list")[0]["tier"] == "Pizza10"
    assert fresh.run("apply", "-f", str(path)).out.startswith("No changes")

    # A new limit is an update of that one field of that one policy (the mask is what changed).
    path.write_text(TIERS.replace("request_count: 10, unit: MINUTE", "request_count: 20, unit: MINUTE"))
    changed = fresh.run("apply", "-f", str(path))
    assert changed.code == 0, changed.err
    assert '~ update throttling policy SUBSCRIPTION:Pizza10: request_count "10" -> "20"' in changed.out
    assert "APPLICATION:Pizza10" not in changed.out
    policies = _policies(fresh)
    assert (policies["SUBSCRIPTION", "Pizza10"]["request_count"], policies["APPLICATION", "Pizza10"]["request_count"]) == (
        "20", "10")

    dumped = yaml.safe_load(fresh.run("dump").out)
    dumped_policy = next(p for p in dumped["throttling_policies"] if (p["kind"], p["name"]) == ("SUBSCRIPTION", "Pizza10"))
    assert {"request_count": "20", "unit": "MINUTE", "description": "ten a minute"}.items() <= dumped_policy.items()
    assert [p["name"] for p in dumped["throttling_policies"] if p["kind"] == "APPLICATION"] == [
        "10PerMin", "20PerMin", "50PerMin", "Pizza10", "Unlimited"]  # in key order


def test_a_throttling_policy_needs_its_kind(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "kindless.yaml"
    path.write_text("apiVersion: portcullis/v1\nthrottling_policies:\n  - {name: NoKind, request_count: 5, unit: MINUTE}\n")
    result = fresh.run("apply", "-f", str(path))
    assert result.code == 1 and f"{path}:3: throttling_policies[0]: kind is required (it names the object)" in result.err
    assert ("SUBSCRIPTION", "NoKind") not in _policies(fresh)


def test_a_subscription_tier_of_an_unknown_policy_is_refused_by_the_server(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(TIERS.replace("tier: Pizza10}", "tier: Pizza1O}"))
    result = fresh.run("apply", "-f", str(path))
    assert result.code == 1 and "refused: 400" in result.err and "Pizza1O" in result.err


def test_a_difference_in_an_immutable_field_is_shown_and_not_sent(fresh: Deployment, tmp_path: Path) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(TIERS)
    assert fresh.run("apply", "-f", str(path)).code == 0
    key = fresh.ok("api-keys", "generate", fresh.ok("apis", "list")[0]["id"], "--name", "k1")
    assert key["api_key"]["environment"] == "PRODUCTION", key
    path.write_text(TIERS + "api_keys:\n  - {api: \"Tiered:1\", name: k1, environment: SANDBOX}\n")
    result = fresh.run("apply", "-f", str(path))
    assert result.code == 0, result.err
    assert ('! keep api key Tiered:1:k1: environment "PRODUCTION" -> "SANDBOX" (cannot change in place: '
            'regenerate or revoke the key)') in result.out
    assert "1 cannot change in place" in result.out
    assert fresh.ok("api-keys", "list")[0]["environment"] == "PRODUCTION"
