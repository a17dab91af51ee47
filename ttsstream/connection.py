"""One connection to a TTS server: the speech it serves, and its reader thread.

A ``Connection`` opens its ``Wire`` (the WebSocket), sends the dialect's opening frames,
and then reads frames on its own thread (``ttsstream-reader-N``), turning them through
the dialect into calls on the speech it currently serves (its *sink*). It decides when
a speech has timed out and when an idle connection retires (with ``retry.Watch``), and
which failures may be handed back to the pool to send again (``on_retry``).

Imports: wire, retry, errors, protocols, redaction, urls. Never playback, never websocket-client
itself (that is ``wire``'s)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Callable, List, NamedTuple, Optional, Tuple, Union

from .errors import ConnectionFailed, ProtocolError, TTSError
from .protocols import Audio, Dialect, Done, Failed, Metadata, Request, WordTime, WordTimes
from .protocols.extensions import WORDS, header_line
from .redaction import redact, remember_secret, scrub_exception
from .retry import RetryPolicy, Timeouts, Watch, open_with_retries
from .urls import display_url
from .wire import BINARY, CLOSE, Silence, Wire, parse_close

__all__ = ["Connection", "Settings", "Sink"]

logger = logging.getLogger("ttsstream.connection")

_ids = itertools.count(1)
_JOIN_GRACE = 5.0  # seconds a close() waits for a reader thread beyond the socket timeout
# Asks the bundled server for word times (protocols.extensions), on every handshake: a
# server may be `ttsstream serve` on another host. Real services ignore an unknown header.
_EXTENSIONS = header_line(WORDS)


class Sink:
    """What a connection feeds: the speech it serves. ``ttsstream.client.Speech`` is one.

    Thread: the reader thread's, but ``_attach`` (the caller of ``begin``) and ``_unwanted`` (any).
    """

    def _attach(self, connection: "Connection") -> None:  # pragma: no cover - interface
        """``connection`` serves it from now on. Thread: the caller of ``begin``, before it."""

    def _on_audio(self, data: bytes) -> None:  # pragma: no cover - interface
        """Audio bytes as framed by the server (may split a sample)."""

    def _on_metadata(self, sample_rate: Optional[int]) -> None:  # pragma: no cover - interface
        """The server announced the audio's sample rate."""

    def _on_words(self, words: Tuple[WordTime, ...]) -> None:
        """The server's times of the words whose audio came last (a hint, ignored unless overridden)."""

    def _end(self, error: Optional[TTSError]) -> None:  # pragma: no cover - interface
        """The utterance ended: normally (None) or with ``error``."""

    def _unwanted(self) -> bool:
        """True once nothing more is wanted (ended, cancelled): a request not yet sent is not sent."""
        return False


class Settings(NamedTuple):
    """What every connection of one client shares.

    Attributes:
        dialect: the server dialect.
        endpoint: the URL (without the key; the dialect adds it), or a function the
            reader thread calls for it before connecting (the local server starts there,
            so that speak(block=False) returns at once); it may raise a TTSError.
        api_key: the key, or None.
        timeouts: the connect, first-audio and between-chunks limits.
        max_idle: seconds an open connection may wait for a speech before it closes.
        retry: which failures before any audio are tried again, and how often.
        ca_bundle: the certificate authorities to trust for ``wss://`` (None: the system's).
    """

    dialect: Dialect
    endpoint: Union[str, Callable[[], str]]
    api_key: Optional[str]
    timeouts: Timeouts
    max_idle: float
    retry: RetryPolicy
    ca_bundle: Optional[str] = None


class Connection:
    """One WebSocket and its reader thread, serving one speech at a time.

    A connection is either opened ahead of any speech (``open``: prewarmed; it connects
    and sends the dialect's opening frames, then waits) or by its first speech
    (``begin``). Between speeches it idles, and retires itself once it has idled for
    ``max_idle`` seconds, before a server, a load balancer or a NAT drops it unseen.

    Args:
        settings: what the client's connections share (see ``Settings``).
        on_idle: called with this connection when a speech ends normally and the
            dialect allows another on the same socket. Thread: the reader thread.
        on_exit: called with this connection when its reader is about to exit.
            Thread: the reader thread.
        on_retry: ``on_retry(sink, request, error, attempt, deadline)`` for a speech
            that failed before its audio in a way worth trying again (see
            ``_hand_back``): True takes the speech over, False lets it end with
            ``error``. Thread: the reader thread, or the caller of ``begin``.
        on_open: called with this connection once it is open (after the waiting
            speech's request, if any, went out). Thread: the reader thread.
        attempt, deadline: this speech's tries so far, and the end of its connect
            budget (``time.monotonic()``; None: from when this one connects).
    """

    def __init__(self, settings: Settings, *, on_idle: Callable[["Connection"], None],
                 on_exit: Callable[["Connection"], None],
                 on_retry: Callable[[Sink, Request, TTSError, int, Optional[float]], bool],
                 on_open: Callable[["Connection"], None] = lambda connection: None,
                 attempt: int = 0, deadline: Optional[float] = None) -> None:
        # Fixed at construction.
        self.dialect = settings.dialect
        self.id = next(_ids)
        self._settings = settings
        self._on_idle, self._on_exit, self._on_retry, self._on_open = on_idle, on_exit, on_retry, on_open
        remember_secret(settings.api_key)
        self._thread = threading.Thread(target=self._run, name=f"ttsstream-reader-{self.id}", daemon=True)

        # The socket: only the reader thread receives; sends come from speak() and
        # cancel() threads too.
        self._wire = Wire(self.dialect.title, self.dialect.env_key)

        # The reader thread's own.
        endpoint = settings.endpoint
        self._url = endpoint if isinstance(endpoint, str) else "(local server, starting)"  # read by messages too
        self._attempt = attempt       # tries of this speech before this connection's
        self._deadline = deadline     # the end of the connect budget, once connecting
        self._audio_seen = False      # audio arrived for the current speech
        self._watch = Watch(settings.timeouts, settings.max_idle)  # its times: see begin() and _connect()
        self.error: Optional[TTSError] = None  # what ended the reader, once it has exited

        # Guarded by _lock. begin() and open() set them; the reader reads them without
        # the lock (reference reads) and changes them under it.
        self._lock = threading.Lock()
        self._launched = False        # the reader thread has been started
        self._open = False            # connected and opening frames sent
        self._sink: Optional[Sink] = None
        self._request: Optional[Request] = None  # the current or last request (its session)
        self._resent = False          # the current request went on an already open socket
        self._aborted = False         # abort() was called: our own doing, never retried
        self._then: Optional[Callable[[], None]] = None  # begin()'s, until the first audio

        # Events, safe from any thread.
        self._closing = threading.Event()
        self._ready = threading.Event()   # open, or the reader has exited (see self.error)

    def __repr__(self) -> str:
        state = "closing" if self._closing.is_set() else ("busy" if self._sink else "idle")
        return f"<Connection {self.id} {self.dialect.name} {display_url(self._url)} {state}>"

    @property
    def alive(self) -> bool:
        """True until the connection starts closing (or its reader has exited)."""
        return not self._closing.is_set() and (self._thread.ident is None or self._thread.is_alive())

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
        yet (prewarmed); return at once (see ``wait_open``). Thread: any."""
        with self._lock:
            if self._launched:
                return
            self._launched = True
            self._request = request
        self._thread.start()

    def wait_open(self, timeout: float) -> bool:
        """Wait until it is open; False if not by then. Raises the TTSError it failed with."""
        if not self._ready.wait(timeout):
            return False
        if not self._open:
            raise self.error or ConnectionFailed("the connection closed before it opened")
        return True

    def begin(self, sink: Sink, request: Request, then: Optional[Callable[[], None]] = None) -> None:
        """Serve ``request`` to ``sink`` (connecting first if needed); return at once.

        Failures reach ``sink._end``, or ``on_retry``. ``then`` runs once the first audio
        came (or the speech ended): work that must not compete with the answer for the
        interpreter (opening the next connection). Thread: any.
        """
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("connection is already serving a speech")
            self._sink, self._request, self._then = sink, request, then
            launch = not self._launched
            self._launched = True
            # Sent here on an open socket; otherwise the reader sends it once open.
            self._resent = send_now = self._open
            self._audio_seen = False
            self._watch.sent = time.monotonic()
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
        """Close now: say goodbye if possible, unblock the reader. Idempotent. Thread: any,
        the reader's own included (from inside a callback)."""
        with self._lock:
            self._aborted = True
        if self._closing.is_set():
            return
        self._closing.set()
        self._wire.abort()

    def close(self) -> None:
        """Abort, then join the reader thread (unless called on it). Idempotent. Thread: any."""
        self.abort()
        self.join()

    def join(self) -> None:
        """Wait for the reader thread to exit (skipped on the reader thread itself)."""
        if self._thread.ident is not None and threading.current_thread() is not self._thread:
            self._thread.join(self._watch.timeouts.longest + _JOIN_GRACE)
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
            error = scrub_exception(exc)
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

    def _call_then(self) -> None:  # begin()'s ``then``, once
        with self._lock:
            then, self._then = self._then, None
        if then is not None:
            then()

    def _hand_back(self, sink: Sink, request: Request, error: TTSError) -> None:
        """End ``sink``'s speech with ``error``, unless it failed before any of its audio
        in a way worth trying again: then ``on_retry`` may send it on a new connection,
        unseen by the user. A socket that had died while idle is always worth it (the
        new one is fresh); a fresh one that failed, within the retry policy."""
        with self._lock:
            untouched = not self._audio_seen and not self._aborted
            stale = untouched and self._resent and type(error) is ConnectionFailed
        self._call_then()
        retry = self._settings.retry
        if stale:
            attempt, deadline = 0, None  # the user's attempt has not begun: a budget of its own
        elif untouched and self._open and retry.retriable(error) and self._attempt < retry.retries:
            # Opened, then dropped before any audio (a failure to open was retried already).
            attempt, deadline = self._attempt + 1, self._deadline
        else:
            sink._end(error)
            return
        if not self._on_retry(sink, request, error, attempt, deadline):
            sink._end(error)

    def _connect(self) -> None:
        """Open the socket (retrying within the connect budget) and send the opening
        frames, then the waiting speech's request if there is one."""
        request = self._request
        assert request is not None
        settings, limit = self._settings, self._watch.timeouts.connect
        if not isinstance(settings.endpoint, str):
            self._url = settings.endpoint()
        where = display_url(self._url)
        if self._deadline is None:
            self._deadline = time.monotonic() + limit

        def open_once(seconds: float) -> None:
            self._wire = wire = Wire(self.dialect.title, self.dialect.env_key, settings.ca_bundle)  # fresh each try
            wire.open(self.dialect.connect_url(self._url, settings.api_key),
                      [*self.dialect.connect_headers(settings.api_key), _EXTENSIONS], seconds, where)

        self._attempt = open_with_retries(open_once, settings.retry, self._attempt, self._deadline,
                                          self._closing, where, limit)
        if self._closing.is_set():  # aborted while the handshake ran: leave now
            raise ConnectionFailed(f"the connection to {where} was closed while opening")
        logger.debug("%s: connected", self)
        self._send_all(self.dialect.open_frames(request, settings.api_key))
        with self._lock:
            self._open = True
            self._watch.idle_since = self._watch.sent = time.monotonic()
            waiting = self._request if self._sink is not None else None
        self._ready.set()
        if waiting is not None:  # a speech began while the socket was opening
            self._send_all(self.dialect.request_frames(waiting))
        self._on_open(self)

    def _send_all(self, frames: List[str]) -> None:
        self._wire.send(frames, display_url(self._url))

    def _quiet_too_long(self) -> bool:
        """After a socket timeout: True if it is time to end (an idle connection past its
        age, which closes itself); raise SynthesisTimeout for a speech whose first audio,
        or next frame, is later than its limit; False to keep reading, the socket's
        timeout set to wake at the next deadline."""
        kind, left = self._watch.overdue(time.monotonic(), self._sink is not None, self._audio_seen)
        if kind == "idle":
            logger.debug("%s: idle for %g s: retiring", self, self._watch.max_idle)
            self._goodbye()
            return True
        if kind is not None:
            raise self._watch.error(kind, self.dialect.title)
        self._wire.settimeout(max(0.001, min(left, self._watch.tick)))
        return False

    def _read_loop(self) -> None:
        # A dialect that keeps the base parse_binary sends raw PCM in binary frames:
        # those skip the event object.
        raw_audio = type(self.dialect).parse_binary is Dialect.parse_binary
        wire = self._wire
        where = display_url(self._url)
        watch = self._watch
        wire.settimeout(watch.tick)
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
            watch.heard = time.monotonic()
            if opcode == BINARY:
                if raw_audio:  # the hot path: audio, copied out of the reader's buffer
                    if self._sink is not None and data:
                        first = not self._audio_seen
                        self._audio_seen = True
                        self._sink._on_audio(bytes(data))
                        if first:
                            self._call_then()
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
        elif isinstance(event, WordTimes):
            if sink is not None:
                sink._on_words(event.words)
        elif isinstance(event, Failed):
            raise event.error
        elif isinstance(event, Done):
            if sink is None:
                logger.debug("%s: end-of-stream with no speech running, ignored", self)
                return True
            with self._lock:
                self._sink = None
                self._watch.idle_since = time.monotonic()
            self._call_then()
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
        self._wire.close(timeout=min(1.0, self._watch.timeouts.between_chunks))
