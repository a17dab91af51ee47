"""Speaking text while it is still being written: a text stream's units, in text order.

A ``TextStream`` takes text as it comes (``feed``, an iterable's items, or a ``str`` too
long for one request), cuts it into units with the ``Segmenter``, and sends each unit as
a request of its own through the client's pool. Its ``StreamSpeech`` is an ordinary
``Speech`` (callbacks, ``wait``, ``cancel``, ``pcm``, playback) whose audio is the units'
audio, strictly in text order:

- the unit at the head of the line delivers its audio to the speech as it arrives;
  units behind it hold theirs until they reach the head;
- a dialect that serves several requests on one connection in turn (Shunyalabs) gets
  one unit at a time: the next ``{"input": ...}`` goes out when the previous one ends,
  on the same connection;
- a dialect with a request per connection (EigenAI) gets each unit as soon as it is
  cut, on a connection opened ahead, so that unit k + 1 is synthesized while unit k
  streams.

A stream ends when its text is finished and every unit has played out its audio, or at
the first error, or at ``cancel()``: then nothing more is sent, the connections of the
units under way are closed, and text fed afterwards is ignored.

Imports: speech, segmenter, connection (the Sink interface), protocols, errors.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Deque, Iterable, List, Optional, Tuple

from .connection import Connection, Sink
from .later import Later
from .errors import InvalidParameterError, TTSError
from .protocols import Request, WordTime
from .protocols.params import check_encodable
from .segmenter import Segmenter
from .speech import Speech

__all__ = ["StreamSpeech", "TextStream"]

logger = logging.getLogger("ttsstream")

_FEEDER_JOIN = 5.0  # seconds close() waits for a text iterator to hand back its thread


class _Unit(Sink):
    """One unit: its text and request, the connection serving it, and its audio while
    it waits for its turn. Guarded by its stream's lock."""

    def __init__(self, stream: "TextStream", text: str, request: Request) -> None:
        self.stream = stream
        self.text = text
        self.request = request
        self.connection: Optional[Connection] = None
        self.held: List[bytes] = []       # audio that came before its turn
        self.rate: Optional[int] = None   # a sample rate announced before its turn
        self.sent = False
        self.begun = False                # its segment has begun in the speech
        self.ended = False
        self.words: Optional[Tuple[WordTime, ...]] = None  # the server's times, from its first sample

    def _attach(self, connection: Connection) -> None:
        self.connection = connection

    def _on_audio(self, data: bytes) -> None:
        self.stream._audio(self, data)

    def _on_metadata(self, sample_rate: Optional[int]) -> None:
        self.stream._metadata(self, sample_rate)

    def _on_words(self, words: Tuple[WordTime, ...]) -> None:
        self.stream._words(self, words)

    def _end(self, error: Optional[TTSError]) -> None:
        self.stream._unit_ended(self, error)

    def _unwanted(self) -> bool:
        return self.ended or self.stream._stopped


class StreamSpeech(Speech):
    """A ``Speech`` whose text arrives while it is spoken: ``feed(text)``, then ``finish()``.

    Everything a ``Speech`` has works the same; ``wait()`` returns once everything fed
    has been spoken (and played, with ``play=True``).
    """

    _stream: "TextStream"

    @property
    def text(self) -> str:
        """Everything fed so far (joined when asked: a stream may take many small pieces)."""
        return self._stream.text

    @text.setter
    def text(self, value: str) -> None:
        pass  # Speech.__init__ sets it; a stream's text is what it was fed

    def feed(self, text: Optional[str]) -> None:
        """Add text to speak, as it comes (a token, a word, a sentence).

        ``None`` and ``""`` are skipped (an LLM's empty token; OpenAI's last delta has
        ``content=None``). Text fed after the speech has ended (cancelled, failed) is
        ignored.

        Raises:
            InvalidParameterError: ``text`` is not a str, holds a NUL, or cannot be
                sent as UTF-8.
            TTSError: ``finish()`` was already called.

        Thread: any.
        """
        self._stream.feed(text)

    def flush(self) -> None:
        """Send what has been fed so far as a unit now, without waiting for more text or
        for the segmenter's timer: say, the producer knows it will pause (a tool call, a
        turn's end) and the text so far lacks the end the segmenter waits for.

        Text that ends in a sentence end and a space goes at once anyway; text that ends in
        an abbreviation, initial or list marker (``Dr.``, ``J.``, ``2.``) waits for the word
        after it, for ``flush()`` or for ``finish()``: its timer never sends it alone.

        A no-op when nothing is pending, after ``finish()`` (it sent everything) and after
        the speech has ended (cancelled, failed): it never raises.

        Thread: any.
        """
        self._stream.flush_now()

    def finish(self) -> None:
        """No more text: speak what is left. Idempotent. Thread: any."""
        self._stream.finish()

    def _after_finish(self) -> None:
        self._stream.stop()
        super()._after_finish()


class TextStream:
    """Cuts a stream's text into units, sends them, and puts their audio in order.

    Args:
        speech: the speech it feeds.
        segmenter: where the text is cut.
        make_request: builds (and checks) a unit's request from its text.
        send: sends a unit: ``send(unit, request)`` takes a connection and begins it.
        sequential: one unit at a time (a dialect that reuses one connection).
        later: the client's calls due later: ``flush`` when text has waited long enough.
        ahead: how many units may be under way at once when not sequential.

    Thread: any. One lock (re-entrant: a callback may feed) guards everything below; it
    is held while audio is handed to the speech, so that units never interleave.
    """

    def __init__(self, speech: StreamSpeech, segmenter: Segmenter, make_request: Callable[[str], Request],
                 send: Callable[[Sink, Request], None], sequential: bool, later: Later, ahead: int = 3) -> None:
        self._speech = speech
        self._segmenter = segmenter
        self._make_request = make_request
        self._send = send
        self._sequential = sequential
        self._later = later
        self._ahead = 1 if sequential else ahead
        self._lock = threading.RLock()
        # Guarded by _lock.
        self._line: Deque[_Unit] = collections.deque()     # every unit not yet over, in text order
        self._waiting: Deque[_Unit] = collections.deque()  # units not yet sent
        self._under_way = 0
        self._finished = False   # finish() was called: no more text
        self._stopped = False    # the speech has ended: nothing more is sent
        self._texts: List[str] = []
        self._feeder: Optional[threading.Thread] = None

    # -- text in ---------------------------------------------------------------------

    def feed(self, text: Optional[str]) -> None:
        if text is None or text == "":
            return  # an LLM's empty token, OpenAI's last delta (content None)
        if not isinstance(text, str):
            raise InvalidParameterError(f"text fragments must be str, got {type(text).__name__}", parameter="text")
        if "\x00" in text:
            raise InvalidParameterError("text contains a NUL character", parameter="text")
        check_encodable("text", text)
        with self._lock:
            if self._finished:
                raise TTSError("feed() after finish(): open a new stream for more text")
            if self._stopped:
                return
            self._texts.append(text)
            self._queue(self._segmenter.push(text, time.monotonic()))
            self._schedule_flush()

    def widen(self, ahead: int) -> None:
        """Let up to ``ahead`` units be under way at once from now on (not when sequential),
        sending what may go. Thread: any (a unit's reader thread, at its first audio)."""
        with self._lock:
            if not self._sequential:
                self._ahead = ahead
                self._pump()

    def feed_units(self, units: List[str]) -> None:
        """Queue text already cut into units (a long ``str``), then finish."""
        with self._lock:
            if not self._finished and not self._stopped:
                self._texts.extend(units)
                self._queue(units)
        self.finish()

    @property
    def text(self) -> str:
        with self._lock:
            if len(self._texts) > 1:
                self._texts[:] = ["".join(self._texts)]
            return self._texts[0] if self._texts else ""

    def finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._stopped:
                return
            self._queue(self._segmenter.finish())
            complete = self._all_spoken()
        if complete:
            self._speech._end(None)

    def flush_now(self) -> None:
        """Send everything pending as a unit now (``StreamSpeech.flush``)."""
        with self._lock:
            if self._finished or self._stopped:
                return
            self._queue(self._segmenter.flush(time.monotonic()))  # a flush time left: a no-op

    def flush(self, now: float) -> None:
        """Send what has waited past the segmenter's flush time. Thread: the client's ``Later``."""
        with self._lock:
            if self._finished or self._stopped:
                return
            self._queue(self._segmenter.poll(now))
            self._schedule_flush()

    def feed_from(self, fragments: Iterable[str], name: str) -> None:
        """Feed every item of ``fragments``, then finish, on a thread of its own (an LLM's
        generator may block between tokens). Its failure ends the speech."""
        def run() -> None:
            try:
                for fragment in fragments:
                    if self._stopped:
                        break
                    self.feed(fragment)
                else:
                    self.finish()
            except TTSError as exc:
                self._speech._end(exc)
            except Exception as exc:  # the user's iterator failed: the speech ends with it
                error = TTSError(f"the text iterable raised {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                self._speech._end(error)
            finally:
                close = getattr(fragments, "close", None)
                if callable(close):
                    try:
                        close()  # a generator's cleanup when we stopped early; an async one's loop
                    except Exception:
                        logger.exception("closing the text iterable raised")

        self._feeder = threading.Thread(target=run, name=name, daemon=True)  # daemon: a safety net only
        self._feeder.start()

    @property
    def feeding(self) -> bool:
        """Whether the thread that feeds it from an iterable still runs."""
        feeder = self._feeder
        return feeder is not None and feeder.is_alive()

    def join(self) -> None:
        """Wait a little for the feeding thread (a blocked iterator cannot be woken)."""
        feeder = self._feeder
        if feeder is not None and feeder is not threading.current_thread():
            feeder.join(_FEEDER_JOIN)

    # -- units out -------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        """Under the lock: come back when the segmenter may release more (a stopped stream's
        calls do nothing when they come)."""
        deadline = self._segmenter.deadline
        if deadline is not None:
            self._later.call_at(deadline, lambda: self.flush(time.monotonic()))

    def _queue(self, texts: List[str]) -> None:
        """Under the lock: make units of ``texts`` and send what may go now."""
        for text in texts:
            unit = _Unit(self, text, self._make_request(text.strip()))  # the edges' spaces: not sent
            self._line.append(unit)
            self._waiting.append(unit)
        self._pump()

    def _pump(self) -> None:
        """Under the lock: send waiting units while the dialect allows."""
        while self._waiting and not self._stopped and self._under_way < self._ahead:
            unit = self._waiting.popleft()
            unit.sent = True
            self._under_way += 1
            try:
                self._send(unit, unit.request)
            except TTSError as exc:  # the client was closed meanwhile: the speech ends with it
                self._speech._end(exc)
                return

    def stop(self) -> None:
        """The speech has ended: send nothing more, and close the units under way."""
        with self._lock:
            self._stopped = True
            self._waiting.clear()
            under_way = [unit.connection for unit in self._line if unit.sent and not unit.ended]
            self._line.clear()
        for connection in under_way:
            if connection is not None:
                connection.abort()

    # -- audio back, from the units' reader threads ---------------------------------------

    def _audio(self, unit: _Unit, data: bytes) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._line[0] is not unit:
                unit.held.append(data)
                return
            self._deliver(unit, [data])

    def _metadata(self, unit: _Unit, sample_rate: Optional[int]) -> None:
        with self._lock:
            if self._line and self._line[0] is unit:
                self._speech._on_metadata(sample_rate)
            else:
                unit.rate = sample_rate

    def _words(self, unit: _Unit, words: Tuple[WordTime, ...]) -> None:
        """The server's word times for ``unit``: offsets into ``unit.request.text`` (its text
        without the edges' spaces), seconds from the unit's first sample."""
        with self._lock:
            unit.words = words
            if self._line and self._line[0] is unit and unit.begun:  # its audio is the speech's now
                self._speech._on_words(words)
            # else: told when the unit's held audio goes out (_deliver)

    def _unit_ended(self, unit: _Unit, error: Optional[TTSError]) -> None:
        with self._lock:
            if self._stopped or unit.ended:
                return
            unit.ended = True
            self._under_way -= 1
            if error is None:
                self._advance()
                self._pump()
                complete = self._all_spoken()
        if error is not None:
            self._speech._end(error)
        elif complete:
            self._speech._end(None)

    def _deliver(self, unit: _Unit, pieces: List[bytes]) -> None:
        """Under the lock: the head unit's audio to the speech, its segment begun first."""
        speech = self._speech
        if not unit.begun:
            unit.begun = True
            with speech._delivering():
                speech._segment_begins(unit.text)
        for data in pieces:
            speech._on_audio(data)

    def _advance(self) -> None:
        """Under the lock: retire ended units at the head; the next one's held audio goes out."""
        while self._line and self._line[0].ended:
            done = self._line.popleft()
            if not done.begun:  # no audio at all: a unit of its own all the same
                self._deliver(done, [])
            with self._speech._delivering():  # its words are timed now, not when the next unit's audio comes
                self._speech._segment_ends()
            if self._line:
                head = self._line[0]
                if head.rate is not None:
                    self._speech._on_metadata(head.rate)
                if head.held:
                    held, head.held = head.held, []
                    self._deliver(head, held)
                if head.words is not None:  # times that came while it waited, after its audio
                    self._speech._on_words(head.words)

    def _all_spoken(self) -> bool:
        """Under the lock: the text is finished and every unit has ended."""
        return self._finished and not self._line and not self._stopped
