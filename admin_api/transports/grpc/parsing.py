"""Reading an admin gRPC request strictly, as the REST layer reads JSON.

grpc's own deserialization failure is an INTERNAL error; and protobuf keeps what it does
not know (unknown field numbers, a known number with the wrong wire type, an unknown
value of a closed enum) as unknown fields and goes on. A client that sent a field the
server ignores believes something was set that was not, so both are refused as
INVALID_ARGUMENT, naming the field numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from admin_api.errors import InvalidArgument


@dataclass(frozen=True)
class Unparseable:
    """What the deserializer hands on for bytes that are not the expected message."""

    type_name: str


def lenient_parser(message_class: type[Message]):
    """A request deserializer that never raises: bad bytes become `Unparseable`, so the
    handler can authenticate first and then answer INVALID_ARGUMENT."""

    def parse(data: bytes) -> Message | Unparseable:
        try:
            return message_class.FromString(data)
        except (DecodeError, RuntimeError, ValueError):
            return Unparseable(message_class.DESCRIPTOR.full_name)

    return parse


def _unknown_paths(message: Message, prefix: str = "") -> list[str]:
    paths = [f"{prefix}#{field.field_number}" for field in UnknownFieldSet(message)]
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        where = f"{prefix}{field.name}"
        if field.is_repeated:
            for index, item in enumerate(value):
                paths.extend(_unknown_paths(item, f"{where}[{index}]."))
        else:
            paths.extend(_unknown_paths(value, f"{where}."))
    return paths


def require_known(request: Message | Unparseable) -> Message:
    """The request, or InvalidArgument when it did not parse or carries unknown fields."""
    if isinstance(request, Unparseable):
        raise InvalidArgument(f"the request is not a valid {request.type_name} message")
    unknown = _unknown_paths(request)
    if unknown:
        shown = ", ".join(unknown[:10])
        raise InvalidArgument(f"the request has fields this server does not know (field numbers: {shown}); "
                              f"nothing was changed")
    return request
