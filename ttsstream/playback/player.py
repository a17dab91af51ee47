"""AudioPlayer: a queue of 16-bit mono PCM and one PyAudio writer thread.

This module owns the player's API and its thread: starting it, what it does with each
thing it is handed, and ending it. It imports ``ttsstream.errors``, ``ttsstream.audio``,
``ttsstream.checks`` and its siblings; PyAudio only through ``devices._import_pyaudio``.
Never the client, the connection or websocket.

How it works. ``feed()`` appends bytes to a deque guarded by a condition variable (the
``feed.FeedQueue``) and returns at once. The player thread (``ttsstream-player``, its
body in ``worker.PlayerThread``) owns every PortAudio call (through
``stream.OutputStream``): it opens the device at the audio's rate, or at the device's
own rate and resamples, and writes ``block_ms`` blocks, so that between two blocks (a
few milliseconds) it notices ``stop()``, ``pause()``, a volume change or ``close()``;
stops and pauses fade out over ``fade_ms``. A device that fails or stops taking audio
ends the segment with ``PlaybackError``; the next segment opens the device afresh. A jitter buffer
(``jitter.JitterBuffer``) holds back the start of each segment, and the restart after
an underrun, until ``prebuffer_ms`` of audio is queued or the segment is finished. At
a segment's end the stream drains (see ``stream``); the jitter buffer counts underruns
(see ``jitter``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, List, Optional, Union

from ..audio import SAMPLE_WIDTH
from ..checks import is_int, require_number
from ..errors import PlaybackError
from .devices import NO_DEVICE_HINT, _import_pyaudio
from .feed import FeedQueue
from .items import Cue, DoneCallback
from .stream import OutputStream
from .worker import PlayerThread, report_done

__all__ = ["AudioPlayer"]

logger = logging.getLogger("ttsstream.playback")

THREAD_NAME = "ttsstream-player"
START_TIMEOUT = 10.0   # seconds for the player thread to open the device
JOIN_TIMEOUT = 5.0     # seconds close() waits for the player thread


def _check_rate(rate: Any) -> int:
    return int(require_number("sample_rate", rate, 0, integer=True, low_open=True))


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
        fade_ms: how long ``stop()`` and ``pause()`` take to ramp the sound down, and
            ``resume()`` to ramp it back up, so that they do not click; 0 cuts at once.

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
                 prebuffer_ms: float = 100, volume: float = 1.0, block_ms: float = 10,
                 fade_ms: float = 10) -> None:
        sample_rate = _check_rate(sample_rate)
        if device is not None and not (is_int(device) or isinstance(device, str)):
            raise TypeError(f"device must be None, an int index or a str name, got {device!r}")
        require_number("prebuffer_ms", prebuffer_ms, 0)
        require_number("block_ms", block_ms, 1, 1000)
        require_number("fade_ms", fade_ms, 0, 1000)
        self._device = device
        self._block_ms = float(block_ms)
        self._fade_ms = float(fade_ms)
        self._volume = _check_volume(volume)  # read by the player thread at each block

        # What the callers and the player thread share: its own lock guards it.
        self._queue = FeedQueue(sample_rate, float(prebuffer_ms), self._block_ms, self._fade_ms)

        # The thread serving the queue now: set under _start_lock (read without it).
        # After a device failure start() replaces it; the old one has ended, or is
        # abandoned inside a PortAudio call (see guard) and ends once that returns.
        self._start_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._failure_callbacks: List[Callable[[PlaybackError], Any]] = []  # appended once each

    # ----------------------------------------------------------------- properties

    @property
    def sample_rate(self) -> int:
        """The sample rate of what ``feed()`` takes now (the latest ``set_sample_rate``)."""
        return self._queue.rate

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
        return self._queue.underruns

    @property
    def underrun_ms(self) -> float:
        """Estimated milliseconds of silence the device played during underruns."""
        return self._queue.underrun_ms

    @property
    def played_bytes(self) -> int:
        """Bytes of fed audio played so far: written to the device, less what a ``stop()``
        dropped unheard (what the device still held, and the audio it faded out on)."""
        return self._queue.played_bytes

    @property
    def paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        return self._queue.paused

    @property
    def error(self) -> Optional[PlaybackError]:
        """The failure that stopped the player, or None."""
        return self._queue.error

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._queue.closed

    # ----------------------------------------------------------------- public API

    def start(self) -> None:
        """Open the device and start the player thread now, rather than at the first feed.

        Does nothing if already started. After a device failure it opens the device
        afresh, with a new PortAudio instance and a new player thread, so a restarted
        sound server or a re-plugged device plays again.

        Raises:
            PlaybackError: no PyAudio, no output device, the device would not open, or
                the player is closed.
        """
        if self._thread is not None and self.error is None and not self.closed:
            return
        with self._start_lock:
            if self.closed:
                raise PlaybackError("this AudioPlayer is closed")
            old = self._thread
            if old is not None:
                if not self._queue.recover():
                    return  # started meanwhile, or recovered by another caller
                if old is not threading.current_thread():
                    old.join(JOIN_TIMEOUT)  # it released PortAudio (bounded), or is abandoned
                self._thread = None
            worker = PlayerThread(self._queue, OutputStream(_import_pyaudio(), self._device, self._block_ms),
                                  self._fade_ms, lambda: self._volume, self._report_failure)
            thread = threading.Thread(target=worker.run, name=THREAD_NAME, daemon=True)
            thread.start()
            if not worker.ready.wait(START_TIMEOUT):
                error = PlaybackError(
                    f"the audio output device did not open within {START_TIMEOUT:g} s; {NO_DEVICE_HINT}")
                self._queue.abandon(error)
                self._thread = thread  # close() joins it once the device call returns
                raise error
            if worker.start_error is not None:
                thread.join(JOIN_TIMEOUT)
                raise worker.start_error
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
        if self._queue.segment_error is not None:  # before start(): no reopen for a lost segment
            raise self._queue.segment_error
        self.start()
        if data:
            self._queue.put_audio(data)

    def cue(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when the audio fed after this call begins to reach the
        device (after the prebuffer, as its first block is written), or when the
        segment ends if no audio follows. A stop or close drops it uncalled.

        Thread: the callback runs on the player thread: it must return at once (hand
        the news to another thread) and must not call the player.

        Raises:
            PlaybackError: the device has failed or the player is closed.
        """
        self._queue.put_audio(Cue(callback))

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
        report_done(self._queue.put_mark(on_done, started=self._thread is not None), True)

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
        self._queue.wait_played(timeout)

    def stop(self) -> None:
        """Drop everything queued and silence the device now.

        The stream is aborted rather than drained, and reopened at the next feed; the
        player is then ready for new audio (a pause stays in force until ``resume()``).
        Pending ``wait()`` calls return. Blocks
        until the player thread has silenced the device (a block's time at most,
        bounded by a timeout), except on the player thread.
        """
        report_done(self._queue.stop(self._thread), False)

    def pause(self) -> None:
        """Hold output without dropping audio; what the device already holds (a few
        blocks) plays out. No underruns are counted while paused."""
        self._queue.pause()

    def resume(self) -> None:
        """Continue after ``pause()``."""
        self._queue.resume()

    def on_failure(self, callback: Callable[[PlaybackError], Any]) -> None:
        """Have ``callback(error)`` called each time the device fails under a segment.

        Thread: the player thread, as it ends (it runs no PortAudio call any more); the
        callback must return quickly. What it raises is logged.
        """
        self._failure_callbacks.append(callback)

    def _report_failure(self, error: PlaybackError) -> None:
        for callback in list(self._failure_callbacks):
            try:
                callback(error)
            except Exception:
                logger.exception("an on_failure callback raised")

    def set_sample_rate(self, rate: int) -> None:
        """Play what is fed from now on at ``rate``.

        What was queued at the old rate plays first; then the device is reopened at
        the new rate.

        Raises:
            ValueError: ``rate`` is not a positive int.
            PlaybackError: the device has failed or the player is closed.
        """
        self._queue.set_rate(_check_rate(rate), started=self._thread is not None)

    def close(self) -> None:
        """Stop playback, end the player thread and release PortAudio.

        Drops what is still queued (call ``finish()`` and ``wait()`` first to play it
        out); pending ``wait()`` calls return. Safe to call twice and from any thread,
        including the player thread (then it does not join itself).
        """
        dropped = self._queue.close()
        if dropped is None:  # closed already
            return
        report_done(dropped, False)
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
        state = "closed" if self.closed else ("running" if self._thread is not None else "not started")
        return (f"AudioPlayer(sample_rate={self.sample_rate}, device={self._device!r}, "
                f"volume={self._volume:g}, {state})")
