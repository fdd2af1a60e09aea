"""`portcullis dump`: the organization in the file format, so that apply on an empty
deployment reproduces it. Secrets cannot be dumped (the server never answers them):
their fields are written as `{from_env: NAME}` references to fill in."""

from __future__ import annotations

import re
from typing import Any

from portcullis_cli.declarative.kinds import API_VERSION, available_kinds
from portcullis_cli.declarative.plan import carries
from portcullis_cli.declarative.state import Current


def _env_name(*parts: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper()).strip("_")


def dump_document(current: Current, labels: dict[str, str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"apiVersion": API_VERSION}
    if labels:
        document["labels"] = dict(labels)
    for kind in available_kinds():
        items = []
        # In key order, not the server's: a dump kept in git changes only where the state does.
        for _, obj in sorted(current.of(kind.section).items()):
            if obj.builtin or (labels and (kind.label_kind is None or not carries(obj.labels, labels))):
                continue
            # A key part at its default ("" key_manager: the resident one) goes unsaid.
            values = {name: value for name, value in obj.values.items() if value != ""}
            for name, set_flag in (("introspection_client_secret", "introspection_client_secret_set"),
                                   ("registration_access_token", "registration_access_token_set")):
                if obj.answer.get(set_flag):
                    values[name] = {"from_env": _env_name(kind.section, *obj.key, name)}
            if kind.section == "users":
                values["password"] = {"from_env": _env_name("password", *obj.key)}
            items.append(values)
        if items:
            document[kind.section] = items
    return document
