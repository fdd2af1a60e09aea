"""Reading the JSON body: size limit, media type, strict decoding."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from admin_api.transports.rest.problems import (
    MALFORMED_JSON,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    Problem,
    invalid,
)

MAX_BODY_BYTES = 1024 * 1024


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 as soon as it passes the limit (never buffered whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json_object(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """An empty body is `{}`; anything else must be a UTF-8 JSON object sent as JSON."""
    if not raw.strip():
        return {}
    _check_media_type(content_type)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, MALFORMED_JSON, "The body is not valid UTF-8.") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except _DuplicateKey as error:
        raise invalid(f"key {error.key!r} appears twice in one object", error.key) from None
    except (ValueError, RecursionError) as error:
        raise Problem(400, MALFORMED_JSON, f"The body is not valid JSON: {_short(error)}") from None
    if not isinstance(value, dict):
        raise Problem(400, MALFORMED_JSON, "The body must be a JSON object.")
    return value


def _check_media_type(content_type: str | None) -> None:
    if content_type is None:
        raise Problem(415, UNSUPPORTED_MEDIA_TYPE, "Send the body with Content-Type: application/json.")
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise Problem(
            415, UNSUPPORTED_MEDIA_TYPE, f"Content-Type {media_type!r} is not supported; use application/json."
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Problem(415, UNSUPPORTED_MEDIA_TYPE, "Only the UTF-8 charset is supported.")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _short(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error)


def _too_large(limit: int) -> Problem:
    return Problem(413, PAYLOAD_TOO_LARGE, f"The body is larger than {limit} bytes.")
