"""Resource templates compiled into matchers: method + path template → most specific wins.

Templates (relative to the API's base path): literal segments, `{name}` for exactly one
non-empty segment, and a final `*` for any remainder (zero or more segments); `/*` alone
matches every path. When several resources match, the most specific wins, compared
segment by segment from the left: literal beats `{param}` beats `*`; then a template that
ends exactly beats one whose `*` matched nothing; then a named method beats `*`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from authz_server.index.errors import PolicyError

# Ranks of what consumed a path segment; bigger is more specific.
_RANK_WILDCARD = 1
_RANK_PARAM = 2
_RANK_LITERAL = 3

_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.-]*\}")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"})
_LITERAL, _PARAM_KIND = "literal", "param"


def split_path(path: str) -> tuple[str, ...]:
    """`/a/b/` → ("a", "b"); `/` and "" → (). A trailing slash is not a segment."""
    segments = path.split("/")[1:] if path.startswith("/") else path.split("/")
    if segments and segments[-1] == "":
        segments.pop()
    return tuple(segments)


@dataclass(frozen=True)
class ResourceMatcher:
    method: str                              # upper case, or "*"
    template: str                            # as configured, for logs and metadata
    parts: tuple[tuple[str, str], ...]       # (kind, literal text) per fixed segment
    trailing_wildcard: bool
    open: bool
    scopes: tuple[str, ...]
    throttling_policy: str = ""              # an API-kind policy's name; "": none

    def specificity(self, method: str, segments: Sequence[str]) -> tuple[int, ...] | None:
        """None when this resource does not match; else a key where bigger is more specific."""
        if self.method != "*" and self.method != method:
            return None
        fixed = len(self.parts)
        if len(segments) < fixed or (len(segments) > fixed and not self.trailing_wildcard):
            return None
        ranks: list[int] = []
        for (kind, text), segment in zip(self.parts, segments):
            if kind == _LITERAL:
                if segment != text:
                    return None
                ranks.append(_RANK_LITERAL)
            else:
                if segment == "":
                    return None
                ranks.append(_RANK_PARAM)
        ranks.extend(_RANK_WILDCARD for _ in segments[fixed:])
        ends_exactly = 0 if self.trailing_wildcard else 1
        ranks.append(ends_exactly)
        ranks.append(0 if self.method == "*" else 1)
        return tuple(ranks)


def compile_resource(method: str, template: str, *, open: bool = False, scopes: Sequence[str] = (),
                     throttling_policy: str = "") -> ResourceMatcher:
    method = (method or "*").strip().upper()
    if method not in _METHODS:
        raise PolicyError(f"resource method {method!r} is not one of {sorted(_METHODS)}")
    if not template.startswith("/"):
        raise PolicyError(f"resource path {template!r} must start with '/'")
    segments = split_path(template)
    trailing = bool(segments) and segments[-1] == "*"
    fixed = segments[:-1] if trailing else segments
    parts: list[tuple[str, str]] = []
    for segment in fixed:
        if segment == "*":
            raise PolicyError(f"resource path {template!r}: '*' is only allowed as the last segment")
        if _PARAM.fullmatch(segment):
            parts.append((_PARAM_KIND, ""))
        elif "{" in segment or "}" in segment or "*" in segment:
            raise PolicyError(f"resource path {template!r}: segment {segment!r} is neither literal nor {{name}}")
        elif segment == "":
            raise PolicyError(f"resource path {template!r} has an empty segment")
        else:
            parts.append((_LITERAL, segment))
    return ResourceMatcher(
        method=method,
        template=template,
        parts=tuple(parts),
        trailing_wildcard=trailing,
        open=open,
        scopes=tuple(scopes),
        throttling_policy=throttling_policy,
    )


def best_match(resources: Sequence[ResourceMatcher], method: str, segments: Sequence[str]) -> ResourceMatcher | None:
    best: ResourceMatcher | None = None
    best_key: tuple[int, ...] | None = None
    for resource in resources:
        key = resource.specificity(method, segments)
        if key is not None and (best_key is None or key > best_key):
            best, best_key = resource, key
    return best
