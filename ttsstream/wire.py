"""The WebSocket itself: open it, send on it, receive from it, close it.

websocket-client does what it is good at: the handshake, TLS, proxies, headers and
sending (under its own lock, so that ``speak()`` and ``cancel()`` threads may send
while the reader reads). Receiving is ``frames.FrameReader``'s, on websocket-client's
socket once the handshake is done: it reads ahead, so a burst of frames costs one
system call instead of three per frame. ``Wire`` puts the two together for a
``Connection``; it is the only place that touches websocket-client, so it is the one
place where socket and websocket-client exceptions become ttsstream's
(``ConnectionFailed``, ``AuthenticationError``, ``RateLimited`` for an HTTP 429 with its
``Retry-After``), and where API keys are kept out of them.

Imports: websocket-client, frames, errors, redaction. Knows nothing of speeches or
dialect frames beyond the names a message needs.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import ssl
import struct
import sys
import time
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import websocket

from .errors import AuthenticationError, ConnectionFailed, ProtocolError, RateLimited, SynthesisTimeout
from .frames import OPCODE_BINARY as BINARY, OPCODE_CLOSE as CLOSE, OPCODE_PONG, OPCODE_TEXT as TEXT
from .frames import FrameReader, parse_close
from .redaction import protect_logger, redact, scrub_exception

# Where a blocking socket's reads and sends are timed out by the kernel (see settimeout).
_KERNEL_TIMEOUTS = sys.platform.startswith("linux")

__all__ = ["Wire", "Silence", "TEXT", "BINARY", "CLOSE", "parse_close", "retry_after_seconds"]


class Silence(Exception):
    """Nothing arrived within the socket's timeout (the wire is intact)."""


class Wire:
    """One websocket-client WebSocket.

    Args:
        service: how messages name the server ("EigenAI").
        key_hint: what to check when a key is refused ("EIGENAI_API_KEY").
        ca_bundle: a PEM file of the certificate authorities to trust for ``wss://``;
            None trusts the system's store. The certificate and the host name are
            always verified.

    Thread: ``receive`` and ``settimeout`` belong to the reader thread; ``send`` and
    ``abort`` may come from any thread (a lock of its own serialises the frames sent).
    """

    def __init__(self, service: str, key_hint: str, ca_bundle: Optional[str] = None) -> None:
        self._service = service
        self._key_hint = key_hint
        protect_logger(logging.getLogger("websocket"))  # its trace logs URLs and frames
        tls: Dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
        if ca_bundle is not None:
            tls["ca_certs"] = ca_bundle
        self._ws = websocket.WebSocket(
            enable_multithread=True,
            sockopt=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            sslopt=tls,
        )
        self._reader: Optional[FrameReader] = None  # the reader thread's, once open
        self._send_lock = threading.Lock()  # one frame at a time on the socket, whole
        self._close_lock = threading.Lock()
        self._close_sent = False  # guarded by _close_lock: one close frame, whichever thread sends it

    def open(self, url: str, headers: Sequence[str], timeout: float, where: str) -> None:
        """Connect and shake hands. ``where`` is the URL as messages may show it.

        Raises:
            AuthenticationError: HTTP 401 or 403.
            RateLimited: HTTP 429 (``retry_after`` from its ``Retry-After``).
            SynthesisTimeout: ``timeout`` ran out (``limit="connect"``).
            ConnectionFailed: anything else that keeps the socket from opening.
        """
        try:
            self._ws.connect(url, header=list(headers), timeout=timeout)
        except websocket.WebSocketBadStatusException as exc:
            scrub_exception(exc)
            status = exc.status_code
            if status in (401, 403):
                raise AuthenticationError(
                    f"{self._service} refused the connection (HTTP {status}): check {self._key_hint} "
                    "or pass api_key=", status=status) from exc
            wait = retry_after_seconds(_header(exc.resp_headers, "retry-after"), time.time())
            if status == 429:
                raise RateLimited(
                    f"{where} answered HTTP 429 (too many requests): {RateLimited.advice(wait)}",
                    code=429, retry_after=wait) from exc
            hint = ": check the url" if status == 404 else ""
            raise ConnectionFailed(f"{where} answered HTTP {status}{hint}", status=status,
                                   retry_after=wait if status == 503 else None) from exc
        except ConnectionRefusedError as exc:
            raise ConnectionFailed(f"connection refused by {where}: is the server running?") from scrub_exception(exc)
        except (socket.timeout, websocket.WebSocketTimeoutException) as exc:
            raise SynthesisTimeout(f"timed out after {timeout:g} s connecting to {where}",
                                   limit="connect") from scrub_exception(exc)
        except socket.gaierror as exc:
            raise ConnectionFailed(f"cannot resolve the host of {where}: {exc.strerror}") from scrub_exception(exc)
        except ssl.SSLCertVerificationError as exc:
            raise ConnectionFailed(
                f"the TLS certificate of {where} was not accepted ({exc.verify_message}); if the server uses "
                "a private certificate authority, pass its PEM file as ca_bundle=") from scrub_exception(exc)
        except ssl.SSLError as exc:
            raise ConnectionFailed(f"TLS failed with {where}: {redact(str(exc))}") from scrub_exception(exc)
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionFailed(
                f"cannot connect to {where}: {redact(str(exc)) or type(exc).__name__}") from scrub_exception(exc)
        # websocket-client reads the handshake byte by byte, so nothing of the frames
        # that follow it sits in its buffers: the reader starts on a clean stream.
        assert self._ws.sock is not None  # connect() returned: the socket is open
        self._reader = FrameReader(self._ws.sock, send_pong=lambda ping: self._send_frame(ping, OPCODE_PONG))

    def send(self, frames: List[str], where: str) -> None:
        """Send text frames, in order. Raises ConnectionFailed."""
        try:
            for frame in frames:
                self._send_frame(frame, TEXT)
        except BlockingIOError as exc:  # the kernel's send timeout (see settimeout)
            raise ConnectionFailed(f"sending to {where} timed out: the server takes nothing") from exc
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionFailed(f"sending to {where} failed: {redact(str(exc))}") from scrub_exception(exc)

    def _send_frame(self, payload: Union[str, bytes], opcode: int) -> None:
        """One frame, masked, sent whole before any other (any thread). Raises OSError
        (``socket.timeout``, or ``BlockingIOError`` when the kernel's send timeout ran
        out) or websocket-client's error for a socket already released."""
        data = websocket.ABNF.create_frame(payload, opcode).format()
        sock = self._ws.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("the socket is already closed")
        with self._send_lock:
            sock.sendall(data)

    def receive(self, where: str) -> Tuple[int, memoryview]:
        """The next message: ``(TEXT | BINARY | CLOSE, payload)``; pings are answered.

        The payload is a view valid until the next ``receive``: copy what you keep. A
        close frame is answered before it is returned.

        Raises:
            Silence: nothing arrived within the timeout (call again to go on).
            ConnectionFailed: the connection dropped.
            ProtocolError: the server broke the WebSocket protocol.
        """
        reader = self._reader
        assert reader is not None, "receive() before open()"
        try:
            while True:
                opcode, payload = reader.read()
                if opcode != OPCODE_PONG:
                    break
        except socket.timeout:
            raise Silence() from None
        except (EOFError, websocket.WebSocketException, OSError) as exc:  # a pong that failed to send, too
            raise ConnectionFailed(
                f"the connection to {where} dropped: {redact(str(exc)) or type(exc).__name__}"
            ) from scrub_exception(exc)
        except ProtocolError:
            self._send_close(websocket.STATUS_PROTOCOL_ERROR)  # RFC 6455 7.1.7: fail the connection
            raise
        if opcode == CLOSE:
            self._send_close()
        return opcode, payload

    def settimeout(self, seconds: float) -> None:
        """How long ``receive`` (and a send) waits before raising Silence (failing).

        A plain socket is left blocking and the kernel times it out (``SO_RCVTIMEO``,
        ``SO_SNDTIMEO``): each read is then one system call, and one release of the
        interpreter's lock, where Python's own timeout polls first (two of each, per
        frame of every stream). A TLS socket keeps Python's timeout: a blocking TLS read
        would retry a kernel timeout forever. So does any socket off Linux, where the
        option's argument is not a ``timeval`` everywhere (a DWORD of ms on Windows).
        """
        sock = self._ws.sock
        if sock is None or isinstance(sock, ssl.SSLSocket) or not _KERNEL_TIMEOUTS:
            self._ws.settimeout(seconds)
            return
        limit = max(seconds, 1e-6)  # 0 would mean no limit at all
        whole = int(limit)
        timeval = struct.pack("@ll", whole, int((limit - whole) * 1_000_000))
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def close(self, timeout: float) -> None:
        """Close politely: send a close frame and read until the server's answers, for
        ``timeout`` seconds at most. Reader thread."""
        self._send_close()
        reader = self._reader
        if reader is None:
            return
        try:
            self._ws.settimeout(timeout)
            while reader.read()[0] != CLOSE:
                pass
        except (socket.timeout, EOFError, ProtocolError, websocket.WebSocketException, OSError):
            pass  # the server went first, or never answered: shutdown() ends the socket either way

    def _send_close(self, status: int = websocket.STATUS_NORMAL) -> None:
        with self._close_lock:
            if self._close_sent:
                return
            self._close_sent = True
        self._ws.connected = False
        try:
            self._send_frame(struct.pack("!H", status), CLOSE)
        except (websocket.WebSocketException, OSError):
            pass  # the socket is already gone

    def abort(self) -> None:
        """Say goodbye if the socket is open, then shut it down, waking a blocked reader.

        Thread: any.
        """
        ws = self._ws
        if ws.connected:
            self._send_close()
        sock = ws.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv
            except OSError:
                pass  # not connected (yet or any more): nothing to wake

    def shutdown(self) -> None:
        """Release the socket (reader thread, on its way out)."""
        self._ws.shutdown()


def retry_after_seconds(value: Optional[str], now: float) -> Optional[float]:
    """The seconds an HTTP ``Retry-After`` asks for, counted from ``now`` (a Unix time).

    Reads delta-seconds (``"3"``, and ``"1.5"`` as some services send it) or an
    HTTP-date (a past date is 0 seconds); None for a missing or unreadable value.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": HTTP-dates are GMT whatever they say
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _header(headers: Optional[Mapping[str, str]], name: str) -> Optional[str]:
    """A response header by name, whatever its case (websocket-client lowercases them)."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None

