"""TTSClient: the front door. speak(), poll(), stop(), close().

The client turns ``speak()`` into a validated request (through the dialect, before any
I/O), makes the ``Speech`` that will receive it, puts a ``play=True`` speech in the
playback line, and hands the request to a connection from its pool. The rest lives in
rooms of its own:

- ``speech.py``: the Speech, its callbacks and its waits;
- ``pool.py``: which connection a speech gets (reuse), and closing them all;
- ``connection.py``: one socket and its reader thread;
- ``playline.py``: play=True speeches played one after another;
- ``local.py``: where provider="local" finds its server;
- ``tk.py``: polling from a Tk main loop.

Imports: speech, pool, connection (its settings), retry, playline, local, tk, urls,
protocols, checks, errors. Playback is imported only when first used.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Set, Union
from urllib.parse import urlsplit

from .checks import require_number
from .errors import AuthenticationError, Cancelled, InvalidParameterError, TTSError
from .local import local_dialect_name, local_url
from .playline import PlayLine
from .connection import Settings
from .pool import DEFAULT_MAX_IDLE, ConnectionPool
from .retry import DEFAULT_RETRIES, RetryPolicy, Timeouts
from .protocols import LOCAL, PROVIDERS, Dialect, Request, get_dialect
from .protocols.base import check_model
from .speech import AudioCallback, CompleteCallback, ErrorCallback, Speech
from .tk import TkPump
from .urls import check_ca_bundle, check_url, display_url, is_loopback, with_default_path

if TYPE_CHECKING:
    from .playback import AudioPlayer

__all__ = ["TTSClient", "Speech"]

DISPATCH_MODES = ("thread", "poll")


class TTSClient:
    """A client of one TTS service, safe to share between threads.

    Args:
        provider: ``"eigenai"``, ``"shunyalabs"`` or ``"local"`` (the bundled offline
            server, started once per process on first use).
        api_key: the key; None reads ``EIGENAI_API_KEY`` / ``SHUNYALABS_API_KEY``.
            Not needed for ``"local"`` or a loopback ``url``.
        model: the model; None takes the provider's default.
        voice: the default voice; None takes the model's default.
        url: the endpoint, e.g. ``"ws://127.0.0.1:8765/api/v1/generate/ws"``; a URL with
            no path gets the provider's usual one.
        timeout: seconds allowed to connect (retries included), to wait for the first
            audio, and between two frames once audio flows; a ``ttsstream.Timeouts`` sets
            the three apart. Each raises ``SynthesisTimeout`` naming its ``limit``.
        dispatch: ``"thread"`` runs callbacks on the connection's reader thread;
            ``"poll"`` keeps them until the application calls ``poll()``.
        allow_insecure: allow ``ws://`` to a host that is not this machine.
        max_idle: seconds an open connection (prewarmed, or kept for reuse) may wait
            for a speech before it closes; see ``prewarm``.
        ca_bundle: a PEM file of certificate authorities to trust for ``wss://`` (a
            private CA); None trusts the system's store. Certificates and host names
            are always verified.
        retries: how many times a speech that failed before any audio (a connection
            refused or dropped, an HTTP 5xx) is tried again, with exponential backoff
            and jitter, within the connect timeout. A refused key, a server's error and
            anything after audio began are never retried.
        player: the ``AudioPlayer`` that ``play=True`` uses (to pick a device, a
            prebuffer or a volume); None makes a default one when first needed. The
            client stops a player it was given but leaves closing it to its owner.

    Raises:
        InvalidParameterError: a bad provider, model, url, timeout or dispatch.
        AuthenticationError: no API key where one is needed.
    """

    def __init__(self, provider: str = "eigenai", api_key: Optional[str] = None, model: Optional[str] = None,
                 voice: Optional[str] = None, url: Optional[str] = None, timeout: Union[float, Timeouts] = 30.0,
                 dispatch: str = "thread", *, allow_insecure: bool = False,
                 player: Optional["AudioPlayer"] = None, max_idle: float = DEFAULT_MAX_IDLE,
                 retries: int = DEFAULT_RETRIES, ca_bundle: Optional["str | os.PathLike[str]"] = None) -> None:
        if provider not in PROVIDERS:
            raise InvalidParameterError(
                f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}", parameter="provider"
            )
        if dispatch not in DISPATCH_MODES:
            raise InvalidParameterError(
                f"dispatch must be 'thread' or 'poll', got {dispatch!r}", parameter="dispatch"
            )
        timeouts = Timeouts.of(timeout)
        self.provider = provider
        self._dialect: Dialect = get_dialect(local_dialect_name(model) if provider == LOCAL else provider)
        # Validate the model now; build_request validates it again per call.
        self.model = check_model(type(self._dialect), model)
        self.voice = voice
        self.timeout = timeout if isinstance(timeout, Timeouts) else float(timeout)
        self.dispatch = dispatch
        self._url: Optional[str] = None
        if url is not None:
            self._url = with_default_path(check_url(url, allow_insecure=allow_insecure), self._dialect.default_path())
        elif provider != LOCAL:
            self._url = self._dialect.default_url
        self._api_key = self._resolve_key(api_key)
        require_number("max_idle (seconds)", max_idle, 0, 86400, low_open=True,
                       error=lambda message: InvalidParameterError(message, parameter="max_idle"))
        # The local server starts on a reader thread, when the first speech connects.
        endpoint = self._url if self._url is not None else self._endpoint
        self._pool = ConnectionPool(Settings(self._dialect, endpoint, self._api_key, timeouts, float(max_idle),
                                             RetryPolicy(retries), check_ca_bundle(ca_bundle)))
        self._timeouts = timeouts
        self._pending: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()  # poll()'s callbacks
        self._owns_player = player is None

        self._lock = threading.Lock()
        # Guarded by _lock.
        self._closed = False
        self._running: Set[Speech] = set()
        self._player = player
        self._play_line: Optional[PlayLine] = None

    def __repr__(self) -> str:
        url = self._url or "(local, not started)"
        return (f"TTSClient(provider={self.provider!r}, model={self.model!r}, voice={self.voice!r}, "
                f"url={display_url(url)!r}, dispatch={self.dispatch!r})")

    def __enter__(self) -> "TTSClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def player(self) -> "AudioPlayer":
        """The ``AudioPlayer`` behind ``play=True`` (made on first use; opens no device).

        Use it to change the volume or to pause and resume playback.
        """
        with self._lock:
            if self._player is None:
                if self._closed:
                    raise TTSError("this TTSClient is closed; make a new one")
                from .playback import AudioPlayer  # PyAudio itself loads only when a device opens

                self._player = AudioPlayer()
            return self._player

    # -- speaking ------------------------------------------------------------------

    def speak(self, text: str, voice: Optional[str] = None, on_audio: Optional[AudioCallback] = None,
              on_complete: Optional[CompleteCallback] = None, on_error: Optional[ErrorCallback] = None,
              play: bool = False, block: bool = True, keep_audio: bool = True,
              extra: Optional[Mapping[str, Any]] = None, **params: Any) -> Speech:
        """Speak ``text``; audio arrives on ``on_audio`` chunk by chunk.

        Args:
            text: what to say.
            voice: this speech's voice (the client's default when None).
            on_audio: ``on_audio(chunk: AudioChunk)``, once per chunk, in order.
            on_complete: ``on_complete(speech)`` when the speech ended normally.
            on_error: ``on_error(error)`` when it ended with an error (or was cancelled).
                Exactly one of the two is called, after the last ``on_audio``. Thread:
                the connection's reader thread (``dispatch="thread"``), or the thread
                calling ``poll()``; callbacks must return quickly.
            play: also play the audio through ``self.player`` (the default output
                device unless the client was given a player). Speeches play one after
                another in the order spoken; with ``block`` the call returns once the
                last sample has been played.
            block: True waits for the end (raising its error); False returns at once.
            keep_audio: False keeps no audio in the Speech (constant memory).
            extra: fields the parameter tables do not know, sent as they are.
            **params: the model's parameters (see the contract's table).

        Returns:
            The Speech: finished if ``block``, running otherwise.

        Raises:
            InvalidParameterError: bad text or parameters, before any network I/O.
            PlaybackError: with ``play=True``, no PyAudio or no output device (before
                any network I/O).
            TTSError: with ``block=True``, the error the speech ended with.
        """
        started = time.perf_counter()
        request = self._build_request(text, voice, params, extra)
        if self._closed:
            raise TTSError("this TTSClient is closed; make a new one")
        line = self._line_for_play() if play else None
        speech = Speech(
            request.text, self._dialect.sample_rate, on_audio=on_audio, on_complete=on_complete,
            on_error=on_error, keep_audio=keep_audio,
            post=self._pending.put if self.dispatch == "poll" else None,
            on_finished=self._forget, started=started,
        )
        with self._lock:
            if self._closed:
                raise TTSError("this TTSClient is closed; make a new one")
            if line is not None:  # before stop() can see the speech, so that it ends its turn too
                speech._turn = line.join(speech)
            self._running.add(speech)
            connection = self._pool.take(request)
        speech._attach(connection)
        connection.begin(speech, request)
        if block:
            try:
                speech.wait()
            except KeyboardInterrupt:
                speech.cancel()
                raise
        return speech

    def prewarm(self, n: int = 1, wait: bool = False, timeout: Optional[float] = None, *,
                voice: Optional[str] = None, extra: Optional[Mapping[str, Any]] = None, **params: Any) -> None:
        """Open ``n`` connections now, so that the next ``speak()`` calls skip connecting.

        Each connection is connected and, where the dialect allows, authenticated
        (EigenAI's auth message, Shunyalabs' config for ``voice`` and ``params``), then
        waits. A ``speak()`` with the same model (EigenAI) or the same voice and
        settings (Shunyalabs) takes one and sends only its request. The client keeps
        ``n`` open: one taken, or one that retires after ``max_idle`` seconds unused, is
        replaced in the background. ``prewarm(0)`` lets them lapse.

        Args:
            n: how many connections to keep open.
            wait: block until all ``n`` are open (else return at once).
            timeout: with ``wait``, seconds to wait at most (the client's connect timeout
                when None).
            voice, extra, **params: the speeches they are for, as ``speak()`` takes them
                (Shunyalabs' connections are per voice and settings).

        Raises:
            InvalidParameterError: a bad ``n``, voice or parameter.
            SynthesisTimeout: with ``wait``, not all were open within ``timeout``.
            TTSError: with ``wait``, the error a connection failed with
                (``ConnectionFailed``, ``AuthenticationError``, ...).

        Thread: any.
        """
        require_number("n", n, 0, 10_000, integer=True,
                       error=lambda message: InvalidParameterError(message, parameter="n"))
        # A request of the session the connections are for: its text is never sent.
        template = self._build_request("prewarm", voice, params, extra)
        if self._closed:
            raise TTSError("this TTSClient is closed; make a new one")
        connections = self._pool.prewarm(template, n)
        if wait:
            self._pool.wait_open(connections, self._timeouts.connect if timeout is None else timeout)

    def _line_for_play(self) -> PlayLine:
        """The playback line, its player started (the device open). Raises PlaybackError."""
        player = self.player
        player.start()
        with self._lock:
            if self._play_line is None:
                self._play_line = PlayLine(player)
            return self._play_line

    def _build_request(self, text: str, voice: Optional[str], params: Dict[str, Any],
                       extra: Optional[Mapping[str, Any]]) -> Request:
        if voice is None:
            voice = self.voice
        if voice is None:
            voice = self._dialect.default_voice(self.model)
        return self._dialect.build_request(self.model, text, voice, params, extra)

    # -- main-loop integration -------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> int:
        """Run the callbacks waiting for this thread; return how many ran.

        With ``dispatch="poll"``, callbacks wait in a queue until the application calls
        this, e.g. from Tkinter's ``root.after`` or once per game frame. Only those
        waiting when it is called run, so a fast stream cannot starve the caller.

        Args:
            timeout: seconds to wait for the first callback when none is waiting.

        Thread: the application's (the callbacks run on it).
        """
        try:
            first = self._pending.get(timeout=timeout) if timeout > 0 else self._pending.get_nowait()
        except queue.Empty:
            return 0
        more = self._pending.qsize()
        first()
        ran = 1
        for _ in range(more):
            try:
                self._pending.get_nowait()()
            except queue.Empty:
                break
            ran += 1
        return ran

    def attach_tk(self, root: Any, interval_ms: int = 10) -> Callable[[], None]:
        """Run ``poll()`` from a Tk main loop every ``interval_ms``, so that callbacks run on
        Tk's thread and may touch widgets.

            client = ttsstream.TTSClient(provider="local", dispatch="poll")
            client.attach_tk(root)
            client.speak(text, on_audio=lambda chunk: meter.set(level(chunk)), block=False)

        It stops by itself when ``root`` is destroyed or the client is closed.

        Args:
            root: a ``tkinter.Tk`` (any widget: whatever has ``after`` and ``after_cancel``).
            interval_ms: how often to poll; 10 ms keeps a level meter smooth.

        Returns:
            A function that stops the polling.

        Raises:
            InvalidParameterError: the client was not made with ``dispatch="poll"``, or a
                bad interval.

        Thread: Tk's (the thread running ``root.mainloop()``).
        """
        if self.dispatch != "poll":
            raise InvalidParameterError(
                "attach_tk() needs a client made with dispatch='poll' (with 'thread' the callbacks "
                "run on a reader thread, where Tk widgets must not be touched)", parameter="dispatch")
        require_number("interval_ms", interval_ms, 1, 1000, integer=True,
                       error=lambda message: InvalidParameterError(message, parameter="interval_ms"))
        return TkPump(self.poll, lambda: self._closed, root, interval_ms).stop

    def stop(self) -> None:
        """Cancel every running speech of this client and silence its playback.

        Speeches still playing (their streams ended) are stopped too and end with
        ``Cancelled``, and a paused player is resumed, so the next speech plays at once.
        The client stays usable. Thread: any.
        """
        with self._lock:
            running = list(self._running)
            line = self._play_line
        for speech in running:
            speech.cancel()
        if line is not None:
            line.stop_all(Cancelled("the client's playback was stopped"))

    def close(self) -> None:
        """Cancel running speeches, close every connection and join its thread.

        Safe to call twice, from any thread, and from inside a callback (the calling
        reader thread is not joined).
        """
        with self._lock:
            self._closed = True
            running = list(self._running)
            line, player = self._play_line, self._player
        for speech in running:
            speech._end(Cancelled("the client was closed"))
        if line is not None:
            line.stop_all(Cancelled("the client was closed"))
        if player is not None and self._owns_player:
            player.close()
        self._pool.close()

    # -- connections -------------------------------------------------------------

    def _endpoint(self) -> str:
        """The URL, starting the local server if it is needed and not started.

        Thread: a reader thread, for provider="local".

        Raises:
            ConnectionFailed: the local server's dependencies are missing or it cannot start.
        """
        if self._url is None:
            self._url = local_url(self._dialect)
        return self._url

    def _forget(self, speech: Speech) -> None:
        with self._lock:
            self._running.discard(speech)

    # -- configuration ---------------------------------------------------------------

    def _resolve_key(self, api_key: Optional[str]) -> Optional[str]:
        if self.provider == LOCAL:
            return api_key
        if api_key is None:
            api_key = os.environ.get(self._dialect.env_key) or None
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise InvalidParameterError("api_key must be a non-empty str", parameter="api_key")
        host = urlsplit(self._url or "").hostname or ""
        if api_key is None and not is_loopback(host):
            raise AuthenticationError(
                f"no API key for {self._dialect.title}: set {self._dialect.env_key} or pass api_key= "
                "(or use provider='local' to speak offline)"
            )
        return api_key
