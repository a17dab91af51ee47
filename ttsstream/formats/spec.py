"""What a speech's chunks are delivered in: ``AudioFormat``, and the ``Converter`` that makes them.

This module owns ``AudioFormat`` (a rate, an encoding, a frame length: checked when it is
made) and ``Converter``, which turns the 16-bit PCM a server sends into that format as it
arrives: resampled (``resample.py``), cut into exact frames (``framer.py``) and encoded
(``g711.py``), so that where the server's chunks began and ended never shows. Imports
numpy, ``ttsstream.errors``, ``ttsstream.checks``, ``ttsstream.audio`` and its own
package; soxr only when the rate changes.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..audio import SAMPLE_WIDTH, pcm_to_array
from ..checks import is_int, is_number
from ..errors import InvalidParameterError
from .framer import Framer
from .g711 import alaw_encode, mulaw_encode
from .resample import StreamResampler

__all__ = ["AudioFormat", "Converter", "ENCODINGS", "MIN_RATE", "MAX_RATE"]

MIN_RATE = 8000
MAX_RATE = 192000
# encoding -> (bytes per sample, encoder from int16 samples); pcm16 is the PCM itself.
_ENCODERS: Dict[str, Tuple[int, Optional[Callable[[np.ndarray], bytes]]]] = {
    "pcm16": (SAMPLE_WIDTH, None),
    "mulaw": (1, mulaw_encode),
    "alaw": (1, alaw_encode),
}
ENCODINGS = tuple(_ENCODERS)
_TELEPHONE_RATE = 8000  # G.711's own rate: mulaw and alaw default to it


class AudioFormat:
    """The format every chunk of a speech is delivered in.

    Args:
        sample_rate: samples per second of the delivered audio (8000 to 192000), or None
            for the speech's own rate (8000 for ``"mulaw"`` and ``"alaw"``).
        encoding: ``"pcm16"`` (16-bit little-endian PCM), ``"mulaw"`` or ``"alaw"``
            (G.711, one byte per sample).
        frame_ms: cut the audio into frames of exactly this many milliseconds (a whole
            number of samples at the rate; e.g. 20 for telephone media streams), or None
            to deliver audio as it comes.

    Raises:
        InvalidParameterError: a value out of range; the message says which values work.

    Example: ``AudioFormat(encoding="mulaw", frame_ms=20)`` gives 160-byte frames of 8 kHz μ-law.
    """

    __slots__ = ("sample_rate", "encoding", "frame_ms")

    def __init__(self, sample_rate: Optional[int] = None, encoding: str = "pcm16",
                 frame_ms: Optional[float] = None) -> None:
        if not isinstance(encoding, str) or encoding.lower() not in _ENCODERS:
            raise InvalidParameterError(
                f"encoding must be one of {', '.join(repr(e) for e in ENCODINGS)}, got {encoding!r}",
                parameter="encoding")
        encoding = encoding.lower()
        if sample_rate is None and encoding != "pcm16":
            sample_rate = _TELEPHONE_RATE
        if sample_rate is not None and (not is_int(sample_rate) or not MIN_RATE <= sample_rate <= MAX_RATE):
            raise InvalidParameterError(
                f"sample_rate must be a whole number of Hz from {MIN_RATE} to {MAX_RATE} (e.g. 8000, 16000, "
                f"24000, 48000), or None for the speech's own rate; got {sample_rate!r}", parameter="sample_rate")
        if frame_ms is not None:
            if not is_number(frame_ms) or frame_ms <= 0:
                raise InvalidParameterError(
                    f"frame_ms must be a positive number of milliseconds (e.g. 20), or None; got {frame_ms!r}",
                    parameter="frame_ms")
            if sample_rate is not None:
                _frame_samples(frame_ms, sample_rate)
        self.sample_rate: Optional[int] = sample_rate
        self.encoding: str = encoding
        self.frame_ms: Optional[float] = frame_ms

    @property
    def bytes_per_sample(self) -> int:
        """Bytes per sample of the encoded audio: 2 for ``"pcm16"``, 1 for G.711."""
        return _ENCODERS[self.encoding][0]

    def rate(self, source_rate: int) -> int:
        """The delivered rate for a speech at ``source_rate``: ``sample_rate``, or the speech's own."""
        return source_rate if self.sample_rate is None else self.sample_rate

    def frame_bytes(self, source_rate: Optional[int] = None) -> Optional[int]:
        """Bytes of one encoded frame, or None without ``frame_ms``.

        Args:
            source_rate: the speech's rate, needed when ``sample_rate`` is None.

        Raises:
            InvalidParameterError: ``frame_ms`` is not a whole number of samples at the rate.
            ValueError: the rate is not known (``sample_rate`` and ``source_rate`` both None).
        """
        if self.frame_ms is None:
            return None
        rate = self.sample_rate if self.sample_rate is not None else source_rate
        if rate is None:
            raise ValueError("the frame size depends on the speech's rate: pass source_rate")
        return _frame_samples(self.frame_ms, rate) * self.bytes_per_sample

    def converter(self, source_rate: int) -> "Converter":
        """A new ``Converter`` from 16-bit PCM at ``source_rate`` to this format.

        Raises:
            InvalidParameterError: ``frame_ms`` is not a whole number of samples at the rate.
            TTSError: the rate must change and soxr is not installed.
        """
        return Converter(self, source_rate)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AudioFormat):
            return NotImplemented
        return (self.sample_rate, self.encoding, self.frame_ms) == (other.sample_rate, other.encoding,
                                                                   other.frame_ms)

    def __hash__(self) -> int:
        return hash((self.sample_rate, self.encoding, self.frame_ms))

    def __repr__(self) -> str:
        return f"AudioFormat(sample_rate={self.sample_rate!r}, encoding={self.encoding!r}, frame_ms={self.frame_ms!r})"


def _frame_samples(frame_ms: float, rate: int) -> int:
    samples = frame_ms * rate / 1000
    whole = round(samples)
    if whole < 1 or not math.isclose(samples, whole, rel_tol=0, abs_tol=1e-6):
        raise InvalidParameterError(
            f"frame_ms={frame_ms!r} is {samples:g} samples at {rate} Hz: a frame must be a whole number of "
            f"samples (at {rate} Hz, a multiple of {1000 / math.gcd(rate, 1000):g} ms, e.g. "
            f"{20 if rate % 50 == 0 else 1000 // math.gcd(rate, 1000)} ms)", parameter="frame_ms")
    return whole


class Converter:
    """Turns one stream of 16-bit PCM at ``source_rate`` into an ``AudioFormat``, piece by piece.

    Each piece is ``(pcm, encoded)``: ``pcm`` the 16-bit PCM at the format's rate and
    ``encoded`` the same samples in the format's encoding (the same bytes for
    ``"pcm16"``). With ``frame_ms`` every piece is exactly one frame, but for the last one
    ``flush()`` returns. The input may be cut anywhere (even inside a sample): the output
    is the same.

    Thread: one thread at a time.
    """

    def __init__(self, audio_format: AudioFormat, source_rate: int) -> None:
        self.format = audio_format
        self.rate = audio_format.rate(source_rate)
        frame_bytes = audio_format.frame_bytes(source_rate)
        self._resampler = StreamResampler(source_rate, self.rate)
        self._encode = _ENCODERS[audio_format.encoding][1]
        # Frames are cut in PCM (2 bytes a sample), then encoded frame by frame.
        self._framer = None if frame_bytes is None else Framer(
            frame_bytes // audio_format.bytes_per_sample * SAMPLE_WIDTH)

    def push(self, pcm: bytes) -> List[Tuple[bytes, bytes]]:
        """Add PCM at the source rate; return the pieces it completes (maybe none)."""
        return self._pieces(self._resampler.push(pcm), last=False)

    def flush(self) -> List[Tuple[bytes, bytes]]:
        """Return the rest at the stream's end (the filter's tail, a last short frame)."""
        return self._pieces(self._resampler.flush(), last=True)

    def _pieces(self, pcm: bytes, last: bool) -> List[Tuple[bytes, bytes]]:
        if self._framer is None:
            frames = [pcm] if pcm else []
        else:
            frames = self._framer.push(pcm)
            rest = self._framer.flush() if last else None
            if rest:
                frames.append(rest)
        return [(frame, self._encoded(frame)) for frame in frames]

    def _encoded(self, pcm: bytes) -> bytes:
        return pcm if self._encode is None else self._encode(pcm_to_array(pcm))
