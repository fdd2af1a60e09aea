"""Free loopback ports for the processes a mesh, a fleet or a bench starts."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int, avoid: range) -> list[int]:
    """`count` different free loopback ports outside `avoid` (held open together while
    chosen, so the kernel cannot hand out one twice)."""
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in avoid:
                ports.append(port)
        return ports
