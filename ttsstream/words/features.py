"""Acoustic features and dynamic time warping for the aligner: MFCCs and a banded DTW.

Everything here is numpy on whole arrays: resampling to the feature rate, MFCCs
(frames, Hann window, FFT, mel filterbank, log, DCT, cepstral mean normalisation),
the frames that carry sound, and a Sakoe-Chiba-banded DTW whose rows are computed
with a cumulative minimum instead of a Python loop over cells, so that aligning a
second of speech costs milliseconds.

This module owns those computations only. It imports numpy and the standard library
(and ``soxr`` lazily, when installed, for a better resampler), nothing of the package.
"""

from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import numpy.typing as npt

__all__ = ["RATE", "HOP", "resample", "mfcc", "loudness", "voiced", "dtw_path"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RATE = 16000          # features are computed at this rate
HOP = 160             # 10 ms between frames
_WINDOW = 400         # 25 ms per frame
_FFT = 512
_MELS = 40
_CEPSTRA = 13         # c0 (loudness) is dropped from the distance: voices differ in level
_LOW_HZ, _HIGH_HZ = 60.0, 7600.0


def resample(samples: FloatArray, rate: int) -> FloatArray:
    """``samples`` (float, mono) at ``rate`` resampled to ``RATE``."""
    if rate == RATE or samples.size == 0:
        return samples
    try:
        import soxr
    except ImportError:
        soxr = None
    if soxr is not None:
        return np.asarray(soxr.resample(samples.astype(np.float32), rate, RATE, quality="LQ"), dtype=np.float64)
    # Linear interpolation: aliasing above 8 kHz barely touches the mel bands used here.
    count = int(round(samples.size * RATE / rate))
    positions = np.arange(count, dtype=np.float64) * (rate / RATE)
    return np.interp(positions, np.arange(samples.size, dtype=np.float64), samples)


@functools.lru_cache(maxsize=1)
def _filters() -> Tuple[FloatArray, FloatArray, FloatArray]:
    """The Hann window, the mel filterbank (mels x bins) and the DCT-II matrix."""
    window = np.hanning(_WINDOW).astype(np.float64)

    def mel(hz: FloatArray) -> FloatArray:
        return np.asarray(2595.0 * np.log10(1.0 + hz / 700.0), dtype=np.float64)

    edges_mel = np.linspace(mel(np.array(_LOW_HZ)), mel(np.array(_HIGH_HZ)), _MELS + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(_FFT, 1.0 / RATE)
    bank = np.zeros((_MELS, bins.size))
    for index in range(_MELS):
        low, mid, high = edges[index], edges[index + 1], edges[index + 2]
        rising = (bins - low) / (mid - low)
        falling = (high - bins) / (high - mid)
        bank[index] = np.maximum(0.0, np.minimum(rising, falling))
    k = np.arange(_MELS)
    dct = np.cos(np.pi / _MELS * (k[None, :] + 0.5) * np.arange(_CEPSTRA)[:, None])
    return window, bank, dct


def _frames(samples: FloatArray) -> FloatArray:
    """Overlapping frames (count x _WINDOW), one per HOP, the last padded with zeros."""
    count = max(1, 1 + (samples.size - 1) // HOP)
    padded = np.zeros((count - 1) * HOP + _WINDOW)
    padded[:samples.size] = samples
    strides = (padded.strides[0] * HOP, padded.strides[0])
    return np.lib.stride_tricks.as_strided(padded, shape=(count, _WINDOW), strides=strides)


def mfcc(samples: FloatArray) -> FloatArray:
    """Cepstral-mean-normalised MFCCs c1..c12 of ``samples`` at ``RATE``, one row per HOP."""
    window, bank, dct = _filters()
    frames = _frames(samples) * window
    power = np.abs(np.fft.rfft(frames, _FFT)) ** 2
    energies = np.log(power @ bank.T + 1e-8)
    cepstra = energies @ dct.T
    cepstra = cepstra[:, 1:]
    return np.asarray(cepstra - cepstra.mean(axis=0), dtype=np.float64)


def loudness(samples: FloatArray) -> FloatArray:
    """Each frame's RMS level in dB (full scale 0 dB for float samples in -1..1)."""
    frames = _frames(samples)[:, HOP // 2:HOP // 2 + HOP]  # the frame's middle 10 ms
    rms = np.sqrt(np.mean(frames * frames, axis=1) + 1e-12)
    return np.asarray(20.0 * np.log10(rms), dtype=np.float64)


def voiced(level: FloatArray, floor_db: float = -50.0, below_peak_db: float = 35.0) -> npt.NDArray[np.bool_]:
    """The frames that carry sound: louder than ``floor_db`` and than the loudest frame
    less ``below_peak_db``."""
    if level.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = max(floor_db, float(np.percentile(level, 99)) - below_peak_db)
    return np.asarray(level > threshold, dtype=bool)


def dtw_path(reference: FloatArray, received: FloatArray, band: int) -> IntArray:
    """For each frame of ``reference``, the first frame of ``received`` it is matched to.

    Symmetric DTW (steps right, down, diagonal) constrained to a Sakoe-Chiba band of
    ``band`` frames either side of the straight line between the two ends, with the
    Euclidean distance between feature rows.
    """
    rows, cols = reference.shape[0], received.shape[0]
    slope = (cols - 1) / max(rows - 1, 1)
    centre = np.arange(rows) * slope
    width = max(band, int(np.ceil(slope)) + 1)
    low = np.clip(np.floor(centre - width).astype(np.int64), 0, cols - 1)
    high = np.clip(np.ceil(centre + width).astype(np.int64) + 1, 1, cols)
    span = int((high - low).max())
    inf = np.inf
    # cost[i, k] is the accumulated cost of cell (i, low[i] + k); inf outside the band.
    cost = np.full((rows, span), inf)
    received_sq = np.einsum("ij,ij->i", received, received)
    previous = np.full(cols + 1, inf)  # the previous row's accumulated costs by column (+1 for j=-1)
    for i in range(rows):
        lo, hi = int(low[i]), int(high[i])
        block = received[lo:hi]
        local = received_sq[lo:hi] - 2.0 * (block @ reference[i]) + float(reference[i] @ reference[i])
        local = np.sqrt(np.maximum(local, 0.0))
        if i == 0:
            entry = np.full(hi - lo, inf)
            entry[0] = 0.0 if lo == 0 else inf
        else:
            # From above (i-1, j) or diagonally (i-1, j-1).
            entry = np.minimum(previous[lo + 1:hi + 1], previous[lo:hi])
        # Row recursion D[j] = c[j] + min(entry[j], D[j-1]), solved with a running minimum.
        running = np.cumsum(local)
        shifted = np.concatenate(([0.0], running[:-1]))
        row = running + np.minimum.accumulate(entry - shifted)
        cost[i, :hi - lo] = row
        previous = np.full(cols + 1, inf)
        previous[lo + 1:hi + 1] = row
    return _backtrack(cost, low, high, cols)


def _backtrack(cost: FloatArray, low: IntArray, high: IntArray, cols: int) -> IntArray:
    """Walk the cheapest path back from the last cell; keep each row's first column."""
    rows = cost.shape[0]
    first = np.zeros(rows, dtype=np.int64)
    i, j = rows - 1, cols - 1

    def at(r: int, c: int) -> float:
        if r < 0 or c < int(low[r]) or c >= int(high[r]):
            return float("inf")
        return float(cost[r, c - int(low[r])])

    while i > 0 or j > 0:
        first[i] = j
        diagonal, up, left = at(i - 1, j - 1), at(i - 1, j), at(i, j - 1)
        if diagonal <= up and diagonal <= left:
            i, j = i - 1, j - 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
    first[0] = 0
    return first
