"""Field checks shared by the services. Each raises InvalidArgument naming the field."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

from admin_api.errors import InvalidArgument

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,29}")
CONTEXT_SEGMENT_RE = re.compile(r"[A-Za-z0-9._~-]+")
TIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SUBJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:+-]{0,199}")
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
QUERY_PARAM_RE = re.compile(r"[A-Za-z0-9._~-]{1,100}")
PATH_LITERAL_RE = re.compile(r"[A-Za-z0-9._~!$&'()+,;=:@%-]+")
PATH_PARAM_RE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
HOST_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

VERSION_PLACEHOLDER = "{version}"
RESERVED_FIRST_SEGMENT = "t"   # /t/<organization>/... belongs to that organization
DEFAULT_ORGANIZATION = "default"
DOT_SEGMENTS = frozenset({".", ".."})
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"})
# Header names a client cannot pass end to end, so neither an API key nor a backend JWT
# can travel in them: hop-by-hop headers (RFC 9110 section 7.6.1), which every proxy
# drops or rewrites, and the ones Envoy owns (it sets, appends to or checks them).
UNUSABLE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect",
    "forwarded", "via", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
    "x-forwarded-client-cert", "x-real-ip", "x-request-id",
})
UNUSABLE_HEADER_PREFIX = "x-envoy-"
# Decoded, these characters split or end a path segment: a literal holding them can
# never equal a segment of a request path (authz_server refuses such requests with 400).
SEGMENT_BREAKERS = ("/", "\\", "\x00")
MAX_DESCRIPTION = 2000
MAX_CONTEXT = 200
MAX_RESOURCES = 500
MAX_RESTRICTIONS = 100


def required(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} is required", field=field)
    return value


def name(value: str, field: str = "name") -> str:
    required(value, field)
    if not NAME_RE.fullmatch(value):
        raise InvalidArgument(
            f"{field} {value!r} must be 1 to 100 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit", field=field)
    return value


def version(value: str, field: str = "version") -> str:
    required(value, field)
    if not VERSION_RE.fullmatch(value):
        raise InvalidArgument(
            f"{field} {value!r} must be 1 to 30 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit", field=field)
    return value


def tier(value: str, field: str) -> str:
    if not TIER_RE.fullmatch(value):
        raise InvalidArgument(f"{field} {value!r} must be 1 to 100 letters, digits, '.', '_' or '-'", field=field)
    return value


def subject(value: str, field: str) -> str:
    if not SUBJECT_RE.fullmatch(value):
        raise InvalidArgument(f"{field} {value!r} must be 1 to 200 letters, digits or '@._:+-'", field=field)
    return value


def description(value: str, field: str = "description") -> str:
    if len(value) > MAX_DESCRIPTION:
        raise InvalidArgument(f"{field} is longer than {MAX_DESCRIPTION} characters", field=field)
    return value


def context(value: str, field: str = "context") -> str:
    """`/segment/...`: URL-safe segments, optionally one `{version}` segment; no trailing
    slash, no `.` or `..` segment. The rules on the path it serves (`/t/` reserved) are
    checked by base_path, after `{version}` is substituted."""
    required(value, field)
    if len(value) > MAX_CONTEXT:
        raise InvalidArgument(f"{field} is longer than {MAX_CONTEXT} characters", field=field)
    if not value.startswith("/") or value == "/" or value.endswith("/"):
        raise InvalidArgument(f"{field} {value!r} must start with '/' and not end with '/', as in '/pizzashack'",
                              field=field)
    segments = value[1:].split("/")
    for segment in segments:
        if segment != VERSION_PLACEHOLDER and not CONTEXT_SEGMENT_RE.fullmatch(segment):
            raise InvalidArgument(
                f"{field} {value!r} has an invalid segment {segment!r}: use letters, digits, '.', '_', '~', '-' "
                f"or a whole '{VERSION_PLACEHOLDER}' segment", field=field)
        if segment in DOT_SEGMENTS:
            # Envoy collapses `/a/..` before routing, so such a base path could never be reached.
            raise InvalidArgument(f"{field} {value!r} has a {segment!r} segment, which no request can reach",
                                  field=field)
    if segments.count(VERSION_PLACEHOLDER) > 1:
        raise InvalidArgument(f"{field} {value!r} may contain '{VERSION_PLACEHOLDER}' once", field=field)
    if segments[0] == RESERVED_FIRST_SEGMENT:
        raise InvalidArgument(f"{field} {value!r} must not start with '/t/' (reserved for organizations)",
                              field=field)
    return value


def base_path(context_value: str, version_value: str, organization_id: str, field: str = "context") -> str:
    """Where the API is served: the context with `{version}` substituted (or the version
    appended unless the context already ends with it), under `/t/<organization>` outside
    the default organization. The path rules hold for the result, not only for the
    context: version `t` in `/{version}/orgb/...` would otherwise land in `/t/orgb`."""
    if VERSION_PLACEHOLDER in context_value:
        path = context_value.replace(VERSION_PLACEHOLDER, version_value)
    elif context_value.endswith("/" + version_value):
        path = context_value
    else:
        path = f"{context_value}/{version_value}"
    segments = path[1:].split("/")
    if segments[0] == RESERVED_FIRST_SEGMENT:
        raise InvalidArgument(
            f"{field} {context_value!r} with version {version_value!r} gives the base path {path!r}, which "
            "starts with '/t/' (reserved for organizations)", field=field)
    for segment in segments:
        if segment in DOT_SEGMENTS or not CONTEXT_SEGMENT_RE.fullmatch(segment):
            raise InvalidArgument(
                f"{field} {context_value!r} with version {version_value!r} gives the base path {path!r}, "
                f"whose segment {segment!r} no request can reach", field=field)
    return path if organization_id == DEFAULT_ORGANIZATION else f"/t/{organization_id}{path}"


def organization_prefix(organization_id: str) -> str:
    """The path namespace of an organization's APIs ("" for the default organization)."""
    return "" if organization_id == DEFAULT_ORGANIZATION else f"/t/{organization_id}"


def endpoint(value: str, field: str) -> str:
    """An http(s) URL with a host; empty means "no endpoint for this environment"."""
    if value == "":
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidArgument(f"{field} {value!r} is not a valid URL: {exc}", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"{field} {value!r} must be an http:// or https:// URL with a host", field=field)
    if parts.username is not None or parts.fragment or any(c.isspace() for c in value):
        raise InvalidArgument(f"{field} {value!r} must not contain credentials, a fragment or spaces", field=field)
    return value


def resource_path(value: str, field: str) -> str:
    """`/literal/{param}/...`, optionally ending in `/*`; `/*` alone matches everything."""
    if not value.startswith("/"):
        raise InvalidArgument(f"{field} {value!r} must start with '/'", field=field)
    if value == "/":
        return value
    segments = value[1:].split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "*" and last:
            continue
        if not (PATH_LITERAL_RE.fullmatch(segment) or PATH_PARAM_RE.fullmatch(segment)):
            raise InvalidArgument(
                f"{field} {value!r} has an invalid segment {segment!r}: use literals, '{{name}}' "
                "or a final '*'", field=field)
        _reachable_literal(value, segment, field)
    return value


def _reachable_literal(value: str, segment: str, field: str) -> None:
    """Refuse a literal no request path can hold: one that decodes to a `/`, `\\` or NUL
    (`%2F`: Envoy refuses escaped slashes, authz_server encoded ones), or to a dot
    segment, also before a `;` (requests with those are refused with 400)."""
    decoded = unquote(segment)
    if any(breaker in decoded for breaker in SEGMENT_BREAKERS):
        raise InvalidArgument(
            f"{field} {value!r} has the segment {segment!r}, which decodes to a '/', '\\' or NUL: no request "
            "can match it (write the path as separate segments)", field=field)
    if decoded.split(";", 1)[0] in DOT_SEGMENTS:
        raise InvalidArgument(
            f"{field} {value!r} has the dot segment {segment!r}: requests with one are refused, so no request "
            "can match it", field=field)


def http_method(value: str, field: str) -> str:
    method = value.upper()
    if method not in HTTP_METHODS:
        raise InvalidArgument(f"{field} {value!r} must be one of {', '.join(sorted(HTTP_METHODS))}", field=field)
    return method


def header_name(value: str, field: str) -> str:
    """A header name a client can send and Envoy passes on: not hop-by-hop, not Envoy's own."""
    if not HEADER_NAME_RE.fullmatch(value):
        raise InvalidArgument(f"{field} {value!r} is not a valid HTTP header name", field=field)
    lowered = value.lower()
    if lowered in UNUSABLE_HEADERS or lowered.startswith(UNUSABLE_HEADER_PREFIX):
        raise InvalidArgument(
            f"{field} {value!r} is a hop-by-hop header or one Envoy sets or rewrites (Host, Connection, "
            "X-Forwarded-For, x-envoy-*, ...): it does not reach the gateway's decision unchanged; "
            "choose another name", field=field)
    return lowered


def query_param(value: str, field: str) -> str:
    if not QUERY_PARAM_RE.fullmatch(value):
        raise InvalidArgument(f"{field} {value!r} must be letters, digits, '.', '_', '~' or '-'", field=field)
    return value


def ip_restrictions(values: list[str], field: str = "allowed_ips") -> list[str]:
    """IPv4/IPv6 addresses or CIDR ranges, normalized (host bits of a range are dropped)."""
    _bounded(values, field)
    normalized: list[str] = []
    for value in values:
        text = value.strip()
        try:
            item = str(ipaddress.ip_network(text, strict=False)) if "/" in text else str(ipaddress.ip_address(text))
        except ValueError:
            raise InvalidArgument(f"{field}: {value!r} is not an IPv4 or IPv6 address or CIDR range",
                                  field=field) from None
        if item not in normalized:
            normalized.append(item)
    return normalized


def referrer_restrictions(values: list[str], field: str = "allowed_referrers") -> list[str]:
    """`host/path` (exact), `host/*` (any path), `host/docs/*` (paths under /docs),
    `*.domain/...` (any subdomain); no scheme or port. Hosts are lower-cased. The same
    patterns as authz_server's (authz_server.index.referrers)."""
    _bounded(values, field)
    normalized: list[str] = []
    for value in values:
        item = _referrer(value.strip(), field)
        if item not in normalized:
            normalized.append(item)
    return normalized


def _referrer(value: str, field: str) -> str:
    problem = (f"{field}: {value!r} must look like 'www.example.com/path', 'sub.example.com/*', "
               "'www.example.com/docs/*' or '*.example.com/*' (no scheme, no port)")
    host, slash, path = value.partition("/")
    if not slash or "://" in value or any(c.isspace() for c in value):
        raise InvalidArgument(problem, field=field)
    host = host.lower()
    labels = host.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 2:
            raise InvalidArgument(f"{field}: {value!r} needs a domain of two labels or more after '*.'", field=field)
    if not labels or not all(HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidArgument(problem, field=field)
    prefix = path[:-1] if path == "*" or path.endswith("/*") else path
    if "*" in prefix or not all(PATH_LITERAL_RE.fullmatch(s) for s in prefix.split("/") if s):
        raise InvalidArgument(problem + "; '*' is only allowed as the last segment", field=field)
    return f"{host}/{path}"


def _bounded(values: list[str], field: str) -> None:
    if len(values) > MAX_RESTRICTIONS:
        raise InvalidArgument(f"{field} has more than {MAX_RESTRICTIONS} entries", field=field)


ROLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:/-]{0,99}")
MAX_ROLES = 100


def roles(values: list[str], field: str) -> list[str]:
    """Role names (letters, digits, '@._:/-'), duplicates dropped, order kept."""
    _bounded_to(values, field, MAX_ROLES)
    result: list[str] = []
    for value in values:
        if not ROLE_RE.fullmatch(value):
            raise InvalidArgument(f"{field}: role {value!r} must be 1 to 100 letters, digits or '@._:/-', "
                                  "starting with a letter or digit", field=field)
        if value not in result:
            result.append(value)
    return result


def _bounded_to(values: list[str], field: str, limit: int) -> None:
    if len(values) > limit:
        raise InvalidArgument(f"{field} has more than {limit} entries", field=field)
