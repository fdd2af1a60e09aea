"""`PORTCULLIS_TLS=auto`: a local CA and the mesh's certificates, made with `cryptography`.

Everything goes to `<data dir>/tls/` (the names portcullis_shared.tls.TlsSettings.files
expects): ca.pem (the CA every client trusts), and one certificate and key per identity
(admin, authz, gateway: servers; client: Envoy's and admin_api's client certificate for
authz_server). Server certificates name 127.0.0.1, ::1 and localhost, where the local mesh
is reached. Private keys are written 0600. The CA's own key is kept (0600) so that a
later start can issue again; files that are still valid for a week are reused as they are.

This is for a mesh on one machine. A deployment across machines brings certificates of
its own CA, naming its own hosts, with PORTCULLIS_TLS=on.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=7)
LOCAL_NAMES = ("localhost",)
LOCAL_ADDRESSES = ("127.0.0.1", "::1")
SERVERS = ("admin", "authz", "gateway")
CLIENTS = ("client",)


@dataclass(frozen=True)
class Issued:
    cert_file: Path
    key_file: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Written to a temporary name, then renamed: a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _still_valid(cert_file: Path, key_file: Path, issuer: x509.Certificate | None) -> bool:
    if not (cert_file.is_file() and key_file.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except ValueError:
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    return issuer is None or cert.issuer == issuer.subject


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portcullis local mesh"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ensure_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, bool]:
    cert_file, key_file = directory / "ca.pem", directory / "ca-key.pem"
    if _still_valid(cert_file, key_file, None):
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(cert_file.read_bytes()), key, False
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name("Portcullis local CA")
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_file, _key_pem(key), 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key, True


def _issue(directory: Path, who: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *,
           server: bool) -> Issued:
    issued = Issued(directory / f"{who}.pem", directory / f"{who}-key.pem")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(f"portcullis-{who}")).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                              else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    names: list[x509.GeneralName] = [x509.DNSName(f"portcullis-{who}")]
    if server:
        names += [x509.DNSName(name) for name in LOCAL_NAMES]
        names += [x509.IPAddress(ipaddress.ip_address(address)) for address in LOCAL_ADDRESSES]
    cert = builder.add_extension(x509.SubjectAlternativeName(names), critical=False).sign(ca_key, hashes.SHA256())
    _write(issued.key_file, _key_pem(key), 0o600)
    _write(issued.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return issued


def ensure_local_ca(directory: Path) -> dict[str, Issued]:
    """The CA and every identity's certificate in `directory` (made or renewed as needed);
    returns them by identity, and "ca" for the CA."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca, ca_key, new_ca = _ensure_ca(directory)
    out = {"ca": Issued(directory / "ca.pem", directory / "ca-key.pem")}
    for who in (*SERVERS, *CLIENTS):
        cert_file, key_file = directory / f"{who}.pem", directory / f"{who}-key.pem"
        if not new_ca and _still_valid(cert_file, key_file, ca):
            out[who] = Issued(cert_file, key_file)
        else:
            out[who] = _issue(directory, who, ca, ca_key, server=who in SERVERS)
    return out


def reissue(directory: Path, who: str) -> Issued:
    """A new certificate and key for `who` from the CA in `directory` (made by
    ensure_local_ca), each renamed into place: a rotation, as a certificate manager does
    it. Running servers pick it up for new connections (portcullis_shared.tls_reload)."""
    if who not in (*SERVERS, *CLIENTS):
        raise ValueError(f"unknown identity {who!r}: one of {', '.join((*SERVERS, *CLIENTS))}")
    ca, ca_key, _new = _ensure_ca(directory)
    return _issue(directory, who, ca, ca_key, server=who in SERVERS)
