"""FeedQueue: the hand-off between AudioPlayer's callers and its player thread.

This module owns what the two sides share, under one condition variable: the queue of
fed audio, segment ends (``finish()``) and rate changes; the counters by which ``wait()``
and ``stop()`` learn that the player thread has done what they asked; the closing flag
and the failure that stopped the player; the jitter buffer (with the pause) and the
playback counters. It makes no PortAudio call, starts no thread and calls no user code:
it hands back the marks whose ``on_done`` the player then calls, outside the lock.
Imports: ``ttsstream.errors``, ``ttsstream.audio``, ``.jitter``, and ``.stream`` only for
the block size.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Deque, List, Optional, Union

from ..audio import SAMPLE_WIDTH
from ..errors import PlaybackError, SynthesisTimeout
from .items import CLOSE, Cue, DoneCallback, Mark, PauseRequest, RateChange, StopRequest
from .jitter import PLAYING, JitterBuffer
from .stream import block_frames

__all__ = ["FeedQueue"]

logger = logging.getLogger("ttsstream.playback")

STOP_TIMEOUT = 2.0     # seconds stop() waits for the thread to silence the device

class FeedQueue:
    """The queue, handshakes and counters one AudioPlayer shares with its thread.

    Args:
        sample_rate: the rate of what is fed first.
        prebuffer_ms: passed to the jitter buffer.
        block_ms: the size of the blocks ``next_item()`` hands out.
        fade_ms: how much queued audio a stop or pause takes to fade out on.

    Thread: every method takes the lock itself. The callers' side (``put_audio`` to
    ``abandon``) may be called from any thread; the methods marked "Thread: the player
    thread" only from that thread.
    """

    def __init__(self, sample_rate: int, prebuffer_ms: float, block_ms: float, fade_ms: float = 0.0) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._block_ms = block_ms
        self._fade_ms = fade_ms

        # Guarded by the lock.
        self._queue: Deque[Any] = collections.deque()
        self._queued_bytes = 0        # audio bytes in _queue
        self._controls_queued = 0     # Mark / RateChange items in _queue
        self._finish_seq = 0          # finish() calls so far
        self._done_seq = 0            # finish() marks played out (or dropped by stop/close)
        self._stop_seq = 0            # stop() calls so far
        self._stop_done = 0           # stop() calls the thread has carried out
        self._stop_tail = b""         # the audio the pending stop fades out on
        self._pause_faded = False     # the player has faded out for the pause in force
        self._segment_open = False    # audio was fed since the last finish() or stop()
        self._closing = False         # the thread is to end (close(), or a start that timed out)
        self._rate = sample_rate      # what feed() takes now (the latest set_sample_rate)
        self._jitter = JitterBuffer(prebuffer_ms)  # with the pause
        self._played_bytes = 0
        # Written under the lock, read without it: each changes once, from None or False.
        self.error: Optional[PlaybackError] = None  # the failure that stopped the player
        self.closed = False           # close() was called
        self.generation = 0           # which player thread serves the queue (see recover())
        self.segment_error: Optional[PlaybackError] = None  # the failure that cut the open
        # segment short: its feeds and its finish() raise it (until finish() or stop())

        # The rate of the audio at the head of the queue: changed under the lock, read by
        # the player thread without it (it opens the device at this rate); before the
        # thread starts set_rate() sets it, afterwards only the thread's next_item().
        self.play_rate = sample_rate

    # ------------------------------------------------------------------ counters

    @property
    def rate(self) -> int:
        with self._cond:
            return self._rate

    @property
    def underruns(self) -> int:
        with self._cond:
            return self._jitter.underruns

    @property
    def underrun_ms(self) -> float:
        with self._cond:
            return self._jitter.underrun_ms

    @property
    def played_bytes(self) -> int:
        with self._cond:
            return self._played_bytes

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._jitter.paused

    # ------------------------------------------------------------- callers' side

    def put_audio(self, data: Union[bytes, Cue]) -> None:
        """Queue PCM bytes or a cue (no control: it holds back no prebuffer). Raises PlaybackError."""
        with self._cond:
            self._raise_if_unusable()
            self._queue.append(data)
            if isinstance(data, bytes):
                self._queued_bytes += len(data)
                self._segment_open = True
            self._cond.notify_all()

    def put_mark(self, on_done: Optional[DoneCallback], started: bool) -> List[Mark]:
        """Queue the end of a segment; without a ``started`` thread it is played at once.

        Returns the marks already played out (for the caller to report, outside the
        lock). Raises PlaybackError if the player is closed or failed.
        """
        with self._cond:
            failed, self.segment_error = self.segment_error, None
            self._segment_open = False
            if failed is not None:
                raise failed  # the segment this ends was cut short by the failure
            self._raise_if_unusable()
            self._finish_seq += 1
            mark = Mark(self._finish_seq, on_done)
            if not started:  # nothing was ever fed: nothing to play
                self._done_seq = self._finish_seq
                played = [mark]
            else:
                self._queue.append(mark)
                self._controls_queued += 1
                played = []
            self._cond.notify_all()
        return played

    def set_rate(self, rate: int, started: bool) -> None:
        """Take ``rate`` for what is fed from now on; with a ``started`` thread, queue
        the change behind what is queued. Raises PlaybackError if closed or failed."""
        with self._cond:
            self._raise_if_unusable()
            if rate == self._rate:
                return
            self._rate = rate
            if not started:
                self.play_rate = rate
                return
            self._queue.append(RateChange(rate))
            self._controls_queued += 1
            self._cond.notify_all()

    def wait_played(self, timeout: Optional[float]) -> None:
        """Block until every segment finished so far has been played out (or dropped).

        Raises:
            SynthesisTimeout: ``timeout`` seconds passed first.
            PlaybackError: the device failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._finish_seq
            while self._done_seq < target:
                if self.error is not None:
                    raise self.error
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SynthesisTimeout(f"playback did not finish within {timeout:g} s")
                self._cond.wait(remaining)

    def stop(self, thread: Optional[threading.Thread]) -> List[Mark]:
        """Drop what is queued and ask the player ``thread`` to abort the device; wait
        for it (bounded by STOP_TIMEOUT) unless called on that thread.

        Returns the dropped marks, for the caller to report.
        """
        with self._cond:
            if self._stop_done == self._stop_seq and not self._pause_faded:
                self._stop_tail = self._take_audio(self._fade_frames())
            self._segment_open = False
            self.segment_error = None
            dropped = self._drop_queue()
            self._stop_seq += 1
            target = self._stop_seq
            self._cond.notify_all()
            if thread is not None and threading.current_thread() is not thread:
                deadline = time.monotonic() + STOP_TIMEOUT
                while self._stop_done < target and thread.is_alive() and self.error is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        logger.warning("the player thread did not stop the device within %g s", STOP_TIMEOUT)
                        break
                    self._cond.wait(remaining)
        return dropped

    def pause(self) -> None:
        with self._cond:
            self._jitter.pause(time.monotonic())
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._jitter.resume(time.monotonic())
            self._pause_faded = False
            self._cond.notify_all()

    def recover(self) -> bool:
        """Forget a device failure, so that the next segment opens the device afresh
        (the segment it cut short stays refused until finish() or stop()). Returns
        whether there was one to forget."""
        with self._cond:
            if self.error is None or self.closed:
                return False
            self.error = None
            self._closing = False     # set by abandon(): the old thread sees its generation end
            self.generation += 1
            self._stop_done = self._stop_seq
            self._jitter.end_segment(time.monotonic())
            self._cond.notify_all()
            return True

    def close(self) -> Optional[List[Mark]]:
        """Mark the player closed, drop what is queued and tell the thread to end.

        Returns the dropped marks, or None if it was closed already.
        """
        with self._cond:
            if self.closed:
                return None
            self.closed = True
            dropped = self._drop_queue()
            self._closing = True
            self._cond.notify_all()
        return dropped

    def abandon(self, error: PlaybackError) -> None:
        """The device did not open in time: fail with ``error``, and let the thread end
        once its device call returns."""
        with self._cond:
            self.error = error
            self._closing = True
            self._cond.notify_all()

    # -------------------------------------------------------- player thread's side

    def next_item(self, generation: int) -> Any:
        """Wait for the next thing to do: CLOSE, a StopRequest, a PauseRequest, a block
        of bytes, a Mark or a RateChange. CLOSE also once ``generation`` is over (a
        newer thread serves the queue). Thread: the player thread."""
        with self._cond:
            while True:
                if self._closing or generation != self.generation:
                    return CLOSE
                if self._stop_done < self._stop_seq:
                    tail, self._stop_tail = self._stop_tail, b""
                    return StopRequest(self._stop_seq, tail)
                if self._jitter.paused:
                    if not self._pause_faded:
                        self._pause_faded = True
                        if self._jitter.state == PLAYING:  # else the device is silent already
                            return PauseRequest(self._take_audio(self._fade_frames()))
                    self._cond.wait()
                    continue
                if not self._queue:
                    # Mid-segment, wait no longer than the device plays what it holds:
                    # running out then is an underrun, which the jitter buffer counts.
                    self._cond.wait(self._jitter.queue_dry(time.monotonic()))
                    continue
                head = self._queue[0]
                if isinstance(head, bytes) and not self._jitter.may_play(
                        self._queued_bytes // SAMPLE_WIDTH, self.play_rate,
                        finished=self._controls_queued > 0, now=time.monotonic()):
                    self._cond.wait()
                    continue
                if isinstance(head, Cue):
                    return self._queue.popleft()
                if not isinstance(head, bytes):
                    self._queue.popleft()
                    self._controls_queued -= 1
                    if isinstance(head, RateChange):
                        self.play_rate = head.rate  # what follows it opens the device at this rate
                    return head
                return self._take_audio(block_frames(self.play_rate, self._block_ms))

    def wrote(self, size: int, now: float, held_s: float) -> None:
        """``size`` bytes were written, the write ending at ``now`` with ``held_s``
        seconds left in the device. Thread: the player thread."""
        with self._cond:
            self._played_bytes += size
            self._jitter.wrote(now, held_s)

    def end_segment(self) -> None:
        """The segment under way is over (drained or aborted): idle until the next.
        Thread: the player thread."""
        with self._cond:
            self._jitter.end_segment(time.monotonic())

    def drain_pause(self, seconds: float, only_close: bool = False) -> bool:
        """Wait up to ``seconds`` during a drain; False: a stop or close is waiting (with
        ``only_close``, a close: a stop's own fade-out). Thread: the player thread."""
        with self._cond:
            if self._closing if only_close else self._interrupted():
                return False
            self._cond.wait(seconds)
            return True

    def segment_played(self, mark: Mark) -> bool:
        """The drain for ``mark`` is over: release its waiters. Returns whether it was
        played out (False: a stop() or close() during the drain dropped it).
        Thread: the player thread."""
        with self._cond:
            played = not self._interrupted()
            if mark.seq > self._done_seq:
                self._done_seq = mark.seq
            self._cond.notify_all()
        return played

    def stopped(self, seq: int, unplayed: int = 0) -> None:
        """The device is silenced for the ``stop()`` calls up to ``seq``, ``unplayed`` bytes
        counted as played dropped from it unheard. Thread: the player thread."""
        with self._cond:
            self._played_bytes = max(0, self._played_bytes - unplayed)
            self._jitter.end_segment(time.monotonic())
            self._stop_done = max(self._stop_done, seq)
            self._cond.notify_all()

    def fail(self, error: PlaybackError, draining: Optional[Mark]) -> List[Mark]:
        """The device failed with ``error``: refuse everything from now on and drop the
        queue. Returns the dropped marks (``draining`` first: the segment end whose
        drain the failure cut short). Thread: the player thread."""
        with self._cond:
            self.error = error
            self.segment_error = error if self._segment_open else None
            self._stop_tail = b""
            dropped = self._drop_queue()
            if draining is not None:
                dropped.insert(0, draining)
            self._queue.clear()
            self._controls_queued = 0
            self._cond.notify_all()
        return dropped

    # ------------------------------------------------------------ under the lock

    def _raise_if_unusable(self) -> None:
        """Under the lock: raise if the player is closed or its device failed."""
        error = self.segment_error or self.error
        if error is not None:
            raise error
        if self.closed:
            raise PlaybackError("this AudioPlayer is closed")

    def _interrupted(self) -> bool:
        """Under the lock: a stop or close is waiting to be carried out."""
        return self._closing or self._stop_done < self._stop_seq

    def _drop_queue(self) -> List[Mark]:
        """Under the lock: forget queued audio, keeping any rate change, release waits.

        Returns the dropped marks, whose callbacks the caller runs after the lock.
        """
        rate_change = None
        marks = []
        for item in self._queue:
            if isinstance(item, RateChange):
                rate_change = item
            elif isinstance(item, Mark):
                marks.append(item)
        self._queue.clear()
        self._queued_bytes = 0
        self._controls_queued = 0
        if rate_change is not None:
            self._queue.append(rate_change)
            self._controls_queued = 1
        self._done_seq = self._finish_seq
        return marks

    def _fade_frames(self) -> int:
        return int(round(self.play_rate * self._fade_ms / 1000.0))

    def _take_audio(self, frames: int) -> bytes:
        """Under the lock: pop up to ``frames`` of queued audio (never past a mark)."""
        data = _pop_audio(self._queue, frames * SAMPLE_WIDTH)
        self._queued_bytes -= len(data)
        return data



def _pop_audio(queue: Deque[Any], want: int) -> bytes:
    """Pop up to ``want`` bytes of audio from the head of ``queue`` (never past a mark)."""
    parts = []
    size = 0
    while queue and size < want and isinstance(queue[0], bytes):
        data = queue[0]
        take = want - size
        if len(data) <= take:
            queue.popleft()
            parts.append(data)
            size += len(data)
        else:
            parts.append(data[:take])
            queue[0] = data[take:]
            size += take
    return parts[0] if len(parts) == 1 else b"".join(parts)  # b"" for no parts
