"""TTSClient: the front door. speak(), poll(), stop(), close().

The client turns ``speak()`` into a validated request (through the dialect, before any
I/O), makes the ``Speech`` that will receive it, puts a ``play=True`` speech in the
playback line, and hands the request to a connection from its pool. The rest lives in
rooms of its own:

- ``speech.py``: the Speech, its callbacks and its waits;
- ``pool.py``: which connection a speech gets (reuse), and closing them all;
- ``connection.py``: one socket and its reader thread;
- ``playline.py``: play=True speeches played one after another;
- ``config.py``: what the client's arguments mean (dialect, model, endpoint, key);
- ``streaming.py``: speaking text while it is still being written;
- ``mainloop.py``: ``poll()``, and polling from a Tk main loop.

Imports: config, speech, streaming, segmenter, pool, connection (its settings), retry,
playline, mainloop, callbacks, urls, protocols, checks, errors, telemetry. Playback is imported
only when first used.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Set, Union

from .callbacks import AudioCallback, CompleteCallback, ErrorCallback, SegmentCallback, WordCallback
from .checks import require_number
from .cache import PhraseCache
from .chunks import check_output
from .connection import Sink
from .errors import Cancelled, InvalidParameterError, TTSError
from .mainloop import MainLoopIntegration
from .playline import PlayLine
from .pool import DEFAULT_MAX_IDLE
from .protocols import Request
from .protocols.base import MAX_TEXT_CHARS, check_text
from .provider import Provider
from .retry import DEFAULT_RETRIES, RetryPolicy, Timeouts
from .routes import Options, Spec, make_routes
from .routing import Course, Router
from .segmenter import Segmenter, split_text
from .speech import Speech
from .formats import AudioFormat
from .fragments import Fragments, as_fragments
from .later import Later
from .streaming import StreamSpeech, TextStream
from .speech_words import WordTimer
from .telemetry import SpeechFacts, begin as begin_telemetry, end as end_telemetry, prepare as prepare_telemetry
from .urls import check_ca_bundle, display_url

if TYPE_CHECKING:
    from .playback import AudioPlayer

__all__ = ["TTSClient", "Speech"]

DISPATCH_MODES = ("thread", "poll")
# A text stream's units under way at once on a dialect with one request per connection.
UNITS_AHEAD = 3
# A whole text longer than one request goes in units this long: few requests (each a
# connection on EigenAI), each one well within what a request takes.
LONG_TEXT_UNIT = 2000


class TTSClient(MainLoopIntegration):
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
            anything after audio began are never retried; a rate limit is, once its
            ``Retry-After`` has passed. With ``fallback``, the next provider is the
            retry: only the last one retries.
        player: the ``AudioPlayer`` that ``play=True`` uses (to pick a device, a
            prebuffer or a volume); None makes a default one when first needed. The
            client stops a player it was given but leaves closing it to its owner.
        fallback: providers to speak with, in order, when this one fails before the first
            audio (``Provider(...)`` or a name such as ``"local"``); one that keeps failing
            is left alone a while (see the "Never silent" guide).
        max_concurrent: at most this many speeches talk to one provider at once; the
            rest wait their turn, first come first served.
        cache: ``True`` keeps spoken phrases in memory, a ``PhraseCache`` on disk too: a
            phrase said again plays from it at once (``speech.cached``).
        output: the ``AudioFormat`` every speech's chunks arrive in (a rate, ``"mulaw"`` or
            ``"alaw"``, exact frames); None for the server's audio as it comes.

    Raises:
        InvalidParameterError: a bad provider, model, url, timeout or dispatch, or a
            voice the local server does not have.
        AuthenticationError: no API key where one is needed.
    """

    def __init__(self, provider: str = "eigenai", api_key: Optional[str] = None, model: Optional[str] = None,
                 voice: Optional[str] = None, url: Optional[str] = None, timeout: Union[float, Timeouts] = 30.0,
                 dispatch: str = "thread", *, allow_insecure: bool = False,
                 player: Optional["AudioPlayer"] = None, max_idle: float = DEFAULT_MAX_IDLE,
                 retries: int = DEFAULT_RETRIES, ca_bundle: Optional["str | os.PathLike[str]"] = None,
                 fallback: Optional[Sequence[Union[str, Provider]]] = None, max_concurrent: Optional[int] = None,
                 cache: Union[None, bool, PhraseCache] = None, output: Optional[AudioFormat] = None) -> None:
        if dispatch not in DISPATCH_MODES:
            raise InvalidParameterError(f"dispatch must be 'thread' or 'poll', got {dispatch!r}", parameter="dispatch")
        timeouts = Timeouts.of(timeout)
        require_number("max_idle (seconds)", max_idle, 0, 86400, low_open=True,
                       error=lambda message: InvalidParameterError(message, parameter="max_idle"))
        options = Options(timeouts, float(max_idle), RetryPolicy(retries).retries, check_ca_bundle(ca_bundle),
                          allow_insecure, max_concurrent)
        self._routes = routes = make_routes(Provider(provider, api_key, model, voice, url), fallback, options)
        self._later = Later()  # flush times, cache hits, Retry-After waits (a thread once needed)
        self._router = Router(routes, cache, self._later, timeouts.connect)
        self.provider = provider
        self.model = routes[0].model
        self.voice = voice
        self.timeout = timeout if isinstance(timeout, Timeouts) else float(timeout)
        self.dispatch = dispatch
        self._dialect = routes[0].dialect
        self._pool = routes[0].pool
        self._timeouts = timeouts
        self.output = check_output(output)
        self._pending: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()  # poll()'s callbacks
        self._word_timer = WordTimer()  # speeches' words (a thread once an on_word needs it)
        self._owns_player = player is None
        prepare_telemetry()  # OpenTelemetry's imports now: under a burst's first speeches they held up the rest

        self._lock = threading.Lock()
        # Guarded by _lock.
        self._closed = False
        self._running: Set[Speech] = set()
        self._fed: Set[TextStream] = set()  # streams fed from an iterable: close() joins their feeders
        self._player = player
        self._play_line: Optional[PlayLine] = None

    def __repr__(self) -> str:
        url = self._routes[0].endpoint.url or "(local, not started)"
        fallback = f", fallback={[route.provider for route in self._routes[1:]]!r}" if len(self._routes) > 1 else ""
        return (f"TTSClient(provider={self.provider!r}, model={self.model!r}, voice={self.voice!r}, "
                f"url={display_url(url)!r}, dispatch={self.dispatch!r}{fallback})")

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

    def speak(self, text: Union[str, Fragments], voice: Optional[str] = None,
              on_audio: Optional[AudioCallback] = None, on_complete: Optional[CompleteCallback] = None,
              on_error: Optional[ErrorCallback] = None, play: bool = False, block: bool = True,
              keep_audio: bool = True, extra: Optional[Mapping[str, Any]] = None,
              on_segment: Optional[SegmentCallback] = None, on_word: Optional[WordCallback] = None,
              output: Optional[AudioFormat] = None, **params: Any) -> Speech:
        """Speak ``text``; audio arrives on ``on_audio`` chunk by chunk.

        Args:
            text: what to say: a str, or an iterable or async iterable of str
                fragments (an LLM's tokens, an ``AsyncOpenAI`` stream's deltas), spoken
                while it is still being produced (see ``open_stream``); ``None`` and
                empty fragments are skipped, and an async iterable is read on a private
                event loop (the caller runs none). A str longer than one request allows
                is cut into units and spoken as one speech.
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
            on_segment: ``on_segment(segment)`` when a unit's audio begins (a plain
                speech has one unit; see ``speech.segments``).
            on_word: ``on_word(word: Word)`` once per word, in order: when it has been
                timed, or with ``play=True`` when it begins to be heard (see ``speech.words``).
            output: this speech's ``AudioFormat`` for ``on_audio`` (the client's when None).
            **params: the model's parameters (see the contract's table).

        Returns:
            The Speech: finished if ``block``, running otherwise.

        Raises:
            InvalidParameterError: bad text or parameters, or a voice the local server
                does not have (``ttsstream.voices()`` lists them), before any network I/O.
            PlaybackError: with ``play=True``, no PyAudio or no output device (before
                any network I/O).
            TTSError: with ``block=True``, the error the speech ended with.
        """
        started = time.perf_counter()
        callbacks: Dict[str, Any] = dict(on_audio=on_audio, on_complete=on_complete, on_error=on_error,
                                         on_segment=on_segment, on_word=on_word, keep_audio=keep_audio,
                                         output=check_output(output) or self.output)
        if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:  # cut into units, spoken as one
            check_text(text, max_chars=None)  # what a request would refuse (NUL, lone surrogates)
            long = self._open_text_stream(voice, params, extra, play, started, callbacks, None)
            long._stream.feed_units(split_text(text, LONG_TEXT_UNIT))
            speech: Speech = long
        elif not isinstance(text, str):
            speech = self._open_text_stream(voice, params, extra, play, started, callbacks, as_fragments(text))
        else:
            spec = Spec(text, voice, params, extra)
            request = self._routes[0].request(spec, self._routes[0])
            line = self._line_for_play() if play else None
            speech = Speech(request.text, self._dialect.sample_rate, **self._speech_args(started, params),
                            **callbacks)
            speech._telemetry = begin_telemetry()
            with self._lock:
                self._admit(speech, line)
            self._router.send(speech, spec, request, speech)
        if block:
            try:
                speech.wait()
            except KeyboardInterrupt:
                speech.cancel()
                raise
        return speech

    def prewarm(self, n: int = 1, wait: bool = False, timeout: Optional[float] = None, *, keep: bool = True,
                voice: Optional[str] = None, extra: Optional[Mapping[str, Any]] = None, **params: Any) -> None:
        """Open ``n`` connections now, so that the next ``speak()`` calls skip connecting.

        Each connection is connected and, where the dialect allows, authenticated
        (EigenAI's auth message, Shunyalabs' config for ``voice`` and ``params``), then
        waits. A ``speak()`` with the same model (EigenAI) or the same voice and
        settings (Shunyalabs) takes one and sends only its request.

        Args:
            n: how many connections to keep open; 0 lets them lapse.
            wait: block until all ``n`` are open (else return at once).
            timeout: with ``wait``, seconds to wait at most (the client's connect timeout
                when None).
            keep: keep ``n`` open (the default), replacing those taken or retired one at
                a time, so that a burst is not slowed by handshakes; False: open them once.
            voice: the voice of the speeches they are for, as ``speak()`` takes it
                (Shunyalabs' connections are per voice and settings).
            extra: those speeches' unchecked fields, as ``speak()`` takes them.
            **params: those speeches' model parameters, as ``speak()`` takes them.

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
        connections = self._pool.prewarm(template, n, keep)
        if wait:
            self._pool.wait_open(connections, self._timeouts.connect if timeout is None else timeout)

    def open_stream(self, voice: Optional[str] = None, on_audio: Optional[AudioCallback] = None,
                    on_complete: Optional[CompleteCallback] = None, on_error: Optional[ErrorCallback] = None,
                    play: bool = False, on_segment: Optional[SegmentCallback] = None, keep_audio: bool = True,
                    on_word: Optional[WordCallback] = None, extra: Optional[Mapping[str, Any]] = None,
                    segmenter: Optional[Segmenter] = None, output: Optional[AudioFormat] = None,
                    **params: Any) -> StreamSpeech:
        """Start a speech whose text comes later, piece by piece: ``speech.feed(token)`` for
        each of an LLM's tokens, then ``speech.finish()`` and ``speech.wait()``.

        The text is cut into units (sentences, or clauses at first, so that the first
        audio comes early; see ``Segmenter``) and each unit is synthesized as soon as it
        is cut; its audio reaches the callbacks, the speech and the speakers strictly in
        text order. The arguments are ``speak()``'s; ``segmenter`` sets how the text is
        cut (``Segmenter(first_min_chars=..., flush_after=...)``).

        Returns:
            A running ``StreamSpeech`` (a ``Speech`` with ``feed`` and ``finish``).

        Raises:
            InvalidParameterError, PlaybackError: as ``speak()``, before any I/O.

        Thread: any; ``feed`` and ``finish`` may come from any thread.
        """
        callbacks: Dict[str, Any] = dict(on_audio=on_audio, on_complete=on_complete, on_error=on_error,
                                         on_segment=on_segment, on_word=on_word, keep_audio=keep_audio,
                                         output=check_output(output) or self.output)
        return self._open_text_stream(voice, params, extra, play, time.perf_counter(), callbacks, None, segmenter)

    def _open_text_stream(self, voice: Optional[str], params: Dict[str, Any], extra: Optional[Mapping[str, Any]],
                          play: bool, started: float, callbacks: Dict[str, Any],
                          fragments: Optional[Iterable[str]], segmenter: Optional[Segmenter] = None) -> StreamSpeech:
        """A running StreamSpeech, fed from ``fragments`` on a thread of its own if given."""
        template = self._build_request("stream", voice, params, extra)  # checks the parameters now
        line = self._line_for_play() if play else None
        speech = StreamSpeech("", self._dialect.sample_rate, **self._speech_args(started, params), **callbacks)
        speech._telemetry = begin_telemetry()
        # With fallbacks, one unit at a time until the first audio says which provider speaks.
        ahead = 1 if len(self._routes) > 1 else UNITS_AHEAD
        course = Course(lambda: speech._stream.widen(UNITS_AHEAD))

        def send(unit: Sink, request: Request) -> None:
            self._router.send(unit, Spec(request.text, voice, params, extra), request, speech, course=course,
                              from_reader=True, ahead=True)

        speech._stream = TextStream(
            speech, segmenter or Segmenter(), lambda unit: self._build_request(unit, voice, params, extra),
            send, sequential=self._dialect.reusable, later=self._later, ahead=ahead)
        with self._lock:
            self._admit(speech, line)
        self._pool.open_ahead(template)  # the first unit's connection opens while its text comes
        if fragments is not None:
            speech._stream.feed_from(fragments, f"ttsstream-text-{id(speech):x}")
            with self._lock:
                self._fed = {stream for stream in self._fed if stream.feeding}
                self._fed.add(speech._stream)
        return speech

    def _speech_args(self, started: float, params: Mapping[str, Any]) -> Dict[str, Any]:
        language = params.get("language") or params.get("language_id")  # a hint for the word aligner
        return dict(post=self._pending.put if self.dispatch == "poll" else None, on_finished=self._forget,
                    started=started, word_timer=self._word_timer,
                    language=language if isinstance(language, str) else None)

    def _admit(self, speech: Speech, line: Optional[PlayLine]) -> None:
        """Under the lock: count a new speech as running (and in the playback line)."""
        if self._closed:
            raise TTSError("this TTSClient is closed; make a new one")
        if line is not None:  # before stop() can see the speech, so that it ends its turn too
            speech._turn = line.join(speech)
        self._running.add(speech)

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
        """The client's own provider's request (everything checked). Raises InvalidParameterError."""
        return self._routes[0].request(Spec(text, voice, params, extra), self._routes[0])

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
            fed, self._fed = list(self._fed), set()
            line, player = self._play_line, self._player
        for speech in running:
            speech._end(Cancelled("the client was closed"))
        if line is not None:
            line.stop_all(Cancelled("the client was closed"))
            line.close()
        if player is not None and self._owns_player:
            player.close()
        self._later.close()
        self._word_timer.close()
        self._router.close()
        for stream in fed:  # a feeder outlives its speech until its iterable yields again
            stream.join()

    def _forget(self, speech: Speech) -> None:
        """A speech has finished (its ``on_finished``): no longer running; its span ends."""
        with self._lock:
            self._running.discard(speech)
        if speech._telemetry is not None:  # None unless OpenTelemetry is installed
            end_telemetry(speech._telemetry, _facts(self, speech))



def _facts(client: TTSClient, speech: Speech) -> SpeechFacts:
    """What a finished speech tells telemetry (its span and metrics)."""
    latency = speech.first_audio_latency
    provider = speech.provider
    spoke = provider is not None and speech.error is None
    return SpeechFacts(provider.name if provider is not None else client.provider,
                       provider.model or client.model if provider is not None else client.model,
                       len(speech.text), None if latency is None else latency * 1000.0, speech.duration,
                       cached=speech.cached, attempts=len(speech.attempts) + (1 if spoke else 0),
                       error=speech.error)
