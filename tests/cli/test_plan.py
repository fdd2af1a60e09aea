"""The plan on its own (no server): which differences become updates and which cannot."""

from __future__ import annotations

import importlib

import pytest

from portcullis_cli.declarative.kinds import KINDS, Kind
from portcullis_cli.declarative.plan import make_plan
from portcullis_cli.declarative.spec import Desired, DesiredObject
from portcullis_cli.declarative.state import Current, CurrentObject


def kind(section: str) -> Kind:
    return next(k for k in KINDS if k.section == section)


def plan_for(section: str, wanted: dict, now: dict):
    k = kind(section)
    key = tuple(str(wanted.get(part, "")) for part in k.key)
    desired = Desired({section: {key: DesiredObject(k, key, wanted, {}, None)}})
    current = Current({section: {key: CurrentObject(k, key, "id-1", now, {"id": "id-1", **now})}})
    return make_plan(desired, current)


def test_an_immutable_field_that_differs_is_kept_and_said_never_updated() -> None:
    key = {"application": "App", "environment": "PRODUCTION", "key_manager": "corp"}
    plan = plan_for("application_keys", {**key, "consumer_key": "new-client", "settings": {"grant_types": ["password"]}},
                    {**key, "consumer_key": "old-client", "settings": {"grant_types": ["client_credentials"]}})
    by_action = {step.action: step for step in plan.steps}
    assert set(by_action) == {"keep", "update"}
    assert set(by_action["keep"].changes) == {"consumer_key"}
    assert "cannot change in place" in by_action["keep"].note
    assert set(by_action["update"].changes) == {"settings"}


def test_unchanged_immutable_fields_are_not_in_the_update() -> None:
    wanted = {"kind": "SUBSCRIPTION", "name": "Gold", "request_count": "6000", "unit": "MINUTE"}
    plan = plan_for("throttling_policies", wanted, {**wanted, "request_count": "5000"})
    [step] = plan.steps
    assert (step.action, step.what, set(step.changes)) == ("update", "throttling policy SUBSCRIPTION:Gold",
                                                          {"request_count"})


def test_policies_of_one_name_and_two_kinds_are_two_objects() -> None:
    k = kind("throttling_policies")
    assert k.key == ("kind", "name")
    assert {"kind", "name"} <= k.fixed_fields()


# Each service's IMMUTABLE set (what its update_mask refuses) against the proto fields
# marked (portcullis.options.v1.immutable), less what a file never carries.
_ANSWER_ONLY = {"id", "organization_id", "created_at", "updated_at", "base_path"}
SERVICES = [("apis", "IMMUTABLE", "apis"), ("applications", "IMMUTABLE", "applications"),
            ("subscriptions", "IMMUTABLE", "subscriptions"), ("application_keys", "IMMUTABLE", "application_keys"),
            ("key_managers", "IMMUTABLE", "key_managers"), ("throttling_policies", "IMMUTABLE", "throttling_policies"),
            ("users", "USER_IMMUTABLE", "users"), ("users", "SCOPE_IMMUTABLE", "scopes")]


@pytest.mark.parametrize("module,constant,section", SERVICES, ids=[s[2] for s in SERVICES])
def test_the_protos_mark_what_the_server_refuses_to_change(module: str, constant: str, section: str) -> None:
    server = getattr(importlib.import_module(f"admin_api.services.{module}"), constant)
    fixed = {name for name in server if not name.endswith("_set")} - _ANSWER_ONLY
    k = kind(section)
    marked = {f for f in k.fixed_fields() if f not in {r.name for r in k.refs}}
    marked |= {r.id_field for r in k.refs if r.name in k.fixed_fields()}
    assert marked == fixed
