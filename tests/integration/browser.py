"""Debian's chromium driven by Playwright for Python, headless, with a fresh profile per
test; the browser is never downloaded (executable_path is the system binary)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PORTCULLIS_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def spki_pin(cert_file: Path) -> str:
    """The base64 SHA-256 of a certificate's public key, as chromium's
    --ignore-certificate-errors-spki-list takes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


@contextmanager
def chromium_page(width: int = 1280, height: int = 900, *, trusted: Sequence[Path] = ()) -> Iterator[object]:
    """A page in a new chromium with its own user-data-dir (removed afterwards);
    `trusted`: certificates whose keys chromium accepts although it does not know their CA
    (the mesh's, on TLS: chromium reads no CA file, only these pins)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"chromium is not installed at {CHROMIUM} (Debian package chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="portcullis-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=[*ARGS, *_pin_args(trusted)], headless=True,
                viewport={"width": width, "height": height})
            try:
                context.set_default_timeout(15_000)
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _pin_args(trusted: Sequence[Path]) -> list[str]:
    if not trusted:
        return []
    return ["--ignore-certificate-errors-spki-list=" + ",".join(spki_pin(cert) for cert in trusted)]
