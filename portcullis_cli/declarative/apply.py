"""Carrying a plan out, step by step, through the same admin REST operations as the
nouns and verbs. References are resolved to ids as objects are created, so one file can
create an API and subscribe to it. New secrets (API keys, consumer secrets) are printed
once, as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portcullis_cli.client import AdminClient, CliError, RequestRefused
from portcullis_cli.declarative.kinds import Kind, Ref
from portcullis_cli.declarative.plan import Plan, Step
from portcullis_cli.declarative.spec import key_text
from portcullis_cli.declarative.state import Current
from portcullis_cli.output import secret_fields
from portcullis_cli.schema import Operation, operation


_DONE = {"create": "created", "update": "updated", "state": "moved", "associate": "associated",
         "label": "labelled", "definition": "set the OpenAPI document of", "delete": "deleted"}


class ApplyFailed(CliError):
    pass


def _resolve(kind: Kind, values: dict[str, Any], current: Current) -> dict[str, Any]:
    """File fields to request fields: references become ids."""
    resolved: dict[str, Any] = {}
    refs = {ref.name: ref for ref in kind.refs}
    for name, value in values.items():
        ref: Ref | None = refs.get(name)
        if ref is None:
            resolved[name] = value
        elif value:
            object_id = current.ids.get(ref.section, {}).get(value)
            if object_id is None:
                raise ApplyFailed(f"{kind.section} {key_text(tuple(str(values.get(k, '')) for k in kind.key))}: "
                                  f"{name} {value!r} is neither in the files nor in the organization")
            resolved[ref.id_field] = object_id
        else:
            resolved[ref.id_field] = ""  # the server's default (the resident key manager) or none
    return resolved


def _split(operation: Operation, fields: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    path = {name: fields.pop(name) for name in operation.path_fields if name in fields}
    accepted = {f.name for f in operation.body_fields}
    return path, {name: value for name, value in fields.items() if name in accepted}


def check_references(plan: Plan, current: Current) -> list[str]:
    """References to objects that are neither in the organization nor created by the plan."""
    created = {(s.kind.section, key_text(s.key)) for s in plan.steps if s.action == "create"}
    missing = []
    for step in plan.steps:
        if step.desired is None or step.action == "delete":
            continue
        for ref in step.kind.refs:
            value = step.desired.values.get(ref.name)
            if value and value not in current.ids.get(ref.section, {}) and (ref.section, value) not in created:
                where = f"{step.desired.where}: " if step.desired.where else ""
                missing.append(f"{where}{step.what}: {ref.name} {value!r} is neither in the files nor in "
                               "the organization")
    return missing


class Applier:
    def __init__(self, client: AdminClient, current: Current, labels: dict[str, str], say: Callable[[str], None],
                 shown_once: Callable[[str], None]) -> None:
        self.client = client
        self.labels = labels
        self.current = current
        self.say = say
        self.shown_once = shown_once

    def run(self, plan: Plan) -> int:
        done = 0
        for step in plan.changes:
            if step.action == "keep":
                continue
            try:
                getattr(self, f"_{step.action}")(step)
            except RequestRefused as exc:
                raise ApplyFailed(f"{step.describe()}: refused: {exc} ({done} change(s) made before it)") from exc
            done += 1
            self.say(f"{_DONE[step.action]} {step.what}")
        return done

    def _create(self, step: Step) -> None:
        assert step.desired is not None
        kind = step.kind
        operation = kind.verbs[kind.create_verb]
        if kind.section == "application_keys" and step.desired.values.get("consumer_key"):
            operation = kind.verbs["map"]  # an existing client of an external key manager
        fields = _resolve(kind, step.desired.values, self.current)
        fields.update(step.desired.secrets)
        path, body = _split(operation, fields)
        answer = self.client.call(operation, path, body=body) or {}
        for name in secret_fields(operation.response):
            if answer.get(name):
                self.shown_once(f"{step.what}: {name} {answer[name]}")
        created = answer.get("id") and answer or next(
            (v for v in answer.values() if isinstance(v, dict) and "id" in v), {})
        self.current.remember(kind.section, key_text(step.key), created["id"])
        if self.labels and kind.label_kind is not None:
            self._set_labels(kind, created["id"], self.labels)

    def _set_labels(self, kind: Kind, object_id: str, labels: dict[str, str]) -> None:
        self.client.call(operation("labels", "set"), {"kind": kind.label_kind or "", "object_id": object_id},
                         body={"labels": [{"key": k, "value": v} for k, v in sorted(labels.items())]})

    def _label(self, step: Step) -> None:
        self._set_labels(step.kind, self._object_id(step), step.changes["labels"][1])

    def _object_id(self, step: Step) -> str:
        if step.current is not None:
            return step.current.id
        return self.current.ids[step.kind.section][key_text(step.key)]

    def _update(self, step: Step) -> None:
        assert step.desired is not None
        operation = step.kind.verbs["update"]
        changed = {name: step.desired.values[name] for name in step.changes if name in step.desired.values}
        fields = _resolve(step.kind, changed, self.current)
        fields.update({name: step.desired.secrets[name] for name in step.changes if name in step.desired.secrets})
        body_fields = {f.name for f in operation.body_fields}
        body = {name: value for name, value in fields.items() if name in body_fields}
        self.client.call(operation, {"id": self._object_id(step)}, body=body)

    def _state(self, step: Step) -> None:
        state = step.kind.state
        assert state is not None and step.desired is not None
        self.client.call(step.kind.verbs[state.verb], {"id": self._object_id(step)},
                         body={state.argument: step.desired.values[state.field]})

    def _associate(self, step: Step) -> None:
        assert step.desired is not None
        application = step.desired.values.get("application", "")
        object_id = self._object_id(step)
        if not application:
            self.client.call(step.kind.verbs["dissociate"], {"id": object_id})
            return
        fields = _resolve(step.kind, {"application": application}, self.current)
        self.client.call(step.kind.verbs["associate"], {"id": object_id}, body=fields)

    def _definition(self, step: Step) -> None:
        assert step.desired is not None and step.desired.definition is not None
        self.client.call(operation("api-definitions", "set"), {"id": self._object_id(step)},
                         body={"document": step.desired.definition})

    def _delete(self, step: Step) -> None:
        verbs = step.kind.verbs
        object_id = self._object_id(step)
        self._set_labels(step.kind, object_id, {})  # the object is no longer the file's
        self.client.call(verbs.get("delete") or verbs["revoke"], {"id": object_id})
