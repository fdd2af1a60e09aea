"""An API's upstream settings (how Envoy reaches its endpoints), checked on the way in."""

from __future__ import annotations

import math

from cryptography import x509

from admin_api.errors import InvalidArgument
from portcullis.admin.v1 import admin_pb2

MAX_TIMEOUT_SECONDS = 3600.0
MAX_CONNECT_TIMEOUT_SECONDS = 60.0
MIN_TIMEOUT_SECONDS = 0.001  # Envoy's durations are milliseconds at best here
MAX_CA_BUNDLE_BYTES = 256 * 1024


def _seconds(value: float, most: float, field: str) -> None:
    if value == 0:
        return  # the default
    if not math.isfinite(value) or not MIN_TIMEOUT_SECONDS <= value <= most:
        raise InvalidArgument(f"{field} must be between {MIN_TIMEOUT_SECONDS} and {most:g} seconds "
                              f"(0: the default)", field=field)


def _ca_bundle(pem: str, field: str) -> None:
    if not pem:
        return
    if len(pem.encode()) > MAX_CA_BUNDLE_BYTES:
        raise InvalidArgument(f"{field} is larger than {MAX_CA_BUNDLE_BYTES // 1024} KiB", field=field)
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not a PEM bundle of X.509 certificates: {exc}", field=field) from None
    if not certificates:
        raise InvalidArgument(f"{field} holds no certificate", field=field)


def upstream(given: admin_pb2.UpstreamConfig, field: str = "upstream") -> admin_pb2.UpstreamConfig:
    """The settings as stored: checked, with the bundle's surrounding blanks dropped."""
    _seconds(given.timeout_seconds, MAX_TIMEOUT_SECONDS, f"{field}.timeout_seconds")
    _seconds(given.connect_timeout_seconds, MAX_CONNECT_TIMEOUT_SECONDS, f"{field}.connect_timeout_seconds")
    checked = admin_pb2.UpstreamConfig()
    checked.CopyFrom(given)
    checked.ca_bundle_pem = given.ca_bundle_pem.strip()
    if checked.ca_bundle_pem:
        checked.ca_bundle_pem += "\n"
    _ca_bundle(checked.ca_bundle_pem, f"{field}.ca_bundle_pem")
    return checked
