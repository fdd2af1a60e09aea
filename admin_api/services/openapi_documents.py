"""Reading an OpenAPI document safely: size first, then JSON or YAML, then the shape of
an OpenAPI 3.x or Swagger 2.0 object. Pure (no database), shared by the service that
stores documents and the portal page that renders them.

What is checked is the skeleton a reader needs (a version, `info` with a title and a
version, `paths` of path items whose keys start with "/"), not every rule of the
specification: Portcullis keeps the document to show it, and enforces the API's own
resources. YAML anchors and aliases are refused (an alias expands to a shared node, and a
few of them nested make a "billion laughs" document that is small to send and huge to
walk); nesting deeper than MAX_DEPTH is refused too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from admin_api.errors import InvalidArgument, PayloadTooLarge

MAX_DOCUMENT_BYTES = 512 * 1024
MAX_DEPTH = 64
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_OPENAPI_3 = re.compile(r"3\.\d+(\.\d+)?(-[0-9A-Za-z.-]+)?")


@dataclass(frozen=True)
class ParsedDocument:
    content: dict[str, Any]
    format: str          # "json" or "yaml"
    spec_version: str    # "3.0.3", "3.1.0", "2.0"
    title: str

    @property
    def swagger2(self) -> bool:
        return self.spec_version == "2.0"


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (see the module's docstring)."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases (*name) are not accepted in an OpenAPI document")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.YAMLError("YAML anchors (&name) are not accepted in an OpenAPI document")
        return super().compose_node(parent, index)


def parse(document: str, field: str = "document") -> ParsedDocument:
    """The document read and checked; InvalidArgument (or PayloadTooLarge) saying why not."""
    size = len(document.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"{field}: the OpenAPI document is {size} bytes; at most {MAX_DOCUMENT_BYTES} "
                              f"({MAX_DOCUMENT_BYTES // 1024} KiB) are kept", field=field)
    if not document.strip():
        raise InvalidArgument(f"{field} is required: an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML)",
                              field=field)
    text = document.lstrip("\ufeff")
    if text.lstrip().startswith("{"):
        format_ = "json"
        try:
            content = json.loads(text)
        except RecursionError:
            raise InvalidArgument(f"{field}: nested more than {MAX_DEPTH} levels deep", field=field) from None
        except ValueError as exc:
            raise InvalidArgument(f"{field}: not valid JSON: {exc}", field=field) from None
    else:
        format_ = "yaml"
        try:
            content = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
        except RecursionError:
            raise InvalidArgument(f"{field}: nested more than {MAX_DEPTH} levels deep", field=field) from None
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"{field}: not valid YAML or JSON: {_yaml_problem(exc)}", field=field) from None
    if _depth(content) > MAX_DEPTH:
        raise InvalidArgument(f"{field}: nested more than {MAX_DEPTH} levels deep", field=field)
    return _checked(content, format_, field)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


def _depth(value: Any) -> int:
    """How deep the value nests (iteratively: the parsers have their own recursion limits)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(node, dict):
            stack += [(child, depth + 1) for child in node.values()]
        elif isinstance(node, list):
            stack += [(child, depth + 1) for child in node]
    return deepest


def _version(value: Any) -> str:
    """The version as text: YAML reads an unquoted `swagger: 2.0` as a number."""
    if isinstance(value, float) and not isinstance(value, bool):
        return repr(value)
    return value if isinstance(value, str) else "(not a version)"


def _checked(content: Any, format_: str, field: str) -> ParsedDocument:
    if not isinstance(content, dict):
        raise InvalidArgument(f"{field}: an OpenAPI document is a mapping at the top", field=field)
    if "openapi" in content:
        version = _version(content["openapi"])
        if not _OPENAPI_3.fullmatch(version):
            raise InvalidArgument(f"{field}: openapi must be a 3.x version such as \"3.0.3\" (quoted), "
                                  f"not {content['openapi']!r}", field=field)
    elif "swagger" in content:
        version = _version(content["swagger"])
        if version != "2.0":
            raise InvalidArgument(f"{field}: swagger must be \"2.0\", not {content['swagger']!r}", field=field)
    else:
        raise InvalidArgument(f"{field}: not an OpenAPI document: no `openapi` (3.x) or `swagger` (2.0) field",
                              field=field)
    info = content.get("info")
    if not isinstance(info, dict):
        raise InvalidArgument(f"{field}: info must be a mapping with a title and a version", field=field)
    if not isinstance(info.get("title"), str) or not info["title"].strip():
        raise InvalidArgument(f"{field}: info.title must be a non-empty string", field=field)
    if isinstance(info.get("version"), (dict, list)) or not str(info.get("version") or "").strip():
        raise InvalidArgument(f"{field}: info.version must be a non-empty string", field=field)
    paths = content.get("paths")
    if paths is None and not (version != "2.0" and version.startswith("3.1")):
        raise InvalidArgument(f"{field}: paths is required (an empty mapping when there is none)", field=field)
    if paths is not None:
        if not isinstance(paths, dict):
            raise InvalidArgument(f"{field}: paths must be a mapping", field=field)
        for path, item in paths.items():
            if not isinstance(path, str) or not (path.startswith("/") or path.startswith("x-")):
                raise InvalidArgument(f"{field}: paths: {str(path)[:100]!r} must start with /", field=field)
            if path.startswith("/") and not isinstance(item, dict):
                raise InvalidArgument(f"{field}: paths.{path[:100]} must be a mapping (a path item)", field=field)
            for method in HTTP_METHODS:
                if path.startswith("/") and method in item and not isinstance(item[method], dict):
                    raise InvalidArgument(f"{field}: paths.{path[:100]}.{method} must be a mapping (an operation)",
                                          field=field)
    return ParsedDocument(content=content, format=format_, spec_version=version, title=info["title"].strip())
