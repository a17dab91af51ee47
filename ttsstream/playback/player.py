"""AudioPlayer: a queue of 16-bit mono PCM and one PyAudio writer thread.

This module owns the player's API, its queue and its thread. It imports numpy,
``ttsstream.errors``, ``ttsstream.audio``, ``ttsstream.checks`` and its siblings
``.devices``, ``.jitter`` and ``.stream``; PyAudio only through
``devices._import_pyaudio``. Never the client, the connection or websocket.

How it works. ``feed()`` appends bytes to a deque guarded by a condition variable and
returns at once. The player thread (``ttsstream-player``) owns every PortAudio call
(through ``stream.OutputStream``): it opens a blocking-mode output stream and writes
``block_ms`` blocks, so that between two blocks (a few milliseconds) it notices
``stop()``, ``pause()``, a volume change or ``close()``. A jitter buffer
(``jitter.JitterBuffer``) holds back the start of each segment, and the restart after
an underrun, until ``prebuffer_ms`` of audio is queued or the segment is finished.
At a segment's end the stream drains (see ``stream``); underruns are counted by the
jitter buffer (see ``jitter``).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Union

import numpy as np

from ..audio import SAMPLE_WIDTH, pcm_to_array
from ..checks import is_int, require_number
from ..errors import PlaybackError, SynthesisTimeout
from .devices import NO_DEVICE_HINT, _import_pyaudio
from .jitter import JitterBuffer
from .stream import OutputStream, block_frames

__all__ = ["AudioPlayer"]

logger = logging.getLogger("ttsstream.playback")

THREAD_NAME = "ttsstream-player"
START_TIMEOUT = 10.0   # seconds for the player thread to open the device
JOIN_TIMEOUT = 5.0     # seconds close() waits for the player thread
STOP_TIMEOUT = 2.0     # seconds stop() waits for the thread to silence the device


def _apply_volume(pcm: bytes, volume: float) -> bytes:
    """Scale 16-bit PCM by ``volume``: float32 multiply, round to nearest, clip to int16."""
    if volume == 1.0:
        return pcm
    samples = pcm_to_array(pcm).astype(np.float32)
    samples *= np.float32(volume)
    np.rint(samples, out=samples)
    np.clip(samples, -32768.0, 32767.0, out=samples)
    return samples.astype("<i2").tobytes()


DoneCallback = Callable[[bool], Any]


class _Mark:
    """End of a segment (``finish()``): drain, then release ``wait()``ers up to ``seq``
    and call ``on_done`` (True: played out; False: dropped)."""

    __slots__ = ("seq", "on_done")

    def __init__(self, seq: int, on_done: Optional[DoneCallback]) -> None:
        self.seq = seq
        self.on_done = on_done


def _report_done(marks: List[_Mark], played: bool) -> None:
    """Call the marks' ``on_done`` callbacks, outside the player's lock."""
    for mark in marks:
        if mark.on_done is not None:
            try:
                mark.on_done(played)
            except Exception:
                logger.exception("a finish() on_done callback raised")


class _Rate:
    """Drain, then reopen the device at ``rate`` for what follows."""

    __slots__ = ("rate",)

    def __init__(self, rate: int) -> None:
        self.rate = rate


class _Stop:
    """Abort the device for the ``stop()`` calls up to ``seq`` (never queued: stop()
    empties the queue and counts itself; the thread sees the count)."""

    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq


_CLOSE = object()  # the sentinel close() puts on the queue


def _check_rate(rate: Any) -> int:
    return require_number("sample_rate", rate, 0, integer=True, low_open=True)


def _check_volume(volume: Any) -> float:
    return float(require_number("volume", volume, 0.0, 1.0))  # also rejects NaN and inf


class AudioPlayer:
    """Plays 16-bit mono PCM through PyAudio from its own thread, fed from a queue.

    Constructing starts no thread and opens no device; the first ``feed()`` (or
    ``start()``) does. Every method may be called from any thread.

    Args:
        sample_rate: samples per second of what is fed (``set_sample_rate`` changes it).
        device: None for the default output; an int PortAudio device index; or a str
            matched case-insensitively against output device names (an exact name
            first, else the first name containing it).
        prebuffer_ms: how much audio must be queued before a segment starts, or before
            playback resumes after an underrun (unless the segment is finished first).
        volume: 0.0 to 1.0; at exactly 1.0 the bytes reach the device unchanged.
        block_ms: the size of each device write, and so how quickly ``stop()``,
            ``pause()`` and volume changes take effect.

    Raises:
        ValueError: a bad argument.
        TypeError: ``device`` is not None, an int or a str.

    Thread: every method may be called from any thread. PortAudio is called only from
    the player thread, ``ttsstream-player``, which runs no user code.

    A segment is what is fed between two ``finish()`` calls. Each one starts once
    ``prebuffer_ms`` of it is queued (or it is finished); if the queue then runs dry
    before ``finish()`` and the device plays out what it holds, that is an underrun
    (counted in ``underruns`` and ``underrun_ms``), and playback resumes once
    ``prebuffer_ms`` is queued again (or the segment is finished).
    """

    def __init__(self, sample_rate: int = 24000, device: Union[None, int, str] = None,
                 prebuffer_ms: float = 100, volume: float = 1.0, block_ms: float = 10) -> None:
        self._rate = _check_rate(sample_rate)
        if device is not None and not (is_int(device) or isinstance(device, str)):
            raise TypeError(f"device must be None, an int index or a str name, got {device!r}")
        require_number("prebuffer_ms", prebuffer_ms, 0)
        require_number("block_ms", block_ms, 1, 1000)
        self._device = device
        self._block_ms = float(block_ms)
        self._volume = _check_volume(volume)

        self._cond = threading.Condition(threading.Lock())
        self._start_lock = threading.Lock()
        self._queue: Deque[Any] = collections.deque()
        self._queued_bytes = 0        # audio bytes in _queue
        self._controls_queued = 0     # _Mark / _Rate items in _queue
        self._finish_seq = 0          # finish() calls so far
        self._done_seq = 0            # finish() marks played out (or dropped by stop/close)
        self._stop_seq = 0            # stop() calls so far
        self._stop_done = 0           # stop() calls the thread has carried out
        self._closed = False
        self._closing = threading.Event()
        self._error: Optional[PlaybackError] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._start_error: Optional[PlaybackError] = None

        # Counters and jitter-buffer state (with the pause), guarded by the lock.
        self._jitter = JitterBuffer(float(prebuffer_ms))
        self._played_bytes = 0
        self._play_rate = self._rate  # the rate of the audio at the head of the queue

        # Only the player thread touches these.
        self._output: Optional[OutputStream] = None  # the device: every PortAudio call
        self._draining: Optional[_Mark] = None  # the segment end being drained now

    # ----------------------------------------------------------------- properties

    @property
    def sample_rate(self) -> int:
        """The sample rate of what ``feed()`` takes now (the latest ``set_sample_rate``)."""
        with self._cond:
            return self._rate

    @property
    def volume(self) -> float:
        """Output volume, 0.0 to 1.0; a change applies from the next block written."""
        return self._volume

    @volume.setter
    def volume(self, value: float) -> None:
        self._volume = _check_volume(value)

    @property
    def underruns(self) -> int:
        """How many times the device ran out of audio in the middle of a segment, the
        queue being dry before ``finish()`` (never counted while paused)."""
        with self._cond:
            return self._jitter.underruns

    @property
    def underrun_ms(self) -> float:
        """Estimated milliseconds of silence the device played during underruns."""
        with self._cond:
            return self._jitter.underrun_ms

    @property
    def played_bytes(self) -> int:
        """Bytes of fed audio written to the device so far."""
        with self._cond:
            return self._played_bytes

    @property
    def paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        with self._cond:
            return self._jitter.paused

    @property
    def error(self) -> Optional[PlaybackError]:
        """The failure that stopped the player, or None."""
        return self._error

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    # ----------------------------------------------------------------- public API

    def start(self) -> None:
        """Open the device and start the player thread now, rather than at the first feed.

        Does nothing if already started.

        Raises:
            PlaybackError: no PyAudio, no output device, the device would not open, or
                the player is closed.
        """
        if self._thread is not None and self._error is None and not self._closed:
            return
        with self._start_lock:
            if self._closed:
                raise PlaybackError("this AudioPlayer is closed")
            if self._error is not None:
                raise self._error
            if self._thread is not None:
                return
            output = OutputStream(_import_pyaudio(), self._device, self._block_ms)
            self._start_error = None
            thread = threading.Thread(target=self._run, args=(output,), name=THREAD_NAME, daemon=True)
            thread.start()
            if not self._ready.wait(START_TIMEOUT):
                error = PlaybackError(
                    f"the audio output device did not open within {START_TIMEOUT:g} s; {NO_DEVICE_HINT}")
                with self._cond:
                    self._error = error
                    self._closing.set()
                    self._cond.notify_all()
                self._thread = thread  # close() joins it once the device call returns
                raise error
            self._ready.clear()
            if self._start_error is not None:
                thread.join(JOIN_TIMEOUT)
                raise self._start_error
            self._thread = thread

    def feed(self, pcm: Union[bytes, bytearray, memoryview]) -> None:
        """Queue 16-bit mono PCM (little-endian) for playback and return at once.

        The first call opens the device (see ``start()``); later calls never wait for
        the device.

        Raises:
            ValueError: ``pcm`` is not a whole number of 16-bit samples.
            TypeError: ``pcm`` is not bytes-like.
            PlaybackError: the device could not be opened or has failed, or the player
                is closed.
        """
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise TypeError(f"pcm must be bytes-like, got {type(pcm).__name__}")
        data = bytes(pcm)
        if len(data) % SAMPLE_WIDTH:
            raise ValueError(f"PCM must be whole 16-bit samples, got {len(data)} bytes")
        self.start()
        if not data:
            return
        with self._cond:
            self._raise_if_unusable()
            self._queue.append(data)
            self._queued_bytes += len(data)
            self._cond.notify_all()

    def finish(self, on_done: Optional[DoneCallback] = None) -> None:
        """Mark the end of what was fed so far.

        The player plays it all, waits until the device has played the last sample,
        then goes idle; later feeds start a new segment (with its prebuffer).
        ``wait()`` waits for this.

        Args:
            on_done: called once as ``on_done(played)``: with True when the segment has
                been played out, with False if ``stop()``, ``close()`` or a device
                failure dropped it first. Thread: the player thread, or the thread
                that dropped the segment; it must return quickly and must not call
                ``stop()``, ``wait()`` or ``close()``.

        Raises:
            PlaybackError: the device has failed or the player is closed.
        """
        with self._cond:
            self._raise_if_unusable()
            self._finish_seq += 1
            mark = _Mark(self._finish_seq, on_done)
            if self._thread is None:  # nothing was ever fed: nothing to play
                self._done_seq = self._finish_seq
                played = [mark]
            else:
                self._queue.append(mark)
                self._controls_queued += 1
                played = []
            self._cond.notify_all()
        _report_done(played, True)

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until everything fed before the last ``finish()`` has been played out.

        Returns at once if ``finish()`` was never called; returns early if ``stop()``
        or ``close()`` drops the audio.

        Raises:
            SynthesisTimeout: ``timeout`` seconds passed first (playback goes on).
            PlaybackError: the device failed.
            RuntimeError: called on the player thread (it would wait for itself).
        """
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("AudioPlayer.wait() cannot be called on the player thread")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._finish_seq
            while self._done_seq < target:
                if self._error is not None:
                    raise self._error
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SynthesisTimeout(f"playback did not finish within {timeout:g} s")
                self._cond.wait(remaining)

    def stop(self) -> None:
        """Drop everything queued and silence the device now.

        The stream is aborted rather than drained, and reopened at the next feed; the
        player is then ready for new audio (a pause stays in force until ``resume()``).
        Pending ``wait()`` calls return. Blocks
        until the player thread has silenced the device (a block's time at most,
        bounded by a timeout), except on the player thread.
        """
        with self._cond:
            dropped = self._drop_queue()
            self._stop_seq += 1
            target = self._stop_seq
            self._cond.notify_all()
            thread = self._thread
            if thread is not None and threading.current_thread() is not thread:
                deadline = time.monotonic() + STOP_TIMEOUT
                while self._stop_done < target and thread.is_alive() and self._error is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        logger.warning("the player thread did not stop the device within %g s", STOP_TIMEOUT)
                        break
                    self._cond.wait(remaining)
        _report_done(dropped, False)

    def pause(self) -> None:
        """Hold output without dropping audio; what the device already holds (a few
        blocks) plays out. No underruns are counted while paused."""
        with self._cond:
            self._jitter.pause(time.monotonic())
            self._cond.notify_all()

    def resume(self) -> None:
        """Continue after ``pause()``."""
        with self._cond:
            self._jitter.resume(time.monotonic())
            self._cond.notify_all()

    def set_sample_rate(self, rate: int) -> None:
        """Play what is fed from now on at ``rate``.

        What was queued at the old rate plays first; then the device is reopened at
        the new rate.

        Raises:
            ValueError: ``rate`` is not a positive int.
            PlaybackError: the device has failed or the player is closed.
        """
        rate = _check_rate(rate)
        with self._cond:
            self._raise_if_unusable()
            if rate == self._rate:
                return
            self._rate = rate
            if self._thread is None:
                self._play_rate = rate
                return
            self._queue.append(_Rate(rate))
            self._controls_queued += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Stop playback, end the player thread and release PortAudio.

        Drops what is still queued (call ``finish()`` and ``wait()`` first to play it
        out); pending ``wait()`` calls return. Safe to call twice and from any thread,
        including the player thread (then it does not join itself).
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            dropped = self._drop_queue()
            self._queue.append(_CLOSE)
            self._closing.set()
            self._cond.notify_all()
        _report_done(dropped, False)
        with self._start_lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                logger.warning("the player thread did not end within %g s", JOIN_TIMEOUT)

    def __enter__(self) -> "AudioPlayer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self._thread is not None else "not started")
        return (f"AudioPlayer(sample_rate={self._rate}, device={self._device!r}, "
                f"volume={self._volume:g}, {state})")

    # ------------------------------------------------------------ caller helpers

    def _raise_if_unusable(self) -> None:
        """Under the lock: raise if the player is closed or its device failed."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise PlaybackError("this AudioPlayer is closed")

    def _drop_queue(self) -> List[_Mark]:
        """Under the lock: forget queued audio, keeping any rate change, release waits.

        Returns the dropped marks, whose callbacks the caller runs after the lock.
        """
        rate_change = None
        marks = []
        for item in self._queue:
            if isinstance(item, _Rate):
                rate_change = item
            elif isinstance(item, _Mark):
                marks.append(item)
        self._queue.clear()
        self._queued_bytes = 0
        self._controls_queued = 0
        if rate_change is not None:
            self._queue.append(rate_change)
            self._controls_queued = 1
        self._done_seq = self._finish_seq
        return marks

    # ------------------------------------------------------------- player thread

    def _run(self, output: OutputStream) -> None:
        """The player thread: open the device, signal ready, then serve the queue."""
        self._output = output
        try:
            output.open_device()
            output.open(self._play_rate)
        except PlaybackError as exc:
            self._start_error = exc
        except Exception as exc:  # PortAudio can fail in ways PyAudio does not wrap
            self._start_error = PlaybackError(f"could not open the audio output: {exc}; {NO_DEVICE_HINT}")
            self._start_error.__cause__ = exc
        if self._start_error is not None:
            output.release()
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve()
        except Exception as exc:
            error = exc if isinstance(exc, PlaybackError) else PlaybackError(f"the audio output failed: {exc}")
            if error is not exc:
                error.__cause__ = exc
            logger.error("playback stopped: %s", error, exc_info=exc)
            with self._cond:
                self._error = error
                dropped = self._drop_queue()
                if self._draining is not None:
                    dropped.insert(0, self._draining)
                    self._draining = None
                self._queue.clear()
                self._controls_queued = 0
                self._cond.notify_all()
            _report_done(dropped, False)
        finally:
            output.release()

    def _serve(self) -> None:
        while True:
            item = self._next_item()
            if item is _CLOSE:
                return
            if isinstance(item, _Stop):
                self._carry_out_stop(item.seq)
            elif isinstance(item, bytes):
                self._write(item)
            elif isinstance(item, _Mark):
                self._draining = item  # reported as dropped if the device fails during the drain
                self._end_segment()
                self._draining = None
                with self._cond:
                    # A stop() or close() during the drain dropped this segment.
                    played = not self._interrupted()
                    if item.seq > self._done_seq:
                        self._done_seq = item.seq
                    self._cond.notify_all()
                _report_done([item], played)
            elif isinstance(item, _Rate):
                self._end_segment()
                self._output.close()  # reopened lazily at the new rate
                self._play_rate = item.rate

    def _next_item(self) -> Any:
        """Wait for the next thing to do: _CLOSE, a _Stop, a block of bytes, a _Mark or a _Rate."""
        with self._cond:
            while True:
                if self._closing.is_set():
                    return _CLOSE
                if self._stop_done < self._stop_seq:
                    return _Stop(self._stop_seq)
                if self._jitter.paused:
                    self._cond.wait()
                    continue
                if not self._queue:
                    # Mid-segment, wait no longer than the device plays what it holds:
                    # running out then is an underrun, which the jitter buffer counts.
                    self._cond.wait(self._jitter.queue_dry(time.monotonic()))
                    continue
                head = self._queue[0]
                if head is _CLOSE:
                    return _CLOSE
                if isinstance(head, bytes) and not self._jitter.may_play(
                        self._queued_bytes // SAMPLE_WIDTH, self._play_rate,
                        finished=self._controls_queued > 0, now=time.monotonic()):
                    self._cond.wait()
                    continue
                if not isinstance(head, bytes):
                    self._queue.popleft()
                    self._controls_queued -= 1
                    return head
                return self._take_block()

    def _take_block(self) -> bytes:
        """Under the lock: pop up to one block of queued bytes (never past a mark)."""
        want = block_frames(self._play_rate, self._block_ms) * SAMPLE_WIDTH
        parts = []
        size = 0
        while self._queue and size < want and isinstance(self._queue[0], bytes):
            data = self._queue[0]
            take = want - size
            if len(data) <= take:
                self._queue.popleft()
                parts.append(data)
                size += len(data)
            else:
                parts.append(data[:take])
                self._queue[0] = data[take:]
                size += take
        self._queued_bytes -= size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _write(self, block: bytes) -> None:
        if not self._output.is_open:
            self._output.open(self._play_rate)
        held = self._output.write(_apply_volume(block, self._volume))
        now = time.monotonic()
        with self._cond:
            self._played_bytes += len(block)
            self._jitter.wrote(now, held)

    def _interrupted(self) -> bool:
        """Under the lock: a stop or close is waiting to be carried out."""
        return self._closing.is_set() or self._stop_done < self._stop_seq

    def _end_segment(self) -> None:
        """Wait until the device has played everything written, then stop the stream."""
        with self._cond:
            self._jitter.end_segment(time.monotonic())
        self._output.drain(self._drain_pause)

    def _drain_pause(self, seconds: float) -> bool:
        """Wait up to ``seconds`` during a drain; False: a stop or close is waiting."""
        with self._cond:
            if self._interrupted():
                return False
            self._cond.wait(seconds)
            return True

    def _carry_out_stop(self, seq: int) -> None:
        self._output.close()
        with self._cond:
            self._jitter.end_segment(time.monotonic())
            if seq > self._stop_done:
                self._stop_done = seq
            self._cond.notify_all()
