"""The native gRPC server: a listening socket, an asyncio loop on its own thread, and a
thread pool for the calls that must wait on the network."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping

from authz_server.h2grpc.connection import CallStream, H2GrpcConnection, Limits, UnaryHandler
from authz_server.h2grpc.event_loop import new_event_loop
from authz_server.h2grpc.offload_hook import NEVER_OFFLOAD, OffloadHook
from authz_server.h2grpc.unix_listener import UnixListener, listen_unix

log = logging.getLogger(__name__)


def sweep_interval(limits: Limits) -> float:
    """How often the sweeper looks at every connection: a quarter of the shortest timeout,
    between 50 ms and 1 s (a timeout fires up to one interval late)."""
    shortest = min(limits.preface_timeout, limits.settings_timeout, limits.request_timeout, limits.idle_timeout)
    return min(1.0, max(0.05, shortest / 4))


class ServerCore:
    """What every connection shares: the methods, the limits, the offload hook, the loop and the pool."""

    def __init__(self, handlers: Mapping[str, UnaryHandler], limits: Limits, loop: asyncio.AbstractEventLoop,
                 pool: ThreadPoolExecutor, max_offloaded: int, offload_hook: OffloadHook = NEVER_OFFLOAD) -> None:
        self.handlers = {path.encode("ascii"): handler for path, handler in handlers.items()}
        self.limits = limits
        self.offload_hook = offload_hook
        self.loop = loop
        self.connections: set[H2GrpcConnection] = set()
        # Bytes all connections hold (each connection adds and subtracts its own; see relieve).
        self.held = 0
        self._pool = pool
        self._max_offloaded = max_offloaded
        self._offloaded = 0
        self._sweeping: asyncio.TimerHandle | None = None

    def sweep(self) -> None:
        """On the loop, every sweep_interval: each connection ends what waited too long."""
        now = self.loop.time()
        for connection in list(self.connections):
            connection.sweep(now)
        self._sweeping = self.loop.call_later(sweep_interval(self.limits), self.sweep)

    def stop_sweeping(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None

    @property
    def waiting(self) -> int:
        return self._offloaded

    def relieve(self, current: H2GrpcConnection) -> bool:
        """The connections hold more than limits.max_worker_held_bytes: end the ones holding
        the most (GOAWAY ENHANCE_YOUR_CALM), worst first, until the total is back under it.
        False when `current` is the worst (its caller refuses it) and nothing else is done.
        O(connections), only when over the cap."""
        cap = self.limits.max_worker_held_bytes
        while self.held > cap and self.connections:
            worst = max(self.connections, key=lambda connection: connection.held)
            if worst is current:
                return False
            if worst.held <= 0:   # the total disagrees with its parts: a bug, never a reason to end calls
                log.error("the worker's held bytes (%d) are not its connections' sum", self.held)
                return True
            log.warning("ending the HTTP/2 connection holding the most (%d of the worker's %d bytes, beyond %d)",
                        worst.held, self.held, cap)
            self.connections.discard(worst)   # out of the running at once; connection_lost follows
            worst.evict(f"the worker holds more than {cap} bytes and this connection the most")
        return True

    def offload(self, connection: H2GrpcConnection, stream: CallStream, handler: UnaryHandler, message: bytes) -> None:
        """Run `handler` again on the pool, where it may wait; answer on the loop."""
        if self._offloaded >= self._max_offloaded:
            self.offload_hook.counted(True)
            connection.refuse_offload(stream)
            return
        self.offload_hook.counted(False)
        self._offloaded += 1
        future = self.loop.run_in_executor(self._pool, handler, message)

        def done(outcome: asyncio.Future[bytes]) -> None:
            self._offloaded -= 1
            connection.finish_offloaded(stream, outcome)

        future.add_done_callback(done)


class H2GrpcServer:
    """Serves unary gRPC `handlers` ({"/package.Service/Method": fn(bytes) -> bytes}); a
    handler that raises `offload_hook.would_block` is run again on a pool thread."""

    def __init__(self, handlers: Mapping[str, UnaryHandler], *, host: str = "127.0.0.1", port: int = 0,
                 limits: Limits = Limits(), blocking_threads: int = 4, max_offloaded: int = 64,
                 offload_hook: OffloadHook = NEVER_OFFLOAD, ssl_context: ssl.SSLContext | None = None,
                 unix_path: Path | None = None, unix_mode: str = "0600", event_loop: str = "uvloop") -> None:
        """`ssl_context`: serve TLS (asyncio's TLS transport under the same connections); None: h2c.
        `unix_path`: also serve h2c on this Unix socket (unix_listener.py; never TLS: the file
        system decides who connects), with the same connections, limits and counts."""
        self._ssl_context = ssl_context
        self._unix_path = unix_path
        self._unix_mode = unix_mode
        self._unix: UnixListener | None = None
        self._unix_server: asyncio.base_events.Server | None = None
        self._handlers = dict(handlers)
        self._offload_hook = offload_hook
        self._host = host
        self._requested_port = port
        self._limits = limits
        self._pool = ThreadPoolExecutor(max_workers=blocking_threads, thread_name_prefix="authz-blocking")
        self._max_offloaded = max_offloaded
        self._loop = new_event_loop(event_loop)
        self._core: ServerCore | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def waiting(self) -> int:
        """Calls moved to the thread pool and not answered yet."""
        return self._core.waiting if self._core is not None else 0

    @property
    def held(self) -> int:
        """Bytes its connections hold (bodies, header blocks, answers waiting for window)."""
        return self._core.held if self._core is not None else 0

    def start(self) -> int:
        """Bind and serve on a daemon thread; the bound port (raises OSError if taken)."""
        self._core = core = ServerCore(self._handlers, self._limits, self._loop, self._pool,
                                       self._max_offloaded, self._offload_hook)
        try:
            # No SO_REUSEPORT: a second process on the same port must fail, not share it.
            self._server = self._loop.run_until_complete(self._loop.create_server(
                lambda: H2GrpcConnection(core), self._host, self._requested_port,
                reuse_address=True, backlog=1024, ssl=self._ssl_context))
            if self._unix_path is not None:
                self._unix = listen_unix(self._unix_path, self._unix_mode)
                self._unix_server = self._loop.run_until_complete(self._loop.create_unix_server(
                    lambda: H2GrpcConnection(core), sock=self._unix.sock))
        except OSError:
            if self._server is not None:
                self._server.close()
            if self._unix is not None:
                self._unix.close()
            self._loop.close()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        self._loop.call_soon(self._core.sweep)
        self._thread = threading.Thread(target=self._loop.run_forever, name="authz-h2grpc", daemon=True)
        self._thread.start()
        return self.port

    def stop(self, grace: float = 2.0) -> None:
        """Refuse new connections, let calls under way finish for up to `grace` seconds."""
        if self._thread is None or self._server is None:
            return
        done = asyncio.run_coroutine_threadsafe(self._shut_down(grace), self._loop)
        try:
            done.result(timeout=grace + 2.0)
        except Exception:   # a stuck loop must not keep the process from exiting
            log.exception("the gRPC server did not stop cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2.0)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if not self._thread.is_alive():
            self._loop.close()
        self._thread = None

    async def _shut_down(self, grace: float) -> None:
        assert self._server is not None and self._core is not None
        self._core.stop_sweeping()
        self._server.close()
        if self._unix_server is not None:
            self._unix_server.close()
        for connection in list(self._core.connections):
            connection.shut_down()
        deadline = self._loop.time() + grace
        while self._core.connections and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self._core.connections):
            connection.abort()
        _abort_unfinished_handshakes(self._loop)
        await self._server.wait_closed()
        if self._unix_server is not None:
            await self._unix_server.wait_closed()
        if self._unix is not None:
            self._unix.close()


def _abort_unfinished_handshakes(loop: asyncio.AbstractEventLoop) -> None:
    """Abort every socket the loop still serves. A TLS connection still in its handshake
    has no H2GrpcConnection yet (asyncio's SSL protocol calls connection_made after the
    handshake), and Python 3.11's Server.close() leaves accepted sockets open: without
    this one outlives the closed loop and leaks its file descriptor. `_transports` is the
    selector loop's own table of them (CPython; absent elsewhere, then nothing to do:
    uvloop closes its handles, open handshakes included, when the loop closes)."""
    for transport in list(getattr(loop, "_transports", {}).values()):
        if transport is not None and not transport.is_closing():
            transport.abort()

