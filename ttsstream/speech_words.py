"""A speech's words: each unit timed once its audio is in, kept in order, told to ``on_word``.

A ``WordTrack`` belongs to one speech. The speech tells it where each unit of its text
begins and ends on its audio timeline (a plain speech has one unit, a text stream one
per unit sent), hands it the unit's audio where it must keep it, and the word times a
server sent, if any. A unit's words are timed, best first, from:

- *exact*: the times the server sent (the bundled server's ``ttsstream.words``
  extension);
- *aligned*: measured from the unit's audio (``words.align``), where eSpeak NG (the
  ``[local]`` extra) is installed and the audio was kept;
- *estimated*: from the text and the pauses in the audio (``words.estimate``), or from
  the text alone when no audio was kept.

With ``on_word`` (or ``keep_audio=False``, where the audio is gone once the speech has
passed it) a unit is timed on the client's ``WordTimer`` thread as soon as its audio is
complete, so that timing never delays audio; otherwise the words are timed when
``speech.words`` is first read. ``on_word`` gets each word once, in order: when it has
been timed, or with ``play=True`` when its playback has reached the word's start.

Imports: words, protocols (the server's ``WordTime``). Never sockets, never playback.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Callable, Deque, List, Optional, Sequence, Tuple

from .protocols import WordTime
from .words import Token, Word, estimate, heard_text, naive_times, save_subtitles, tokenize
from .words.align import align

if TYPE_CHECKING:
    from .speech import Speech

__all__ = ["WordTrack", "WordTimer", "SpeechClock", "SpeechWords", "time_unit"]

logger = logging.getLogger("ttsstream")

_CLOCK_TICK = 0.01  # seconds between looks at the playback position while words wait to be heard
_JOIN_TIMEOUT = 5.0


class _Unit:
    """One unit of a speech's text on its audio timeline. Guarded by the track's lock."""

    __slots__ = ("text", "char_offset", "start", "end", "start_byte", "end_byte", "parts", "exact", "complete")

    def __init__(self, text: str, char_offset: int, start: float, start_byte: int, collect: bool) -> None:
        self.text = text
        self.char_offset = char_offset
        self.start = start
        self.end: Optional[float] = None
        self.start_byte = start_byte
        self.end_byte: Optional[int] = None
        self.parts: Optional[List[bytes]] = [] if collect else None  # its audio, when the track keeps it
        self.exact: Optional[List[WordTime]] = None
        self.complete = True  # all of its audio came (False: the speech ended first)


def _exact_times(tokens: Sequence[Token], unit: _Unit) -> Optional[List[Tuple[float, float]]]:
    """The server's times for ``tokens``, matched by their characters; None if any is missing."""
    if not unit.exact:
        return None
    lead = len(unit.text) - len(unit.text.lstrip())  # the request's text is the unit's, stripped
    spans = [(word.char_start + lead, word.char_end + lead, word.start, word.end) for word in unit.exact]
    times = []
    for token in tokens:
        match = next(((start, end) for a, b, start, end in spans if a < token.char_end and token.char_start < b), None)
        if match is None:
            return None
        times.append(match)
    return times


# A unit cut short is timed as if spoken at this pace (characters a second, a usual
# speaking rate), so that its words past the audio received are known to be unspoken.
_CHARS_PER_SECOND = 14.0


def time_unit(unit: _Unit, pcm: Optional[bytes], sample_rate: int, first_index: int,
              language: Optional[str]) -> List[Word]:
    """Time one unit's words, best source first; times on the speech's timeline."""
    tokens = tokenize(unit.text)  # offsets into the unit's text; the speech's are char_offset further
    if not tokens:
        return []
    received = (unit.end if unit.end is not None else unit.start) - unit.start
    source = "exact"
    times = _exact_times(tokens, unit)
    if times is None and not unit.complete:  # cut short: a whole-unit estimate, then what fits
        whole = max(received, len(unit.text.strip()) / _CHARS_PER_SECOND)
        times = naive_times(tokens, whole)
        source = "estimated"
    if times is not None and not unit.complete:
        kept = [(token, time) for token, time in zip(tokens, times) if time[1] <= received + 1e-9]
        tokens, times = [token for token, _ in kept], [time for _, time in kept]
    if times is None and pcm:  # None from the aligner: no eSpeak NG, or nothing to align
        source = "aligned"
        try:
            times = align(tokens, unit.text, pcm, sample_rate, language)
        except Exception:  # the aligner is a refinement: a failure falls back to estimating
            logger.exception("aligning a unit's words failed; estimating them instead")
            times = None
    if times is None:
        source = "estimated"
        times = estimate(tokens, pcm, sample_rate, text=unit.text) if pcm else naive_times(tokens, received)
    return [Word(first_index + i, token.text, unit.start + start, unit.start + end,
                 unit.char_offset + token.char_start, unit.char_offset + token.char_end, source)
            for i, (token, (start, end)) in enumerate(zip(tokens, times))]


class WordTrack:
    """One speech's units and words.

    Args:
        announce: ``on_word`` wants the words: time each unit on ``timer`` as soon as
            its audio is complete, from a copy of that audio the track keeps, and tell
            each word once, in order (``clock.tell``). Otherwise the units are timed
            when ``words()`` is read, from the speech's own audio if it kept any.
        timer: the client's word timer (what times and tells an announcing track).
        clock: what it reads of its speech: the text, the audio, the seconds played
            (with ``play=True``, ``on_word`` waits for them).
        language: the speech's language, a hint for the aligner's reference voice.

    Thread: units are begun, fed and ended by the thread delivering the speech's audio
    (under its delivery lock); the timer thread times them; any thread reads ``words()``.
    One lock guards everything below.
    """

    def __init__(self, announce: bool, timer: Optional["WordTimer"], clock: "SpeechClock",
                 language: Optional[str] = None) -> None:
        self._eager = announce and timer is not None
        self._timer = timer
        self._announce = announce
        self.clock = clock
        self.language = language
        self._timing = threading.Lock()  # held by the one thread timing units (see _time_pending)
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._units: List[_Unit] = []
        self._timed = 0                       # units whose words are in _words
        self._words: List[Word] = []
        self._told = 0                        # words handed to announce
        self._over = False                    # play=True: the playback has ended
        self._playing = 0                     # play=True: units whose playback has begun
        self._counts: List[int] = []          # words in each timed unit
        self._sample_rate = 24000

    # -- from the speech's delivery -------------------------------------------------------

    def begin(self, text: str, char_offset: int, start: float, start_byte: int) -> None:
        """A unit's audio begins at ``start`` seconds (``start_byte`` in the speech's PCM)."""
        with self._lock:
            self._units.append(_Unit(text, char_offset, start, start_byte, self._eager))

    @property
    def keeps_audio(self) -> bool:
        """Whether ``audio`` wants the speech's chunks (an eager track times from its own copy)."""
        return self._eager

    def audio(self, pcm: bytes) -> None:
        """The current unit's audio, for a track that keeps it. Thread: the delivering one."""
        units = self._units
        if units:
            parts = units[-1].parts
            if parts is not None:
                parts.append(pcm)

    def exact(self, words: Sequence[WordTime]) -> None:
        """The server's word times for the current unit (from its first sample)."""
        with self._lock:
            if self._units:
                unit = self._units[-1]
                unit.exact = (unit.exact or []) + list(words)

    def end(self, end: float, end_byte: int, sample_rate: int, complete: bool = True) -> None:
        """The current unit's audio has all come (``complete``), or the speech ended
        before it had (cancelled, failed): then only the words whose estimated end falls
        within the audio received are kept, so that none is reported that was not spoken."""
        with self._lock:
            self._sample_rate = sample_rate
            if not self._units or self._units[-1].end is not None:
                return
            unit = self._units[-1]
            unit.end, unit.end_byte, unit.complete = end, end_byte, complete
        if self._eager and self._timer is not None:
            self._timer.submit(self)

    # -- reading ------------------------------------------------------------------------

    def words(self) -> List[Word]:
        """Every word of the units whose audio is complete, timing now those not yet timed."""
        self._time_pending(self.clock.pcm)
        with self._lock:
            return list(self._words)

    def heard_text(self) -> str:
        """The speech's text from its first word to the last whose audio has been played
        (without ``play=True``: received) to its end."""
        played = self.clock.played()
        return heard_text(self.words(), self.clock.received() if played is None else played, self.clock.text())

    # -- timing (the timer thread, or the reader of words()) ---------------------------------

    def _time_pending(self, speech_pcm: Callable[[], Optional[bytes]]) -> None:
        """Time every complete unit not yet timed, in order. One thread at a time (the
        timer, or a reader of ``words``): the other waits, then finds them timed."""
        whole: Optional[bytes] = None
        with self._timing:
            while True:
                with self._lock:
                    if self._timed >= len(self._units) or self._units[self._timed].end is None:
                        return
                    unit = self._units[self._timed]
                    first = len(self._words)
                    rate = self._sample_rate
                if unit.parts is not None:
                    pcm: Optional[bytes] = b"".join(unit.parts)
                else:
                    whole = whole if whole is not None else speech_pcm()
                    pcm = None if whole is None or unit.end_byte is None else whole[unit.start_byte:unit.end_byte]
                words = time_unit(unit, pcm, rate, first, self.language)
                with self._lock:
                    unit.parts = None  # timed: its audio is no longer needed
                    self._words.extend(words)
                    self._counts.append(len(words))
                    self._timed += 1

    @property
    def announces(self) -> bool:
        """Whether it tells ``on_word``."""
        return self._announce

    def unit_playing(self) -> None:
        """With ``play=True``: the next unit has begun to play (its ``on_segment`` has been
        told), so its words may be told as playback reaches them. Thread: the cue thread."""
        with self._lock:
            self._playing += 1
        if self._timer is not None:
            self._timer.submit(self)

    def playback_over(self) -> None:
        """With ``play=True``: the playback has ended; the words it did not reach are
        never announced. Thread: whoever ended the playback."""
        with self._lock:
            self._over = True
        if self._announce and self._timer is not None:
            self._timer.submit(self)

    def _tell(self) -> bool:
        """Announce what is due, in order; return whether words still wait to be heard.
        Thread: the timer's (the only one that announces)."""
        if not self._announce:
            return False
        position = self.clock.played()
        with self._lock:
            due = []
            playing = sum(self._counts[:self._playing])  # the words of units whose playback has begun
            while self._told < len(self._words):
                word = self._words[self._told]
                if position is not None and (word.start > position or self._told >= playing):
                    break
                due.append(word)
                self._told += 1
            if self._over:
                self._told = len(self._words)  # never heard: never announced
            waiting = self._told < len(self._words) or (position is not None and not self._over)
        for word in due:
            self.clock.tell(word)
        return waiting


class SpeechClock:
    """What a track reads of its speech: the text, the audio received and kept, and how
    much of it has played; and how it tells ``on_word``. Thread: any.

    It holds its speech weakly: a speech's track must not keep the speech alive, or every
    speech would be a reference cycle that only the garbage collector frees, on whatever
    thread it happens to run (freeing a Tk window that a callback kept, on a thread other
    than Tk's, aborts the process).
    """

    def __init__(self, speech: "Speech", on_word: Optional[Callable[[Word], object]] = None) -> None:
        self._speech = weakref.ref(speech)
        self._on_word = on_word

    def text(self) -> str:
        speech = self._speech()
        return "" if speech is None else speech.text

    def received(self) -> float:
        speech = self._speech()
        return 0.0 if speech is None else speech.duration

    def pcm(self) -> Optional[bytes]:
        speech = self._speech()
        return speech.pcm if speech is not None and speech._keep_audio else None

    def played(self) -> Optional[float]:
        """Seconds of the speech written to the output device (``play=True``), else None."""
        speech = self._speech()
        turn = None if speech is None else speech._turn
        return None if speech is None or turn is None else min(speech.duration, turn.line.played_seconds(turn))

    def tell(self, word: Word) -> None:
        """Hand ``word`` to ``on_word``, through the speech's dispatch."""
        speech, callback = self._speech(), self._on_word
        if speech is not None and callback is not None:
            speech._deliver(callback, word)


class SpeechWords:
    """The words half of a speech's API, beside the timing it reads (``Speech`` has it)."""

    _track: WordTrack

    @property
    def words(self) -> List[Word]:
        """Its words so far, in order, each timed on its audio (``ttsstream.Word``): every
        word of its text once it is done. A unit is timed when its audio has all come (on
        the client's ``ttsstream-words`` thread with ``on_word``), or when this is read."""
        return self._track.words()

    @property
    def played(self) -> Optional[float]:
        """With ``play=True``: seconds of its audio that reached the output device (final
        once it is done, cancelled or failed); None otherwise."""
        return self._track.clock.played()

    @property
    def heard_text(self) -> str:
        """The text of the words fully played (without ``play=True``: fully received), as
        written from the first to the last; valid after ``cancel()``, ``client.stop()``,
        a device error or the end. A voice agent hands it to its LLM after a barge-in."""
        return self._track.heard_text()

    def save_subtitles(self, path: "str | os.PathLike[str]") -> None:
        """Write its words as subtitles, SRT (``.srt``) or WebVTT (``.vtt``) by the extension:
        cues of a few words, each inside its words' times.

        Raises:
            InvalidParameterError: another extension; nothing is written.
            OSError: the file cannot be written.
        """
        save_subtitles(self._track.words(), path, text=self._track.clock.text())


class WordTimer:
    """A client's word-timing thread (``ttsstream-words``): times eager tracks' units in
    order, announces their words, and, while ``play=True`` words wait to be heard, looks
    at the playback position every 10 ms. Started by the first submit; ``close()`` ends it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Guarded by _cond.
        self._queue: Deque[WordTrack] = collections.deque()
        self._waiting: List[WordTrack] = []   # tracks with words waiting for the playback
        self._closed = False
        self._thread: Optional[threading.Thread] = None

    def submit(self, track: WordTrack) -> None:
        """Time ``track``'s complete units (and announce their words) soon. Thread: any."""
        with self._cond:
            if self._closed:
                return
            self._queue.append(track)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ttsstream-words", daemon=True)
                self._thread.start()  # daemon: a safety net only; close() ends it
            self._cond.notify()

    def close(self) -> None:
        """End the thread and join it. Idempotent; from any thread."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                if not self._queue:
                    self._cond.wait(_CLOCK_TICK)  # words wait for the playback: look again soon
                tracks = list(self._queue)
                self._queue.clear()
                waiting, self._waiting = self._waiting, []
            for track in tracks:
                try:
                    track._time_pending(lambda: None)  # an eager track keeps its units' audio
                except Exception:
                    logger.exception("timing a unit's words failed")
            still = [track for track in dict.fromkeys(waiting + tracks) if track._tell()]
            with self._cond:
                self._waiting.extend(still)
