"""An API's OpenAPI document as the portal shows it: operations with their summaries,
parameters, request bodies and responses, schemas as indented lines of plain text.

Everything here is plain data for the template, which escapes every value: nothing of
the document is ever markup (descriptions are shown as text, line breaks kept, not as
Markdown or HTML). Local `$ref`s (`#/components/...`, `#/definitions/...`) are followed,
a schema that refers back to itself is shown once, and the whole view is bounded
(operations, schema depth, lines), so a large or odd document renders a bounded page.

The document's own `servers` (or Swagger's host and basePath) are not shown: they are
the backends' addresses, and consumers call the gateway. The download (`for_download`)
carries the gateway's URL in their place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from admin_api.services.openapi_documents import HTTP_METHODS, ParsedDocument

MAX_OPERATIONS = 300
MAX_SCHEMA_DEPTH = 6
MAX_LINES = 4000           # schema lines in the whole view
MAX_SCHEMA_LINES = 200     # in one schema
MAX_SUMMARY = 300
MAX_DESCRIPTION = 3000
MAX_ENUM_SHOWN = 12
_COMBINERS = (("oneOf", "one of"), ("anyOf", "any of"), ("allOf", "all of"))


@dataclass(frozen=True)
class Line:
    depth: int
    name: str       # a property name, or "" for the schema's own line
    summary: str    # "string (date-time)", "array of MenuItem", ...
    note: str = ""  # "required", the description, the allowed values


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str   # path, query, header, cookie (formData in Swagger 2)
    required: bool
    summary: str
    description: str


@dataclass(frozen=True)
class Body:
    media_type: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Response:
    status: str
    description: str
    bodies: tuple[Body, ...]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    deprecated: bool
    parameters: tuple[Parameter, ...]
    request_bodies: tuple[Body, ...]
    responses: tuple[Response, ...]


@dataclass
class DocumentView:
    title: str
    version: str
    spec: str                # "OpenAPI 3.0.3", "Swagger 2.0"
    description: str
    operations: list[Operation] = field(default_factory=list)
    shortened: bool = False  # something was left out (too many operations or lines)


def _text(value: Any, limit: int) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = str(value).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Reader:
    def __init__(self, parsed: ParsedDocument) -> None:
        self.document = parsed.content
        self.swagger2 = parsed.swagger2
        self.lines_left = MAX_LINES
        self.shortened = False

    def deref(self, node: Any) -> tuple[Any, str]:
        """The node a local $ref points to (followed up to 10 times), and its name."""
        name = ""
        for _ in range(10):
            if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
                return node, name
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return {"description": f"defined elsewhere: {ref}"}, ref.rsplit("/", 1)[-1][:100]
            target: Any = self.document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            name = ref.rsplit("/", 1)[-1][:100]
            node = target if target is not None else {"description": f"not found: {ref}"}
        return node, name

    # ------------------------------------------------------------------- schemas

    def summary(self, schema: Any, depth: int = 0) -> str:
        schema, name = self.deref(schema)
        if not isinstance(schema, dict):
            return "any"
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = " or ".join(str(k) for k in kind)
        if kind == "array" or (kind is None and "items" in schema):
            text = "array of " + (self.summary(schema.get("items"), depth + 1) if depth < MAX_SCHEMA_DEPTH else "…")
        elif kind:
            text = _text(kind, 60) + (f" ({_text(schema['format'], 40)})" if schema.get("format") else "")
        elif "properties" in schema:
            text = "object"
        else:
            text = next((label for key, label in _COMBINERS if key in schema), "any")
        return f"{name} ({text})" if name and text != "any" else (name or text)

    def note(self, schema: Any, required: bool) -> str:
        schema, _ = self.deref(schema)
        parts = ["required"] if required else []
        if isinstance(schema, dict):
            if isinstance(schema.get("enum"), list):
                values = [json.dumps(v) if not isinstance(v, str) else v for v in schema["enum"][:MAX_ENUM_SHOWN]]
                more = ", …" if len(schema["enum"]) > MAX_ENUM_SHOWN else ""
                parts.append(_text("one of: " + ", ".join(values), 400) + more)
            description = _text(schema.get("description"), MAX_SUMMARY)
            if description:
                parts.append(description)
        return " · ".join(parts)

    def schema_lines(self, schema: Any) -> tuple[Line, ...]:
        lines = [Line(0, "", self.summary(schema), self.note(schema, False))]
        self._children(schema, 1, frozenset(), lines)
        self.lines_left -= len(lines)
        return tuple(lines)

    def _room(self, lines: list[Line]) -> bool:
        if len(lines) >= MAX_SCHEMA_LINES or len(lines) >= self.lines_left:
            if not lines or lines[-1].summary != "…":
                lines.append(Line(1, "", "…", "shortened: see the full document"))
            self.shortened = True
            return False
        return True

    def _children(self, schema: Any, depth: int, seen: frozenset[str], lines: list[Line]) -> None:
        schema, name = self.deref(schema)
        if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
            return
        if name:
            if name in seen:
                lines.append(Line(depth, "", f"({name}: as above)"))
                return
            seen = seen | {name}
        if "items" in schema:
            self._children(schema["items"], depth, seen, lines)
        properties = schema.get("properties")
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        if isinstance(properties, dict):
            for property_name, property_schema in properties.items():
                if not self._room(lines):
                    return
                lines.append(Line(depth, _text(property_name, 100), self.summary(property_schema),
                                  self.note(property_schema, property_name in required)))
                self._children(property_schema, depth + 1, seen, lines)
        for key, label in _COMBINERS:
            variants = schema.get(key)
            if isinstance(variants, list):
                for variant in variants:
                    if not self._room(lines):
                        return
                    lines.append(Line(depth, "", f"{label}: {self.summary(variant)}", self.note(variant, False)))
                    self._children(variant, depth + 1, seen, lines)

    # ---------------------------------------------------------------- operations

    def parameters(self, item: dict[str, Any], operation: dict[str, Any]) -> tuple[list[Parameter], list[Body]]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for source in (item.get("parameters"), operation.get("parameters")):
            for raw in source if isinstance(source, list) else []:
                parameter, _ = self.deref(raw)
                if isinstance(parameter, dict):
                    merged[(str(parameter.get("name")), str(parameter.get("in")))] = parameter
        found, bodies = [], []
        for (name, location), parameter in merged.items():
            if self.swagger2 and location == "body":
                for media_type in self._media_types(operation, "consumes"):
                    bodies.append(Body(media_type, self.schema_lines(parameter.get("schema"))))
                continue
            schema = parameter.get("schema", parameter)   # Swagger 2 gives the type on the parameter
            found.append(Parameter(_text(name, 100), _text(location, 20), bool(parameter.get("required")),
                                   self.summary(schema), _text(parameter.get("description"), MAX_SUMMARY)))
        return found, bodies

    def _media_types(self, operation: dict[str, Any], key: str) -> list[str]:
        given = operation.get(key, self.document.get(key))
        listed = [_text(m, 100) for m in given] if isinstance(given, list) else []
        return listed or ["application/json"]

    def _content(self, holder: dict[str, Any]) -> tuple[Body, ...]:
        content = holder.get("content")
        if not isinstance(content, dict):
            return ()
        return tuple(Body(_text(media_type, 100), self.schema_lines(entry.get("schema")) if isinstance(entry, dict)
                          and "schema" in entry else ())
                     for media_type, entry in content.items())

    def responses(self, operation: dict[str, Any]) -> tuple[Response, ...]:
        raw = operation.get("responses")
        found = []
        for status, response in (raw.items() if isinstance(raw, dict) else []):
            response, _ = self.deref(response)
            if not isinstance(response, dict):
                continue
            if self.swagger2:
                bodies = tuple(Body(m, self.schema_lines(response["schema"]))
                               for m in self._media_types(operation, "produces")) if "schema" in response else ()
            else:
                bodies = self._content(response)
            found.append(Response(_text(status, 20), _text(response.get("description"), MAX_SUMMARY), bodies))
        return tuple(found)

    def operation(self, method: str, path: str, item: dict[str, Any], operation: dict[str, Any],
                  index: int) -> Operation:
        parameters, bodies = self.parameters(item, operation)
        if not self.swagger2:
            request, _ = self.deref(operation.get("requestBody"))
            if isinstance(request, dict):
                bodies += list(self._content(request))
        return Operation(method=method.upper(), path=_text(path, 500), anchor=f"op-{index}",
                         summary=_text(operation.get("summary"), MAX_SUMMARY),
                         description=_text(operation.get("description"), MAX_DESCRIPTION),
                         deprecated=operation.get("deprecated") is True, parameters=tuple(parameters),
                         request_bodies=tuple(bodies), responses=self.responses(operation))


def document_view(parsed: ParsedDocument) -> DocumentView:
    reader = _Reader(parsed)
    info = parsed.content.get("info") or {}
    spec = f"Swagger {parsed.spec_version}" if parsed.swagger2 else f"OpenAPI {parsed.spec_version}"
    view = DocumentView(title=_text(info.get("title"), MAX_SUMMARY), version=_text(info.get("version"), 100),
                        spec=spec, description=_text(info.get("description"), MAX_DESCRIPTION))
    paths = parsed.content.get("paths")
    for path, item in (paths.items() if isinstance(paths, dict) else []):
        if not isinstance(item, dict) or not str(path).startswith("/"):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            if len(view.operations) >= MAX_OPERATIONS:
                view.shortened = True
                return view
            view.operations.append(reader.operation(method, str(path), item, operation, len(view.operations)))
    view.shortened = view.shortened or reader.shortened
    return view


def _without_servers(paths: Any) -> Any:
    """Paths whose items and operations name no servers of their own (backend addresses)."""
    if not isinstance(paths, dict):
        return paths
    cleaned: dict[Any, Any] = {}
    for path, item in paths.items():
        if isinstance(item, dict):
            item = {key: ({k: v for k, v in value.items() if k != "servers"} if isinstance(value, dict)
                          and key in HTTP_METHODS else value)
                    for key, value in item.items() if key != "servers"}
        cleaned[path] = item
    return cleaned


def for_download(parsed: ParsedDocument, gateway_api_url: str) -> str:
    """The document with the gateway in place of its servers, in the format it came in."""
    content = dict(parsed.content)
    if parsed.swagger2:
        scheme, _, rest = gateway_api_url.partition("://")
        host, slash, base_path = rest.partition("/")
        content.update(schemes=[scheme], host=host, basePath=slash + base_path or "/")
    else:
        content["servers"] = [{"url": gateway_api_url, "description": "the gateway"}]
        content["paths"] = _without_servers(content.get("paths"))
    if parsed.format == "json":
        return json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n"
    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True)
