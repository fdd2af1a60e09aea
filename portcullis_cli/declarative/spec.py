"""A `portcullis/v1` file checked against the protos, every problem with its line.

    apiVersion: portcullis/v1
    labels: {team: pizza}          # optional: put on every object of the file (--prune)
    apis:
      - name: PizzaShackAPI
        version: 1.0.0
        ...
    key_managers:
      - name: corp
        introspection_client_secret: {from_env: CORP_SECRET}   # or {from_file: path}

Each section is a list of objects of one kind (kinds.py); their fields are the proto
fields (snake_case, as the REST API writes them), references name other objects
(`api: PizzaShackAPI:1.0.0`, `application: PizzaApp`), secrets are never written in the
file itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from portcullis_cli.declarative.kinds import API_VERSION, KINDS, Kind, Ref, available_kinds, secret_field
from portcullis_cli.declarative.loader import Located, LocatedList, Problems, Where, load_yaml
from portcullis_cli.fields import InputError, is_map, is_scalar, scalar_value

Key = tuple[str, ...]
TOP_LEVEL = {"apiVersion", "labels"}
DEFINITION_FIELD = "openapi"   # of an API: the path of its OpenAPI document


@dataclass
class DesiredObject:
    kind: Kind
    key: Key
    values: dict[str, Any]          # file fields, enums canonical, secrets left out
    secrets: dict[str, str]         # secret fields, resolved from the environment or files
    where: Where | None
    # An API's OpenAPI document (`openapi: FILE`, read from beside the file): kept by the
    # server as the API's definition (ApiService/SetApiDefinition), not one of its fields.
    definition: str | None = None


@dataclass
class Desired:
    objects: dict[str, dict[Key, DesiredObject]] = field(default_factory=dict)  # by section
    labels: dict[str, str] = field(default_factory=dict)

    def of(self, section: str) -> dict[Key, DesiredObject]:
        return self.objects.get(section, {})


def key_text(key: Key) -> str:
    return ":".join(key)


def _check(field_descriptor: FieldDescriptor, value: Any, where: Where | None, path: str, problems: Problems) -> Any:
    """The value in canonical JSON form (enum names upper case), or None after a problem."""
    if field_descriptor.is_repeated and not is_map(field_descriptor):
        if not isinstance(value, list):
            problems.add(where, f"{path}: expected a list")
            return None
        wheres = getattr(value, "item_where", [where] * len(value))
        return [_check_one(field_descriptor, item, item_where, f"{path}[{index}]", problems)
                for index, (item, item_where) in enumerate(zip(value, wheres))]
    return _check_one(field_descriptor, value, where, path, problems)


def _check_one(field_descriptor: FieldDescriptor, value: Any, where: Where | None, path: str, problems: Problems) -> Any:
    if is_map(field_descriptor):
        if not isinstance(value, dict):
            problems.add(where, f"{path}: expected a mapping")
            return None
        return {str(k): str(v) for k, v in value.items()}
    if is_scalar(field_descriptor):
        if isinstance(value, (dict, list)):
            problems.add(where, f"{path}: expected one value, not a {'mapping' if isinstance(value, dict) else 'list'}")
            return None
        if value is None:
            problems.add(where, f"{path}: no value")
            return None
        if field_descriptor.type == FieldDescriptor.TYPE_STRING and isinstance(value, (int, float, bool)):
            problems.add(where, f"{path}: expected text; quote it ({value!r} is read as a "
                                f"{type(value).__name__})")
            return None
        try:
            return scalar_value(field_descriptor, value)
        except InputError as exc:
            problems.add(where, f"{path}: {str(exc).split(': ', 1)[1]}")
            return None
    if not isinstance(value, dict):
        problems.add(where, f"{path}: expected a mapping of {field_descriptor.message_type.name} fields")
        return None
    return _check_message(field_descriptor.message_type.fields_by_name, value, path, problems,
                          field_descriptor.message_type.name)


def _check_message(fields: Any, value: dict[str, Any], path: str, problems: Problems, type_name: str) -> dict:
    checked = {}
    key_where = getattr(value, "key_where", {})
    for name, item in value.items():
        where = key_where.get(name) or getattr(value, "where", None)
        if name not in fields:
            problems.add(where, f"{path}.{name}: {type_name} has no field {name!r}")
            continue
        checked[name] = _check(fields[name], item, where, f"{path}.{name}", problems)
    return checked


def _secret(value: Any, where: Where | None, path: str, base: Path, problems: Problems) -> str | None:
    if isinstance(value, dict) and set(value) == {"from_env"}:
        name = str(value["from_env"])
        if name not in os.environ:
            problems.add(where, f"{path}: the environment has no {name}")
            return None
        return os.environ[name]
    if isinstance(value, dict) and set(value) == {"from_file"}:
        secret_path = (base / str(value["from_file"])).expanduser()
        try:
            return secret_path.read_text().strip()
        except OSError as exc:
            problems.add(where, f"{path}: cannot read {secret_path}: {exc.strerror}")
            return None
    problems.add(where, f"{path}: a secret is never written in the file: use {{from_env: NAME}} "
                        "or {from_file: PATH}")
    return None


def _object(kind: Kind, raw: Any, where: Where | None, path: str, base: Path, problems: Problems) -> DesiredObject | None:
    if not isinstance(raw, dict):
        problems.add(where, f"{path}: expected a mapping of fields")
        return None
    allowed = kind.file_fields()
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    definition: str | None = None
    key_where = getattr(raw, "key_where", {})
    for name, value in raw.items():
        field_where = key_where.get(name, where)
        spec = allowed.get(name)
        if kind.section == "apis" and name == DEFINITION_FIELD:
            definition = _definition(value, field_where, f"{path}.{name}", base, problems)
        elif spec is None:
            problems.add(field_where, f"{path}: {kind.section} have no field {name!r} "
                                      f"(known: {', '.join(sorted(allowed))})")
        elif isinstance(spec, Ref):
            if not isinstance(value, str) or not value:
                problems.add(field_where, f"{path}.{name}: expected the name of one of the {spec.section}")
            else:
                values[name] = value
        elif secret_field(name):
            resolved = _secret(value, field_where, f"{path}.{name}", base, problems)
            if resolved is not None:
                secrets[name] = resolved
        else:
            checked = _check(spec, value, field_where, f"{path}.{name}", problems)
            if checked is not None:
                values[name] = checked
    if kind.section == "application_keys":
        values.setdefault("environment", "PRODUCTION")  # the server's defaults, so that the key
        values.setdefault("key_manager", "")            # names the object it will be ("": resident)
    for name in kind.key:
        if name not in values:
            problems.add(where, f"{path}: {name} is required (it names the object)")
            return None
    key = tuple(str(values.get(name, "")) for name in kind.key)
    return DesiredObject(kind, key, values, secrets, where, definition)


def _definition(value: Any, where: Where | None, path: str, base: Path, problems: Problems) -> str | None:
    """The OpenAPI document an API names by its path (relative to the file), as text."""
    if not isinstance(value, str) or not value:
        problems.add(where, f"{path}: expected the path of an OpenAPI document (relative to this file)")
        return None
    document = (base / value).expanduser()
    try:
        return document.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(where, f"{path}: cannot read {document}: {getattr(exc, 'strerror', None) or exc}")
        return None


def from_objects(sections: dict[str, list[dict[str, Any]]], source: str, base: Path = Path(".")) -> Desired:
    """A Desired made by a command (import-openapi), checked like a file's objects (paths
    they name are relative to `base`)."""
    problems = Problems()
    desired = Desired()
    for section, items in sections.items():
        kind = next(k for k in available_kinds() if k.section == section)
        for index, raw in enumerate(items):
            item = _object(kind, raw, None, f"{source}: {section}[{index}]", base, problems)
            if item is not None:
                desired.objects.setdefault(section, {})[item.key] = item
    problems.raise_if_any()
    return desired


def parse(paths: list[Path], params: dict[str, Any]) -> Desired:
    problems = Problems()
    desired = Desired()
    for path in paths:
        document = load_yaml(path, params, problems)
        if document is None:
            continue
        if not isinstance(document, Located):
            problems.add(getattr(document, "where", Where(str(path), 1)), "expected a mapping at the top")
            continue
        if document.get("apiVersion") != API_VERSION:
            problems.add(document.key_where.get("apiVersion", document.where),
                         f"apiVersion must be {API_VERSION!r}, not {document.get('apiVersion')!r}")
            continue
        labels = document.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            problems.add(document.key_where.get("labels"), "labels: expected a mapping of text values")
        else:
            for name, value in labels.items():
                if desired.labels.get(name, value) != value:
                    problems.add(document.key_where["labels"], f"labels.{name}: another file says "
                                                               f"{desired.labels[name]!r}")
                desired.labels[name] = value
        sections = {kind.section: kind for kind in available_kinds()}
        for section, items in document.items():
            if section in TOP_LEVEL:
                continue
            where = document.key_where[section]
            kind = sections.get(section)
            if kind is None:
                known = [k.section for k in KINDS if k.section not in sections]
                hint = f" (this server has no {section})" if section in known else ""
                problems.add(where, f"unknown section {section!r}{hint}; known: {', '.join(sections)}")
                continue
            if not isinstance(items, LocatedList):
                problems.add(where, f"{section}: expected a list")
                continue
            for index, (raw, item_where) in enumerate(zip(items, items.item_where)):
                item = _object(kind, raw, item_where, f"{section}[{index}]", path.parent, problems)
                if item is None:
                    continue
                existing = desired.objects.setdefault(section, {})
                if item.key in existing:
                    problems.add(item_where, f"{section}[{index}]: {key_text(item.key)} is given twice "
                                             f"(first at {existing[item.key].where})")
                existing[item.key] = item
    problems.raise_if_any()
    return desired
