"""How one protobuf field looks in JSON: the single table the request checker and the
OpenAPI generator both read, so that what the schema promises is what the server takes.

Only the JSON shapes the admin protos need are supported; anything else (Struct, Any,
wrappers, ...) is refused when the app is built, loudly, rather than mapped by guess.
"""

from __future__ import annotations

from enum import Enum

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_T = FieldDescriptor


class Kind(str, Enum):
    STRING = "string"
    BYTES = "bytes"
    BOOL = "bool"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"      # a JSON string of digits on output (proto JSON), string or number on input
    UINT64 = "uint64"
    FLOAT = "float"
    DOUBLE = "double"
    ENUM = "enum"        # the value's name
    MESSAGE = "message"  # an object, checked field by field
    TIMESTAMP = "timestamp"    # RFC 3339 string
    DURATION = "duration"      # "1.5s"
    FIELD_MASK = "field_mask"  # "a,b.c"
    EMPTY = "empty"            # {}


class UnsupportedField(TypeError):
    """A proto field whose JSON mapping this layer does not implement."""


_SCALAR_KINDS = {
    _T.TYPE_STRING: Kind.STRING,
    _T.TYPE_BYTES: Kind.BYTES,
    _T.TYPE_BOOL: Kind.BOOL,
    _T.TYPE_INT32: Kind.INT32,
    _T.TYPE_SINT32: Kind.INT32,
    _T.TYPE_SFIXED32: Kind.INT32,
    _T.TYPE_UINT32: Kind.UINT32,
    _T.TYPE_FIXED32: Kind.UINT32,
    _T.TYPE_INT64: Kind.INT64,
    _T.TYPE_SINT64: Kind.INT64,
    _T.TYPE_SFIXED64: Kind.INT64,
    _T.TYPE_UINT64: Kind.UINT64,
    _T.TYPE_FIXED64: Kind.UINT64,
    _T.TYPE_FLOAT: Kind.FLOAT,
    _T.TYPE_DOUBLE: Kind.DOUBLE,
    _T.TYPE_ENUM: Kind.ENUM,
}

_WELL_KNOWN = {
    "google.protobuf.Timestamp": Kind.TIMESTAMP,
    "google.protobuf.Duration": Kind.DURATION,
    "google.protobuf.FieldMask": Kind.FIELD_MASK,
    "google.protobuf.Empty": Kind.EMPTY,
}

INTEGER_RANGES = {
    Kind.INT32: (-(2**31), 2**31 - 1),
    Kind.UINT32: (0, 2**32 - 1),
    Kind.INT64: (-(2**63), 2**63 - 1),
    Kind.UINT64: (0, 2**64 - 1),
}

# Scalar kinds a path segment or a query parameter can carry.
TEXT_KINDS = frozenset(
    {Kind.STRING, Kind.BOOL, Kind.INT32, Kind.UINT32, Kind.INT64, Kind.UINT64,
     Kind.FLOAT, Kind.DOUBLE, Kind.ENUM, Kind.TIMESTAMP, Kind.DURATION, Kind.FIELD_MASK}
)


def message_kind(descriptor: Descriptor) -> Kind:
    """MESSAGE for an ordinary message, the special kind for a supported well-known type."""
    kind = _WELL_KNOWN.get(descriptor.full_name)
    if kind is not None:
        return kind
    if descriptor.file.package == "google.protobuf":
        raise UnsupportedField(f"{descriptor.full_name} has no JSON mapping in the REST layer")
    return Kind.MESSAGE


def kind_of(field: FieldDescriptor) -> Kind:
    """The JSON kind of one value of the field (of one element when it is repeated)."""
    if is_map(field):
        raise UnsupportedField(f"map field {field.full_name} is not supported by the REST layer")
    if field.type == _T.TYPE_MESSAGE:
        return message_kind(field.message_type)
    kind = _SCALAR_KINDS.get(field.type)
    if kind is None:
        raise UnsupportedField(f"field {field.full_name} has an unsupported type ({field.type})")
    return kind


def is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == _T.TYPE_MESSAGE
        and field.is_repeated
        and field.message_type.GetOptions().map_entry
    )


def check_supported(descriptor: Descriptor, _seen: set[str] | None = None) -> None:
    """Raise UnsupportedField when any field reachable from the message cannot be mapped."""
    seen = _seen if _seen is not None else set()
    if descriptor.full_name in seen:
        return
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if kind_of(field) is Kind.MESSAGE:
            check_supported(field.message_type, seen)
