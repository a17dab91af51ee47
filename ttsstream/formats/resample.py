"""Streaming sample-rate conversion of 16-bit PCM, the same whichever way the stream is cut.

This module owns ``StreamResampler``: soxr's stream API with its filter state kept from
one chunk to the next, so that the chunks of one speech join without a seam, and a
pass-through when the rates are equal. Imports numpy and ``ttsstream.errors`` (and
``ttsstream.audio`` for the PCM view); soxr lazily, the first time a stream must change
rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audio import pcm_to_array
from ..errors import TTSError

__all__ = ["StreamResampler", "QUALITY", "SOXR_HINT"]

SOXR_HINT = 'pip install "ttsstream[formats]" (it brings soxr)'
# soxr's "HQ" keeps 24 kHz -> 8 kHz flat to 3.4 kHz (the telephone band's top), where "LQ"
# is already 6 dB down; all of soxr's qualities hold a 5-11.5 kHz sweep's aliases ~86 dB
# below it (16-bit's own floor), so the choice is about the passband. It holds back up to
# ~31 ms, once per stream.
QUALITY = "HQ"
_SCALE = 32768.0


class StreamResampler:
    """Converts one stream of 16-bit mono little-endian PCM from ``rate_in`` to ``rate_out``.

    The samples go through soxr as float32 and are rounded back to int16 here: soxr's own
    int16 output is dithered, which would make the result depend on where the stream was
    cut. This way any cutting of the input gives exactly the same samples as one call.

    Args:
        rate_in: the input's samples per second.
        rate_out: the output's samples per second (equal: bytes pass through unchanged).
        quality: soxr's quality recipe (``"LQ"``, ``"MQ"``, ``"HQ"``, ``"VHQ"``).

    Raises:
        TTSError: the rates differ and soxr is not installed (the message has the pip command).

    Thread: one thread at a time (it holds the stream's filter state).
    """

    def __init__(self, rate_in: int, rate_out: int, quality: str = QUALITY) -> None:
        self.rate_in = rate_in
        self.rate_out = rate_out
        self._soxr: Any = None
        self._carry = b""  # an odd byte, waiting for the rest of its sample
        if rate_in != rate_out:
            try:
                import soxr  # noqa: PLC0415 -- only streams that change rate pay for the import
            except ImportError as exc:
                raise TTSError(f"converting {rate_in} Hz audio to {rate_out} Hz needs soxr, which is not "
                               f"installed: {SOXR_HINT}") from exc
            self._soxr = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality=quality)

    @property
    def active(self) -> bool:
        """True when the rates differ (samples are converted, not passed through)."""
        return self._soxr is not None

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Return the int16 samples at ``rate_out`` for int16 ``samples`` (some of them
        come out at a later call: the filter looks ahead)."""
        if self._soxr is None:
            return samples
        return _to_int16(self._soxr.resample_chunk(samples.astype(np.float32) / np.float32(_SCALE), last=False))

    def push(self, pcm: bytes) -> bytes:
        """Return the PCM at ``rate_out`` that ``pcm`` (any length, even odd) lets out."""
        if self._carry:
            pcm = self._carry + pcm
        cut = len(pcm) - len(pcm) % 2
        pcm, self._carry = pcm[:cut], pcm[cut:]
        if self._soxr is None:
            return pcm
        return self.process(pcm_to_array(pcm)).tobytes()

    def tail(self) -> np.ndarray:
        """Return what the filter still holds (int16) and start afresh for a new stream."""
        self._carry = b""
        if self._soxr is None:
            return np.zeros(0, dtype="<i2")
        rest = _to_int16(self._soxr.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self._soxr.clear()
        return rest

    def flush(self) -> bytes:
        """Return the PCM the filter still holds at the stream's end, and start afresh.
        A dangling odd byte (half a sample) is dropped."""
        return self.tail().tobytes()


def _to_int16(samples: np.ndarray) -> np.ndarray:
    scaled = samples.astype(np.float32) * np.float32(_SCALE)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    converted: np.ndarray = scaled.astype("<i2")
    return converted
