"""The REST routes, read from the `(portcullis.options.v1.http)` option of each RPC.

A binding says how one RPC is reached over HTTP: method, path template, where the body
goes, which fields the query string may set, and the success status. Everything is
checked when the app is built, so a mistake in the protos fails at start-up instead of
becoming a strange answer at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from urllib.parse import unquote

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from portcullis.options.v1 import http_pb2

from admin_api.transports.rest.fields import TEXT_KINDS, Kind, check_supported, kind_of, message_kind

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MASK_FIELD = "update_mask"

# Path segments may only bind plain scalars (a mask or a timestamp in a path makes no sense).
_PATH_KINDS = frozenset({Kind.STRING, Kind.INT32, Kind.UINT32, Kind.INT64, Kind.UINT64, Kind.ENUM})


class BindingError(ValueError):
    """An http option that cannot be served (bad template, unknown field, ...)."""


@dataclass(frozen=True)
class PathTemplate:
    """`/v1/apis/{id}/lifecycle`: literal segments and `{field}` variables, one segment each."""

    template: str
    segments: tuple[str, ...]            # literal text, or "" where a variable sits
    variables: tuple[tuple[int, str], ...]  # (segment index, field name)

    @classmethod
    def parse(cls, template: str) -> PathTemplate:
        if not template.startswith("/") or template != template.strip():
            raise BindingError(f"path template {template!r} must start with '/'")
        segments: list[str] = []
        variables: list[tuple[int, str]] = []
        for index, segment in enumerate(template[1:].split("/")):
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                if not name.isidentifier():
                    raise BindingError(f"path template {template!r}: bad variable {segment!r}")
                variables.append((index, name))
                segments.append("")
            elif not segment or any(c in segment for c in "{}*"):
                raise BindingError(f"path template {template!r}: bad segment {segment!r}")
            else:
                segments.append(segment)
        names = [name for _, name in variables]
        if len(set(names)) != len(names):
            raise BindingError(f"path template {template!r} binds a field twice")
        return cls(template, tuple(segments), tuple(variables))

    @property
    def literal_count(self) -> int:
        return len(self.segments) - len(self.variables)

    def match(self, raw_segments: list[str]) -> dict[str, str] | None:
        """Variables (percent-decoded) when the raw path segments fit the template."""
        if len(raw_segments) != len(self.segments):
            return None
        variable_at = dict(self.variables)
        values: dict[str, str] = {}
        for index, (raw, literal) in enumerate(zip(raw_segments, self.segments)):
            try:
                decoded = unquote(raw, errors="strict")
            except UnicodeDecodeError:  # not UTF-8: names nothing we serve
                return None
            if index in variable_at:
                if not decoded:
                    return None
                values[variable_at[index]] = decoded
            elif decoded != literal:
                return None
        return values


@dataclass(frozen=True)
class HttpBinding:
    service_name: str        # "ApiService"
    method_name: str         # "CreateApi"
    full_name: str           # "portcullis.admin.v1.ApiService/CreateApi" (Dispatcher.call)
    http_method: str
    path: PathTemplate
    body: str                # "" (no body), "*" (the request), or a message field's name
    success_status: int
    request_class: type[Message]
    response_class: type[Message]
    path_fields: tuple[FieldDescriptor, ...]
    query_fields: tuple[FieldDescriptor, ...]   # fields the query string may set
    body_field: FieldDescriptor | None
    mask_field: FieldDescriptor | None          # PATCH update_mask, inferred when not given

    @property
    def request_descriptor(self) -> Descriptor:
        return self.request_class.DESCRIPTOR

    @property
    def response_descriptor(self) -> Descriptor:
        return self.response_class.DESCRIPTOR

    @property
    def has_body(self) -> bool:
        return bool(self.body)

    @property
    def response_is_empty(self) -> bool:
        return message_kind(self.response_descriptor) is Kind.EMPTY

    @property
    def body_descriptor(self) -> Descriptor | None:
        """The message the JSON body is parsed into."""
        if self.body == "*":
            return self.request_descriptor
        if self.body_field is not None:
            return self.body_field.message_type
        return None

    @property
    def mask_target(self) -> Descriptor:
        """The message whose fields update_mask names: the body field's, else the request's."""
        if self.body_field is not None:
            return self.body_field.message_type
        return self.request_descriptor


def load_bindings(*modules: ModuleType) -> list[HttpBinding]:
    """Every RPC with an http option, in every service of the given *_pb2 modules."""
    bindings: list[HttpBinding] = []
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.HasExtension(http_pb2.http):
                    bindings.append(_binding(method, options.Extensions[http_pb2.http]))
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for binding in bindings:
        key = (binding.http_method, binding.path.segments)
        if key in seen:
            raise BindingError(f"two RPCs share {binding.http_method} {binding.path.template}")
        seen.add(key)
    return bindings


def _binding(method: MethodDescriptor, rule: http_pb2.HttpRule) -> HttpBinding:
    where = f"{method.full_name}:"
    if rule.method not in HTTP_METHODS:
        raise BindingError(f"{where} unsupported HTTP method {rule.method!r}")
    request = method.input_type
    response = method.output_type
    check_supported(request)
    check_supported(response)
    path = PathTemplate.parse(rule.path)

    path_fields = []
    for _, name in path.variables:
        field = request.fields_by_name.get(name)
        if field is None or field.is_repeated or kind_of(field) not in _PATH_KINDS:
            raise BindingError(f"{where} path variable {{{name}}} is not a scalar request field")
        path_fields.append(field)

    body_field = None
    if rule.body not in ("", "*"):
        body_field = request.fields_by_name.get(rule.body)
        if body_field is None or body_field.is_repeated or kind_of(body_field) is not Kind.MESSAGE:
            raise BindingError(f"{where} body {rule.body!r} is not a message field of the request")
        if body_field.name in {f.name for f in path_fields}:
            raise BindingError(f"{where} body field {rule.body!r} is also in the path")

    bound = {f.name for f in path_fields} | ({body_field.name} if body_field else set())
    query_fields: list[FieldDescriptor] = []
    if rule.body != "*":
        for field in request.fields:
            kind = kind_of(field)
            if field.name in bound or kind not in TEXT_KINDS:
                continue
            if field.is_repeated and kind is Kind.FIELD_MASK:
                continue
            query_fields.append(field)

    mask_field = None
    candidate = request.fields_by_name.get(MASK_FIELD)
    if rule.method == "PATCH" and candidate is not None and not candidate.is_repeated:
        if kind_of(candidate) is Kind.FIELD_MASK:
            mask_field = candidate

    empty = message_kind(response) is Kind.EMPTY
    status = rule.success_status or (204 if empty else 200)
    if not 200 <= status <= 299:
        raise BindingError(f"{where} success_status {status} is not a 2xx status")
    if empty != (status == 204):
        raise BindingError(f"{where} 204 goes with google.protobuf.Empty, and only with it")

    return HttpBinding(
        service_name=method.containing_service.name,
        method_name=method.name,
        full_name=f"{method.containing_service.full_name}/{method.name}",
        http_method=rule.method,
        path=path,
        body=rule.body,
        success_status=status,
        request_class=message_factory.GetMessageClass(request),
        response_class=message_factory.GetMessageClass(response),
        path_fields=tuple(path_fields),
        query_fields=tuple(query_fields),
        body_field=body_field,
        mask_field=mask_field,
    )
