"""What happens to the samples between the queue and the device: rate, fades, volume.

This module owns the sample processing of the player thread: ``Resampler`` (a streaming
soxr resampler, or a pass-through when the device takes the speech's own rate),
``Fader`` (the linear gain ramps of ``stop()``, ``pause()`` and ``resume()``) and
``apply_volume``. Everything here is pure numpy on int16 samples, with no thread, lock
or device, so tests drive it directly. Imports numpy, ``ttsstream.errors``,
``ttsstream.audio`` and ``ttsstream.formats.resample`` (soxr only lazily, there, the
first time a speech must be resampled).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..audio import pcm_to_array
from ..errors import PlaybackError, TTSError
from ..formats.resample import StreamResampler

__all__ = ["Resampler", "Fader", "apply_volume", "SOXR_HINT"]

SOXR_HINT = 'pip install "ttsstream[playback]" (it brings soxr)'
# soxr's "LQ" is still 16-bit precise, with a wider roll-off (above 8 kHz for speech at
# 16 kHz and up, where speech has little energy), and holds back 2-6 ms of audio, where
# "HQ" holds back up to 31 ms: that delay adds to the first sound and to every stop.
QUALITY = "LQ"


def apply_volume(samples: np.ndarray, volume: float) -> np.ndarray:
    """Scale int16 ``samples`` by ``volume``: float32 multiply, round to nearest, clip."""
    if volume == 1.0:
        return samples
    scaled = samples.astype(np.float32)
    scaled *= np.float32(volume)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return scaled.astype("<i2")


class Resampler:
    """Converts one stream of 16-bit mono PCM from ``rate_in`` to ``rate_out``.

    The player's side of ``ttsstream.formats.StreamResampler`` (soxr's stream API, which
    keeps its filter state from one block to the next, so that the blocks of one speech
    join without a seam; a pass-through when the rates are equal), at the low-latency
    quality. ``flush()`` hands out what the filter still holds (at a segment's end, or
    before a rate change).

    Raises:
        PlaybackError: the rates differ and soxr is not installed.

    Thread: the player thread only.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.rate_in = rate_in
        self.rate_out = rate_out
        try:
            self._stream = StreamResampler(rate_in, rate_out, quality=QUALITY)
        except TTSError as exc:  # soxr is missing: say so as playback does
            raise PlaybackError(
                f"the audio output does not take {rate_in} Hz, and resampling to its "
                f"{rate_out} Hz needs soxr, which is not installed: {SOXR_HINT}") from exc

    @property
    def active(self) -> bool:
        """True when the rates differ (samples are converted, not passed through)."""
        return self._stream.active

    def process(self, pcm: bytes) -> np.ndarray:
        """Return the device-rate samples for ``pcm`` (some may come out at the next call)."""
        return self._stream.process(pcm_to_array(pcm))

    def flush(self) -> np.ndarray:
        """Return what the filter still holds and start afresh for the next segment."""
        return self._stream.tail()


class Fader:
    """A gain that ramps linearly between 0 and 1 over ``fade_frames`` samples.

    ``down()`` and ``up()`` set where the gain is heading; ``apply()`` scales the
    samples as they go to the device, moving the gain one step per sample. With
    ``fade_frames`` 0 the gain jumps.

    Thread: the player thread only.
    """

    def __init__(self, fade_frames: int) -> None:
        self.fade_frames = max(0, int(fade_frames))
        self.gain = 1.0
        self._target = 1.0
        self._slope = 0.0   # gain change per sample while ramping

    @property
    def silent(self) -> bool:
        """The gain has reached 0 and stays there."""
        return self.gain == 0.0 and self._target == 0.0

    @property
    def steady(self) -> bool:
        """The gain is 1 and stays there: ``apply`` leaves samples untouched."""
        return self.gain == 1.0 and self._target == 1.0

    def down(self, over: Optional[int] = None) -> None:
        """Head for silence, over ``over`` samples (default: ``fade_frames``)."""
        self._head(0.0, self.fade_frames if over is None else over)

    def up(self) -> None:
        """Head back to full gain."""
        self._head(1.0, self.fade_frames)

    def reset(self) -> None:
        """Full gain at once (a new segment after a stop)."""
        self.gain = self._target = 1.0

    def _head(self, target: float, frames: int) -> None:
        self._target = target
        if frames <= 0:
            self.gain = target
        else:
            self._slope = (target - self.gain) / frames

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Scale int16 ``samples`` by the moving gain; return int16 samples."""
        if self.steady or not len(samples):
            return samples
        if self.gain == self._target:  # resting at 0
            return np.zeros(len(samples), dtype="<i2")
        gains: np.ndarray = np.clip(self.gain + self._slope * np.arange(1, len(samples) + 1), 0.0, 1.0)
        if self._slope < 0:
            gains = np.maximum(gains, self._target)
        else:
            gains = np.minimum(gains, self._target)
        self.gain = float(gains[-1])
        out = samples.astype(np.float32) * gains.astype(np.float32)
        np.rint(out, out=out)
        return np.clip(out, -32768.0, 32767.0).astype("<i2")
