"""The native front end's Unix domain socket, for an Envoy on the same host.

Who may connect is decided by the file system, so the socket is made with care:
- its directory is this user's own, mode 0700 (0710 when the socket is 0660, so that
  Envoy's group may reach the socket but neither list nor change the directory): made if
  missing, narrowed if wider, refused if another user owns it;
- the socket is bound inside that directory and given its mode before it listens, so
  nobody can connect in between whatever the umask;
- a socket file left by a server that died (nothing accepts on it) is removed; one that
  still answers is another server's, and starting is refused, as a taken port is; a file
  that is not a socket is never removed;
- a path longer than `sun_path` holds is refused by name, never truncated by the kernel.
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

# Linux's sockaddr_un.sun_path is 108 bytes, its terminating NUL included.
MAX_PATH_BYTES = 107
SOCKET_MODES = {"0600": 0o600, "0660": 0o660}


class UnixSocketError(OSError):
    """The Unix socket cannot be made as asked: the message says why and what to change."""


def check_path_length(path: Path) -> None:
    size = len(os.fsencode(str(path)))
    if size > MAX_PATH_BYTES:
        raise UnixSocketError(f"the Unix socket path {str(path)!r} is {size} bytes; a Unix socket path holds at most "
                              f"{MAX_PATH_BYTES} (choose a shorter PORTCULLIS_AUTHZ_UNIX_SOCKET)")


def _private_directory(directory: Path, mode: int) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise UnixSocketError(f"{directory} is not a directory")
    if info.st_uid != os.getuid():
        raise UnixSocketError(f"the Unix socket's directory {directory} belongs to uid {info.st_uid}, not this "
                              "user: give the socket a directory of its own")
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(directory, mode)


def _remove_stale(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise UnixSocketError(f"{path} exists and is not a socket: not removed, choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)   # left by a server that is gone
        return
    except OSError as exc:
        raise UnixSocketError(f"cannot tell whether {path} is in use: {exc}") from exc
    finally:
        probe.close()
    raise UnixSocketError(f"another server listens on {path}")


@dataclass
class UnixListener:
    """A listening Unix socket at `path`, removed again by `close` if it is still ours."""

    path: Path
    sock: socket.socket
    inode: int

    def close(self) -> None:
        self.sock.close()
        try:
            if os.lstat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass


def listen_unix(path: Path, mode: str = "0600", backlog: int = 1024) -> UnixListener:
    """Bind and listen at `path` (see the module's rules); raises UnixSocketError."""
    if mode not in SOCKET_MODES:
        raise UnixSocketError(f"the Unix socket mode must be one of {', '.join(SOCKET_MODES)}, not {mode!r}")
    check_path_length(path)
    socket_mode = SOCKET_MODES[mode]
    _private_directory(path.parent, 0o700 if socket_mode == 0o600 else 0o710)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        sock.bind(str(path))
        bound = True
        os.chmod(path, socket_mode)   # before listen(): no connection is accepted with the umask's mode
        sock.listen(backlog)
        sock.setblocking(False)
        return UnixListener(path, sock, os.lstat(path).st_ino)
    except OSError as exc:
        sock.close()
        if bound:
            path.unlink(missing_ok=True)
        raise UnixSocketError(f"cannot listen on {path}: {exc}") from exc
