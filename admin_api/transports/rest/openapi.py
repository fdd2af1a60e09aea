"""The OpenAPI 3.1 document, generated from the same descriptors and field table the
server uses, so the document cannot drift from what the server accepts.

Schemas: one per message and enum under components/schemas (named without the
package: `Api`, `Api.LifecycleState`), `additionalProperties: false` everywhere (the
server rejects unknown fields, and answers only carry proto fields). A body "*" that
shares fields with the path gets its own `<Request>Body` schema without them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from admin_api.transports.rest.bindings import HttpBinding
from admin_api.transports.rest.fields import INTEGER_RANGES, Kind, kind_of
from admin_api.transports.rest.problems import WWW_AUTHENTICATE

Schema = dict[str, Any]

_PROBLEM_RESPONSES = {
    "400": ("BadRequest", "The request is malformed or a field is invalid."),
    "401": ("Unauthenticated", "No valid bearer credential."),
    "403": ("PermissionDenied", "The credential may not do this."),
    "404": ("NotFound", "No such object (or no such route)."),
    "409": ("Conflict", "The object exists already, or its state forbids the change."),
    "413": ("PayloadTooLarge", "The body is too large."),
    "415": ("UnsupportedMediaType", "The body is not application/json."),
    "500": ("InternalError", "An unexpected error (logged, details withheld)."),
    "503": ("Unavailable", "The service cannot answer right now."),
}
_BODY_ONLY = {"413", "415"}

_PROBLEM_SCHEMA: Schema = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable reason code."},
        "field": {"type": "string", "description": "The request field at fault, when one is."},
    },
    "additionalProperties": False,
}


def build_openapi(bindings: list[HttpBinding], *, title: str = "Portcullis admin API") -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for binding in bindings:
        operations = paths.setdefault(binding.path.template, {})
        operations[binding.http_method.lower()] = _operation(binding, components)

    paths["/healthz"] = {"get": _unsecured("healthz", "Readiness: the database answers (503 when it does not).", {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                       "database": {"type": "string", "enum": ["ok", "unavailable"]}},
        "additionalProperties": False,
    })}
    paths["/healthz"]["get"]["responses"]["503"] = {
        "description": "The database does not answer",
        "content": {"application/json": {"schema": paths["/healthz"]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"]}}}
    paths["/livez"] = {"get": _unsecured("livez", "Liveness: the process answers (touches nothing else).", {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
        "additionalProperties": False,
    })}
    paths["/metrics"] = {"get": _text_unsecured("metrics", "Prometheus metrics (text format).")}
    paths["/openapi.json"] = {"get": _unsecured("openapi", "This document.", {"type": "object"})}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "v1",
            "description": (
                "Generated from the admin protos. JSON uses proto field names; enums are "
                "value names; 64-bit integers are strings; fields without presence are "
                "always present in answers. Errors are RFC 9457 problem documents."
            ),
        },
        "tags": [{"name": name} for name in dict.fromkeys(b.service_name for b in bindings)],
        "paths": paths,
        "components": {
            "schemas": {**components.schemas, "Problem": _PROBLEM_SCHEMA},
            "responses": _problem_responses(),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }


def _operation(binding: HttpBinding, components: _Components) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": binding.method_name,
        "tags": [binding.service_name],
        "summary": f"{binding.service_name}.{binding.method_name}",
    }
    parameters = [
        {"name": f.name, "in": "path", "required": True, "schema": components.path_schema(f)}
        for f in binding.path_fields
    ]
    for field in binding.query_fields:
        parameter: dict[str, Any] = {
            "name": field.name,
            "in": "query",
            "required": False,
            "schema": components.field_schema(field),
        }
        if field.is_repeated:
            parameter.update(style="form", explode=True)
        if binding.mask_field is not None and field.name == binding.mask_field.name:
            parameter["description"] = (
                "Comma-separated field paths to change; when absent, the top-level "
                "fields present in the body."
            )
        parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters

    if binding.has_body:
        operation["requestBody"] = {
            "required": False,  # an absent body is read as {}
            "content": {"application/json": {"schema": components.body_schema(binding)}},
        }

    responses: dict[str, Any] = {}
    if binding.response_is_empty:
        responses[str(binding.success_status)] = {"description": "Done."}
    else:
        responses[str(binding.success_status)] = {
            "description": f"The {binding.response_descriptor.name}.",
            "content": {"application/json": {"schema": components.ref(binding.response_descriptor)}},
        }
    for status, (name, _) in _PROBLEM_RESPONSES.items():
        if status in _BODY_ONLY and not binding.has_body:
            continue
        responses[status] = {"$ref": f"#/components/responses/{name}"}
    operation["responses"] = responses
    return operation


def _unsecured(operation_id: str, summary: str, schema: Schema) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["Meta"],
        "security": [],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}},
    }


def _text_unsecured(operation_id: str, summary: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["Meta"],
        "security": [],
        "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }


def _problem_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (name, description) in _PROBLEM_RESPONSES.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == "401":
            response["headers"] = {
                "WWW-Authenticate": {
                    "description": f"Always `{WWW_AUTHENTICATE}`.",
                    "schema": {"type": "string"},
                }
            }
        responses[name] = response
    return responses


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}
        self._owners: dict[str, str] = {}  # schema name → full proto name (collision check)

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> Schema:
        name = _schema_name(descriptor)
        owner = self._owners.get(name)
        if owner is None:
            self._owners[name] = descriptor.full_name
            self.schemas[name] = {}  # placeholder first: messages may refer to themselves
            if isinstance(descriptor, EnumDescriptor):
                self.schemas[name] = {"type": "string", "enum": [v.name for v in descriptor.values]}
            else:
                self.schemas[name] = self._message_schema(descriptor, exclude=())
        elif owner != descriptor.full_name:
            raise ValueError(f"schema name {name} used by {owner} and {descriptor.full_name}")
        return {"$ref": f"#/components/schemas/{name}"}

    def body_schema(self, binding: HttpBinding) -> Schema:
        descriptor = binding.body_descriptor
        assert descriptor is not None
        excluded = tuple(f.name for f in binding.path_fields if f.name in descriptor.fields_by_name)
        if binding.body != "*" or not excluded:
            return self.ref(descriptor)
        name = f"{_schema_name(descriptor)}Body"
        self.schemas[name] = self._message_schema(descriptor, exclude=excluded)
        return {"$ref": f"#/components/schemas/{name}"}

    def path_schema(self, field: FieldDescriptor) -> Schema:
        schema = self.field_schema(field)
        if kind_of(field) is Kind.STRING:
            schema = {**schema, "minLength": 1}
        return schema

    def field_schema(self, field: FieldDescriptor) -> Schema:
        schema = self._value_schema(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def _message_schema(self, descriptor: Descriptor, exclude: tuple[str, ...]) -> Schema:
        properties = {f.name: self.field_schema(f) for f in descriptor.fields if f.name not in exclude}
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def _value_schema(self, field: FieldDescriptor) -> Schema:
        kind = kind_of(field)
        if kind is Kind.MESSAGE:
            return self.ref(field.message_type)
        if kind is Kind.ENUM:
            return self.ref(field.enum_type)
        if kind in INTEGER_RANGES:
            low, high = INTEGER_RANGES[kind]
            if kind in (Kind.INT64, Kind.UINT64):
                # proto JSON writes 64-bit integers as strings (JavaScript numbers lose digits).
                pattern = "^[0-9]+$" if kind is Kind.UINT64 else "^-?[0-9]+$"
                return {"type": "string", "pattern": pattern, "format": kind.value}
            return {"type": "integer", "format": "int32" if kind is Kind.INT32 else "int64",
                    "minimum": low, "maximum": high}
        return dict(_FIXED_SCHEMAS[kind])


_FIXED_SCHEMAS: dict[Kind, Schema] = {
    Kind.STRING: {"type": "string"},
    Kind.BYTES: {"type": "string", "contentEncoding": "base64"},
    Kind.BOOL: {"type": "boolean"},
    Kind.FLOAT: {"type": "number", "format": "float"},
    Kind.DOUBLE: {"type": "number", "format": "double"},
    Kind.TIMESTAMP: {"type": "string", "format": "date-time"},
    Kind.DURATION: {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    Kind.FIELD_MASK: {"type": "string", "description": "Comma-separated field paths."},
    Kind.EMPTY: {"type": "object", "properties": {}, "additionalProperties": False},
}


def _schema_name(descriptor: Descriptor | EnumDescriptor) -> str:
    package = descriptor.file.package
    full = descriptor.full_name
    return full[len(package) + 1:] if package and full.startswith(package + ".") else full
