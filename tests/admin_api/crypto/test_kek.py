import base64
import os
import stat

import pytest

from admin_api.crypto.kek import DecryptionError, Kek, KekError, encode_key, load_kek
from portcullis_shared.settings import MeshSettings


def test_round_trip_with_aad():
    kek = Kek.generate()
    sealed = kek.encrypt(b"private key", b"signing_key:k1")
    assert b"private key" not in sealed
    assert kek.decrypt(sealed, b"signing_key:k1") == b"private key"


def test_each_encryption_uses_a_fresh_nonce():
    kek = Kek.generate()
    assert kek.encrypt(b"x", b"a") != kek.encrypt(b"x", b"a")


@pytest.mark.parametrize("tamper", ["wrong_key", "wrong_aad", "flipped_bit", "bad_version", "truncated"])
def test_decrypt_refuses(tamper):
    kek = Kek.generate()
    sealed = kek.encrypt(b"secret", b"row:1")
    key, aad = kek, b"row:1"
    if tamper == "wrong_key":
        key = Kek.generate()
    elif tamper == "wrong_aad":
        aad = b"row:2"
    elif tamper == "flipped_bit":
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    elif tamper == "bad_version":
        sealed = b"\x09" + sealed[1:]
    else:
        sealed = sealed[:10]
    with pytest.raises(DecryptionError):
        key.decrypt(sealed, aad)


def _settings(data_dir, env):
    """The settings admin_api reads from `env` (with its data directory in `data_dir`)."""
    return MeshSettings.from_env({"PORTCULLIS_DATA_DIR": str(data_dir), **env})


def test_from_environment_value(tmp_path):
    raw = os.urandom(32)
    kek = load_kek(_settings(tmp_path, {"PORTCULLIS_KEK": encode_key(raw)}))
    assert kek.key == raw
    assert not (tmp_path / "kek").exists()


def test_padded_base64url_accepted(tmp_path):
    raw = os.urandom(32)
    value = base64.urlsafe_b64encode(raw).decode()
    assert load_kek(_settings(tmp_path, {"PORTCULLIS_KEK": value})).key == raw


@pytest.mark.parametrize("value", ["not base64 !!", encode_key(os.urandom(16))], ids=["garbage", "short"])
def test_malformed_environment_value(tmp_path, value):
    with pytest.raises(KekError):
        load_kek(_settings(tmp_path, {"PORTCULLIS_KEK": value}))


def test_from_named_file(tmp_path):
    raw = os.urandom(32)
    path = tmp_path / "elsewhere"
    path.write_text(encode_key(raw) + "\n")
    assert load_kek(_settings(tmp_path, {"PORTCULLIS_KEK_FILE": str(path)})).key == raw


def test_missing_named_file_is_an_error(tmp_path):
    with pytest.raises(KekError):
        load_kek(_settings(tmp_path, {"PORTCULLIS_KEK_FILE": str(tmp_path / "nope")}))


def test_default_file_created_once_with_mode_0600(tmp_path):
    settings = MeshSettings(data_dir=tmp_path / "data")
    first = load_kek(settings)
    path = tmp_path / "data" / "kek"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_kek(settings) == first
    sealed = first.encrypt(b"v", b"a")
    assert load_kek(settings).decrypt(sealed, b"a") == b"v"


def test_key_not_in_repr():
    kek = Kek.generate()
    assert encode_key(kek.key) not in repr(kek)
    assert repr(kek.key) not in repr(kek)
