"""What makes a key manager's fields valid: each field on its own (certificates, token
format patterns, claim names, algorithms, leeway) and the cross-field rules of a row as it
would be stored. Pure functions: no database, no I/O; every failure is InvalidArgument
naming the field."""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from portcullis_shared.token_format import TokenFormat, TokenFormatError

from admin_api import presets
from admin_api.db import models
from admin_api.errors import InvalidArgument
from portcullis.admin.v1 import key_managers_pb2

KmType = key_managers_pb2.KeyManager.Type

CLAIM_RE = re.compile(r"[A-Za-z0-9_:./-]{1,100}")
MAX_PATTERN = 500
MAX_PEM = 64 * 1024


def check_cross_fields(row: models.KeyManager, prefix: str) -> None:
    """Cross-field rules, on the row as it would be stored."""
    if row.type == KmType.Name(KmType.RESIDENT):
        _roles_never_both(row, prefix)
        return
    if not row.issuer:
        raise InvalidArgument(f"{prefix}.issuer is required (give it, or a discovery_url that provides it)",
                              field=f"{prefix}.issuer")
    if not row.accepts_jwt and not row.accepts_reference_tokens:
        raise InvalidArgument(f"{prefix}.token_handling must accept JWTs, reference tokens or both",
                              field=f"{prefix}.token_handling")
    if row.accepts_jwt and not (row.jwks_uri or row.certificate_pem):
        raise InvalidArgument(f"{prefix}: a key manager that accepts JWTs needs jwks_uri or certificate_pem",
                              field=f"{prefix}.jwks_uri")
    if row.accepts_reference_tokens and not row.introspection_endpoint:
        raise InvalidArgument(f"{prefix}: a key manager that accepts reference tokens needs an "
                              "introspection_endpoint", field=f"{prefix}.introspection_endpoint")
    if row.introspection_client_secret_encrypted is not None and not row.introspection_client_id:
        raise InvalidArgument(f"{prefix}.introspection_client_id is required with an introspection client secret",
                              field=f"{prefix}.introspection_client_id")
    if row.consumer_app_creation_enabled and not row.registration_endpoint:
        raise InvalidArgument(f"{prefix}: consumer_app_creation_enabled needs a registration_endpoint "
                              "(RFC 7591 Dynamic Client Registration)", field=f"{prefix}.registration_endpoint")
    _roles_never_both(row, prefix)


def _roles_never_both(row: models.KeyManager, prefix: str) -> None:
    if row.key_generation_allowed_roles and row.key_generation_denied_roles:
        raise InvalidArgument(
            f"{prefix}: key_generation_allowed_roles and key_generation_denied_roles are never both set: "
            "restrict key generation by an ALLOW list or a DENY list of roles, not both",
            field=f"{prefix}.key_generation_denied_roles")


def bounded_text(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters", field=field)
    return value


def certificate(value: str, field: str) -> str:
    """A PEM X.509 certificate or public key (refused when it parses as neither)."""
    if not value:
        return value
    if len(value) > MAX_PEM:
        raise InvalidArgument(f"{field} is longer than {MAX_PEM} characters", field=field)
    data = value.encode()
    try:
        x509.load_pem_x509_certificate(data)
        return value
    except ValueError:
        pass
    try:
        load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidArgument(f"{field} is neither a PEM X.509 certificate nor a PEM public key",
                              field=field) from None
    return value


def pattern(value: str, field: str) -> str:
    if len(value) > MAX_PATTERN:
        raise InvalidArgument(f"{field} is longer than {MAX_PATTERN} characters", field=field)
    try:
        TokenFormat(value)
    except TokenFormatError as exc:
        # The same engine authz_server matches with (linear time, no backtracking).
        raise InvalidArgument(f"{field} {value!r} is not a valid regular expression for RE2, the linear-time "
                              f"engine tokens are matched with ({exc}); backreferences and lookarounds are not "
                              "supported", field=field) from None
    return value


def claim(value: str, field: str) -> str:
    if value and not CLAIM_RE.fullmatch(value):
        raise InvalidArgument(f"{field} {value!r} must be a claim name (letters, digits, '_:./-')", field=field)
    return value


def algorithms(values: list[str], field: str) -> list[str]:
    if not values:
        return list(presets.DEFAULT_ALGORITHMS)
    result: list[str] = []
    for value in values:
        if value.lower() == "none" or value.upper().startswith("HS"):
            raise InvalidArgument(f"{field}: {value!r} is never accepted (no 'none', no HMAC algorithms: a key "
                                  "manager's keys are public)", field=field)
        if value not in presets.KNOWN_ALGORITHMS:
            raise InvalidArgument(f"{field}: unknown algorithm {value!r} (known: "
                                  f"{', '.join(sorted(presets.KNOWN_ALGORITHMS))})", field=field)
        if value not in result:
            result.append(value)
    return result


def leeway(value: int, field: str) -> int:
    if value == 0:
        return presets.DEFAULT_LEEWAY_SECONDS
    if not 0 < value <= presets.MAX_LEEWAY_SECONDS:
        raise InvalidArgument(f"{field} {value} must be between 1 and {presets.MAX_LEEWAY_SECONDS} "
                              f"(0: the default {presets.DEFAULT_LEEWAY_SECONDS})", field=field)
    return value
