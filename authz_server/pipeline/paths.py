"""Strict parsing of the request path and query string (malformed → bad_request).

The path is split into segments first and each segment percent-decoded after, so `%2F`
never creates a segment. Segments that a backend could resolve differently from us are
refused: `.` and `..` (also encoded), a segment whose part before `;` is one of them
(`..;`, `%2e%2e;x`: Envoy leaves it alone, while Tomcat, Spring, Jetty and many proxies
drop the `;...` part and then resolve the dot segment, so `/open/..;/secret` would reach
`/secret` after being decided as `/open/...`), and encoded `/`, `\\` or NUL.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from authz_server.context import QueryParam
from authz_server.denials import BadRequest
from authz_server.index.resources import split_path

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN_IN_SEGMENT = ("/", "\\", "\x00")
_DOT_SEGMENTS = (".", "..")


def percent_decode(text: str, *, plus_is_space: bool = False) -> str:
    if "%" not in text and text.isascii():
        # Nothing to decode (the common case): ASCII without '%' decodes to itself.
        return text.replace("+", " ") if plus_is_space else text
    if _BAD_PERCENT.search(text):
        raise BadRequest("The request contains a malformed percent-encoding.")
    if plus_is_space:
        text = text.replace("+", " ")
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request contains percent-encoded bytes that are not UTF-8.") from None


def split_target(target: str, query: str = "") -> tuple[str, str]:
    """`/a/b?x=1#f` → ("/a/b", "x=1"); Envoy sends the query inside `path`, or in `query`."""
    target = target.split("#", 1)[0]
    path, sep, inline_query = target.partition("?")
    return path, (inline_query if sep else query)


def is_dot_segment(decoded_segment: str) -> bool:
    """`.`, `..`, or either followed by `;parameters` (after percent-decoding)."""
    return decoded_segment.partition(";")[0] in _DOT_SEGMENTS


# Clients call the same few paths over and over: each is parsed once (a refused path is
# never remembered, and raises anew each time).
@lru_cache(maxsize=4096)
def parse_path(raw_path: str) -> tuple[str, ...]:
    if not raw_path.startswith("/"):
        raise BadRequest("The request path must start with '/'.")
    segments = []
    for raw in split_path(raw_path):
        segment = percent_decode(raw)
        if is_dot_segment(segment) or any(ch in segment for ch in _FORBIDDEN_IN_SEGMENT):
            raise BadRequest("The request path contains a dot segment or an encoded separator.")
        segments.append(segment)
    return tuple(segments)


def parse_query(raw_query: str) -> tuple[QueryParam, ...]:
    params = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        params.append(
            QueryParam(
                raw_name=raw_name,
                name=percent_decode(raw_name, plus_is_space=True),
                value=percent_decode(raw_value, plus_is_space=True),
            )
        )
    return tuple(params)
