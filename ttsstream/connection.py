"""One WebSocket to a TTS server: its socket, its send lock and its reader thread.

A ``Connection`` opens the socket, sends the dialect's opening frames, and then reads
frames on its own thread (``ttsstream-reader-N``), turning them through the dialect into
calls on the speech it currently serves (its *sink*). It is the only module that
touches websocket-client, so it is the one place where websocket-client's exceptions
become ttsstream's, and where API keys are kept out of its logs.

Imports: websocket-client, errors, protocols, redaction, urls. Never playback.
"""

from __future__ import annotations

import itertools
import logging
import socket
import ssl
import struct
import threading
from typing import Callable, List, Optional, Tuple, Union

import websocket
from websocket import ABNF

from .errors import AuthenticationError, ConnectionFailed, ProtocolError, SynthesisTimeout, TTSError
from .protocols import Audio, Dialect, Done, Failed, Metadata, Request
from .redaction import protect_logger, redact, remember_secret, scrub_exception
from .urls import display_url

__all__ = ["Connection", "Sink"]

logger = logging.getLogger("ttsstream.connection")

_ids = itertools.count(1)
_JOIN_GRACE = 5.0  # seconds a close() waits for a reader thread beyond the socket timeout


def _close_status(data: bytes) -> Tuple[Optional[int], str]:
    if len(data) < 2:
        return None, ""
    code = struct.unpack("!H", data[:2])[0]
    return code, data[2:].decode("utf-8", "replace")


# -- the connection ----------------------------------------------------------------


class Sink:
    """What a connection feeds: the speech it serves. ``ttsstream.client.Speech`` is one.

    Thread: every method is called on the connection's reader thread.
    """

    def _on_audio(self, data: bytes) -> None:  # pragma: no cover - interface
        """Audio bytes as framed by the server (may split a sample)."""

    def _on_metadata(self, sample_rate: Optional[int]) -> None:  # pragma: no cover - interface
        """The server announced the audio's sample rate."""

    def _end(self, error: Optional[TTSError]) -> None:  # pragma: no cover - interface
        """The utterance ended: normally (None) or with ``error``."""


class Connection:
    """One WebSocket and its reader thread, serving one speech at a time.

    Args:
        dialect: the server dialect.
        url: the endpoint (without the key; the dialect adds it), or a function the
            reader thread calls for it before connecting (the local server starts there,
            so that speak(block=False) returns at once); it may raise a TTSError.
        api_key: the key, or None.
        timeout: seconds for connecting, and the longest silence allowed between two
            frames while a speech is running.
        on_idle: called with this connection when a speech ends normally and the
            dialect allows another on the same socket. Thread: the reader thread.
        on_exit: called with this connection when its reader is about to exit.
            Thread: the reader thread.
    """

    def __init__(self, dialect: Dialect, url: Union[str, Callable[[], str]], api_key: Optional[str], timeout: float,
                 on_idle: Callable[["Connection"], None], on_exit: Callable[["Connection"], None]) -> None:
        # Fixed at construction.
        self.dialect = dialect
        self.id = next(_ids)
        self._find_url = None if isinstance(url, str) else url
        self._api_key = api_key
        self._timeout = timeout
        self._on_idle = on_idle
        self._on_exit = on_exit
        remember_secret(api_key)
        protect_logger(logging.getLogger("websocket"))  # its trace logs URLs and frames
        self._thread = threading.Thread(target=self._run, name=f"ttsstream-reader-{self.id}", daemon=True)

        # The socket: only the reader thread receives; sends come from speak() and
        # cancel() threads too, serialised by websocket-client's own lock.
        self._ws = websocket.WebSocket(
            enable_multithread=True,
            sockopt=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # Written by the reader thread before it connects; read by repr and messages.
        self._url = url if isinstance(url, str) else "(local server, starting)"

        # Guarded by _lock: the speech being served. begin() sets them; the reader
        # thread reads them without the lock (a reference read) and clears _sink under it.
        self._lock = threading.Lock()
        self._sink: Optional[Sink] = None
        self._request: Optional[Request] = None
        self._audio_seen = False  # the reader thread's, once begin() has set it

        # Events, safe from any thread.
        self._closing = threading.Event()
        self._started = threading.Event()

    def __repr__(self) -> str:
        state = "closing" if self._closing.is_set() else ("busy" if self._sink else "idle")
        return f"<Connection {self.id} {self.dialect.name} {display_url(self._url)} {state}>"

    @property
    def alive(self) -> bool:
        """True until the connection starts closing (or its reader has exited)."""
        return not self._closing.is_set() and (not self._started.is_set() or self._thread.is_alive())

    @property
    def request(self) -> Optional[Request]:
        """The request it serves or last served (its session is the connection's)."""
        return self._request

    @property
    def thread(self) -> threading.Thread:
        """The reader thread (not started until the first ``begin``)."""
        return self._thread

    def begin(self, sink: Sink, request: Request) -> None:
        """Serve ``request`` to ``sink``: connect first if needed. Returns without waiting.

        Failures reach ``sink._end`` (on the reader thread, or here for a send that fails
        on an open connection).

        Thread: any; the caller's.
        """
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("connection is already serving a speech")
            self._sink, self._request, self._audio_seen = sink, request, False
            first = not self._started.is_set()
        if first:
            self._thread.start()
            if not self._started.wait(self._timeout + _JOIN_GRACE):
                self._abandon(sink, ConnectionFailed("the reader thread did not start"))
            return
        try:
            self._send_all(self.dialect.request_frames(request))
        except TTSError as error:
            self._abandon(sink, error)

    def abort(self) -> None:
        """Close now: say goodbye if possible, then unblock the reader. Idempotent.

        Thread: any, including the reader thread itself (from inside a callback).
        """
        if self._closing.is_set():
            return
        self._closing.set()
        ws = self._ws
        if ws.connected:
            try:
                ws.send_close(websocket.STATUS_NORMAL)
            except (websocket.WebSocketException, OSError):
                pass  # the socket is already gone; shutting it down below is all that is left
        sock = ws.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv
            except OSError:
                pass  # not connected (yet or any more): nothing to wake

    def close(self) -> None:
        """Abort, then join the reader thread (unless called on it). Idempotent.

        Thread: any, including the reader thread itself.
        """
        self.abort()
        self.join()

    def join(self) -> None:
        """Wait for the reader thread to exit (skipped on the reader thread itself)."""
        if self._started.is_set() and threading.current_thread() is not self._thread:
            self._thread.join(self._timeout + _JOIN_GRACE)
            if self._thread.is_alive():
                logger.warning("%s: reader thread did not exit in time", self)

    # -- the reader thread -------------------------------------------------------

    def _run(self) -> None:
        self._started.set()
        error: Optional[TTSError] = None
        try:
            self._connect()
            self._read_loop()
        except TTSError as exc:
            # Servers echo what they refused (a token, a URL with ?api_key=): the
            # error a user sees is built from the server's text, so it is scrubbed here.
            error = exc
            scrub_exception(error)
        except Exception as exc:  # a bug of ours must still end the speech, not hang it
            logger.exception("%s: reader failed", self)
            error = ConnectionFailed(f"internal error in the reader: {exc!r}")
        finally:
            self._closing.set()
            self._ws.shutdown()
            with self._lock:
                sink, self._sink = self._sink, None
            if sink is not None:
                sink._end(error or ConnectionFailed(f"the connection to {display_url(self._url)} closed"))
            elif error is not None:
                logger.debug("%s: idle connection ended: %s", self, error)
            self._on_exit(self)

    def _connect(self) -> None:
        request = self._request
        assert request is not None
        if self._find_url is not None:
            self._url = self._find_url()
        url = self.dialect.connect_url(self._url, self._api_key)
        where = display_url(self._url)
        try:
            self._ws.connect(url, header=self.dialect.connect_headers(self._api_key), timeout=self._timeout)
        except websocket.WebSocketBadStatusException as exc:
            scrub_exception(exc)
            status = exc.status_code
            if status in (401, 403):
                raise AuthenticationError(
                    f"{self.dialect.title} refused the connection (HTTP {status}): check "
                    f"{self.dialect.env_key} or pass api_key=",
                    status=status,
                ) from exc
            hint = ": check the url" if status == 404 else ""
            raise ConnectionFailed(f"{where} answered HTTP {status}{hint}", status=status) from exc
        except ConnectionRefusedError as exc:
            raise ConnectionFailed(f"connection refused by {where}: is the server running?") from scrub_exception(exc)
        except (socket.timeout, websocket.WebSocketTimeoutException) as exc:
            raise ConnectionFailed(
                f"timed out after {self._timeout:g} s connecting to {where}; check the url and your network, "
                "or raise timeout="
            ) from scrub_exception(exc)
        except socket.gaierror as exc:
            raise ConnectionFailed(f"cannot resolve the host of {where}: {exc.strerror}") from scrub_exception(exc)
        except ssl.SSLError as exc:
            raise ConnectionFailed(f"TLS failed with {where}: {redact(str(exc))}") from scrub_exception(exc)
        except (websocket.WebSocketException, OSError) as exc:
            if self._closing.is_set():
                raise ConnectionFailed(f"the connection to {where} was closed while opening") from None
            raise ConnectionFailed(f"cannot connect to {where}: {redact(str(exc)) or type(exc).__name__}") from scrub_exception(exc)
        if self._closing.is_set():  # aborted while the handshake ran: leave now
            raise ConnectionFailed(f"the connection to {where} was closed while opening")
        logger.debug("%s: connected", self)
        self._send_all(self.dialect.open_frames(request, self._api_key) + self.dialect.request_frames(request))

    def _send_all(self, frames: List[str]) -> None:
        try:
            for frame in frames:
                self._ws.send(frame)
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionFailed(f"sending to {display_url(self._url)} failed: {redact(str(exc))}") from scrub_exception(exc)

    def _read_loop(self) -> None:
        ws = self._ws
        while True:
            try:
                opcode, frame = ws.recv_data_frame(control_frame=False)
            except websocket.WebSocketTimeoutException:
                if self._closing.is_set():
                    return
                if self._sink is None:
                    continue  # an idle connection waits for its next speech
                raise SynthesisTimeout(
                    f"{self.dialect.title} sent nothing for {self._timeout:g} s; the server may be overloaded "
                    "(raise timeout= to wait longer)"
                ) from None
            except (websocket.WebSocketException, OSError) as exc:
                if self._closing.is_set():
                    return
                raise ConnectionFailed(
                    f"the connection to {display_url(self._url)} dropped: {redact(str(exc)) or type(exc).__name__}"
                ) from scrub_exception(exc)
            if opcode == ABNF.OPCODE_CLOSE:
                code, reason = _close_status(frame.data)
                reason = redact(reason)  # servers quote the key they refused
                logger.debug("%s: server closed (%s %s)", self, code, reason)
                if self._sink is None or self._closing.is_set():
                    return
                raise self.dialect.close_error(code, reason, self._audio_seen)
            if opcode == ABNF.OPCODE_TEXT:
                try:
                    text = frame.data.decode("utf-8")
                except UnicodeDecodeError:
                    raise ProtocolError(f"{self.dialect.title} sent a text frame that is not UTF-8") from None
                event = self.dialect.parse_text(text, self._audio_seen)
            else:
                event = self.dialect.parse_binary(frame.data)
            if event is not None and not self._handle(event):
                return

    def _handle(self, event: object) -> bool:
        """Apply one event; return False when this connection is finished."""
        sink = self._sink
        if isinstance(event, Audio):
            if sink is None:
                logger.warning("%s: dropped %d bytes of audio that no speech asked for", self, len(event.data))
                return True
            self._audio_seen = True
            sink._on_audio(event.data)
        elif isinstance(event, Metadata):
            if sink is not None:
                sink._on_metadata(event.sample_rate)
        elif isinstance(event, Failed):
            raise event.error
        elif isinstance(event, Done):
            if sink is None:
                logger.debug("%s: end-of-stream with no speech running, ignored", self)
                return True
            with self._lock:
                self._sink = None
            reuse = self.dialect.reusable and not self._closing.is_set()
            if reuse:
                self._on_idle(self)  # before _end, so a speak() right after it finds this socket
            sink._end(None)
            if reuse:
                return True
            self._goodbye()
            return False
        return True

    def _goodbye(self) -> None:
        """Close the socket politely after the last speech (reader thread)."""
        self._closing.set()
        try:
            self._ws.close(websocket.STATUS_NORMAL, timeout=min(1.0, self._timeout))
        except (websocket.WebSocketException, OSError):
            pass  # the server went first; the socket is shut down in _run either way

    def _abandon(self, sink: Sink, error: TTSError) -> None:
        with self._lock:
            if self._sink is sink:
                self._sink = None
        self.abort()
        sink._end(error)
