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

__all__ = ["RATE", "HOP", "resample", "mfcc", "loudness", "voiced", "warp", "dtw_path"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RATE = 16000          # features are computed at this rate
HOP = 160             # 10 ms between frames
_WINDOW = 400         # 25 ms per frame
_FFT = 512
_MELS = 40
_CEPSTRA = 13         # c0 (loudness) is dropped from the distance: voices differ in level
_LOW_HZ, _HIGH_HZ = 60.0, 7600.0
_CHUNK = 1000         # frames transformed at a time


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
    frames = _frames(samples)
    pieces = []
    for first in range(0, frames.shape[0], _CHUNK):  # in pieces: a long unit's spectra would fill memory
        power = np.abs(np.fft.rfft(frames[first:first + _CHUNK] * window, _FFT)) ** 2
        pieces.append(np.log(power @ bank.T + 1e-8) @ dct[1:].T)
    cepstra = np.concatenate(pieces)
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


def warp(reference: FloatArray, received: FloatArray, band_fraction: float = 0.25,
         min_band: int = 150) -> IntArray:
    """For each frame of ``reference``, the first frame of ``received`` it is matched to.

    Up to ``_COARSE_LIMIT`` frames (a minute), one DTW in a Sakoe-Chiba band of
    ``band_fraction`` of the longer signal (at least ``min_band`` frames) either side of
    the diagonal. Longer signals are warped twice (multiscale): first averaged over a
    few frames, then at full resolution only near the coarse path, so that time and
    memory grow with the length instead of with its square.
    """
    rows, cols = reference.shape[0], received.shape[0]
    factor = max(1, -(-max(rows, cols) // _COARSE_LIMIT))
    if factor == 1:
        band = max(min_band, int(band_fraction * max(rows, cols)))
        return dtw_path(reference, received, *_diagonal_band(rows, cols, band))
    coarse_ref, coarse_received = _pool(reference, factor), _pool(received, factor)
    band = max(min_band // factor, int(band_fraction * max(rows, cols) / factor))
    coarse = dtw_path(coarse_ref, coarse_received, *_diagonal_band(len(coarse_ref), len(coarse_received), band))
    # Fine row i may use the columns its coarse row's path cells cover, and a margin.
    after = np.concatenate([coarse[1:], [len(coarse_received) - 1]])
    rows_coarse = np.arange(rows) // factor
    low = coarse[rows_coarse] * factor - _FINE_MARGIN
    high = (after[rows_coarse] + 1) * factor + _FINE_MARGIN
    return dtw_path(reference, received, low, high)


_COARSE_LIMIT = 6000  # frames
_FINE_MARGIN = 20     # frames either side of the coarse path, beyond its own resolution


def _pool(features: FloatArray, factor: int) -> FloatArray:
    """Means of ``factor`` consecutive rows (the last group may be shorter)."""
    count = -(-features.shape[0] // factor)
    padded = np.concatenate([features, np.repeat(features[-1:], count * factor - features.shape[0], axis=0)])
    return np.asarray(padded.reshape(count, factor, -1).mean(axis=1), dtype=np.float64)


def _diagonal_band(rows: int, cols: int, band: int) -> Tuple[IntArray, IntArray]:
    """Each row's first and last-plus-one column within ``band`` of the diagonal."""
    slope = (cols - 1) / max(rows - 1, 1)
    centre = np.arange(rows) * slope
    width = max(band, int(np.ceil(slope)) + 1)
    return np.floor(centre - width).astype(np.int64), np.ceil(centre + width).astype(np.int64) + 1


def dtw_path(reference: FloatArray, received: FloatArray, low: IntArray, high: IntArray) -> IntArray:
    """For each frame of ``reference``, the first frame of ``received`` it is matched to.

    Symmetric DTW (steps right, down, diagonal) with the Euclidean distance between
    feature rows, row ``i`` limited to the columns ``low[i]`` to ``high[i]`` (widened
    where needed so that the corners are in and each row is reachable from the last).
    """
    rows, cols = reference.shape[0], received.shape[0]
    low = np.clip(low, 0, cols - 1)
    high = np.maximum.accumulate(np.clip(high, 1, cols))
    low[0], high[-1] = 0, cols  # the path starts and ends at the corners
    low = np.minimum(low, np.concatenate([[0], high[:-1] - 1]))  # each row reachable from the one before
    starts = np.concatenate([[0], np.cumsum(high - low)])
    inf = np.inf
    # cost[starts[i] + k] is the accumulated cost of cell (i, low[i] + k): rows of the band, end to end.
    cost = np.empty(int(starts[-1]), dtype=np.float32)
    received_sq = np.einsum("ij,ij->i", received, received)
    previous, previous_low = np.zeros(0), 0
    for i in range(rows):
        lo, hi = int(low[i]), int(high[i])
        local = received_sq[lo:hi] - 2.0 * (received[lo:hi] @ reference[i]) + float(reference[i] @ reference[i])
        local = np.sqrt(np.maximum(local, 0.0))
        # The previous row at columns lo-1 .. hi-1: diagonally above is [:-1], above is [1:].
        above = np.full(hi - lo + 1, inf)
        if i == 0:
            above[0] = 0.0
        else:
            first, last = max(lo - 1, previous_low), min(hi, previous_low + previous.size)
            if first < last:
                above[first - lo + 1:last - lo + 1] = previous[first - previous_low:last - previous_low]
        entry = np.minimum(above[1:], above[:-1])
        # Row recursion D[j] = c[j] + min(entry[j], D[j-1]), solved with a running minimum.
        running = np.cumsum(local)
        shifted = np.concatenate(([0.0], running[:-1]))
        row = running + np.minimum.accumulate(entry - shifted)
        cost[starts[i]:starts[i + 1]] = row
        previous, previous_low = row, lo
    return _backtrack(cost, starts, low, high, cols)


def _backtrack(cost: "npt.NDArray[np.float32]", starts: IntArray, low: IntArray, high: IntArray, cols: int) -> IntArray:
    """Walk the cheapest path back from the last cell; keep each row's first column."""
    rows = low.size
    first = np.zeros(rows, dtype=np.int64)
    i, j = rows - 1, cols - 1

    def at(r: int, c: int) -> float:
        if r < 0 or c < int(low[r]) or c >= int(high[r]):
            return float("inf")
        return float(cost[int(starts[r]) + c - int(low[r])])

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
