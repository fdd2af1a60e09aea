# Over 400 lines on purpose: one connection's HTTP/2 state machine, whose frame handlers share its state on the per-frame hot path.
"""One HTTP/2 server connection carrying unary gRPC calls (RFC 9113, server side only).

Frames are parsed straight from the socket's bytes; a call whose request stream ends is
answered before the next frame is read, and everything one read produced is written in
one go. A handler that must wait on the network raises its offload hook's `would_block`
and the call moves to the server's thread pool (see offload_hook.py).

Protocol errors end the connection with GOAWAY and the matching error code; a broken
stream gets RST_STREAM; nothing a peer sends raises out of this class.

Against abusive peers (each bound is a field of Limits): header blocks are capped in bytes
and in frames; streams that end before their answer (reset by the peer, malformed, refused)
may not be most of a connection's recent streams; frames that carry no call (PING, SETTINGS,
WINDOW_UPDATE, PRIORITY, empty DATA, ...) are capped per second; DATA beyond the windows we
granted is a flow-control error. Every byte a connection holds (unfinished request bodies,
an unfinished header block, answers held back by the peer's flow control) also counts
towards its worker's total (ServerCore.held): past Limits.max_worker_held_bytes the
connection holding the most is ended (GOAWAY ENHANCE_YOUR_CALM), so that many connections
each under their own caps cannot together exhaust the worker. The server's sweeper (ServerCore.sweep) ends connections
and streams that are too slow or idle: nothing here reads the clock per call.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, cast

from hpack import Decoder, HPACKError

from authz_server.h2grpc.frames import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_WINDOW,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    MAX_FRAME_SIZE_LIMIT,
    MAX_WINDOW,
    PREFACE,
    STREAM_ID_MASK,
    ConnectionFailure,
    ErrorCode,
    Flag,
    FrameType,
    Setting,
    StreamError,
    frame,
    goaway,
    rst_stream,
    settings_frame,
    strip_padding,
    window_update,
)
from authz_server.h2grpc.grpc_wire import (
    OK_TRAILERS,
    RESPONSE_HEADERS,
    GrpcError,
    StatusCode,
    frame_message,
    http_error,
    trailers_only,
    unframe_message,
)
from authz_server.h2grpc.request_head import MalformedRequest, RequestHead, check_trailers, request_head

if TYPE_CHECKING:
    from authz_server.h2grpc.server import ServerCore

log = logging.getLogger(__name__)

UnaryHandler = Callable[[bytes], bytes]

# Plain ints for the per-frame dispatch (comparing with an IntEnum member costs more).
_DATA, _HEADERS, _PRIORITY, _RST, _SETTINGS, _PUSH, _PING, _GOAWAY, _WINDOW, _CONTINUATION = (
    int(frame_type) for frame_type in FrameType)
_U32 = struct.Struct(">I")
_ANSWER_HEAD = FRAME_HEADER
_DATA_HEAD = struct.Struct(">BHBBIBI")   # a DATA frame's header and the gRPC message prefix
_END_TRAILERS = Flag.END_HEADERS | Flag.END_STREAM
_SETTING = struct.Struct(">HI")
_DECODED_BLOCKS = 64   # header blocks remembered per connection (see _decode)
_ANY_STREAM = 2**31 - 1   # the last stream id of the first GOAWAY of a graceful close (§6.8)
_EARLY_RESET_WINDOW = 10  # early resets are counted over the last (10 x their limit) streams


@dataclass(frozen=True)
class Limits:
    """What a peer may make the server hold or do; past any of them the peer is refused."""

    max_concurrent_streams: int = 1000
    max_message_bytes: int = 4 * 1024 * 1024
    max_header_block_bytes: int = 64 * 1024
    # HEADERS and CONTINUATION frames of one header block: empty CONTINUATION frames add
    # no bytes, so the byte cap alone would let a peer send them for ever.
    max_header_block_frames: int = 32
    # Request bytes held for calls not yet complete, all streams of a connection together:
    # without it, 256 streams of almost 4 MiB each could hold 1 GiB.
    max_buffered_bytes: int = 16 * 1024 * 1024
    # What all connections of one server (a worker) hold together: request bodies, header
    # blocks under way, answers waiting for window. Past it, the connection holding the
    # most is ended: without it, 1000 connections of almost 16 MiB each could hold 16 GiB.
    max_worker_held_bytes: int = 64 * 1024 * 1024
    # The connection window we grant; topped up once half of it has been used.
    connection_window: int = 64 * 1024 * 1024
    # Streams ended before their answer (the peer's RST_STREAM, a malformed request, a
    # refused stream): past this many, and more than half of the recent streams, the
    # connection ends (rapid reset, CVE-2023-44487).
    max_early_resets: int = 200
    # Frames that carry no call, per second and connection, while no call opens.
    max_control_frames: int = 1000
    # Seconds: for the client preface and first SETTINGS, for the ACK of our SETTINGS, for
    # a call's header block and message, and without any call before an idle connection
    # is closed (gracefully, GOAWAY NO_ERROR).
    preface_timeout: float = 10.0
    settings_timeout: float = 10.0
    request_timeout: float = 10.0
    idle_timeout: float = 300.0
    # Connections one server holds at once; the next is refused at once.
    max_connections: int = 1000


class CallStream:
    """One unary call: its request as it arrives, then its answer as flow control lets it out."""

    __slots__ = ("id", "handler", "deadline", "body", "remote_closed", "answered", "send_window",
                 "recv_window", "pending", "held", "trailers", "cancelled", "seen_at")

    def __init__(self, stream_id: int, send_window: int, recv_window: int) -> None:
        self.id = stream_id
        self.handler: UnaryHandler | None = None
        self.deadline: float | None = None
        self.body = bytearray()
        self.remote_closed = False   # the client's END_STREAM arrived
        self.answered = False        # our response has begun (or an early error went out)
        self.send_window = send_window
        self.recv_window = recv_window   # DATA the client may still send (never topped up)
        self.pending = b""           # response DATA still held back by flow control
        self.held = 0                # of it, what is counted in the worker's total (see _pump)
        self.trailers = b""
        self.cancelled = False
        self.seen_at: float | None = None   # when the sweeper first saw the request unfinished


class _Decoded:
    """A decoded header block, and its request head once a request asked for it."""

    __slots__ = ("headers", "head")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.head: RequestHead | MalformedRequest | None = None


class H2GrpcConnection(asyncio.Protocol):
    def __init__(self, core: "ServerCore") -> None:
        self._core = core
        self._limits: Limits = core.limits
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._preface_seen = False
        self._settings_seen = False
        self._decoder = Decoder(max_header_list_size=self._limits.max_header_block_bytes)
        self._decoded: dict[bytes, tuple[int, object, _Decoded]] = {}
        self._streams: dict[int, CallStream] = {}
        self._blocked: dict[int, CallStream] = {}   # streams waiting for send window
        self._last_stream_id = 0
        self._continuation: tuple[int, bool, list[bytes], int] | None = None
        self._block_seen_at: float | None = None   # when the sweeper first saw the header block open
        self._send_window = DEFAULT_WINDOW
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame = DEFAULT_MAX_FRAME_SIZE
        self._recv_window = self._limits.connection_window   # DATA the client may still send
        # Until the client acknowledges our SETTINGS it may assume the default stream window.
        self._stream_recv_window = max(DEFAULT_WINDOW, self._limits.max_message_bytes + 1024)
        self._settings_acked = False
        self._buffered = 0   # bytes in the bodies of open streams
        self._block_bytes = 0     # bytes of the header block under way
        self._answers_held = 0    # bytes of answers held back by the peer's flow control
        self._opened = 0     # streams opened, for the early-reset ratio
        self._reset_window_start = 0
        self._early_resets = 0
        self._control_frames = 0
        self._control_since = 0.0
        self._opened_at = 0.0
        self._active_at = 0.0          # the last sweep that saw a call open, or one under way
        self._opened_at_sweep = 0
        self._draining = False    # the first GOAWAY of a graceful close is out
        self._out: list[bytes] = []
        self._closing = False     # GOAWAY sent or received: no new streams, close when idle
        self._closed = False

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        # create_server and create_unix_server hand a stream transport.
        self._transport = transport = cast(asyncio.Transport, base_transport)
        limits = self._limits
        self._opened_at = self._active_at = self._core.loop.time()
        if len(self._core.connections) >= limits.max_connections:
            # Refused at once: our preface, then GOAWAY; nothing of the peer's is read.
            self._closed = True
            log.warning("refusing an HTTP/2 connection: %d are open already", len(self._core.connections))
            transport.write(settings_frame({}) + goaway(0, ErrorCode.ENHANCE_YOUR_CALM,
                                                        b"too many connections"))
            transport.close()
            return
        self._core.connections.add(self)
        transport.write(
            settings_frame({
                Setting.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
                # One whole request message fits a stream's window: it is never topped up.
                Setting.INITIAL_WINDOW_SIZE: limits.max_message_bytes + 1024,
                Setting.MAX_HEADER_LIST_SIZE: limits.max_header_block_bytes,
                Setting.ENABLE_PUSH: 0,
            })
            + window_update(0, limits.connection_window - DEFAULT_WINDOW)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._release()
        self._core.connections.discard(self)

    def pause_writing(self) -> None:
        # The peer does not read its answers: stop reading its requests until it does.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self._receive(self._buffer + data if self._buffer else data)
        except ConnectionFailure as failure:
            self._fail(failure.code, failure.reason)
        except Exception:   # a bug here must cost one connection, never the server
            log.exception("internal error on an HTTP/2 connection")
            self._fail(ErrorCode.INTERNAL_ERROR, "internal error")
        self._flush()

    # --- control from the server ---------------------------------------------------------

    def sweep(self, now: float) -> None:
        """The server's sweeper, every tick: end what has waited too long (its first sight
        of a thing starts that thing's clock, so nothing here costs a clock read per call)."""
        if self._closed:
            return
        try:
            self._sweep(now, self._limits)
        except ConnectionFailure as failure:
            self._fail(failure.code, failure.reason)
        self._flush()

    def _sweep(self, now: float, limits: Limits) -> None:
        if not self._settings_seen:
            if now - self._opened_at > limits.preface_timeout:
                raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                        f"no connection preface within {limits.preface_timeout:g} s")
            return
        if not self._settings_acked and now - self._opened_at > limits.settings_timeout:
            raise ConnectionFailure(ErrorCode.SETTINGS_TIMEOUT,
                                    f"our SETTINGS not acknowledged within {limits.settings_timeout:g} s")
        if self._continuation is not None:
            if self._block_seen_at is None:
                self._block_seen_at = now
            elif now - self._block_seen_at > limits.request_timeout:
                raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                        f"a header block unfinished after {limits.request_timeout:g} s")
        for stream in list(self._streams.values()):
            if stream.remote_closed and not stream.answered:
                continue   # waiting on the thread pool: its handler has its own timeouts
            if stream.seen_at is None:
                stream.seen_at = now
            elif now - stream.seen_at > limits.request_timeout:
                log.info("resetting stream %d: its request or answer unfinished after %g s",
                         stream.id, limits.request_timeout)
                self._reset(stream.id, ErrorCode.CANCEL)
        if self._streams or self._opened != self._opened_at_sweep or self._continuation is not None:
            self._active_at = now
            self._opened_at_sweep = self._opened
        elif self._draining:
            self.shut_down()   # the final GOAWAY, a tick after the first: calls in flight were seen
        elif now - self._active_at > limits.idle_timeout:
            # Graceful (RFC 9113 §6.8): first "no new streams after any", then the real last id.
            self._draining = True
            self._out.append(goaway(_ANY_STREAM, ErrorCode.NO_ERROR, b"idle"))

    def shut_down(self) -> None:
        """Graceful: GOAWAY(NO_ERROR), finish the streams already started, then close."""
        if self._closed or self._closing:
            return
        self._closing = True
        self._out.append(goaway(self._last_stream_id, ErrorCode.NO_ERROR))
        self._flush()
        self._close_if_idle()

    def abort(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.abort()

    # --- reading ---------------------------------------------------------------------------

    def _receive(self, buffer: bytes) -> None:
        position = 0
        if not self._preface_seen:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(buffer):
                    raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                self._buffer = buffer
                return
            if not buffer.startswith(PREFACE):
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
            self._preface_seen = True
            position = len(PREFACE)
        end = len(buffer)
        while end - position >= FRAME_HEADER_SIZE and not self._closed:
            high, low, frame_type, flags, stream_id = FRAME_HEADER.unpack_from(buffer, position)
            length = (high << 16) | low
            if length > DEFAULT_MAX_FRAME_SIZE:
                raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, f"a frame of {length} bytes exceeds 16384")
            if end - position - FRAME_HEADER_SIZE < length:
                break
            start = position + FRAME_HEADER_SIZE
            position = start + length
            try:
                self._on_frame(frame_type, flags, stream_id & STREAM_ID_MASK, buffer[start:position])
            except StreamError as error:
                self._reset(error.stream_id, error.code)
                self._count_early_reset()
        self._buffer = buffer[position:]

    def _count_early_reset(self) -> None:
        """A stream ended before its answer: bounded, so that opening and resetting streams
        in a loop (rapid reset) cannot keep a worker busy for nothing."""
        limit = self._limits.max_early_resets
        if self._opened - self._reset_window_start > _EARLY_RESET_WINDOW * limit:
            self._reset_window_start = self._opened
            self._early_resets = 0
        self._early_resets += 1
        if self._early_resets > limit and self._early_resets * 2 > self._opened - self._reset_window_start:
            raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                    f"{self._early_resets} streams ended before their answer")

    def _on_frame(self, frame_type: int, flags: int, stream_id: int, payload: bytes) -> None:
        if not self._settings_seen:
            if frame_type != _SETTINGS or flags & Flag.ACK:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "the first frame must be SETTINGS")
            self._settings_seen = True
        if self._continuation is not None and frame_type != _CONTINUATION:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "a header block was interrupted by another frame")
        if frame_type == _DATA:
            self._on_data(flags, stream_id, payload)
        elif frame_type == _HEADERS:
            self._on_headers(flags, stream_id, payload)
        elif frame_type == _CONTINUATION:
            self._on_continuation(flags, stream_id, payload)
        elif frame_type == _WINDOW:
            self._count_control()
            self._on_window_update(stream_id, payload)
        elif frame_type == _SETTINGS:
            self._count_control(1 + len(payload) // 6)   # each entry is work: 2,700 fit one frame
            self._on_settings(flags, stream_id, payload)
        elif frame_type == _PING:
            self._count_control()
            self._on_ping(flags, stream_id, payload)
        elif frame_type == _RST:
            self._on_rst_stream(stream_id, payload)
        elif frame_type == _PRIORITY:
            self._count_control()
            if stream_id == 0:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0")
            if len(payload) != 5:
                raise StreamError(stream_id, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY must be 5 bytes")
        elif frame_type == _GOAWAY:
            if stream_id != 0:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream")
            self._closing = True
            self._close_if_idle()
        elif frame_type == _PUSH:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "a client cannot push")
        else:
            self._count_control()   # frames of unknown types are ignored (RFC 9113 §4.1), within bounds

    def _count_control(self, weight: int = 1) -> None:
        """One more frame that carries no call: past the limit within a second (and no call
        opened meanwhile, which starts the count again), the peer is flooding."""
        self._control_frames += weight
        if self._control_frames > self._limits.max_control_frames:
            now = self._core.loop.time()
            if now - self._control_since >= 1.0:
                self._control_since = now
                self._control_frames = 1
            else:
                raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                        f"more than {self._limits.max_control_frames} frames without a call in a second")

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        self._count_received(len(payload))
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id > self._last_stream_id:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            self._count_control()
            return   # a stream we already answered and reset: its data in flight is dropped
        if stream.remote_closed:
            raise StreamError(stream_id, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM")
        stream.recv_window -= len(payload)
        if stream.recv_window < 0:
            raise StreamError(stream_id, ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the stream's window")
        if not payload and not flags & Flag.END_STREAM:
            self._count_control()
        data = strip_padding(payload, flags, stream_id)
        stream.body += data
        self._buffered += len(data)
        if self._buffered > self._limits.max_buffered_bytes:
            raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                    f"more than {self._limits.max_buffered_bytes} bytes of unfinished requests")
        core = self._core
        core.held += len(data)
        if core.held > self._limits.max_worker_held_bytes and not core.relieve(self):
            raise self._worst_offender()
        if len(stream.body) > self._limits.max_message_bytes + 5:
            self._answer_error(stream, StatusCode.RESOURCE_EXHAUSTED,
                               f"the request message exceeds {self._limits.max_message_bytes} bytes")
            return
        if flags & Flag.END_STREAM:
            stream.remote_closed = True
            self._dispatch(stream)

    def _count_received(self, size: int) -> None:
        self._recv_window -= size
        if self._recv_window <= self._limits.connection_window // 2:
            if self._recv_window < 0:
                raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection's window")
            self._out.append(window_update(0, self._limits.connection_window - self._recv_window))
            self._recv_window = self._limits.connection_window

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
        block = strip_padding(payload, flags, stream_id)
        if flags & Flag.PRIORITY:
            if len(block) < 5:
                raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            if _U32.unpack_from(block)[0] & STREAM_ID_MASK == stream_id:
                raise StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, "a stream cannot depend on itself")
            block = block[5:]
        end_stream = bool(flags & Flag.END_STREAM)
        if flags & Flag.END_HEADERS:
            self._on_header_block(stream_id, end_stream, block)
        else:
            self._continuation = (stream_id, end_stream, [block], len(block))
            self._check_block_size(len(block), 1)
            self._hold_block(len(block))

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block to continue")
        first_id, end_stream, parts, size = self._continuation
        parts.append(payload)
        size += len(payload)
        self._check_block_size(size, len(parts))
        if flags & Flag.END_HEADERS:
            self._continuation = None
            self._block_seen_at = None
            self._hold_block(-self._block_bytes)
            self._on_header_block(stream_id, end_stream, b"".join(parts))
        else:
            self._continuation = (first_id, end_stream, parts, size)
            self._hold_block(len(payload))

    def _hold_block(self, size: int) -> None:
        self._block_bytes += size
        core = self._core
        core.held += size
        if size > 0 and core.held > self._limits.max_worker_held_bytes and not core.relieve(self):
            raise self._worst_offender()

    def _worst_offender(self) -> ConnectionFailure:
        return ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                 f"this connection holds the most of the worker's {self._core.held} bytes, "
                                 f"beyond its {self._limits.max_worker_held_bytes}")

    def _check_block_size(self, size: int, frames: int) -> None:
        # The block cannot be skipped (HPACK state depends on it): the connection ends.
        if size > self._limits.max_header_block_bytes:
            raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                    f"a header block exceeds {self._limits.max_header_block_bytes} bytes")
        if frames > self._limits.max_header_block_frames:
            raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                    f"a header block spans more than {self._limits.max_header_block_frames} frames")

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        return self._decode_block(block).headers

    def _decode_block(self, block: bytes) -> _Decoded:
        """HPACK-decode `block`, or take the list decoded before from the same bytes.

        A client that sends the same headers each call (Envoy, grpcio) soon sends a block
        of indexed fields only, which reads the dynamic table without changing it: while
        the table is unchanged (same size, same newest entry object) the same bytes
        decode to the same headers. Blocks that change the table are never reused."""
        # Any, not a tuple type: a compiled build would re-box each entry on reading it,
        # and the identity check below would never hold.
        entries: Any = self._decoder.header_table.dynamic_entries
        before = (len(entries), entries[0] if entries else None)
        cached = self._decoded.get(block)
        if cached is not None and cached[0] == before[0] and cached[1] is before[1]:
            return cached[2]
        try:
            decoded = _Decoded(cast(list[tuple[bytes, bytes]], self._decoder.decode(block, raw=True)))
        except HPACKError as exc:
            raise ConnectionFailure(ErrorCode.COMPRESSION_ERROR, f"bad header block: {type(exc).__name__}") from None
        unchanged = len(entries) == before[0] and (entries[0] if entries else None) is before[1]
        # A table size update (first byte 001xxxxx) changes state even when no entry moves.
        if unchanged and block[:1] and block[0] & 0xE0 != 0x20:
            if len(self._decoded) >= _DECODED_BLOCKS:
                self._decoded.clear()
            self._decoded[block] = (before[0], before[1], decoded)
        return decoded

    def _on_header_block(self, stream_id: int, end_stream: bool, block: bytes) -> None:
        decoded = self._decode_block(block)
        stream = self._streams.get(stream_id)
        if stream is not None:   # trailers: they must end the request
            if stream.remote_closed:
                raise ConnectionFailure(ErrorCode.STREAM_CLOSED, f"HEADERS after END_STREAM on stream {stream_id}")
            if not end_stream:
                raise StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM")
            try:
                check_trailers(decoded.headers)
            except MalformedRequest as malformed:
                raise StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, str(malformed)) from None
            stream.remote_closed = True
            self._dispatch(stream)
            return
        if stream_id % 2 == 0:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"a client stream id must be odd, not {stream_id}")
        if stream_id <= self._last_stream_id:
            self._count_control()
            return   # trailers of a stream we answered and reset: in flight, ignored (§5.1)
        self._last_stream_id = stream_id
        if self._closing:
            self._out.append(rst_stream(stream_id, ErrorCode.REFUSED_STREAM))
            return
        self._opened += 1
        self._control_frames = 0   # a call: the peer is not just chattering
        if len(self._streams) >= self._limits.max_concurrent_streams or (
                self._core.held > self._limits.max_worker_held_bytes and not self._core.relieve(self)):
            # Too many streams here, or the worker holds too much and this connection the most.
            self._out.append(rst_stream(stream_id, ErrorCode.REFUSED_STREAM))
            self._count_early_reset()
            return
        head = decoded.head
        if head is None:
            try:
                head = decoded.head = request_head(decoded.headers)
            except MalformedRequest as malformed:
                head = decoded.head = malformed
        if isinstance(head, MalformedRequest):
            raise StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, str(head))
        stream = CallStream(stream_id, self._peer_initial_window, self._stream_recv_window)
        stream.remote_closed = end_stream
        self._streams[stream_id] = stream
        self._start_call(stream, head)
        if end_stream and not stream.answered:
            self._dispatch(stream)

    def _start_call(self, stream: CallStream, head: RequestHead) -> None:
        if head.timeout is not None:
            stream.deadline = self._core.loop.time() + head.timeout
        content_type = head.content_type
        if head.method != b"POST":
            self._answer_http(stream, 405, "gRPC calls are POST requests")
        elif content_type is None or not content_type.startswith(b"application/grpc"):
            self._answer_http(stream, 415, "content-type must be application/grpc")
        else:
            stream.handler = self._core.handlers.get(head.path)
            if stream.handler is None:
                self._answer_error(stream, StatusCode.UNIMPLEMENTED,
                                   f"unknown method {head.path.decode('utf-8', 'replace')[:200]}")

    # --- calls ---------------------------------------------------------------------------

    def _dispatch(self, stream: CallStream) -> None:
        handler = stream.handler
        assert handler is not None
        hook = self._core.offload_hook
        try:
            body, stream.body = stream.body, bytearray()
            self._buffered -= len(body)
            self._core.held -= len(body)
            message = unframe_message(body)
            with hook.inline():
                reply = handler(message)
        except hook.would_block:
            self._core.offload(self, stream, handler, message)
            return
        except GrpcError as error:
            self._answer_error(stream, error.code, error.message)
            return
        except Exception:
            log.exception("internal error in %s", getattr(handler, "__qualname__", "a handler"))
            self._answer_error(stream, StatusCode.INTERNAL, "internal error")
            return
        self._answer(stream, reply)

    def finish_offloaded(self, stream: CallStream, outcome: "asyncio.Future[bytes]") -> None:
        """On the loop: the thread pool's answer for `stream` (dropped if it was reset)."""
        if self._closed or stream.cancelled or self._streams.get(stream.id) is not stream:
            return
        if outcome.cancelled():   # the pool is shutting down
            self._answer_error(stream, StatusCode.UNAVAILABLE, "the server is shutting down")
            self._flush()
            return
        error = outcome.exception()
        if stream.deadline is not None and self._core.loop.time() > stream.deadline:
            self._answer_error(stream, StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed")
        elif error is None:
            self._answer(stream, outcome.result())
        elif isinstance(error, GrpcError):
            self._answer_error(stream, error.code, error.message)
        else:
            log.error("internal error in an offloaded call", exc_info=error)
            self._answer_error(stream, StatusCode.INTERNAL, "internal error")
        self._flush()

    def refuse_offload(self, stream: CallStream) -> None:
        self._answer_error(stream, StatusCode.RESOURCE_EXHAUSTED, "too many calls are waiting on key managers")

    # --- writing -------------------------------------------------------------------------

    def _answer(self, stream: CallStream, reply: bytes) -> None:
        stream.answered = True
        length = len(reply) + 5
        if length <= self._send_window and length <= stream.send_window and length <= self._peer_max_frame:
            # The common answer, whole at once: HEADERS, one DATA, trailers (what _pump writes).
            self._send_window -= length
            stream.send_window -= length
            self._out.append(_ANSWER_HEAD.pack(0, len(RESPONSE_HEADERS), _HEADERS, Flag.END_HEADERS, stream.id)
                             + RESPONSE_HEADERS
                             + _DATA_HEAD.pack(length >> 16, length & 0xFFFF, _DATA, 0, stream.id, 0, len(reply))
                             + reply
                             + _ANSWER_HEAD.pack(0, len(OK_TRAILERS), _HEADERS, _END_TRAILERS, stream.id)
                             + OK_TRAILERS)
            self._end(stream)
            return
        self._out.append(frame(_HEADERS, Flag.END_HEADERS, stream.id, RESPONSE_HEADERS))
        stream.pending = frame_message(reply)
        stream.trailers = OK_TRAILERS
        self._pump(stream)

    def _answer_error(self, stream: CallStream, code: StatusCode, message: str) -> None:
        stream.answered = True
        self._out.append(frame(_HEADERS, Flag.END_HEADERS | Flag.END_STREAM, stream.id, trailers_only(code, message)))
        self._end(stream)

    def _answer_http(self, stream: CallStream, status: int, message: str) -> None:
        stream.answered = True
        self._out.append(frame(_HEADERS, Flag.END_HEADERS | Flag.END_STREAM, stream.id, http_error(status, message)))
        self._end(stream)

    def _pump(self, stream: CallStream) -> None:
        """Send what the flow-control windows allow; the trailers once all DATA is out. What
        stays behind counts towards the worker's total (an answer sent at once never does)."""
        if stream.held:
            self._hold_answer(stream, 0)
        while stream.pending:
            allowed = min(self._send_window, stream.send_window, self._peer_max_frame)
            if allowed <= 0:
                self._blocked[stream.id] = stream
                self._hold_answer(stream, len(stream.pending) + len(stream.trailers))
                return
            chunk = stream.pending[:allowed]
            stream.pending = stream.pending[allowed:]
            self._send_window -= len(chunk)
            stream.send_window -= len(chunk)
            self._out.append(frame(_DATA, 0, stream.id, chunk))
        self._blocked.pop(stream.id, None)
        self._out.append(frame(_HEADERS, Flag.END_HEADERS | Flag.END_STREAM, stream.id, stream.trailers))
        self._end(stream)

    def _end(self, stream: CallStream) -> None:
        """Our side is done; if the client is still sending, tell it to stop (RFC 9113 §8.1)."""
        if stream.remote_closed:
            self._forget(stream)
        else:
            self._out.append(rst_stream(stream.id, ErrorCode.NO_ERROR))
            self._forget(stream)

    def _hold_answer(self, stream: CallStream, size: int) -> None:
        # Counted, not relieved here (this may run outside data_received): the next bytes
        # the worker receives, or the next stream, relieve it if it is over.
        delta = size - stream.held
        stream.held = size
        self._answers_held += delta
        self._core.held += delta

    def _forget(self, stream: CallStream) -> None:
        self._buffered -= len(stream.body)
        self._core.held -= len(stream.body)
        stream.body = bytearray()
        if stream.held:
            self._hold_answer(stream, 0)
        self._streams.pop(stream.id, None)
        self._blocked.pop(stream.id, None)
        self._close_if_idle()

    def _reset(self, stream_id: int, code: ErrorCode) -> None:
        self._out.append(rst_stream(stream_id, code))
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.cancelled = True
            self._forget(stream)

    def _flush(self) -> None:
        if self._out and self._transport is not None and not self._closed:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    def _fail(self, code: ErrorCode, reason: str) -> None:
        log.info("closing an HTTP/2 connection: %s (%s)", reason, code.name)
        self._out.append(goaway(self._last_stream_id, code, reason.encode("utf-8", "replace")[:200]))
        self._flush()
        self._closed = True
        self._release()
        if self._transport is not None:
            self._transport.close()

    @property
    def held(self) -> int:
        """Bytes this connection makes its worker hold (ServerCore.held is their sum)."""
        return self._buffered + self._block_bytes + self._answers_held

    def evict(self, reason: str) -> None:
        """Ended by the server for the worker's sake: GOAWAY ENHANCE_YOUR_CALM, bytes freed."""
        if not self._closed:
            self._fail(ErrorCode.ENHANCE_YOUR_CALM, reason)

    def _release(self) -> None:
        """What this connection held leaves the worker's total (once: its parts go to 0)."""
        self._core.held -= self.held
        for stream in self._streams.values():
            stream.cancelled = True
            stream.body = bytearray()
            stream.held = 0
        self._streams.clear()
        self._blocked.clear()
        self._buffered = self._block_bytes = self._answers_held = 0

    def _close_if_idle(self) -> None:
        if self._closing and not self._streams and not self._closed and self._transport is not None:
            self._flush()
            self._closed = True
            self._transport.close()

    # --- control frames ------------------------------------------------------------------

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes")
        increment = _U32.unpack(payload)[0] & STREAM_ID_MASK
        if stream_id == 0:
            if increment == 0:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "a window increment of 0")
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "the connection window exceeds 2^31-1")
            for blocked in list(self._blocked.values()):
                self._pump(blocked)
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id > self._last_stream_id:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {stream_id}")
            return
        if increment == 0:
            raise StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, "a window increment of 0")
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            raise StreamError(stream_id, ErrorCode.FLOW_CONTROL_ERROR, "the stream window exceeds 2^31-1")
        if stream_id in self._blocked:
            self._pump(stream)

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & Flag.ACK:
            if payload:
                raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "a SETTINGS ACK carries nothing")
            if not self._settings_acked:   # from now on the client holds to our stream window
                self._settings_acked = True
                self._stream_recv_window = self._limits.max_message_bytes + 1024
            return
        if len(payload) % 6:
            raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS must be a multiple of 6 bytes")
        initial_window = None
        for offset in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == Setting.INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE exceeds 2^31-1")
                initial_window = value   # applied once, below: a frame may repeat it thousands of times
            elif key == Setting.MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME_SIZE <= value <= MAX_FRAME_SIZE_LIMIT:
                    raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"MAX_FRAME_SIZE {value} is out of range")
                self._peer_max_frame = value
            elif key == Setting.ENABLE_PUSH and value > 1:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH must be 0 or 1")
            # HEADER_TABLE_SIZE needs nothing: our header blocks never use the dynamic table.
        window_grew = False
        if initial_window is not None:
            delta = initial_window - self._peer_initial_window
            self._peer_initial_window = initial_window
            for stream in self._streams.values():
                stream.send_window += delta
                if stream.send_window > MAX_WINDOW:
                    raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "a stream window exceeds 2^31-1")
            window_grew = delta > 0
        self._out.append(frame(_SETTINGS, Flag.ACK, 0))
        if window_grew:
            for blocked in list(self._blocked.values()):
                self._pump(blocked)

    def _on_ping(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "PING must be 8 bytes")
        if not flags & Flag.ACK:
            self._out.append(frame(_PING, Flag.ACK, 0, payload))

    def _on_rst_stream(self, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM must be 4 bytes")
        if stream_id > self._last_stream_id:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"RST_STREAM on idle stream {stream_id}")
        stream = self._streams.get(stream_id)
        if stream is None:
            self._count_control()   # a stream already closed: nothing to stop
            return
        stream.cancelled = True
        self._forget(stream)
        self._count_early_reset()
