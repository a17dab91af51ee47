"""One connection to a TTS server: the speech it serves, and its reader thread.

A ``Connection`` opens its ``Wire`` (the WebSocket), sends the dialect's opening frames,
and then reads frames on its own thread (``ttsstream-reader-N``), turning them through
the dialect into calls on the speech it currently serves (its *sink*). It decides when
a speech has timed out, when an idle connection retires, and which failures may be
handed back to the pool to send again (``on_stale``).

Imports: wire, errors, protocols, redaction, urls. Never playback, never websocket-client
itself (that is ``wire``'s)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Callable, List, Optional, Union

from .errors import ConnectionFailed, ProtocolError, SynthesisTimeout, TTSError
from .protocols import Audio, Dialect, Done, Failed, Metadata, Request
from .redaction import redact, remember_secret, scrub_exception
from .urls import display_url
from .wire import BINARY, CLOSE, Silence, Wire, parse_close

__all__ = ["Connection", "Sink"]

logger = logging.getLogger("ttsstream.connection")

_ids = itertools.count(1)
_JOIN_GRACE = 5.0  # seconds a close() waits for a reader thread beyond the socket timeout


class Sink:
    """What a connection feeds: the speech it serves. ``ttsstream.client.Speech`` is one.

    Thread: every method but ``_attach`` is called on the connection's reader thread.
    """

    def _attach(self, connection: "Connection") -> None:  # pragma: no cover - interface
        """``connection`` serves it from now on (the one it began on, or a replacement).
        Thread: the caller of ``begin``, just before it."""

    def _on_audio(self, data: bytes) -> None:  # pragma: no cover - interface
        """Audio bytes as framed by the server (may split a sample)."""

    def _on_metadata(self, sample_rate: Optional[int]) -> None:  # pragma: no cover - interface
        """The server announced the audio's sample rate."""

    def _end(self, error: Optional[TTSError]) -> None:  # pragma: no cover - interface
        """The utterance ended: normally (None) or with ``error``."""


class Connection:
    """One WebSocket and its reader thread, serving one speech at a time.

    A connection is either opened ahead of any speech (``open``: prewarmed; it connects
    and sends the dialect's opening frames, then waits) or by its first speech
    (``begin``). Between speeches it idles, and retires itself once it has idled for
    ``max_idle`` seconds, before a server, a load balancer or a NAT drops it unseen.

    Args:
        dialect: the server dialect.
        url: the endpoint (without the key; the dialect adds it), or a function the
            reader thread calls for it before connecting (the local server starts there,
            so that speak(block=False) returns at once); it may raise a TTSError.
        api_key: the key, or None.
        timeout: seconds for connecting, and the longest silence allowed between two
            frames while a speech is running.
        max_idle: seconds an open connection may wait for a speech before it closes.
        on_idle: called with this connection when a speech ends normally and the
            dialect allows another on the same socket. Thread: the reader thread.
        on_exit: called with this connection when its reader is about to exit.
            Thread: the reader thread.
        on_stale: ``on_stale(sink, request, error)`` for a speech sent on a connection that
            was already open, when the connection fails before any of its audio arrived
            (it had died while idle): return True to take the speech over (send it
            again elsewhere), False to let it end with ``error``. Thread: the reader
            thread, or the caller of ``begin``.
    """

    def __init__(self, dialect: Dialect, url: Union[str, Callable[[], str]], api_key: Optional[str],
                 timeout: float, *, max_idle: float, on_idle: Callable[["Connection"], None],
                 on_exit: Callable[["Connection"], None],
                 on_stale: Callable[[Sink, Request, TTSError], bool]) -> None:
        # Fixed at construction.
        self.dialect = dialect
        self.id = next(_ids)
        self._find_url = None if isinstance(url, str) else url
        self._api_key = api_key
        self._timeout = timeout
        self._max_idle = max_idle
        self._on_idle = on_idle
        self._on_exit = on_exit
        self._on_stale = on_stale
        remember_secret(api_key)
        self._thread = threading.Thread(target=self._run, name=f"ttsstream-reader-{self.id}", daemon=True)

        # The socket: only the reader thread receives; sends come from speak() and
        # cancel() threads too.
        self._wire = Wire(dialect.title, dialect.env_key)

        # The reader thread's own.
        self._url = url if isinstance(url, str) else "(local server, starting)"  # read by messages too
        self._audio_seen = False      # audio arrived for the current speech
        self._last_heard = 0.0        # monotonic time of the last frame, or of begin()
        self.error: Optional[TTSError] = None  # what ended the reader, once it has exited

        # Guarded by _lock. begin() and open() set them; the reader reads them without
        # the lock (reference reads) and changes them under it.
        self._lock = threading.Lock()
        self._launched = False        # the reader thread has been started
        self._open = False            # connected and opening frames sent
        self._sink: Optional[Sink] = None
        self._request: Optional[Request] = None  # the current or last request (its session)
        self._resent = False          # the current request went on an already open socket
        self._idle_since = 0.0        # monotonic time the connection last became idle
        self._aborted = False         # abort() was called: our own doing, never retried

        # Events, safe from any thread.
        self._closing = threading.Event()
        self._ready = threading.Event()   # open, or the reader has exited (see self.error)

    def __repr__(self) -> str:
        state = "closing" if self._closing.is_set() else ("busy" if self._sink else "idle")
        return f"<Connection {self.id} {self.dialect.name} {display_url(self._url)} {state}>"

    @property
    def alive(self) -> bool:
        """True until the connection starts closing (or its reader has exited)."""
        thread = self._thread
        return not self._closing.is_set() and (thread.ident is None or thread.is_alive())

    @property
    def was_open(self) -> bool:
        """True once it has connected and sent its opening frames."""
        return self._open

    @property
    def request(self) -> Optional[Request]:
        """The request it serves or last served (its session is the connection's)."""
        return self._request

    @property
    def thread(self) -> threading.Thread:
        """The reader thread (not started until ``open`` or the first ``begin``)."""
        return self._thread

    def open(self, request: Request) -> None:
        """Connect now and send the opening frames of ``request``'s session, with no speech
        yet: the connection waits, open, for ``begin``. Returns without waiting (see
        ``wait_open``). Thread: any.
        """
        with self._lock:
            if self._launched:
                return
            self._launched = True
            self._request = request
        self._thread.start()

    def wait_open(self, timeout: float) -> bool:
        """Wait until the connection is open; return False if it is not by then.

        Raises:
            TTSError: the connection failed first (``self.error``).
        """
        if not self._ready.wait(timeout):
            return False
        if not self._open:
            raise self.error or ConnectionFailed("the connection closed before it opened")
        return True

    def begin(self, sink: Sink, request: Request) -> None:
        """Serve ``request`` to ``sink``: connect first if needed. Returns without waiting.

        Failures reach ``sink._end`` (on the reader thread, or here for a send that fails
        on an open connection), or ``on_stale`` for a connection that died while idle.

        Thread: any; the caller's.
        """
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("connection is already serving a speech")
            self._sink, self._request = sink, request
            launch = not self._launched
            self._launched = True
            # Sent here on an open socket; otherwise the reader sends it once open.
            self._resent = send_now = self._open
            self._audio_seen = False
            self._last_heard = time.monotonic()
        if launch:
            self._thread.start()
            return
        if not send_now:
            return
        try:
            self._send_all(self.dialect.request_frames(request))
        except TTSError as error:
            with self._lock:
                mine = self._sink is sink  # else the exiting reader has taken it over
                if mine:
                    self._sink = None
            if mine:
                self._hand_back(sink, request, error)
            self.abort()

    def abort(self) -> None:
        """Close now: say goodbye if possible, then unblock the reader. Idempotent.

        Thread: any, including the reader thread itself (from inside a callback).
        """
        with self._lock:
            self._aborted = True
        if self._closing.is_set():
            return
        self._closing.set()
        self._wire.abort()

    def close(self) -> None:
        """Abort, then join the reader thread (unless called on it). Idempotent.

        Thread: any, including the reader thread itself.
        """
        self.abort()
        self.join()

    def join(self) -> None:
        """Wait for the reader thread to exit (skipped on the reader thread itself)."""
        if self._thread.ident is not None and threading.current_thread() is not self._thread:
            self._thread.join(self._timeout + _JOIN_GRACE)
            if self._thread.is_alive():
                logger.warning("%s: reader thread did not exit in time", self)

    # -- the reader thread -------------------------------------------------------

    def _run(self) -> None:
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
            self._wire.shutdown()
            self.error = error or self.error
            self._ready.set()
            with self._lock:
                sink, self._sink = self._sink, None
                request = self._request
            if sink is not None and request is not None:
                self._hand_back(sink, request, error or ConnectionFailed(
                    f"the connection to {display_url(self._url)} closed"))
            elif error is not None:
                logger.debug("%s: idle connection ended: %s", self, error)
            self._on_exit(self)

    def _hand_back(self, sink: Sink, request: Request, error: TTSError) -> None:
        """End ``sink``'s speech with ``error``, unless it went on a socket that had died
        while idle: then ``on_stale`` may send it again elsewhere, unseen by the user."""
        with self._lock:
            stale = self._resent and not self._audio_seen and not self._aborted
        if stale and type(error) is ConnectionFailed and self._on_stale(sink, request, error):
            logger.debug("%s: died while idle; its speech goes on another connection", self)
            return
        sink._end(error)

    def _connect(self) -> None:
        request = self._request
        assert request is not None
        if self._find_url is not None:
            self._url = self._find_url()
        where = display_url(self._url)
        try:
            self._wire.open(self.dialect.connect_url(self._url, self._api_key),
                            self.dialect.connect_headers(self._api_key), self._timeout, where)
        except ConnectionFailed:
            if self._closing.is_set():
                raise ConnectionFailed(f"the connection to {where} was closed while opening") from None
            raise
        if self._closing.is_set():  # aborted while the handshake ran: leave now
            raise ConnectionFailed(f"the connection to {where} was closed while opening")
        logger.debug("%s: connected", self)
        self._send_all(self.dialect.open_frames(request, self._api_key))
        with self._lock:
            self._open = True
            self._idle_since = self._last_heard = time.monotonic()
            waiting = self._request if self._sink is not None else None
        self._ready.set()
        if waiting is not None:  # a speech began while the socket was opening
            self._send_all(self.dialect.request_frames(waiting))

    def _send_all(self, frames: List[str]) -> None:
        self._wire.send(frames, display_url(self._url))

    def _quiet_too_long(self) -> bool:
        """After a socket timeout: True if it is time to end (an idle connection past its
        age, which closes itself); raise SynthesisTimeout for a speech the server left
        silent for ``timeout``; False to keep reading. The socket timeout is then set to
        wake exactly at the next deadline."""
        now = time.monotonic()
        if self._sink is None:
            left = self._idle_since + self._max_idle - now
            if left <= 0:
                logger.debug("%s: idle for %g s: retiring", self, self._max_idle)
                self._goodbye()
                return True
        else:
            left = self._last_heard + self._timeout - now
            if left <= 0:
                raise SynthesisTimeout(
                    f"{self.dialect.title} sent nothing for {self._timeout:g} s; the server may be overloaded "
                    "(raise timeout= to wait longer)")
        self._wire.settimeout(max(0.001, min(left, self._timeout, self._max_idle)))
        return False

    def _read_loop(self) -> None:
        # A dialect that keeps the base parse_binary sends raw PCM in binary frames:
        # those skip the event object.
        raw_audio = type(self.dialect).parse_binary is Dialect.parse_binary
        wire = self._wire
        where = display_url(self._url)
        wire.settimeout(min(self._timeout, self._max_idle))
        while True:
            try:
                opcode, data = wire.receive(where)
            except Silence:
                if self._closing.is_set() or self._quiet_too_long():
                    return
                continue
            except ConnectionFailed:
                if self._closing.is_set():
                    return
                raise
            self._last_heard = time.monotonic()
            if opcode == BINARY:
                if raw_audio:  # the hot path: audio, copied out of the reader's buffer
                    if self._sink is not None and data:
                        self._audio_seen = True
                        self._sink._on_audio(bytes(data))
                    elif data:
                        logger.warning("%s: dropped %d bytes of audio that no speech asked for", self, len(data))
                    continue
                event = self.dialect.parse_binary(bytes(data))
                if event is not None and not self._handle(event):
                    return
                continue
            if opcode == CLOSE:
                code, reason = parse_close(data)
                reason = redact(reason)  # servers quote the key they refused
                logger.debug("%s: server closed (%s %s)", self, code, reason)
                if self._closing.is_set():
                    return
                if self._sink is None:  # closed while idle: kept in self.error, for wait_open
                    self.error = self.dialect.close_error(code, reason, False) if code != 1000 else None
                    return
                raise self.dialect.close_error(code, reason, self._audio_seen)
            try:
                text = str(data, "utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(f"{self.dialect.title} sent a text frame that is not UTF-8") from None
            event = self.dialect.parse_text(text, self._audio_seen)
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
                self._idle_since = time.monotonic()
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
        self._wire.close(timeout=min(1.0, self._timeout))
