"""TTSClient and Speech: speak(), callbacks, and how they are dispatched.

The client turns ``speak()`` into a validated request (through the dialect, before any
I/O), finds a connection for it (an idle one of the same session where the dialect
allows, else a new one) and hands it a ``Speech``. The connection's reader thread feeds
the speech; the speech cuts its bytes into whole samples and delivers ``AudioChunk``s to
the callbacks, either at once on the reader thread (``dispatch="thread"``) or through a
queue that the application drains with ``client.poll()`` (``dispatch="poll"``).

Imports: connection, protocols, audio, errors. The bundled server and playback are
imported only when first used.
"""

from __future__ import annotations

import base64
import collections
import html
import io
import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Mapping, Optional, Set, Tuple, Union
from urllib.parse import urlsplit

import numpy as np

from .audio import SAMPLE_WIDTH, AudioChunk, SampleAligner, pcm_to_array, write_wav
from .connection import Connection, Sink, check_url, is_loopback
from .errors import (
    AuthenticationError,
    Cancelled,
    ConnectionFailed,
    InvalidParameterError,
    PlaybackError,
    ProtocolError,
    SynthesisTimeout,
    TTSError,
)
from .protocols import PROVIDERS, Dialect, Request, get_dialect

if TYPE_CHECKING:
    from .playback import AudioPlayer

__all__ = ["TTSClient", "Speech"]

logger = logging.getLogger("ttsstream")

DISPATCH_MODES = ("thread", "poll")

AudioCallback = Callable[[AudioChunk], Any]
CompleteCallback = Callable[["Speech"], Any]
ErrorCallback = Callable[[TTSError], Any]

# Which speech's callback this thread is running, so that a blocking wait from inside
# it can refuse instead of deadlocking.
_in_callback = threading.local()


def _invoke(speech: "Speech", callback: Callable[[Any], Any], argument: Any) -> None:
    """Run one user callback. The only place that calls user code.

    What the callback raises is logged with its traceback and kept in
    ``speech.callback_errors``; it never ends the calling thread.
    """
    previous = getattr(_in_callback, "speech", None)
    _in_callback.speech = speech
    try:
        callback(argument)
    except Exception as exc:
        speech.callback_errors.append(exc)
        logger.exception("%s callback %r raised; ttsstream carries on", speech, callback)
    finally:
        _in_callback.speech = previous


# How often a wait on the main thread wakes to let Python run signal handlers: a
# SIGINT that the kernel hands to another thread (PortAudio's, a reader) does not
# interrupt the main thread's blocked lock, so Ctrl-C would wait for the speech to end.
_SIGNAL_SLICE = 0.1


def _interruptible_wait(event: threading.Event, timeout: Optional[float]) -> bool:
    """``event.wait(timeout)``, in slices on the main thread so that Ctrl-C gets through."""
    if threading.current_thread() is not threading.main_thread():
        return event.wait(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = _SIGNAL_SLICE if deadline is None else min(_SIGNAL_SLICE, deadline - time.monotonic())
        if event.wait(max(0.0, remaining)):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


class Speech(Sink):
    """One utterance: running, then finished with audio or with an error.

    Returned by ``TTSClient.speak()``. Its audio grows while it runs; ``wait()`` blocks
    until it ends. Attributes read from any thread.

    Attributes:
        text: what was asked to be spoken.
        callback_errors: exceptions raised by this speech's callbacks (logged, not raised).
    """

    def __init__(self, text: str, sample_rate: int, *, on_audio: Optional[AudioCallback],
                 on_complete: Optional[CompleteCallback], on_error: Optional[ErrorCallback],
                 keep_audio: bool, post: Optional[Callable[[Callable[[], None]], None]],
                 on_finished: Callable[["Speech"], None], started: float) -> None:
        self.text = text
        self.callback_errors: List[BaseException] = []
        self._on_audio_cb = on_audio
        self._on_complete_cb = on_complete
        self._on_error_cb = on_error
        self._keep_audio = keep_audio
        self._post = post  # None: run callbacks now (thread dispatch); else queue them (poll)
        self._on_finished = on_finished
        self._started = started
        self._sample_rate = sample_rate
        self._aligner = SampleAligner()
        self._pieces: List[bytes] = []
        self._joined: Optional[bytes] = None
        self._bytes = 0
        self._next_index = 0
        self._first_audio: Optional[float] = None
        self._error: Optional[TTSError] = None
        self._final = False
        self._ending: Optional[Tuple[Optional[TTSError]]] = None  # the requested end, first ask wins
        self._state = threading.Lock()
        self._delivery = threading.RLock()  # held while delivering: no audio after the terminal callback
        self._done = threading.Event()
        self._connection: Optional[Connection] = None
        self._turn: Optional[_Turn] = None  # its place in the playback line, with play=True
        self._playback_over = False
        self._playback_error: Optional[TTSError] = None
        self._underruns = 0
        self._underrun_ms = 0.0

    def _status(self, detail: bool = False) -> str:
        """running, playing, done, or failed: ErrorName (with its message if ``detail``)."""
        if not self._final:
            return "running"
        if not self._done.is_set():
            return "playing"
        if self._error is None:
            return "done"
        name = type(self._error).__name__
        return f"failed: {name}: {self._error}" if detail else f"failed: {name}"

    def __repr__(self) -> str:
        return f"<Speech {self._status()}, {self.duration:.2f} s at {self._sample_rate} Hz, text={self.text[:30]!r}>"

    def _repr_html_(self) -> str:
        """How a notebook shows a speech: an audio player and its figures.

        A running speech shows what has arrived so far; display it again (or
        ``speech.wait()`` first) for the whole of it.
        """
        latency = self.first_audio_latency
        rows = [("text", self.text if len(self.text) <= 200 else self.text[:200] + "…"),
                ("state", self._status(detail=True)),
                ("duration", f"{self.duration:.2f} s at {self._sample_rate} Hz"),
                ("first audio after", "-" if latency is None else f"{latency * 1000:.0f} ms")]
        if self._turn is not None:
            rows.append(("playback underruns", f"{self._underruns} ({self._underrun_ms:.0f} ms)"))
        table = "".join(f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
                        f"<td style='text-align:left'>{html.escape(value)}</td></tr>" for name, value in rows)
        if self._keep_audio and self._bytes:
            wav = io.BytesIO()
            write_wav(wav, self.pcm, self._sample_rate)
            data = base64.b64encode(wav.getvalue()).decode("ascii")
            player = f'<audio controls src="data:audio/wav;base64,{data}"></audio>'
        else:
            player = "<em>no audio kept</em>" if not self._keep_audio else "<em>no audio yet</em>"
        return f"<div class='ttsstream-speech'>{player}<table>{table}</table></div>"

    # -- what users read ---------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the speech has ended, with audio or with an error (and, with
        ``play=True``, once its playback has ended too)."""
        return self._final if self._turn is None else self._done.is_set()

    @property
    def error(self) -> Optional[TTSError]:
        """The error the speech ended with, or None."""
        return self._error

    @property
    def sample_rate(self) -> int:
        """Samples per second of the audio."""
        return self._sample_rate

    @property
    def pcm(self) -> bytes:
        """All audio received so far: 16-bit mono little-endian PCM, in order.

        Raises:
            RuntimeError: if the speech was made with ``keep_audio=False``.
        """
        if not self._keep_audio:
            raise RuntimeError("this speech was made with keep_audio=False, so it kept no audio")
        with self._delivery:
            if self._joined is None or len(self._joined) != self._bytes:
                self._joined = b"".join(self._pieces)
                self._pieces = [self._joined]
            return self._joined

    @property
    def audio(self) -> np.ndarray:
        """All audio received so far as a numpy int16 array (a copy you may modify)."""
        return pcm_to_array(self.pcm).copy()

    @property
    def duration(self) -> float:
        """Seconds of audio received so far."""
        return self._bytes / (SAMPLE_WIDTH * self._sample_rate)

    @property
    def first_audio_latency(self) -> Optional[float]:
        """Seconds from the speak() call to the first audio byte, or None before it."""
        return None if self._first_audio is None else self._first_audio - self._started

    @property
    def underruns(self) -> int:
        """With ``play=True``: how many times playback ran out of audio mid-speech
        (the network was slower than real time). Final once the speech is done."""
        return self._underruns

    @property
    def underrun_ms(self) -> float:
        """With ``play=True``: estimated milliseconds of silence those underruns made."""
        return self._underrun_ms

    def save(self, path: "str | os.PathLike[str]") -> None:
        """Write the audio received so far as a 16-bit mono WAV file.

        Raises:
            RuntimeError: if the speech was made with ``keep_audio=False``.
            OSError: if the file cannot be written.
        """
        write_wav(path, self.pcm, self._sample_rate)

    def wait(self, timeout: Optional[float] = None) -> "Speech":
        """Block until the speech ends; return it, or raise the error it ended with.

        With ``play=True`` the speech ends once its last sample has been played.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Raises:
            SynthesisTimeout: the timeout passed (the speech keeps running).
            TTSError: the speech's own error (``Cancelled`` if it was cancelled).
            RuntimeError: called from inside one of this speech's own callbacks before
                it ended, where waiting would deadlock.
        """
        if not self._done.is_set():
            if getattr(_in_callback, "speech", None) is self:
                if not self._final or self._turn is not None:
                    raise RuntimeError(
                        "wait() called from inside a callback of the same speech would deadlock (its stream, "
                        "or its playback, cannot end until the callback returns); use on_complete/on_error "
                        "instead, or speak(block=False)"
                    )
                # In its own terminal callback: the outcome is settled, only the
                # bookkeeping after the callback is still to come.
                if self._error is not None:
                    raise self._error
                return self
            if not _interruptible_wait(self._done, timeout):
                raise SynthesisTimeout(f"the speech did not finish within {timeout:g} s; it is still running")
        if self._error is not None:
            raise self._error
        return self

    def cancel(self) -> None:
        """Stop the speech: its stream is closed and it ends with ``Cancelled``. Idempotent.

        ``on_error`` receives the ``Cancelled`` (on this thread, with thread dispatch)
        unless the stream had already ended. With ``play=True`` its playback is
        silenced too; cancelling after the stream ended (``on_complete`` has run) but
        before the playback did stops the playback, and ``wait()`` raises ``Cancelled``.

        Thread: any, including inside this speech's callbacks.
        """
        self._end(Cancelled("the speech was cancelled"))
        turn = self._turn
        if turn is not None:
            turn.line.stop(turn, Cancelled("the speech was cancelled during playback"))

    # -- fed by the connection's reader thread ---------------------------------------

    def _attach(self, connection: Connection) -> None:
        self._connection = connection

    def _on_metadata(self, sample_rate: Optional[int]) -> None:
        if sample_rate is None or sample_rate == self._sample_rate:
            return
        if self._bytes or self._aligner.pending:
            logger.warning("%s: the server changed the sample rate to %d mid-speech; kept %d",
                           self, sample_rate, self._sample_rate)
            return
        self._sample_rate = sample_rate

    def _on_audio(self, data: bytes) -> None:
        with self._delivery:
            if self._final or self._ending is not None:
                return
            if self._first_audio is None:
                self._first_audio = time.perf_counter()
            pcm = self._aligner.push(data)
            if pcm:
                chunk = AudioChunk(pcm, self._sample_rate, self._next_index)
                self._next_index += 1
                self._bytes += len(pcm)
                if self._keep_audio:
                    self._pieces.append(pcm)
                if self._turn is not None:  # to the speakers first, then to the callback
                    self._turn.line.audio(self._turn, pcm)
                # A playback failure just now has ended the speech: no audio after on_error.
                if self._on_audio_cb is not None and not self._final:
                    self._deliver(self._on_audio_cb, chunk)
        self._settle()

    def _end(self, error: Optional[TTSError]) -> None:
        """Ask for the speech to end, normally (None) or with ``error``; the first ask wins.

        The end happens at once unless another thread is inside one of this speech's
        callbacks; then that thread ends it as soon as its callback returns. So the
        terminal callback always comes after the last ``on_audio``, and two threads
        ending each other's speeches from callbacks cannot deadlock.

        Thread: the reader thread, or whoever cancels.
        """
        with self._state:
            if self._final or self._ending is not None:
                return
            self._ending = (error,)
        self._settle()

    def _settle(self) -> None:
        """Carry out a requested end if no other thread is delivering this speech's callbacks."""
        while self._ending is not None and not self._final:
            if not self._delivery.acquire(blocking=False):
                return  # the holder calls _settle when it lets go
            try:
                finished = self._ending is not None and not self._final and self._finish(self._ending[0])
            finally:
                self._delivery.release()
            if finished:
                self._after_finish()

    def _finish(self, error: Optional[TTSError]) -> bool:
        """Record the outcome and deliver the terminal callback. Holds self._delivery."""
        if error is None and self._aligner.pending:
            error = ProtocolError(
                "the server's audio ended in the middle of a 16-bit sample (an odd number of bytes)"
            )
        self._error = error
        self._final = True
        if error is None:
            callback, argument = self._on_complete_cb, self
        else:
            callback, argument = self._on_error_cb, error
        if callback is not None:
            self._deliver(callback, argument)
        return True

    def _after_finish(self) -> None:
        connection = self._connection
        if self._error is not None and connection is not None:
            connection.abort()  # a failed or cancelled stream cannot carry on
        self._on_finished(self)
        if self._turn is not None:
            self._turn.line.ended(self._turn, self._error)
        self._settle_done()

    def _played(self, error: Optional[TTSError], underruns: int, underrun_ms: float) -> None:
        """Its playback has ended: played out (None), or stopped with ``error``.

        A playback that fails while the stream still runs ends the stream too, with
        that error (``on_error`` gets it). Thread: whoever ended the playback.
        """
        self._underruns = underruns
        self._underrun_ms = underrun_ms
        self._playback_error = error
        self._playback_over = True
        if error is not None and not self._final:
            self._end(error)
        self._settle_done()

    def _settle_done(self) -> None:
        """Done once the stream has ended and, with play=True, the playback too."""
        if not self._final or (self._turn is not None and not self._playback_over):
            return
        with self._state:
            if self._done.is_set():
                return
            # The stream completed but its playback was cancelled or failed.
            if self._error is None and self._playback_error is not None:
                self._error = self._playback_error
            self._done.set()

    def _deliver(self, callback: Callable[[Any], Any], argument: Any) -> None:
        if self._post is None:
            _invoke(self, callback, argument)
        else:
            self._post(lambda: _invoke(self, callback, argument))


class _Turn:
    """One play=True speech's place in its client's playback line."""

    __slots__ = ("line", "speech", "held", "ended", "fed", "error", "retired", "underruns_at", "underrun_ms_at")

    def __init__(self, line: "_PlayLine", speech: Speech) -> None:
        self.line = line
        self.speech = speech
        self.held: List[bytes] = []    # audio that arrived while another speech played
        self.ended = False             # its stream ended normally
        self.fed = False               # some of its audio has gone to the player
        self.error: Optional[TTSError] = None  # why its playback is being stopped
        self.retired = False           # its playback is over; the speech is done
        self.underruns_at = 0          # the player's counters when its audio started
        self.underrun_ms_at = 0.0


class _PlayLine:
    """Plays a client's play=True speeches one after another through one AudioPlayer.

    The speech at the head of the line feeds the player as its audio arrives; those
    behind it hold theirs until the head has played out, so the speeches never
    interleave and stopping one never drops another's audio. A speech leaves the line
    (and is done) when the player reports its last sample played, or when it is
    stopped.

    Thread: any. audio() runs on reader threads, the player's callback on the player
    thread; the player's blocking stop() is never called under this line's lock.
    """

    def __init__(self, player: "AudioPlayer") -> None:
        self.player = player
        self._lock = threading.Lock()
        self._line: Deque[_Turn] = collections.deque()

    def join(self, speech: Speech) -> _Turn:
        turn = _Turn(self, speech)
        with self._lock:
            self._line.append(turn)
        return turn

    def audio(self, turn: _Turn, pcm: bytes) -> None:
        """New audio of ``turn``. Thread: its reader thread."""
        with self._lock:
            if turn.retired or turn.error is not None:
                return
            if self._line[0] is not turn:
                turn.held.append(pcm)
                return
            failed = self._feed(turn, [pcm])
        if failed is not None:
            self.stop(turn, failed)

    def ended(self, turn: _Turn, error: Optional[TTSError]) -> None:
        """The stream of ``turn`` ended, normally (None) or with ``error``."""
        if error is not None:
            self.stop(turn, error)
            return
        with self._lock:
            turn.ended = True
            failed = self._finish(turn) if self._line and self._line[0] is turn else None
        if failed is not None:
            self.stop(turn, failed)

    def stop(self, turn: _Turn, error: TTSError) -> None:
        """End the playback of ``turn`` now with ``error``, silencing it if it is playing."""
        with self._lock:
            if turn.retired or turn.error is not None:
                return
            turn.error = error
            playing = turn.fed
        if playing:
            self.player.stop()  # drops only this speech's audio: nothing else was fed
        self._retire(turn, error)

    def stop_all(self, error: TTSError) -> None:
        """End every speech's playback with ``error`` and silence the player."""
        with self._lock:
            turns = [turn for turn in self._line if turn.error is None]
            for turn in turns:
                turn.error = error
        self.player.stop()
        self.player.resume()  # the next speech starts afresh, not held by an old pause
        for turn in turns:
            self._retire(turn, error)

    def _played(self, turn: _Turn, played: bool) -> None:
        """The player's on_done for ``turn``'s audio. Thread: the player thread, or a stopper."""
        if turn.error is not None:
            return  # being stopped: the stopper retires it once the device is silent
        if played:
            self._retire(turn, None)
        else:  # dropped by the player itself: its close, its failure, its user
            self._retire(turn, self.player.error or Cancelled("the playback was stopped"))

    def _retire(self, turn: _Turn, error: Optional[TTSError]) -> None:
        """Take ``turn`` out of the line, start the next speech's audio, and end the speech."""
        failures = []
        with self._lock:
            if turn.retired:
                return
            turn.retired = True
            head = bool(self._line) and self._line[0] is turn
            if turn in self._line:
                self._line.remove(turn)
            underruns = self.player.underruns - turn.underruns_at if turn.fed else 0
            underrun_ms = self.player.underrun_ms - turn.underrun_ms_at if turn.fed else 0.0
            # The next speech's held audio goes to the player, and its end mark if its
            # stream has ended too (a speech the player refuses is passed over).
            while head and self._line and self._line[0].error is None:
                nxt = self._line[0]
                failed = self._feed(nxt, nxt.held) if nxt.held else None
                nxt.held = []
                if failed is None and nxt.ended:
                    failed = self._finish(nxt)
                if failed is not None:
                    nxt.error = failed
                    failures.append((nxt, failed))
                    self._line.popleft()
                    continue
                break
        turn.speech._played(error, underruns, underrun_ms)
        for nxt, failed in failures:
            self._retire(nxt, failed)

    def _feed(self, turn: _Turn, pieces: List[bytes]) -> Optional[PlaybackError]:
        """Under the lock: send ``turn``'s audio to the player; return its failure, if any."""
        try:
            if not turn.fed:
                self.player.set_sample_rate(turn.speech.sample_rate)
                turn.underruns_at = self.player.underruns
                turn.underrun_ms_at = self.player.underrun_ms
                turn.fed = True
            for pcm in pieces:
                self.player.feed(pcm)
        except PlaybackError as exc:
            return exc
        return None

    def _finish(self, turn: _Turn) -> Optional[PlaybackError]:
        """Under the lock: ``turn``'s audio is all fed; have the player report when played."""
        try:
            self.player.finish(on_done=lambda played: self._played(turn, played))
        except PlaybackError as exc:
            return exc
        return None


class _TkPump:
    """Calls ``client.poll()`` from a Tk main loop until stopped, destroyed or closed."""

    def __init__(self, client: "TTSClient", root: Any, interval_ms: int) -> None:
        self._client = client
        self._root = root
        self._interval = interval_ms
        self._running = True
        self._after_id = root.after(interval_ms, self._tick)

    def _tick(self) -> None:
        if not self._running:
            return
        if self._client._closed:
            self._running = False
            self._client.poll()  # the terminal callbacks close() posted
            return
        try:
            self._client.poll()
        finally:
            try:
                self._after_id = self._root.after(self._interval, self._tick)
            except Exception:  # tkinter.TclError: the root was destroyed
                self._running = False

    def stop(self) -> None:
        """Stop polling. Thread: Tk's."""
        self._running = False
        try:
            self._root.after_cancel(self._after_id)
        except Exception:  # already destroyed
            pass


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
        timeout: seconds allowed to connect, and the longest silence between two frames.
        dispatch: ``"thread"`` runs callbacks on the connection's reader thread;
            ``"poll"`` keeps them until the application calls ``poll()``.
        allow_insecure: allow ``ws://`` to a host that is not this machine.
        player: the ``AudioPlayer`` that ``play=True`` uses (to pick a device, a
            prebuffer or a volume); None makes a default one when first needed. The
            client stops a player it was given but leaves closing it to its owner.

    Raises:
        InvalidParameterError: a bad provider, model, url, timeout or dispatch.
        AuthenticationError: no API key where one is needed.
    """

    def __init__(self, provider: str = "eigenai", api_key: Optional[str] = None, model: Optional[str] = None,
                 voice: Optional[str] = None, url: Optional[str] = None, timeout: float = 30.0,
                 dispatch: str = "thread", *, allow_insecure: bool = False,
                 player: Optional["AudioPlayer"] = None) -> None:
        if provider not in PROVIDERS:
            raise InvalidParameterError(
                f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}", parameter="provider"
            )
        if dispatch not in DISPATCH_MODES:
            raise InvalidParameterError(
                f"dispatch must be 'thread' or 'poll', got {dispatch!r}", parameter="dispatch"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise InvalidParameterError(f"timeout must be seconds in (0, 3600], got {timeout!r}", parameter="timeout")
        self.provider = provider
        dialect_name = provider
        if provider == "local":
            dialect_name = "shunyalabs" if model == "zero-indic" else "eigenai"
        self._dialect: Dialect = get_dialect(dialect_name)
        # Validate the model now; build_request validates it again per call.
        self.model = model if model is not None else self._dialect.default_model
        if self.model not in self._dialect.models:
            raise InvalidParameterError(
                f"unknown {self._dialect.title} model {self.model!r}: choose one of {', '.join(self._dialect.models)}",
                parameter="model",
            )
        self.voice = voice
        self.timeout = float(timeout)
        self.dispatch = dispatch
        self._url: Optional[str] = None
        if url is not None:
            self._url = self._with_path(check_url(url, allow_insecure=allow_insecure))
        elif provider != "local":
            self._url = self._dialect.default_url
        self._api_key = self._resolve_key(api_key)
        self._lock = threading.Lock()
        self._closed = False
        self._connections: Set[Connection] = set()
        self._idle: Dict[Tuple[Any, ...], List[Connection]] = {}
        self._running: Set[Speech] = set()
        self._pending: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
        self._player = player
        self._owns_player = player is None
        self._play_line: Optional[_PlayLine] = None

    def __repr__(self) -> str:
        url = self._url or "(local, not started)"
        return (f"TTSClient(provider={self.provider!r}, model={self.model!r}, voice={self.voice!r}, "
                f"url={urlsplit(url)._replace(query='').geturl()!r}, dispatch={self.dispatch!r})")

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
        # The local server starts on the reader thread: block=False returns at once.
        endpoint: Union[str, Callable[[], str]] = self._url if self._url is not None else self._endpoint
        with self._lock:
            if self._closed:
                raise TTSError("this TTSClient is closed; make a new one")
            if line is not None:  # before stop() can see the speech, so that it ends its turn too
                speech._turn = line.join(speech)
            self._running.add(speech)
            connection = self._take_connection(request, endpoint)
        speech._attach(connection)
        connection.begin(speech, request)
        if block:
            try:
                speech.wait()
            except KeyboardInterrupt:
                speech.cancel()
                raise
        return speech

    def _line_for_play(self) -> _PlayLine:
        """The playback line, its player started (the device open). Raises PlaybackError."""
        player = self.player
        player.start()
        with self._lock:
            if self._play_line is None:
                self._play_line = _PlayLine(player)
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
        if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or not 1 <= interval_ms <= 1000:
            raise InvalidParameterError(f"interval_ms must be an int from 1 to 1000, got {interval_ms!r}",
                                        parameter="interval_ms")
        return _TkPump(self, root, interval_ms).stop

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
            connections = list(self._connections)
            self._idle.clear()
            line, player = self._play_line, self._player
        for speech in running:
            speech._end(Cancelled("the client was closed"))
        if line is not None:
            line.stop_all(Cancelled("the client was closed"))
        if player is not None and self._owns_player:
            player.close()
        for connection in connections:
            connection.close()
        with self._lock:
            self._connections.difference_update(c for c in connections if not c.thread.is_alive())

    # -- connections -------------------------------------------------------------

    def _endpoint(self) -> str:
        """The URL, starting the local server if it is needed and not started.

        Thread: any (a reader thread, for provider="local").

        Raises:
            ConnectionFailed: the local server's dependencies are missing or it cannot start.
        """
        if self._url is None:
            try:
                from .server import shared_server  # the server's dependencies load only now

                self._url = shared_server().url + self._dialect.default_path()
            except ImportError as exc:
                raise ConnectionFailed(
                    f"provider='local' needs the bundled server's dependencies ({exc.name} is missing): "
                    "pip install 'ttsstream[local]'"
                ) from exc
            except (OSError, RuntimeError) as exc:  # RuntimeError: eSpeak NG failed to initialise
                raise ConnectionFailed(f"could not start the local server: {exc}") from exc
        return self._url

    def _take_connection(self, request: Request, endpoint: Union[str, Callable[[], str]]) -> Connection:
        """An idle connection for this request's session, or a new one. Holds self._lock."""
        me = threading.current_thread()
        idle = self._idle.get(request.session, [])
        for connection in reversed(idle):
            # Not one whose reader is running this very call (speak() inside a
            # callback): that reader could not read its own answer.
            if connection.alive and connection.thread is not me:
                idle.remove(connection)
                return connection
        self._connections.difference_update(
            [c for c in self._connections if c.thread.ident is not None and not c.thread.is_alive()]
        )
        connection = Connection(self._dialect, endpoint, self._api_key, self.timeout,
                                on_idle=self._park, on_exit=self._drop)
        self._connections.add(connection)
        return connection

    def _park(self, connection: Connection) -> None:
        """A reusable connection finished a speech: keep it for the next one."""
        request = connection._request
        with self._lock:
            if not self._closed and request is not None:
                self._idle.setdefault(request.session, []).append(connection)
                return
        connection.abort()

    def _drop(self, connection: Connection) -> None:
        """A connection's reader is exiting: it can no longer be handed out."""
        with self._lock:
            for idle in self._idle.values():
                if connection in idle:
                    idle.remove(connection)

    def _forget(self, speech: Speech) -> None:
        with self._lock:
            self._running.discard(speech)

    # -- configuration ---------------------------------------------------------------

    def _with_path(self, url: str) -> str:
        """Give a bare ``ws://host:port`` URL the dialect's usual path."""
        parts = urlsplit(url)
        if parts.path in ("", "/"):
            return parts._replace(path=self._dialect.default_path()).geturl()
        return url

    def _resolve_key(self, api_key: Optional[str]) -> Optional[str]:
        if self.provider == "local":
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
