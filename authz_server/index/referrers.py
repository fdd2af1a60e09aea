"""Referrer restrictions of an API key, matched strictly (no regex built from input).

Patterns: `www.example.com/path` (exact host, exact path), `sub.example.com/*` (exact
host, any path), `www.example.com/docs/*` (exact host, paths under /docs), and
`*.example.com/*` (any subdomain on a label boundary: never `example.com.evil.io`,
`evilexample.com` or the bare `example.com`). A pattern without a path means the root
path only. A scheme or port in a pattern or in the Referer is ignored; hosts compare
case-insensitively, paths case-sensitively; the Referer's query and fragment are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authz_server.index.errors import PolicyError

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_BRACKETED = re.compile(r"\[[0-9A-Fa-f:.]+\]")


def _valid_hostname(host: str) -> bool:
    if _BRACKETED.fullmatch(host):
        return True
    return bool(host) and all(_LABEL.fullmatch(label) for label in host.split("."))


def _split_host_port(authority: str) -> str | None:
    """The lower-cased host of `host`, `host:port`, `[v6]` or `[v6]:port`; None if malformed."""
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[: end + 1], authority[end + 1 :]
    else:
        host, sep, port = authority.partition(":")
        rest = sep + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    host = host.lower()
    return host if _valid_hostname(host) else None


@dataclass(frozen=True)
class ParsedReferer:
    host: str   # lower case
    path: str   # starts with "/"


def parse_referer(value: str) -> ParsedReferer | None:
    """An absolute Referer URL's host and path; None for anything that is not one.

    Userinfo (`user@host`), backslashes, whitespace and control characters are refused
    rather than interpreted: a look-alike must not be read the way a lenient parser would.
    """
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in value):
        return None
    match = _SCHEME.match(value)
    if not match:
        return None
    rest = value[match.end() :]
    end = len(rest)
    for delimiter in "/?#":
        index = rest.find(delimiter)
        if index >= 0:
            end = min(end, index)
    authority, remainder = rest[:end], rest[end:]
    if "@" in authority:
        return None
    host = _split_host_port(authority)
    if host is None:
        return None
    path = remainder
    for delimiter in "?#":
        path = path.split(delimiter, 1)[0]
    return ParsedReferer(host=host, path=path or "/")


@dataclass(frozen=True)
class ReferrerPattern:
    text: str
    host: str               # exact host, or the suffix after "*." for a wildcard
    any_subdomain: bool
    path: str               # exact path, or the prefix before "*" when path_prefix
    path_prefix: bool

    def matches(self, referer: ParsedReferer) -> bool:
        return self._host_matches(referer.host) and self._path_matches(referer.path)

    def _host_matches(self, host: str) -> bool:
        if not self.any_subdomain:
            return host == self.host
        suffix = "." + self.host
        # The label check already refused empty labels, so a non-empty remainder before
        # "." + suffix is one or more whole labels.
        return host.endswith(suffix) and len(host) > len(suffix)

    def _path_matches(self, path: str) -> bool:
        if not self.path_prefix:
            return path == self.path
        # `/docs/*` admits `/docs` itself and anything below it, never `/docsevil`.
        return path.startswith(self.path) or path == self.path.rstrip("/")


def compile_referrer(text: str) -> ReferrerPattern:
    pattern = text.strip()
    match = _SCHEME.match(pattern)
    if match:
        pattern = pattern[match.end() :]
    authority, slash, path = pattern.partition("/")
    path = slash + path if slash else "/"
    wildcard = authority.startswith("*.")
    host = _split_host_port(authority[2:] if wildcard else authority)
    if host is None:
        raise PolicyError(f"referrer pattern {text!r}: the host is not a valid host name")
    if "*" in path[:-1] or "?" in path or "#" in path:
        raise PolicyError(f"referrer pattern {text!r}: '*' is only allowed as the last path character")
    path_prefix = path.endswith("*")
    if path_prefix:
        path = path[:-1]
        if not path.endswith("/"):
            raise PolicyError(f"referrer pattern {text!r}: a path wildcard must follow '/'")
    return ReferrerPattern(text=text, host=host, any_subdomain=wildcard, path=path, path_prefix=path_prefix)


@dataclass(frozen=True)
class ReferrerAllowList:
    patterns: tuple[ReferrerPattern, ...]

    def allows(self, referer: str | None) -> bool:
        if not referer:
            return False
        parsed = parse_referer(referer)
        return parsed is not None and any(pattern.matches(parsed) for pattern in self.patterns)
