"""Speech: one utterance's audio, its callbacks, and how it ends.

A ``Speech`` is the sink a connection's reader thread feeds: it cuts the bytes into
whole 16-bit samples, keeps them (unless ``keep_audio=False``), and delivers
``AudioChunk``s and then exactly one terminal callback, either at once on the reader
thread (``dispatch="thread"``) or through the client's queue, drained by
``client.poll()`` (``dispatch="poll"``). With ``play=True`` it also holds a ``Turn`` in
its client's playback line (``playline.py``) and is done once its playback is over.

This module owns a speech's audio, its segments, its end, and every blocking wait on
it (user callbacks run through ``callbacks.invoke``).

Imports: callbacks, connection (the ``Sink`` interface), audio, errors, formats.files (to save). Never
playback, never the client.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Sequence, Tuple


from .audio import AudioChunk, SampleAligner
from .callbacks import (AudioCallback, CompleteCallback, ErrorCallback, SegmentCallback, WordCallback,
                        in_callback_of, interruptible_wait, invoke)
from .connection import Connection, Sink
from .errors import Cancelled, ProtocolError, SynthesisTimeout, TTSError
from .chunks import Chunker
from .formats import AudioFormat
from .protocols import WordTime
from .notebook import speech_html, status
from .speech_audio import SpeechAudio
from .speech_words import SpeechClock, SpeechWords, WordTimer, WordTrack

if TYPE_CHECKING:
    from .playline import Turn
    from .provider import Provider

__all__ = ["Speech", "Segment"]

logger = logging.getLogger("ttsstream")



class Segment:
    """One unit of a speech's text and where its audio lies in the speech's audio.

    Attributes:
        index: 0, 1, 2, ... in text order.
        text: the text of the unit, as sent.
        start: seconds into the speech's audio where the unit's audio begins.
        end: seconds where it ends; None while its audio is still arriving.
    """

    __slots__ = ("index", "text", "start", "end")

    def __init__(self, index: int, text: str, start: float) -> None:
        self.index = index
        self.text = text
        self.start = start
        self.end: Optional[float] = None

    def __repr__(self) -> str:
        end = "..." if self.end is None else f"{self.end:.2f}"
        return f"Segment({self.index}, {self.text[:30]!r}, {self.start:.2f}-{end} s)"

class Speech(Sink, SpeechWords, SpeechAudio):
    """One utterance: running, then finished with audio or with an error.

    Returned by ``TTSClient.speak()``. Its audio grows while it runs; ``wait()`` blocks
    until it ends. Attributes read from any thread.

    Attributes:
        text: what was asked to be spoken.
        callback_errors: exceptions raised by this speech's callbacks (logged, not raised).
        provider: the ``Provider`` that spoke it (while it runs, or if it failed: the last tried).
        attempts: ``(Provider, TTSError)`` for each provider that failed or was passed over first.
        cached: True when it played from the phrase cache, with no connection (a stream: every unit).
    """

    def __init__(self, text: str, sample_rate: int, *, on_audio: Optional[AudioCallback],
                 on_complete: Optional[CompleteCallback], on_error: Optional[ErrorCallback],
                 keep_audio: bool, post: Optional[Callable[[Callable[[], None]], None]],
                 on_finished: Callable[["Speech"], None], started: float,
                 on_segment: Optional[SegmentCallback] = None, on_word: Optional[WordCallback] = None,
                 word_timer: Optional[WordTimer] = None, language: Optional[str] = None,
                 output: Optional[AudioFormat] = None) -> None:
        self.text = text
        self.callback_errors: List[BaseException] = []  # appended by whichever thread ran the callback
        # Written by the client's router (the caller of speak(), then reader threads).
        self.provider: Optional["Provider"] = None
        self.attempts: List[Tuple["Provider", TTSError]] = []
        self.cached = False
        self._live = False  # a request of it went to a service (not all from the cache)

        # Fixed at construction.
        self._on_audio_cb = on_audio
        self._on_complete_cb = on_complete
        self._on_error_cb = on_error
        self._on_segment_cb = on_segment
        self._keep_audio = keep_audio
        self._post = post  # None: run callbacks now (thread dispatch); else queue them (poll)
        self._on_finished = on_finished
        self._started = started

        # Set once by the client before the connection begins; read-only after.
        self._connection: Optional[Connection] = None
        self._turn: Optional["Turn"] = None  # its place in the playback line, with play=True
        self._telemetry: Optional[object] = None  # telemetry.begin()'s token; None when it is off

        # The reader thread's, written before the first audio (a Metadata event).
        self._sample_rate = sample_rate

        # Guarded by _delivery, an RLock held while audio or the terminal callback is
        # delivered, so that no audio follows the terminal callback. Written by the
        # reader thread (audio) and by whoever carries out the end (_final, _error).
        self._delivery = threading.RLock()
        self._aligner = SampleAligner()
        self._pieces: List[bytes] = []
        self._joined: Optional[bytes] = None
        self._bytes = 0
        self._chunks = Chunker(output)        # what on_audio gets: as it came, or in the output format
        self._first_audio: Optional[float] = None
        self._segments: List[Segment] = []   # a plain speech's one; a text stream's, one per unit
        self._text_offset = 0                 # where the next unit's text begins in self.text
        # Its words (with a lock of their own): timed on the client's word timer when
        # on_word wants them, else when speech.words is read (from the text alone if the
        # audio was not kept: aligning every speech of a thousand would cost more CPU than
        # receiving them, and keep the very audio keep_audio=False let go).
        self._track = WordTrack(on_word is not None, word_timer, SpeechClock(self, on_word), language=language)
        self._words_keep_audio = self._track.keeps_audio  # read per chunk on the reader thread
        self._final = False                   # the stream's outcome is settled
        self._error: Optional[TTSError] = None  # also set under _state by a failed playback after _final

        # Guarded by _state: the requested end (the first ask wins) and the moment the
        # speech becomes done.
        self._state = threading.Lock()
        self._ending: Optional[Tuple[Optional[TTSError]]] = None
        self._done = threading.Event()

    def __repr__(self) -> str:
        return f"<Speech {status(self)}, {self.duration:.2f} s at {self._sample_rate} Hz, text={self.text[:30]!r}>"

    def _repr_html_(self) -> str:
        """How a notebook shows a speech: an audio player and its figures (``notebook.py``)."""
        return speech_html(self)

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
    def segments(self) -> List[Segment]:
        """The units of its text, in order, each with where its audio lies (see
        ``Segment``): one for a plain speech, one per unit sent for a text stream."""
        with self._delivering():
            return list(self._segments)

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
            if in_callback_of() is self:
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
            if not interruptible_wait(self._done, timeout):
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

    def _unwanted(self) -> bool:
        return self._final or self._ending is not None

    def _on_metadata(self, sample_rate: Optional[int]) -> None:
        if sample_rate is None or sample_rate == self._sample_rate:
            return
        if self._bytes or self._aligner.pending:
            logger.warning("%s: the server changed the sample rate to %d mid-speech; kept %d",
                           self, sample_rate, self._sample_rate)
            return
        self._sample_rate = sample_rate

    @contextlib.contextmanager
    def _delivering(self) -> Iterator[None]:
        """Hold the delivery lock; on letting go, carry out an end asked for meanwhile (an
        end asked for while another thread holds the lock is left to that thread)."""
        with self._delivery:
            yield
        if self._ending is not None and not self._final:
            self._settle()

    def _on_audio(self, data: bytes) -> None:
        # The reader thread's hot path: once per frame, so one lock and no more calls
        # than the work needs (``_delivering``'s, by hand).
        with self._delivery:
            if not self._final and self._ending is None:
                if self._first_audio is None:
                    self._first_audio = time.perf_counter()
                    if not self._segments:  # a plain speech: its text is its one unit
                        self._segment_begins(self.text)
                pcm = self._aligner.push(data)
                if pcm:
                    self._bytes += len(pcm)
                    if self._keep_audio:
                        self._pieces.append(pcm)
                    if self._words_keep_audio:
                        self._track.audio(pcm)
                    if self._turn is not None:  # to the speakers first, then to the callback
                        self._turn.line.audio(self._turn, pcm)
                    # A playback failure just now has ended the speech: no audio after on_error.
                    if self._on_audio_cb is not None and not self._final:
                        for chunk in self._chunks.make(pcm, self._sample_rate):
                            self._hand(chunk)
        if self._ending is not None:  # an end asked for meanwhile, here or by a thread we held off
            self._settle()

    def _on_words(self, words: Sequence[WordTime]) -> None:
        """The server's word times for the unit now arriving (reader thread)."""
        self._track.exact(words)

    def _segment_ends(self) -> None:
        """The current unit's audio has all come (holds _delivery): its words are timed now."""
        if self._segments and self._segments[-1].end is None:
            self._segments[-1].end = self.duration
            self._track.end(self.duration, self._bytes, self._sample_rate)

    def _segment_begins(self, text: str) -> None:
        """A unit's audio begins now (holds _delivery): record it and tell on_segment."""
        self._segment_ends()
        segment = Segment(len(self._segments), text, self.duration)
        self._segments.append(segment)
        self._track.begin(text, self._text_offset, self.duration, self._bytes)
        self._text_offset += len(text)
        callback, turn = self._on_segment_cb, self._turn
        if callback is not None and turn is None:
            self._deliver(callback, segment)
        elif callback is not None and turn is not None:  # with play=True: when it begins to play
            turn.line.cue(turn, lambda: self._deliver(callback, segment))
        if turn is not None and self._track.announces:  # its words after its on_segment
            turn.line.cue(turn, self._track.unit_playing)

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
        if self._on_audio_cb is not None and not isinstance(error, Cancelled):  # a format's last frame
            for chunk in self._chunks.flush():
                self._hand(chunk)
        self._error = error
        self._final = True
        if self._segments and self._segments[-1].end is None:
            self._segments[-1].end = self.duration
        self._track.end(self.duration, self._bytes, self._sample_rate, complete=error is None)
        callback: Optional[Callable[[Any], Any]] = self._on_complete_cb if error is None else self._on_error_cb
        if callback is not None:
            self._deliver(callback, self if error is None else error)
        return True

    def _after_finish(self) -> None:
        connection = self._connection
        if self._error is not None and connection is not None:
            connection.abort()  # a failed or cancelled stream cannot carry on
        self._on_finished(self)
        if self._turn is not None:
            self._turn.line.ended(self._turn, self._error)
        self._settle_done()

    def _playback_ended(self) -> None:
        """Its turn in the playback line is over (``self._turn.outcome`` says how).

        A playback that fails while the stream still runs ends the stream too, with
        that error (``on_error`` gets it). Thread: whoever ended the playback.
        """
        error = self._turn.outcome if self._turn is not None else None
        if error is not None and not self._final:
            self._end(error)
        self._track.playback_over()
        self._settle_done()

    def _settle_done(self) -> None:
        """Done once the stream has ended and, with play=True, the playback too."""
        turn = self._turn
        if not self._final or (turn is not None and not turn.over):
            return
        with self._state:
            if self._done.is_set():
                return
            # The stream completed but its playback was cancelled or failed.
            if self._error is None and turn is not None and turn.outcome is not None:
                self._error = turn.outcome
            self._done.set()

    def _hand(self, chunk: AudioChunk) -> None:
        """One chunk to on_audio (holds _delivery)."""
        callback = self._on_audio_cb
        assert callback is not None
        if self._post is None:
            invoke(self, callback, chunk)
        else:
            self._deliver(callback, chunk)

    def _deliver(self, callback: Callable[[Any], Any], argument: Any) -> None:
        if self._post is None:
            invoke(self, callback, argument)
        else:
            self._post(lambda: invoke(self, callback, argument))

