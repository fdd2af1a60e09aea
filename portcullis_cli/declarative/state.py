"""What the organization holds now, read through the admin API into the file's form:
ids replaced by the names of what they refer to, answer-only and default values left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portcullis_cli.client import AdminClient, RequestRefused
from portcullis_cli.declarative.kinds import Kind, Ref, available_kinds, labels_available, secret_field
from portcullis_cli.schema import operation
from portcullis_cli.declarative.spec import Desired, Key

# Not {}: a message field is present or not (`oauth2: {}` enables OAuth2), so an empty
# one is kept.
_DEFAULTS: tuple[Any, ...] = ("", 0, False, None, [], "0")


@dataclass
class CurrentObject:
    kind: Kind
    key: Key
    id: str
    values: dict[str, Any]   # in file form
    answer: dict[str, Any]   # as the server wrote it
    builtin: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Current:
    objects: dict[str, dict[Key, CurrentObject]] = field(default_factory=dict)
    names: dict[str, dict[str, str]] = field(default_factory=dict)   # section -> id -> name
    ids: dict[str, dict[str, str]] = field(default_factory=dict)     # section -> name -> id
    # API id -> the SHA-256 of its OpenAPI document ("": none), for the APIs the files
    # give a document for (read_definitions).
    definitions: dict[str, str] = field(default_factory=dict)

    def of(self, section: str) -> dict[Key, CurrentObject]:
        return self.objects.get(section, {})

    def remember(self, section: str, name: str, object_id: str) -> None:
        self.names.setdefault(section, {})[object_id] = name
        self.ids.setdefault(section, {})[name] = object_id


def strip_defaults(value: Any) -> Any:
    """Drop fields at their proto default, recursively (proto JSON writes them all)."""
    if isinstance(value, dict):
        cleaned = {k: strip_defaults(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if not any(v == d and type(v) is type(d) for d in _DEFAULTS)}
    if isinstance(value, list):
        return [strip_defaults(v) for v in value]
    return value


def _name_of(kind: Kind, values: dict[str, Any]) -> str:
    return ":".join(str(values.get(part, "")) for part in kind.key)


def file_form(kind: Kind, answer: dict[str, Any], current: Current) -> dict[str, Any]:
    allowed = kind.file_fields()
    values: dict[str, Any] = {}
    for name, spec in allowed.items():
        if isinstance(spec, Ref):
            target = answer.get(spec.id_field, "")
            values[name] = current.names.get(spec.section, {}).get(target, target) if target else ""
        elif name in answer and not secret_field(name):
            values[name] = answer[name]
    if kind.server_made is not None:
        made, when, value = kind.server_made
        if answer.get(when) == value:
            values.pop(made, None)
    cleaned = strip_defaults(values)
    for name in kind.key:  # a key part at its default still names the object
        cleaned.setdefault(name, values.get(name, ""))
    return cleaned


def _answers(client: AdminClient, kind: Kind, current: Current) -> list[dict[str, Any]]:
    listing = kind.verbs["list"]
    if kind.parent is None:
        return list(client.list_all(listing, {}))
    answers = []
    for parent_id in current.names.get(kind.parent.section, {}):
        answers += client.list_all(listing, {kind.parent.id_field: parent_id})
    return answers


def _labels(client: AdminClient) -> dict[tuple[str, str], dict[str, str]]:
    if not labels_available():
        return {}
    return {(item["kind"], item["object_id"]): {label["key"]: label["value"] for label in item.get("labels", [])}
            for item in client.list_all(operation("labels", "list"), {})}


def read_current(client: AdminClient) -> Current:
    current = Current()
    labels = _labels(client)
    for kind in available_kinds():
        objects = current.objects.setdefault(kind.section, {})
        for answer in _answers(client, kind, current):
            builtin = kind.builtin is not None and answer.get(kind.builtin[0]) == kind.builtin[1]
            values = file_form(kind, answer, current)
            # The resident key manager is named "" in references: the server's default.
            name = "" if builtin else _name_of(kind, values)
            current.remember(kind.section, name, answer["id"])
            key = tuple(str(values.get(part, "")) for part in kind.key)
            objects[key] = CurrentObject(kind, key, answer["id"], values, answer, builtin,
                                         labels.get((kind.label_kind or "", answer["id"]), {}))
    return current


def read_definitions(client: AdminClient, current: Current, desired: Desired) -> None:
    """The documents' SHA-256 of the existing APIs the files give an OpenAPI document for
    (one read each: only those are compared)."""
    get = operation("api-definitions", "get")
    for key, wanted in desired.of("apis").items():
        now = current.of("apis").get(key)
        if wanted.definition is None or now is None:
            continue
        try:
            answer = client.call(get, {"id": now.id}) or {}
        except RequestRefused as exc:
            if exc.status != 404:
                raise
            answer = {}
        current.definitions[now.id] = str(answer.get("sha256", ""))
