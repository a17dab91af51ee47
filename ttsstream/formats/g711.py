"""G.711 μ-law and A-law: the telephone encodings of 8-bit codes for 16-bit samples.

This module owns the two companding laws as lookup tables, built once with numpy from
the algorithm of the ITU-T G.711 reference code (the one Python's ``audioop`` used,
before Python 3.13 removed it): every 16-bit sample's code (65,536 entries) and every
code's sample (256 entries). Encoding and decoding are then one numpy indexing each.
``tests/test_g711.py`` checks the tables bit for bit against ``audioop``'s, kept in
``tests/data/g711/``. Imports numpy only.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

__all__ = ["mulaw_encode", "mulaw_decode", "alaw_encode", "alaw_decode"]

_INT16_LE = np.dtype("<i2")
_MULAW_BIAS = 0x84   # 132: added to the magnitude so that every segment starts at a power of two
_MULAW_CLIP = 32635  # the largest magnitude that stays below 0x7FFF after the bias


def _segment(magnitude: np.ndarray, first_end: int) -> np.ndarray:
    """The segment (0-7, 8 when past the last) of each magnitude: the segments end at
    ``first_end``, then double (G.711's ``seg_end`` tables)."""
    ends = first_end * (2 ** np.arange(8)) + (2 ** np.arange(8)) - 1
    return np.searchsorted(ends, magnitude, side="left")


def _mulaw_encode_table() -> np.ndarray:
    samples = np.arange(-32768, 32768, dtype=np.int64)
    # G.711 works on 14 bits: the 16-bit sample shifted right by 2 (rounding down, as C's >>).
    value = samples >> 2
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), _MULAW_CLIP >> 2) + (_MULAW_BIAS >> 2)
    segment = _segment(magnitude, 0x3F)
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | mantissa)
    # The code is sent inverted: all bits for a positive sample, all but the sign for a negative one.
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)


def _mulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int64) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _MULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _MULAW_BIAS - magnitude, magnitude - _MULAW_BIAS).astype(_INT16_LE)


def _alaw_encode_table() -> np.ndarray:
    samples = np.arange(-32768, 32768, dtype=np.int64)
    value = samples >> 3  # A-law works on 13 bits
    negative = value < 0
    magnitude = np.where(negative, -value - 1, value)
    segment = _segment(magnitude, 0x1F)
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F))
    # The even bits are inverted (0x55), and the sign bit set for a positive sample.
    return (code ^ np.where(negative, 0x55, 0xD5)).astype(np.uint8)


def _alaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int64) ^ 0x55
    mantissa = code & 0x0F
    segment = (code & 0x70) >> 4
    magnitude = np.where(segment > 0, (2 * mantissa + 1 + 32) << (segment + 2), (2 * mantissa + 1) << 3)
    return np.where(code & 0x80, magnitude, -magnitude).astype(_INT16_LE)


class _Table:
    """A table built the first time it is used, then kept (a few microseconds' work once)."""

    def __init__(self, build: Callable[[], np.ndarray]) -> None:
        self._build = build
        self._table: Optional[np.ndarray] = None

    def get(self) -> np.ndarray:
        if self._table is None:
            table = self._build()
            table.setflags(write=False)
            self._table = table  # two threads may both build it: the same table, harmlessly
        return self._table


_MULAW_ENCODE = _Table(_mulaw_encode_table)
_MULAW_DECODE = _Table(_mulaw_decode_table)
_ALAW_ENCODE = _Table(_alaw_encode_table)
_ALAW_DECODE = _Table(_alaw_decode_table)


def _encode(table: _Table, samples: np.ndarray) -> bytes:
    if samples.dtype.kind != "i" or samples.dtype.itemsize != 2:
        raise TypeError(f"G.711 encodes int16 samples, got {samples.dtype}")
    # An int16 seen as uint16 is its index in a table that starts at -32768, shifted by 32768.
    index = samples.astype("<i2", copy=False).view("<u2") ^ 0x8000
    encoded: bytes = table.get()[index].tobytes()
    return encoded


def _decode(table: _Table, data: bytes) -> np.ndarray:
    decoded: np.ndarray = table.get()[np.frombuffer(data, dtype=np.uint8)]
    return decoded


def mulaw_encode(samples: np.ndarray) -> bytes:
    """The μ-law codes (one byte each) of int16 ``samples``.

    Raises:
        TypeError: ``samples`` is not an int16 array.
    """
    return _encode(_MULAW_ENCODE, samples)


def mulaw_decode(data: bytes) -> np.ndarray:
    """The int16 samples (little-endian) of μ-law ``data``, one per byte."""
    return _decode(_MULAW_DECODE, data)


def alaw_encode(samples: np.ndarray) -> bytes:
    """The A-law codes (one byte each) of int16 ``samples``.

    Raises:
        TypeError: ``samples`` is not an int16 array.
    """
    return _encode(_ALAW_ENCODE, samples)


def alaw_decode(data: bytes) -> np.ndarray:
    """The int16 samples (little-endian) of A-law ``data``, one per byte."""
    return _decode(_ALAW_DECODE, data)
