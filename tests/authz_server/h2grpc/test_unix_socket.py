"""The native front end on a Unix socket (PORTCULLIS_AUTHZ_UNIX_SOCKET): calls answered as on
TCP, the socket 0600 (or 0660) in a 0700 (or 0710) directory, a stale socket replaced, a
live one, a file that is not a socket and a path too long refused by name."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import grpc
import pytest

from authz_server.h2grpc.connection import Limits
from authz_server.h2grpc.server import H2GrpcServer
from authz_server.h2grpc.unix_listener import MAX_PATH_BYTES, UnixSocketError, listen_unix
from authz_server.settings import AuthzSettings, worker_socket_paths
from portcullis_shared.settings import SettingsError

HANDLERS = {"/t.T/Echo": lambda message: message}


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def short_dir():
    """pytest's tmp paths can be long; a Unix socket path may not."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pcu-", dir="/tmp") as tmp:
        yield Path(tmp)


def test_calls_are_answered_on_the_unix_socket_and_on_tcp(short_dir):
    path = short_dir / "run" / "authz.sock"
    server = H2GrpcServer(HANDLERS, limits=Limits(), unix_path=path)
    server.start()
    try:
        assert _mode(path) == 0o600 and stat.S_ISSOCK(os.lstat(path).st_mode)
        assert _mode(path.parent) == 0o700
        for target in (f"unix:{path}", f"127.0.0.1:{server.port}"):
            with grpc.insecure_channel(target) as channel:
                assert channel.unary_unary("/t.T/Echo")(b"hello", timeout=5) == b"hello"
    finally:
        server.stop(grace=0.1)
    assert not path.exists()   # removed on stop


def test_group_mode_makes_the_directory_searchable_by_the_group_only(short_dir):
    listener = listen_unix(short_dir / "g" / "authz.sock", "0660")
    try:
        assert _mode(listener.path) == 0o660 and _mode(listener.path.parent) == 0o710
    finally:
        listener.close()


def test_a_wider_directory_is_narrowed(short_dir):
    directory = short_dir / "wide"
    directory.mkdir(mode=0o777)
    os.chmod(directory, 0o777)
    listener = listen_unix(directory / "authz.sock")
    try:
        assert _mode(directory) == 0o700
    finally:
        listener.close()


def test_a_stale_socket_is_replaced(short_dir):
    path = short_dir / "authz.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()   # the file stays, nothing accepts: what a killed server leaves
    listener = listen_unix(path)
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(path))
        client.close()
    finally:
        listener.close()


def test_a_socket_another_server_listens_on_is_refused_and_left_alone(short_dir):
    path = short_dir / "authz.sock"
    first = listen_unix(path)
    try:
        with pytest.raises(UnixSocketError, match="another server listens"):
            listen_unix(path)
        assert path.exists()
    finally:
        first.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_directory_another_user_owns_is_refused_and_left_as_it_is(short_dir):
    theirs = short_dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chmod(theirs, 0o755)
    os.chown(theirs, 65534, 65534)   # nobody
    with pytest.raises(UnixSocketError, match="belongs to uid 65534"):
        listen_unix(theirs / "authz.sock")
    assert _mode(theirs) == 0o755 and os.lstat(theirs).st_uid == 65534   # not narrowed: not ours to change
    assert not (theirs / "authz.sock").exists()


def test_a_symlink_in_place_of_the_directory_is_refused(short_dir):
    real = short_dir / "real"
    real.mkdir(mode=0o700)
    link = short_dir / "link"
    link.symlink_to(real)
    with pytest.raises(UnixSocketError, match="not a directory"):
        listen_unix(link / "authz.sock")
    assert not (real / "authz.sock").exists()


def test_a_file_that_is_not_a_socket_is_never_removed(short_dir):
    path = short_dir / "authz.sock"
    path.write_text("important")
    with pytest.raises(UnixSocketError, match="not a socket"):
        listen_unix(path)
    assert path.read_text() == "important"


def test_a_path_too_long_is_refused_at_start_and_by_the_settings(short_dir):
    path = short_dir / ("x" * (MAX_PATH_BYTES - len(str(short_dir)))) / "a.sock"
    with pytest.raises(UnixSocketError, match=f"at most {MAX_PATH_BYTES}"):
        listen_unix(path)
    with pytest.raises(SettingsError, match="PORTCULLIS_AUTHZ_UNIX_SOCKET"):
        AuthzSettings.from_env({"PORTCULLIS_AUTHZ_UNIX_SOCKET": str(path), "PORTCULLIS_AUTHZ_WORKERS": "1"})


def test_a_unix_socket_needs_the_native_front_end():
    with pytest.raises(SettingsError, match="FRONTEND=native"):
        AuthzSettings.from_env({"PORTCULLIS_AUTHZ_UNIX_SOCKET": "/tmp/pc/authz.sock",
                                "PORTCULLIS_AUTHZ_FRONTEND": "grpcio"})


def test_each_worker_has_its_own_socket():
    assert worker_socket_paths(Path("/run/pc/authz.sock"), 1) == [Path("/run/pc/authz.sock")]
    assert worker_socket_paths(Path("/run/pc/authz.sock"), 2) == [Path("/run/pc/authz-0.sock"),
                                                                   Path("/run/pc/authz-1.sock")]
