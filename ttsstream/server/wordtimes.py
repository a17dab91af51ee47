"""Word times inside the bundled server: which spans of a text are words, and when an
engine's marks and its audio say each was spoken.

A word is a whitespace-separated token that holds a letter or a digit, without the
punctuation around it (``"(Hello,"`` is the word ``Hello``; ``"1,250"`` and
``"o'clock"`` are one word each; a lone ``"—"`` is none): the rule of the client's
``ttsstream.words``, which the server does not import. Text written without spaces
(Chinese, Japanese) is one word per token here.

eSpeak NG marks where it begins to speak each of *its* words (a number may be four of
them, ``"o'clock"`` one, ``"😀"`` two that point at a space), so ``time_words`` takes
the earliest mark inside each token; a token it never marked shares the time up to the
next marked one with the word before it, by characters. Each word's start then moves
past any quiet at its mark, and its end is the last sound before the next word's
start: a word's time is its sound, and the pauses between words belong to none.
Sound is measured in windows of 5 ms: a window is quiet below 5 % of the stretch's
loudest (-26 dB), which leaves out the breath some eSpeak voices keep up through a
pause (about 2 % of their loudest) and keeps a word's closing fricative (10 % and up).

This module owns those rules. It imports ``engine`` (``SpokenWord``) from the package,
numpy and the standard library: no sockets, no eSpeak.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .engine import SpokenWord

__all__ = ["Span", "word_spans", "time_words", "WINDOW_SECONDS", "LOUD_FRACTION"]

WINDOW_SECONDS = 0.005
LOUD_FRACTION = 0.05  # of the loudest window's RMS: quieter windows are no word's sound
_SILENT = 8.0         # an RMS this low is silence whatever the stretch (int16 full scale is 32767)

_TOKEN = re.compile(r"\S+")


class Span(NamedTuple):
    """A word of a text: the word itself, and the whitespace token it lies in."""

    char_start: int
    char_end: int
    token_start: int  # an engine's mark may point at the token's punctuation
    token_end: int


def word_spans(text: str) -> List[Span]:
    """The words of ``text``, in order."""
    spans = []
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        while start < end and unicodedata.category(text[start])[0] == "P":
            start += 1
        while end > start and unicodedata.category(text[end - 1])[0] == "P":
            end -= 1
        if any(unicodedata.category(char)[0] in "LN" for char in text[start:end]):
            spans.append(Span(start, end, match.start(), match.end()))
    return spans


def time_words(spans: Sequence[Span], marks: Sequence[Tuple[int, int]], pcm: "np.ndarray",
               sample_rate: int) -> List[SpokenWord]:
    """Time the words of one stretch of audio (a clause) from an engine's marks.

    Args:
        spans: the words spoken in ``pcm``, in order.
        marks: ``(character offset, sample)`` pairs: where the engine began a word of its
            own, in the same text and in ``pcm``.
        pcm: the stretch's samples (int16).
        sample_rate: ``pcm``'s rate.

    Returns:
        One ``SpokenWord`` per span, its samples counted from ``pcm``'s first, in order
        and not overlapping.
    """
    if not spans:
        return []
    total = len(pcm)
    starts = _marked_starts(spans, marks, total)
    _share_unmarked(spans, starts, total)
    window = max(1, int(round(sample_rate * WINDOW_SECONDS)))
    loud = _loud_windows(pcm, window)
    words = []
    for index, span in enumerate(spans):
        start = starts[index]
        limit = starts[index + 1] if index + 1 < len(spans) else total
        assert start is not None and limit is not None  # _share_unmarked filled them all
        start, end = _sound(loud, window, start, limit)
        words.append(SpokenWord(span.char_start, span.char_end, start, end))
    return words


def _loud_windows(pcm: "np.ndarray", window: int) -> "np.ndarray":
    """The indices of the windows of ``pcm`` that hold sound, in order."""
    count = -(-len(pcm) // window)
    padded = np.zeros(count * window)
    padded[:len(pcm)] = pcm
    rms = np.sqrt((padded.reshape(count, window) ** 2).mean(axis=1))
    threshold = max(_SILENT, LOUD_FRACTION * float(rms.max())) if count else _SILENT
    return np.flatnonzero(rms > threshold)


def _marked_starts(spans: Sequence[Span], marks: Sequence[Tuple[int, int]], total: int) -> List[Optional[int]]:
    """Each span's earliest mark (never before an earlier span's), or None where it has none."""
    earliest: Dict[int, int] = {}
    for position, sample in marks:
        index = _span_at(spans, position)
        if index is not None:
            earliest[index] = min(sample, earliest.get(index, sample))
    starts: List[Optional[int]] = []
    floor = 0
    for index in range(len(spans)):
        if index in earliest:
            floor = min(max(earliest[index], floor), total)  # marks can run backwards at high speeds
            starts.append(floor)
        else:
            starts.append(None)
    if starts[0] is None:
        starts[0] = 0  # words before the first mark begin with the stretch
    return starts


def _span_at(spans: Sequence[Span], position: int) -> Optional[int]:
    low, high = 0, len(spans)
    while low < high:  # spans are in order and disjoint: a binary search
        middle = (low + high) // 2
        span = spans[middle]
        if position < span.token_start:
            high = middle
        elif position >= span.token_end:
            low = middle + 1
        else:
            return middle
    return None


def _share_unmarked(spans: Sequence[Span], starts: List[Optional[int]], total: int) -> None:
    """Give each unmarked span a start: the time from the marked word before it to the
    next marked one is shared among them by characters."""
    index = 0
    while index < len(spans):
        end = index + 1
        while end < len(spans) and starts[end] is None:
            end += 1
        if end > index + 1:
            begin = starts[index]
            assert begin is not None
            stop = starts[end] if end < len(spans) else total
            assert stop is not None
            lengths = [span.char_end - span.char_start for span in spans[index:end]]
            done = 0
            for offset in range(1, end - index):
                done += lengths[offset - 1]
                starts[index + offset] = begin + (stop - begin) * done // sum(lengths)
        index = end


def _sound(loud: "np.ndarray", window: int, start: int, limit: int) -> Tuple[int, int]:
    """Where the sound in ``[start, limit)`` begins and ends: ``start`` itself when its
    window is loud, else the first loud window after it; the end of the last loud window
    (never past ``limit``). A word with no sound keeps ``start`` and lasts nothing."""
    first = int(np.searchsorted(loud, start // window))
    last = int(np.searchsorted(loud, -(-limit // window))) - 1  # windows that begin before limit
    if first > last:
        return start, start
    begin = start if int(loud[first]) == start // window else int(loud[first]) * window
    return begin, max(begin, min(limit, (int(loud[last]) + 1) * window))
