"""OutputStream: one PortAudio output device and its blocking-mode stream.

This module owns every PortAudio call the player makes: starting PortAudio on a device,
opening a 16-bit mono stream at a rate with a period of one block, writing (with the
volume applied: the gain stage sits here, on the player thread, next to where fades
will go), tracking how much the device holds, draining at a segment end, aborting, and
releasing PortAudio. It imports numpy, ``ttsstream.errors``, ``ttsstream.audio`` and
``.devices`` (for device resolution); PyAudio itself arrives as an argument, already
imported by ``devices._import_pyaudio``.

Draining. PortAudio's ALSA back end drops the buffer in ``Pa_StopStream`` instead of
draining it, so the player drains by itself: after the last block of a segment it polls
the stream's write-available count until the device buffer is empty (the last sample
has been consumed by the device), then stops the stream.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Union

import numpy as np

from ..audio import SAMPLE_WIDTH, pcm_to_array
from ..errors import PlaybackError
from .devices import NO_DEVICE_HINT, _resolve_device

__all__ = ["OutputStream", "block_frames"]

logger = logging.getLogger("ttsstream.playback")

DRAIN_SLACK = 0.5      # seconds a drain may overrun the device's buffer time before giving up


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
    """A PortAudio output device and, while open, one blocking-mode stream on it.

    Args:
        pyaudio: the imported PyAudio module.
        device: None, an int index or a str name part (see ``devices._resolve_device``).
        block_ms: the stream's period, in milliseconds of audio at whatever rate it opens.

    Constructing touches no device; ``open_device()`` starts PortAudio, ``open(rate)``
    opens a stream, ``close()`` aborts it (reopen at any rate), ``release()`` ends
    PortAudio. A stream is started by its first write after an open or a drain.

    Thread: only the player thread calls it, so it has no lock.
    """

    def __init__(self, pyaudio: Any, device: Union[None, int, str], block_ms: float) -> None:
        self._pyaudio = pyaudio
        self._device = device
        self._block_ms = block_ms
        self._pa: Any = None
        self._index: Optional[int] = None
        self._name: Optional[str] = None
        self._stream: Any = None
        self.rate = 0                 # the open stream's rate (the last one opened)
        self._period = 1              # frames_per_buffer the stream was opened with
        self._started = False         # the open stream has been started
        self._capacity = 0            # frames the device buffer holds (largest avail seen)

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

    def open(self, rate: int) -> None:
        """Open a stream at ``rate`` with a period of one block; it starts at the first write.

        Raises:
            PlaybackError: the device would not open at that rate.
        """
        period = block_frames(rate, self._block_ms)
        try:
            self._stream = self._pa.open(
                format=self._pyaudio.paInt16, channels=1, rate=rate, output=True,
                output_device_index=self._index, frames_per_buffer=period, start=False)
        except Exception as exc:
            raise PlaybackError(
                f'could not open the audio output "{self._name}" at {rate} Hz: {exc}; '
                f"{NO_DEVICE_HINT}") from exc
        self.rate = rate
        self._period = period
        self._started = False
        self._capacity = 0
        self._note_capacity()

    def write(self, pcm: bytes, volume: float = 1.0) -> float:
        """Write 16-bit mono PCM scaled by ``volume``, starting the stream if need be;
        blocks while the device buffer is full.

        Returns:
            Seconds of audio the device still holds after the write.
        """
        if not self._started:
            self._stream.start_stream()
            self._started = True
        self._stream.write(_apply_volume(pcm, volume), len(pcm) // SAMPLE_WIDTH)
        avail = self._note_capacity()
        return (max(0, self._capacity - avail) if avail >= 0 else 0) / self.rate

    def drain(self, pause: Callable[[float], bool]) -> None:
        """Wait until the device has played everything written, then stop the stream.

        Args:
            pause: called between polls as ``pause(seconds)``; waits up to that long and
                returns False to give up the drain at once (a stop or close is
                waiting), leaving the stream to be closed.
        """
        if self._stream is None or not self._started:
            return
        pending = self._capacity - self._note_capacity()
        if 0 < pending < self._period:
            # PortAudio starts a blocking stream only once a period is written; a short
            # segment (or a short tail after an underrun) would sit in the buffer for
            # ever. Less than a period of silence completes it.
            self._stream.write(b"\0" * ((self._period - pending) * SAMPLE_WIDTH), self._period - pending)
        poll = min(0.005, self._block_ms / 2000.0)
        deadline = time.monotonic() + self._capacity / self.rate + DRAIN_SLACK
        while True:
            avail = self._note_capacity()
            if avail < 0 or avail >= self._capacity:
                break
            if time.monotonic() >= deadline:
                logger.debug("the device did not report an empty buffer; drain given up")
                break
            if not pause(poll):
                return
        # Nothing is left in the device: stopping now drops nothing (and makes
        # PortAudio's ALSA back end hand the last period to the device).
        self._stream.stop_stream()
        self._started = False

    def close(self) -> None:
        """Abort and close the stream: what the device still holds is dropped."""
        stream, self._stream = self._stream, None
        self._started = False
        if stream is not None:
            try:
                stream.close()
            except Exception:
                logger.debug("closing the output stream failed", exc_info=True)

    def release(self) -> None:
        """Close the stream and terminate PortAudio. Safe to call twice."""
        self.close()
        pa, self._pa = self._pa, None
        if pa is not None:
            try:
                pa.terminate()
            except Exception:
                logger.debug("terminating PortAudio failed", exc_info=True)

    def _note_capacity(self) -> int:
        """Return the stream's write-available frames, remembering the largest seen."""
        avail = self._stream.get_write_available()
        if avail > self._capacity:
            self._capacity = avail
        return avail
