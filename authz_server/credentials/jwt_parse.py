"""Reading a JWS compact token WITHOUT trusting it: only to learn `iss`, `alg`, `kid`.

Nothing read here is believed until PyJWT has verified the signature; this module only
refuses what is not a well-formed JWS (wrong number of segments, non-base64url, JSON that
is not an object, duplicate member names, a huge token) before any lookup is made.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from authz_server.denials import CredentialUnsupported, TokenMalformed

MAX_TOKEN_LENGTH = 16 * 1024
# RFC 6750 §2.1 b64token: what a bearer token may contain at all.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class UnverifiedJwt:
    header: Mapping[str, Any]
    claims: Mapping[str, Any]


def check_bearer_syntax(token: str) -> None:
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenMalformed(f"The bearer token is longer than {MAX_TOKEN_LENGTH} characters.")
    if not _B64TOKEN.fullmatch(token):
        raise TokenMalformed("The bearer token contains characters a bearer token may not contain.")


def looks_like_jwt(token: str) -> bool:
    """A JWS/JWE compact token starts with base64url of '{"' and has dots; anything else is opaque."""
    return token.startswith("eyJ") and "." in token


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate member {name!r}")
        result[name] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _segment(text: str, what: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenMalformed(f"The token's {what} is not base64url.")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_segment(text, what).decode("utf-8"), object_pairs_hook=_no_duplicates,
                           parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenMalformed(f"The token's {what} is not a JSON object.") from None
    if not isinstance(value, dict):
        raise TokenMalformed(f"The token's {what} is not a JSON object.")
    return value


def parse_unverified(token: str) -> UnverifiedJwt:
    parts = token.split(".")
    if len(parts) == 5:
        raise CredentialUnsupported("Encrypted JWTs (JWE) are not accepted as access tokens.")
    if len(parts) != 3:
        raise TokenMalformed("The token is not a signed JWT (header.payload.signature).")
    # An empty signature is let through here on purpose: `alg: none` tokens have one, and
    # they must be refused as token_algorithm_not_allowed by the algorithm check.
    header = _json_object(parts[0], "header")
    claims = _json_object(parts[1], "payload")
    _segment(parts[2], "signature")
    return UnverifiedJwt(header=header, claims=claims)
