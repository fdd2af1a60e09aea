"""BackendJwtConfig: validated when an API is created or updated, defaults filled in.

A broken configuration is refused here, loudly, rather than becoming a denial later:
the header must be a plain request header that nothing else owns (not hop-by-hop, not a
pseudo-header, not Portcullis's own `x-portcullis-*`, not the API key header), the
validity within bounds, and no mapped or static claim may replace a claim Portcullis sets.
"""

from __future__ import annotations

import re

from admin_api.backend_jwt.keys import check_algorithm
from admin_api.errors import InvalidArgument
from admin_api.services import validation
from portcullis.admin.v1 import admin_pb2
from portcullis_shared import backend_jwt as contract

MAX_CLAIMS = 50
MAX_STATIC_VALUE_CHARS = 1000
CLAIM_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/@-]{0,99}")

# Headers a backend JWT may not travel in: hop-by-hop (RFC 9110 §7.6.1) and headers
# whose meaning belongs to HTTP, to Envoy or to the caller's credential.
FORBIDDEN_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "trailers", "transfer-encoding",
    "upgrade", "proxy-authenticate", "proxy-authorization", "host", "content-length", "content-type",
    "content-encoding", "authorization", "cookie", "set-cookie", "forwarded", "x-forwarded-for",
    "x-forwarded-host", "x-forwarded-proto", "x-request-id", "expect", "via",
})
FORBIDDEN_PREFIXES = ("x-portcullis-", "x-envoy-", ":")


def _header(value: str, field: str, api_key_header: str | None) -> str:
    if value.startswith(":"):
        raise InvalidArgument(f"{field} {value!r} is a pseudo-header", field=field)
    name = validation.header_name(value or contract.DEFAULT_HEADER, field)
    if name in FORBIDDEN_HEADERS:
        raise InvalidArgument(f"{field} {name!r} is a hop-by-hop or reserved header", field=field)
    if name.startswith(FORBIDDEN_PREFIXES):
        raise InvalidArgument(f"{field} {name!r} uses a reserved prefix ({', '.join(FORBIDDEN_PREFIXES[:2])})",
                              field=field)
    if api_key_header is not None and name == api_key_header:
        raise InvalidArgument(f"{field} {name!r} is the API key header, which never reaches the backend",
                              field=field)
    return name


def _claim_name(value: str, field: str, *, taken: set[str]) -> str:
    if not CLAIM_NAME_RE.fullmatch(value):
        raise InvalidArgument(f"{field} {value!r} must be 1 to 100 letters, digits or _.:/@- "
                              "(not starting with a punctuation mark)", field=field)
    if value in contract.RESERVED_CLAIMS:
        raise InvalidArgument(f"{field} {value!r} is a claim Portcullis sets itself "
                              f"({', '.join(sorted(contract.RESERVED_CLAIMS))})", field=field)
    if value in taken:
        raise InvalidArgument(f"{field} {value!r} is given twice", field=field)
    taken.add(value)
    return value


def backend_jwt(given: admin_pb2.BackendJwtConfig, field: str,
                api_key_header: str | None) -> admin_pb2.BackendJwtConfig:
    """The configuration to store: validated, defaults filled in (also when disabled, so
    that switching it on later keeps what was set)."""
    validity = given.validity_seconds or contract.DEFAULT_VALIDITY_SECONDS
    if not contract.MIN_VALIDITY_SECONDS <= validity <= contract.MAX_VALIDITY_SECONDS:
        raise InvalidArgument(f"{field}.validity_seconds must be between {contract.MIN_VALIDITY_SECONDS} and "
                              f"{contract.MAX_VALIDITY_SECONDS}, not {validity}", field=f"{field}.validity_seconds")
    if len(given.claim_mappings) + len(given.static_claims) > MAX_CLAIMS:
        raise InvalidArgument(f"{field}: at most {MAX_CLAIMS} mapped and static claims in all", field=field)
    result = admin_pb2.BackendJwtConfig(
        enabled=given.enabled,
        header=_header(given.header, f"{field}.header", api_key_header),
        validity_seconds=validity,
        algorithm=check_algorithm(given.algorithm, f"{field}.algorithm"),
        include_on_open_resources=given.include_on_open_resources,
    )
    taken: set[str] = set()
    for i, mapping in enumerate(given.claim_mappings):
        item = f"{field}.claim_mappings[{i}]"
        source = mapping.from_claim
        if not CLAIM_NAME_RE.fullmatch(source):
            raise InvalidArgument(f"{item}.from_claim {source!r} must be a claim name", field=f"{item}.from_claim")
        target = _claim_name(mapping.to_claim or source, f"{item}.to_claim", taken=taken)
        result.claim_mappings.add(from_claim=source, to_claim=target)
    for i, claim in enumerate(given.static_claims):
        item = f"{field}.static_claims[{i}]"
        name = _claim_name(claim.name, f"{item}.name", taken=taken)
        if len(claim.value) > MAX_STATIC_VALUE_CHARS or any(c < " " or c == "\x7f" for c in claim.value):
            raise InvalidArgument(f"{item}.value must be at most {MAX_STATIC_VALUE_CHARS} printable characters",
                                  field=f"{item}.value")
        result.static_claims.add(name=name, value=claim.value)
    return result
