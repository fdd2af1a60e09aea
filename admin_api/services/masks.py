"""Update masks: which fields an Update call changes."""

from __future__ import annotations

from google.protobuf.field_mask_pb2 import FieldMask

from admin_api.errors import InvalidArgument


def paths(mask: FieldMask, *, mutable: frozenset[str], immutable: frozenset[str]) -> list[str]:
    """The mask's paths, each a mutable top-level field; anything else is an error."""
    allowed = ", ".join(sorted(mutable))
    if not mask.paths:
        raise InvalidArgument(f"update_mask must name the fields to change (any of: {allowed})",
                              field="update_mask")
    result: list[str] = []
    for path in mask.paths:
        if path in immutable:
            raise InvalidArgument(f"update_mask: {path} cannot be changed", field="update_mask")
        if path not in mutable:
            raise InvalidArgument(f"update_mask: unknown or nested field {path!r} (allowed: {allowed})",
                                  field="update_mask")
        if path not in result:
            result.append(path)
    return result
