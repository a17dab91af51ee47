"""RFC 6455 frame parsing on the receive side: whole messages out of a connected socket.

websocket-client keeps the handshake, TLS, proxies, headers and every send; once it has
connected, a ``FrameReader`` reads its socket (``WebSocket().sock``) itself. It reads
ahead with ``recv_into`` into one preallocated buffer, so a burst of frames costs one
system call rather than three per frame, and cuts messages out of that buffer: a
message that came in one frame is returned as a ``memoryview`` into the buffer, with no
copy.

It owns: the receive buffer, frame headers (lengths, flags, opcodes), the checks a
client must make on a server's frames, the reassembly of fragmented messages, and the
answer to a ping (handed to a ``send_pong`` callable, since sends go through
websocket-client's send lock). It does not own the socket: it never closes, shuts down
or configures it, and it never sends by itself.

Imports: only the standard library and ``ttsstream.errors``. Never websocket-client.
"""

from __future__ import annotations

import socket
import struct
from typing import Callable, Optional, Tuple, Type, Union

from .errors import ProtocolError

try:
    import ssl
except ImportError:  # pragma: no cover - a Python built without OpenSSL
    _SSLError: Tuple[Type[Exception], ...] = ()
else:
    _SSLError = (ssl.SSLError,)

__all__ = [
    "FrameReader",
    "parse_close",
    "OPCODE_CONT",
    "OPCODE_TEXT",
    "OPCODE_BINARY",
    "OPCODE_CLOSE",
    "OPCODE_PING",
    "OPCODE_PONG",
]

# The same numbers as websocket.ABNF.OPCODE_*, so callers may compare with either.
OPCODE_CONT = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA

_NAMES = {OPCODE_CONT: "continuation", OPCODE_TEXT: "text", OPCODE_BINARY: "binary",
          OPCODE_CLOSE: "close", OPCODE_PING: "ping", OPCODE_PONG: "pong"}
_FIN = 0x80
_RSV = 0x70
_FIN_TEXT = _FIN | OPCODE_TEXT
_FIN_BINARY = _FIN | OPCODE_BINARY
_MAX_CONTROL = 125
_U64 = struct.Struct("!Q")

# A reader starts small and grows while the socket keeps filling it: a real-time
# stream (a 4,800-byte frame every 100 ms) never needs more than the start, so a
# thousand of them hold 16 MB rather than 256, while a bulk transfer reaches the size
# that read fastest here (256 KiB, of 16 KiB to 4 MiB tried) within a few reads.
DEFAULT_BUFFER_SIZE = 16 * 1024
DEFAULT_MAX_BUFFER_SIZE = 256 * 1024
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024
_MIN_BUFFER_SIZE = 1024  # room for any control frame and any header, with margin


def parse_close(payload: Union[bytes, bytearray, memoryview]) -> Tuple[Optional[int], str]:
    """Split a close frame's payload into its status code and reason.

    Args:
        payload: a CLOSE payload as ``FrameReader.read`` returns it (never 1 byte long:
            the reader rejects that).

    Returns:
        ``(code, reason)``; ``(None, "")`` for an empty payload (a close without a
        status). The reader refuses a reason that is not UTF-8; a payload from
        elsewhere has undecodable bytes replaced.
    """
    if len(payload) < 2:
        return None, ""
    return (payload[0] << 8) | payload[1], str(payload[2:], "utf-8", "replace")


def _valid_close_code(code: int) -> bool:
    """RFC 6455 7.4: the codes an endpoint may send. 1004-1006 and 1015 are reserved, the
    rest of 0-2999 is unassigned (1012-1014 were registered with IANA since the RFC)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_problem(payload: memoryview) -> Optional[str]:
    """Why a close payload breaks the protocol (RFC 6455 5.5.1, 7.4, 8.1), or None."""
    if len(payload) < 2:
        return None  # empty; a 1-byte payload was refused with the header
    code = (payload[0] << 8) | payload[1]
    if not _valid_close_code(code):
        return (f"the server sent a close frame with status code {code}, which no endpoint may send "
                "(valid: 1000-1003, 1007-1014, 3000-4999)")
    try:
        str(payload[2:], "utf-8")
    except UnicodeDecodeError:
        return "the server sent a close frame whose reason is not UTF-8"
    return None


class FrameReader:
    """Reads whole WebSocket messages, as a client, from a connected socket.

    Args:
        sock: a connected ``socket.socket`` or ``ssl.SSLSocket``, blocking or with a
            timeout (not non-blocking: ``gettimeout()`` must not be 0). In ttsstream:
            ``websocket.WebSocket().sock`` after ``connect()``.
        send_pong: called with a ping's payload (``bytes``) to answer it, on the thread
            that calls ``read``, before ``read`` goes on. In ttsstream:
            ``ws.pong`` (it takes websocket-client's send lock). What it raises
            propagates out of ``read``.
        buffer_size: the receive buffer to start with. A frame bigger than it is read
            into a buffer of its own size instead (never more than ``max_message``).
        max_buffer_size: how far the receive buffer may grow: when a read fills all the
            room there was (more is waiting), the next read gets a buffer four times
            the size, up to this (default: the larger of ``buffer_size`` and 256 KiB).
        max_message: the largest message accepted, in bytes (a single frame's payload,
            or a fragmented message's total). A server announcing more is a
            ``ProtocolError`` before any of it is read or allocated.
        initial: bytes already read from the socket past the handshake, which the
            stream starts with. websocket-client reads the handshake's response (and a
            proxy's) one byte at a time (``_http.read_headers`` -> ``recv_line`` ->
            ``recv(sock, 1)``; checked in 1.9.2, and tests/test_frames.py checks it end
            to end), so it leaves none behind and ttsstream passes nothing; the
            argument is for sockets that came from elsewhere.

    Thread: one thread reads (the connection's reader thread); the reader takes no lock.
    Other threads may shut the socket down to wake it (``read`` then raises EOFError or
    OSError).
    """

    def __init__(self, sock: socket.socket, send_pong: Callable[[bytes], object], *,
                 buffer_size: int = DEFAULT_BUFFER_SIZE, max_buffer_size: Optional[int] = None,
                 max_message: int = DEFAULT_MAX_MESSAGE, initial: bytes = b"") -> None:
        if sock.gettimeout() == 0:
            raise ValueError("FrameReader needs a blocking socket (timeout None or > 0), not a non-blocking one")
        if buffer_size < _MIN_BUFFER_SIZE:
            raise ValueError(f"buffer_size must be at least {_MIN_BUFFER_SIZE}, got {buffer_size}")
        if max_message < 1:
            raise ValueError(f"max_message must be positive, got {max_message}")
        size = max(buffer_size, len(initial))

        # Fixed at construction.
        self._recv_into = sock.recv_into
        self._send_pong = send_pong
        self._max_message = max_message
        self._max_size = max(size, DEFAULT_MAX_BUFFER_SIZE if max_buffer_size is None else max_buffer_size)

        # Only the reading thread touches these.
        # The buffer is never resized in place (a caller may still hold a view into
        # it): growing swaps in a new one, and bigger frames get a buffer of their own.
        self._size = size
        self._buf = bytearray(size)
        self._window = memoryview(self._buf)  # recv_into writes through this one
        self._view = self._window.toreadonly()  # payloads are cut from this one
        self._filled = False  # the last read filled all the room there was
        self._start = 0  # where the first frame not yet returned begins
        self._end = len(initial)  # where the bytes read so far end
        self._buf[:self._end] = initial
        self._opcode: Optional[int] = None  # TEXT or BINARY while a fragmented message is open
        self._parts = bytearray()  # that message's fragments so far
        self._big: Optional[bytearray] = None  # a frame bigger than the buffer, being read
        self._big_got = 0  # how much of _big has arrived
        self._big_head = 0  # the length of _big's header (for ``buffered``)
        self._big_b0 = 0  # _big's first header byte (FIN, RSV, opcode)
        self._closed_by_peer = False  # a CLOSE frame has been returned
        self._failed: Optional[ProtocolError] = None  # the stream is out of step for good

    def __repr__(self) -> str:
        return (f"<FrameReader buffered={self.buffered} "
                f"{'in a fragmented message' if self._opcode is not None else 'between messages'}>")

    @property
    def buffer_size(self) -> int:
        """The receive buffer's size now (it grows under a steady burst)."""
        return self._size

    @property
    def buffered(self) -> int:
        """Bytes read from the socket and not yet returned (0 between bursts)."""
        big = self._big_head + self._big_got if self._big is not None else 0
        return self._end - self._start + big

    def read(self) -> Tuple[int, memoryview]:
        """Block until the next whole message or control frame; return it.

        Returns:
            ``(opcode, payload)`` with opcode ``OPCODE_TEXT``, ``OPCODE_BINARY``,
            ``OPCODE_CLOSE`` or ``OPCODE_PONG``. Pings are answered through
            ``send_pong`` and not returned. A TEXT payload is not checked for UTF-8
            (decode it: ``str(payload, "utf-8")``); a CLOSE payload is empty or at
            least 2 bytes (``parse_close`` splits it).

            Lifetime: ``payload`` is a read-only ``memoryview`` that is valid until the
            next call to ``read`` on this reader, whatever that call returns or raises:
            that call may overwrite the bytes under it. Copy what must live longer
            (``bytes(payload)``). Some payloads (fragmented messages, frames larger
            than the buffer) happen to own their memory; do not rely on it.

        Raises:
            ProtocolError: the server broke RFC 6455 (the message says how). The
                stream is out of step: close the connection. Every later call raises
                the same error.
            EOFError: the peer closed the TCP connection (recv returned no bytes); the
                message says whether it was after its close frame, between messages or
                in the middle of one.
            socket.timeout: the socket's timeout ran out (raised by the socket,
                unchanged; ``TimeoutError`` from Python 3.10 on; a TLS read timeout is
                one too). Nothing is lost: calling ``read`` again continues where the
                stream stopped, even in the middle of a frame header.
            OSError: whatever the socket raised (reset, closed, ``ssl.SSLError``).
            Exception: whatever ``send_pong`` raised; the ping counts as handled.

        Thread: the reading thread only.
        """
        if self._failed is not None:
            raise self._failed
        if self._big is not None:  # a timeout interrupted a big frame: finish it first
            message = self._read_big()
            if message is not None:
                return message
        buf = self._buf
        while True:
            start = self._start
            avail = self._end - start
            need = 2
            if avail >= 2:
                b0 = buf[start]
                b1 = buf[start + 1]
                if b1 < 126:
                    head, length = 2, b1
                elif b1 == 126:
                    head = 4
                    length = (buf[start + 2] << 8) | buf[start + 3] if avail >= 4 else -1
                elif b1 == 127:
                    head = 10
                    length = _U64.unpack_from(buf, start + 2)[0] if avail >= 10 else -1
                else:
                    raise self._fail("the server sent a masked frame; a server must never mask "
                                     "its frames (RFC 6455, section 5.1)")
                if length < 0:
                    need = head  # the extended length has not all arrived
                else:
                    # TEXT or BINARY in one frame, no fragmented message open: the
                    # common case skips every other check.
                    plain = (b0 == _FIN_BINARY or b0 == _FIN_TEXT) and self._opcode is None
                    if not plain or length > self._max_message:
                        self._check(b0, length)
                    stop = start + head + length
                    if stop <= self._end:
                        self._start = stop
                        payload = self._view[start + head:stop]
                        if plain:
                            return b0 & 0x0F, payload
                        message = self._frame(b0, payload)
                        if message is not None:
                            return message
                        continue
                    need = head + length
                    if need > self._size:
                        message = self._begin_big(b0, head, length)
                        if message is not None:
                            return message
                        continue
            self._fill(need)
            buf = self._buf  # _fill may have swapped in a bigger one

    # -- reading ---------------------------------------------------------------------

    def _fill(self, need: int) -> None:
        """Read once more, so that the frame at ``_start`` (``need`` bytes) can fit."""
        if self._filled and self._size < self._max_size:
            self._grow()
        start, end, size = self._start, self._end, self._size
        if start == end:
            end = self._start = self._end = 0
        elif size - start < need or (start and size - end < size // 4):
            # Move the unfinished frame to the front: so that it fits, and so that the
            # next recv gets a wide window rather than the buffer's last few bytes.
            end = end - start
            self._buf[:end] = self._buf[start:self._end]  # through a copy: the ranges may overlap
            self._start, self._end = 0, end
        # need <= size here (bigger frames go to _begin_big), so the window is never empty
        # and 0 from recv_into always means end of stream.
        got = self._recv(self._window[end:])
        self._filled = got == size - end
        self._end = end + got

    def _grow(self) -> None:
        """Swap in a buffer four times the size (at most the maximum), keeping what is
        unreturned at its front."""
        start, end = self._start, self._end
        size = min(self._size * 4, self._max_size)
        buf = bytearray(size)
        buf[:end - start] = self._view[start:end]
        self._buf, self._size = buf, size
        self._window = memoryview(buf)
        self._view = self._window.toreadonly()
        self._start, self._end = 0, end - start
        self._filled = False

    def _recv(self, window: memoryview) -> int:
        try:
            got = self._recv_into(window)
        except BlockingIOError as exc:  # a blocking socket's kernel timeout (SO_RCVTIMEO) ran out
            raise socket.timeout("timed out") from exc
        except _SSLError as exc:
            # websocket-client does the same: an SSL-level timeout is a timeout. (Python
            # 3 raises socket.timeout for TLS reads itself; this covers what slips by.)
            if "timed out" in str(exc):
                raise socket.timeout(str(exc)) from exc
            raise
        if not got:
            raise EOFError(self._eof_message())
        return got

    def _eof_message(self) -> str:
        if self._closed_by_peer:
            return "the server closed the TCP connection after its close frame"
        if self.buffered or self._opcode is not None:
            return (f"the server closed the TCP connection in the middle of a message "
                    f"({self.buffered} bytes of an unfinished frame received)")
        return "the server closed the TCP connection without a close frame"

    def _begin_big(self, b0: int, head: int, length: int) -> Optional[Tuple[int, memoryview]]:
        """Start reading a frame bigger than the buffer straight into one of its size."""
        big = bytearray(length)
        payload_start = self._start + head
        have = self._end - payload_start
        big[:have] = self._view[payload_start:self._end]
        self._start = self._end = 0
        self._big, self._big_got, self._big_head, self._big_b0 = big, have, head, b0
        return self._read_big()

    def _read_big(self) -> Optional[Tuple[int, memoryview]]:
        big = self._big
        assert big is not None
        view = memoryview(big)
        total = len(big)
        while self._big_got < total:  # reads no further than this frame
            self._big_got += self._recv(view[self._big_got:])
        self._big = None
        self._big_got = 0
        return self._frame(self._big_b0, view.toreadonly())

    # -- frames ----------------------------------------------------------------------

    def _check(self, b0: int, length: int) -> None:
        """Raise ProtocolError if a frame with this header is not allowed here."""
        opcode = b0 & 0x0F
        name = _NAMES.get(opcode)
        if b0 & _RSV:
            raise self._fail(f"the server set reserved bits (0x{b0 & _RSV:02x}) in a {name or 'frame'} header, "
                             "but no extension that defines them was negotiated")
        if name is None:
            raise self._fail(f"the server sent a frame with the unknown opcode 0x{opcode:x}")
        if length >= 1 << 63:
            raise self._fail("the server sent a 64-bit frame length with its most significant bit set")
        if opcode >= OPCODE_CLOSE:
            if not b0 & _FIN:
                raise self._fail(f"the server fragmented a {name} frame; control frames cannot be fragmented")
            if length > _MAX_CONTROL:
                raise self._fail(f"the server sent a {name} frame of {length} bytes; "
                                 f"control frames carry at most {_MAX_CONTROL}")
            if opcode == OPCODE_CLOSE and length == 1:
                raise self._fail("the server sent a close frame with a 1-byte payload; "
                                 "a close payload is empty or starts with a 2-byte status code")
            return
        total = length
        if opcode == OPCODE_CONT:
            if self._opcode is None:
                raise self._fail("the server sent a continuation frame, but no fragmented message was started")
            total += len(self._parts)
        elif self._opcode is not None:
            raise self._fail(f"the server started a new {name} message before finishing its fragmented "
                             f"{_NAMES[self._opcode]} message")
        if total > self._max_message:
            raise self._fail(f"the server sent a message of {total} bytes, more than max_message "
                             f"({self._max_message}); raise max_message if the server is right")

    def _frame(self, b0: int, payload: memoryview) -> Optional[Tuple[int, memoryview]]:
        """Act on a checked frame; return the message it completes, or None."""
        opcode = b0 & 0x0F
        if opcode == OPCODE_PING:
            self._send_pong(bytes(payload))
            return None
        if opcode == OPCODE_CLOSE:
            problem = _close_problem(payload)
            if problem is not None:
                raise self._fail(problem)
            self._closed_by_peer = True
            return opcode, payload
        if opcode == OPCODE_PONG:
            return opcode, payload
        if opcode == OPCODE_CONT:
            self._parts += payload
            if not b0 & _FIN:
                return None
            started = self._opcode
            assert started is not None  # the header check refused a continuation of no message
            message = started, memoryview(self._parts).toreadonly()
            self._opcode, self._parts = None, bytearray()
            return message
        if b0 & _FIN:
            return opcode, payload
        self._opcode, self._parts = opcode, bytearray(payload)
        return None

    def _fail(self, message: str) -> ProtocolError:
        self._failed = ProtocolError(message)
        return self._failed
