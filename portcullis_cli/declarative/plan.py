"""The plan: what apply would change to make the organization match the files.

An object of the file is compared only on the fields the file gives (a nested mapping
on the fields it gives, lists item by item), so that what the server fills in by
default is not a change, and a second apply finds nothing to do. Secrets cannot be
compared (the server never answers them): they are sent when the object is created,
and for a key manager when the server says none is set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from portcullis_cli.declarative.kinds import Kind, available_kinds
from portcullis_cli.declarative.spec import Desired, DesiredObject, Key, key_text
from portcullis_cli.declarative.state import Current, CurrentObject


def matches(current: Any, desired: Any) -> bool:
    if isinstance(desired, dict):
        current = current if isinstance(current, dict) else {}
        return all(matches(current.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        current = current if isinstance(current, list) else []
        return len(current) == len(desired) and all(matches(c, d) for c, d in zip(current, desired))
    if current is None:
        return desired in ("", 0, False, "0")
    return current == desired


@dataclass
class Step:
    action: str                      # create | update | state | associate | label | definition | delete | keep
    kind: Kind
    key: Key
    desired: DesiredObject | None = None
    current: CurrentObject | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (now, wanted)
    note: str = ""

    @property
    def what(self) -> str:
        return f"{self.kind.singular} {key_text(self.key) or '(resident)'}"

    def describe(self) -> str:
        sign = {"create": "+", "update": "~", "state": "~", "associate": "~", "label": "~", "definition": "~",
                "delete": "-", "keep": "!"}
        text = f"{sign[self.action]} {self.action} {self.what}"
        if self.changes:
            text += ": " + "; ".join(f"{name} {_short(old)} -> {_short(new)}"
                                     for name, (old, new) in self.changes.items())
        return text + (f" ({self.note})" if self.note else "")


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Plan:
    steps: list[Step]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "keep"]

    @property
    def unchangeable(self) -> list[Step]:
        """Differences the server cannot make in place (an immutable field), shown, not sent."""
        return [s for s in self.steps if s.action == "keep" and s.changes]

    def summary(self) -> str:
        counts = {a: sum(1 for s in self.steps if s.action == a) for a in ("create", "update", "delete")}
        counts["update"] += sum(1 for s in self.steps if s.action in ("state", "associate", "label", "definition"))
        text = (f"Plan: {counts['create']} to create, {counts['update']} to change, "
                f"{counts['delete']} to delete.")
        if self.unchangeable:
            text += f" {len(self.unchangeable)} cannot change in place (left as they are)."
        return text


def _differences(kind: Kind, desired: DesiredObject, current: CurrentObject) -> dict[str, tuple[Any, Any]]:
    skip = set(kind.key)
    if kind.state is not None:
        skip.add(kind.state.field)
    return {name: (current.values.get(name), value) for name, value in desired.values.items()
            if name not in skip and not matches(current.values.get(name), value)}


def _unset_secrets(desired: DesiredObject, current: CurrentObject) -> list[str]:
    return [name for name in desired.secrets if current.answer.get(f"{name}_set") is False]


def _change_steps(kind: Kind, key: Key, wanted: DesiredObject, now: CurrentObject,
                  changes: dict[str, tuple[Any, Any]]) -> list[Step]:
    """An update of what may change in place; what may not is kept, and said.

    API keys have no update: only their application changes (associate). Elsewhere the
    fields the protos mark immutable (a policy's kind, a subscription's API) never go
    into an update, which the server would refuse."""
    if "update" in kind.verbs:
        fixed_names, note = kind.fixed_fields(), "cannot change in place: delete it and create it again"
        in_place = "update"
    else:
        fixed_names = frozenset(changes) - {"application"}
        note, in_place = "cannot change in place: regenerate or revoke the key", "associate"
    fixed = {k: v for k, v in changes.items() if k in fixed_names}
    movable = {k: v for k, v in changes.items() if k not in fixed_names}
    steps = []
    if fixed:
        steps.append(Step("keep", kind, key, wanted, now, fixed, note=note))
    if movable:
        steps.append(Step(in_place, kind, key, wanted, now, movable))
    return steps


def _steps_for(kind: Kind, desired: dict[Key, DesiredObject], current: dict[Key, CurrentObject]) -> list[Step]:
    steps: list[Step] = []
    for key, wanted in desired.items():
        now = current.get(key)
        if now is not None and now.builtin:
            steps.append(Step("keep", kind, key, wanted, now, note="made by the server: not changed from files"))
            continue
        if now is None:
            steps.append(Step("create", kind, key, wanted))
            state = kind.state
            if state is not None and wanted.values.get(state.field, state.initial) != state.initial:
                steps.append(Step("state", kind, key, wanted,
                                  changes={state.field: (state.initial, wanted.values[state.field])}))
            continue
        changes = _differences(kind, wanted, now)
        for name in _unset_secrets(wanted, now):
            changes[name] = ("(not set)", "(from the file's reference)")
        steps += _change_steps(kind, key, wanted, now, changes)
        state = kind.state
        if state is not None and state.field in wanted.values:
            if now.values.get(state.field, state.initial) != wanted.values[state.field]:
                steps.append(Step("state", kind, key, wanted, now,
                                  {state.field: (now.values.get(state.field), wanted.values[state.field])}))
    return steps


def _definition_steps(kind: Kind, desired: dict[Key, DesiredObject], current: Current) -> list[Step]:
    """APIs whose OpenAPI document in the files differs from the one the server keeps
    (compared by SHA-256; current.definitions is filled by state.read_definitions)."""
    steps = []
    for key, wanted in desired.items():
        if wanted.definition is None:
            continue
        now = current.of(kind.section).get(key)
        kept = current.definitions.get(now.id, "") if now is not None else ""
        given = hashlib.sha256(wanted.definition.encode("utf-8")).hexdigest()
        if kept != given:
            steps.append(Step("definition", kind, key, wanted, now,
                              {"openapi": (f"sha256:{kept[:12]}" if kept else "(none)", f"sha256:{given[:12]}")}))
    return steps


def carries(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _label_steps(kind: Kind, desired: dict[Key, DesiredObject], current: dict[Key, CurrentObject],
                 labels: dict[str, str]) -> list[Step]:
    """Objects of the file that exist but do not carry the file's labels yet."""
    if not labels or kind.label_kind is None:
        return []
    steps = []
    for key, wanted in desired.items():
        now = current.get(key)
        if now is not None and not now.builtin and not carries(now.labels, labels):
            steps.append(Step("label", kind, key, wanted, now, {"labels": (now.labels, {**now.labels, **labels})}))
    return steps


def make_plan(desired: Desired, current: Current, *, prune: bool = False) -> Plan:
    """`prune`: also delete what carries the files' labels but is not in them."""
    steps: list[Step] = []
    kinds = available_kinds()
    for kind in kinds:
        steps += _steps_for(kind, desired.of(kind.section), current.of(kind.section))
        steps += _label_steps(kind, desired.of(kind.section), current.of(kind.section), desired.labels)
        if kind.section == "apis":
            steps += _definition_steps(kind, desired.of(kind.section), current)
    if prune and desired.labels:
        # Deletions last, dependents first (an API key before its API).
        for kind in reversed(kinds):
            if kind.label_kind is None:
                continue
            for key, obj in current.of(kind.section).items():
                if not obj.builtin and carries(obj.labels, desired.labels) and key not in desired.of(kind.section):
                    steps.append(Step("delete", kind, key, current=obj, note="pruned: it carries the files' labels"))
    return Plan(steps)
