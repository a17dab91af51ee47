"""OutputStream: one PortAudio output device and the stream the player plays on.

This module owns every PortAudio call the player makes: starting PortAudio on a device,
choosing the rate to open it at, opening a 16-bit mono stream with a period of one
block, writing only what the device has room for (so no write ever blocks), watching
that the device keeps taking audio, draining at a segment end, aborting, and releasing
PortAudio. It imports numpy, ``ttsstream.errors``, ``ttsstream.audio``, ``.devices``
(device resolution), ``.guard`` (calls that may hang) and ``.ring`` (callback mode);
PyAudio itself arrives as an argument, already imported by ``devices._import_pyaudio``.

Two modes. On JACK the stream runs in callback mode: PortAudio's thread pulls from a
``ring.CallbackRing`` (blocking writes on JACK corrupted the heap or hung in tests).
Everywhere else it runs in blocking mode: on an unpaced device such as ALSA's file
plugin a callback stream spins (33,000 Python callbacks in half a second, each taking
the GIL), while blocking writes stay exact. Both look the same to the player: ``room``,
``write``, ``drain``, ``close``.

A lost device. A device that raises, whose callback stream turns inactive, or that
takes no audio for ``DEVICE_TIMEOUT`` raises ``PlaybackError`` from ``write`` or
``drain``. Calls that can hang on a lost device (start, stop, close, terminate) run
through ``guard.bounded``.

Draining. PortAudio's ALSA back end drops the buffer in ``Pa_StopStream`` instead of
draining it, so the player drains by itself: after the last block of a segment it polls
until the device holds nothing (blocking mode: the write-available count is back to the
buffer size; callback mode: the ring is empty and a period more than the output latency
of silence has followed), then stops the stream.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Union

import numpy as np

from ..audio import SAMPLE_WIDTH, pcm_to_array
from ..errors import PlaybackError
from .devices import NO_DEVICE_HINT, _resolve_device
from .guard import bounded
from .ring import CallbackRing

__all__ = ["OutputStream", "block_frames"]

logger = logging.getLogger("ttsstream.playback")

DRAIN_SLACK = 0.5      # seconds a drain may overrun the device's buffer time before giving up
DEVICE_TIMEOUT = 2.0   # seconds a playing device may take no audio before it counts as lost
CALL_TIMEOUT = 2.0     # seconds for a PortAudio call that can hang on a lost device
RING_PERIODS = 3       # callback mode: our periods queued ahead of PortAudio's own buffer

Pause = Callable[[float], bool]


def _apply_volume(pcm: bytes, volume: float) -> bytes:
    """Scale 16-bit PCM by ``volume``: float32 multiply, round to nearest, clip to int16."""
    if volume == 1.0:
        return pcm
    samples = pcm_to_array(pcm).astype(np.float32)
    samples *= np.float32(volume)
    np.rint(samples, out=samples)
    np.clip(samples, -32768.0, 32767.0, out=samples)
    return samples.astype("<i2").tobytes()


def block_frames(rate: int, block_ms: float) -> int:
    """Frames in one block of ``block_ms`` at ``rate`` (at least one)."""
    return max(1, int(round(rate * block_ms / 1000.0)))


class OutputStream:
    """A PortAudio output device and, while open, one stream on it.

    Args:
        pyaudio: the imported PyAudio module.
        device: None, an int index or a str name part (see ``devices._resolve_device``).
        block_ms: the stream's period, in milliseconds of audio at whatever rate it opens.

    Constructing touches no device; ``open_device()`` starts PortAudio, ``open(rate)``
    opens a stream, ``close()`` aborts it (reopen at any rate), ``release()`` ends
    PortAudio. A stream is started by its first write after an open or a drain.

    Thread: only the player thread calls it, so it has no lock (the ring has its own).
    """

    def __init__(self, pyaudio: Any, device: Union[None, int, str], block_ms: float) -> None:
        self._pyaudio = pyaudio
        self._device = device
        self._block_ms = block_ms
        self._pa: Any = None
        self._index: Optional[int] = None
        self._name: Optional[str] = None
        self.default_rate = 0         # the device's own rate
        self.callback_mode = False    # a JACK device: PortAudio pulls from a ring
        self._stream: Any = None
        self._ring: Optional[CallbackRing] = None
        self.rate = 0                 # the open stream's rate (the last one opened)
        self._period = 1              # frames_per_buffer the stream was opened with
        self._started = False         # the open stream has been started
        self._capacity = 0            # frames the device buffer holds (largest room seen)
        self._latency = 0             # callback mode: frames of PortAudio's output latency
        self._written = 0             # frames written to the open stream
        self._beat: Any = (None, 0.0)  # the last progress marker seen, and when (monotonic)

    @property
    def is_open(self) -> bool:
        """A stream is open (started or not)."""
        return self._stream is not None

    def open_device(self) -> None:
        """Start PortAudio and find the output device.

        Raises:
            PlaybackError: PortAudio would not start, or no output device matches.
        """
        try:
            self._pa = self._pyaudio.PyAudio()
        except Exception as exc:
            raise PlaybackError(f"PortAudio could not start: {exc}; {NO_DEVICE_HINT}") from exc
        info = _resolve_device(self._pa, self._device)
        self._index = int(info["index"])
        self._name = str(info["name"])
        self.default_rate = int(round(float(info["defaultSampleRate"])))
        host = self._pa.get_host_api_info_by_index(int(info["hostApi"]))
        self.callback_mode = host.get("type") == self._pyaudio.paJACK

    def device_rate(self, rate: int) -> int:
        """The rate to open the device at for audio at ``rate``: that rate if the device
        takes it, else the device's own (the player resamples)."""
        try:
            if self._pa.is_format_supported(rate, output_device=self._index, output_channels=1,
                                            output_format=self._pyaudio.paInt16):
                return rate
        except ValueError:  # PyAudio's way of saying no: ('Invalid sample rate', -9997)
            pass
        return self.default_rate or rate

    def open(self, rate: int) -> None:
        """Open a stream at ``rate`` with a period of one block; it starts at the first write.

        Raises:
            PlaybackError: the device would not open at that rate.
        """
        period = block_frames(rate, self._block_ms)
        ring = CallbackRing(self._pyaudio.paContinue) if self.callback_mode else None
        try:
            self._stream = self._pa.open(
                format=self._pyaudio.paInt16, channels=1, rate=rate, output=True,
                output_device_index=self._index, frames_per_buffer=period, start=False,
                stream_callback=ring.callback if ring is not None else None)
        except Exception as exc:
            raise PlaybackError(
                f'could not open the audio output "{self._name}" at {rate} Hz: {exc}; '
                f"{NO_DEVICE_HINT}") from exc
        self._ring = ring
        self.rate = rate
        self._period = period
        self._started = False
        self._latency = int(self._stream.get_output_latency() * rate) if ring is not None else 0
        # The server's period may be longer than ours (JACK's 1024 frames against our
        # 480): PortAudio then asks for several of ours back to back, with no time for
        # the player thread in between, so the ring holds a server period more.
        self._capacity = RING_PERIODS * period + self._latency if ring is not None else 0
        if ring is None:
            self._room()

    def held(self) -> float:
        """Seconds of audio written that the device has not played yet (an estimate)."""
        if self._stream is None:
            return 0.0
        if self._ring is not None:
            pending = self._ring.pending + (self._latency if self._started else 0)
        else:
            avail = self._room()
            pending = max(0, self._capacity - avail) if avail >= 0 else 0
        return pending / self.rate

    def write(self, samples: np.ndarray, pause: Pause) -> int:
        """Write int16 samples at the stream's rate, starting the stream if need be.

        Writes only what the device has room for, waiting with ``pause(seconds)`` in
        between, so no PortAudio call blocks.

        Returns:
            The frames written: fewer than given if ``pause`` gave up (a stop or close
            is waiting).

        Raises:
            PlaybackError: the device failed or stopped taking audio.
        """
        data = samples.astype("<i2", copy=False).tobytes()
        if not self._started:
            bounded(self._stream.start_stream, CALL_TIMEOUT, "starting the stream")
            self._started = True
        self._beat = (None, time.monotonic())  # no progress is due before this call
        position = 0
        while position < len(data):
            room = self._room() * SAMPLE_WIDTH
            if room > 0:
                piece = data[position:position + room]
                self._put(piece)
                position += len(piece)
                continue
            self._check_alive()
            if not pause(self._poll_s()):
                break
        return position // SAMPLE_WIDTH

    def drain(self, pause: Pause) -> None:
        """Wait until the device has played everything written, then stop the stream.

        Args:
            pause: called between polls as ``pause(seconds)``; waits up to that long and
                returns False to give up the drain at once (a stop or close is
                waiting), leaving the stream to be closed.

        Raises:
            PlaybackError: the device failed or stopped taking audio.
        """
        if self._stream is None or not self._started:
            return
        if self._ring is None:
            pending = self._capacity - self._room()
            if 0 < pending < self._period:
                # PortAudio starts a blocking stream only once a period is written; a short
                # segment (or a short tail after an underrun) would sit in the buffer for
                # ever. Less than a period of silence completes it.
                self._put(bytes((self._period - pending) * SAMPLE_WIDTH))
        self._beat = (None, time.monotonic())
        deadline = time.monotonic() + (self._capacity + self._latency) / self.rate + DRAIN_SLACK
        while not self._drained():
            self._check_alive()
            if self._ring is None and time.monotonic() >= deadline:
                logger.debug("the device did not report an empty buffer; drain given up")
                break
            if not pause(self._poll_s()):
                return
        # Nothing is left in the device: stopping now drops nothing (and makes
        # PortAudio's ALSA back end hand the last period to the device).
        bounded(self._stream.stop_stream, CALL_TIMEOUT, "stopping the stream")
        self._started = False

    def close(self) -> None:
        """Abort and close the stream: what the device still holds is dropped.

        Raises:
            PlaybackError: PortAudio did not return in time (the stream is abandoned).
        """
        stream, self._stream = self._stream, None
        self._started = False
        if self._ring is not None:
            self._ring.clear()
        if stream is not None:
            try:
                bounded(stream.close, CALL_TIMEOUT, "closing the stream")
            except PlaybackError as exc:
                if "did not return" in str(exc):
                    self._pa = None  # stuck: never touch this PortAudio instance again
                    raise
                logger.debug("closing the output stream failed", exc_info=True)

    def release(self) -> None:
        """Close the stream and terminate PortAudio. Safe to call twice; never hangs
        longer than ``CALL_TIMEOUT`` per call (a stuck PortAudio is abandoned)."""
        try:
            self.close()
        except PlaybackError:
            logger.warning("the output stream did not close; PortAudio is abandoned")
        pa, self._pa = self._pa, None
        if pa is not None:
            try:
                bounded(pa.terminate, CALL_TIMEOUT, "terminating PortAudio")
            except PlaybackError:
                logger.debug("terminating PortAudio failed", exc_info=True)

    # ------------------------------------------------------------------ internals

    def _poll_s(self) -> float:
        return min(0.005, self._block_ms / 2000.0)

    def _room(self) -> int:
        """Frames that can be written now without blocking (blocking mode: remembering
        the largest seen as the buffer size)."""
        if self._ring is not None:
            return max(0, self._capacity - self._ring.pending)
        avail: int = self._stream.get_write_available()
        if avail > self._capacity:
            self._capacity = avail
        return avail

    def _put(self, data: bytes) -> None:
        self._written += len(data) // SAMPLE_WIDTH
        if self._ring is not None:
            self._ring.push(data)
        else:
            self._stream.write(data, len(data) // SAMPLE_WIDTH)

    def _drained(self) -> bool:
        if self._ring is not None:
            return self._ring.pending == 0 and self._ring.silence_since_dry >= self._latency + self._period
        avail = self._room()
        return avail < 0 or avail >= self._capacity

    def _check_alive(self) -> None:
        """Raise PlaybackError if the device is lost: an inactive callback stream, or
        no progress (callbacks, or room freed) for ``DEVICE_TIMEOUT``."""
        now = time.monotonic()
        if self._ring is not None:
            if not self._stream.is_active():
                raise PlaybackError(f'the audio output "{self._name}" stopped (its stream is no longer '
                                    f"active: the sound server went away?); {NO_DEVICE_HINT}")
            beat: Any = (self._ring.calls, self._written)
        else:
            beat = (self._room(), self._written)
        if beat != self._beat[0]:
            self._beat = (beat, now)
        elif now - self._beat[1] > DEVICE_TIMEOUT:
            raise PlaybackError(f'the audio output "{self._name}" took no audio for {DEVICE_TIMEOUT:g} s; '
                                f"{NO_DEVICE_HINT}")
