"""Word times estimated from the text and the pauses in the audio: ``estimate``, and
``naive_times``, the baseline it is measured against.

``estimate`` weighs each word by its spoken length (``weight``: vowel groups and
consonants in alphabetic scripts, aksharas in Indic scripts, characters otherwise, digits
about one and a half syllables each; a word before punctuation or at the end is drawn
out, as speakers do), finds the pauses in the audio (10 ms frames 30 dB or more below the
speech's level, at least 60 ms of them), and decides with a small dynamic
programme which pauses are word boundaries: a long pause and a boundary after
punctuation (``, . ! ? ; : ।`` ...) draw each other, a boundary far from where the
weights put it does not. Those boundaries are pinned to their pauses, and the words
between two pinned boundaries are spread by weight over the speech between them
(pauses left unpinned count as no time). The first word starts where the speech starts,
the last ends where it ends.

Imports: numpy and the standard library only (typing, unicodedata), ``ttsstream.errors``
and ``.tokens``.
"""

from __future__ import annotations

import unicodedata
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidParameterError
from .tokens import Token

__all__ = ["estimate", "naive_times", "weight", "pauses"]

Times = List[Tuple[float, float]]

_FRAME = 0.010            # seconds per energy frame
_MIN_PAUSE = 0.060        # the shortest silence counted as a pause
_BELOW_SPEECH_DB = 30.0   # a silent frame is this far below the speech's level (its 95th percentile)
_FLOOR_DB = -75.0         # ... or below this (dB of full scale) whatever the level
_BREAKS = frozenset(",.!?;:।॥۔،؟؛…。，、！？；：")

# The dynamic programme's score for pinning a boundary to a pause (each in "syllables of
# confidence"): a base, a bonus per second of pause (up to _PAUSE_CAP), a bonus when
# punctuation marks the boundary, and a cost per unit of distance between where the pause
# lies and where the weights put the boundary (both as fractions of the speech).
_BASE, _PER_SECOND, _PAUSE_CAP, _MARKED, _PER_DISTANCE = -0.3, 1.5, 0.5, 0.6, 3.0

_DIGRAPHS = frozenset(["th", "sh", "ch", "ph", "ck", "ng", "wh", "gh", "qu"])
_VOWELS = frozenset("aeiouyæøœåаеёиоуыэюяієїαεηιουωάέήίόύώ")


_PER_CONSONANT = 0.3  # consonants lengthen a syllable: "strengths" is longer than "a"
_PER_WORD = 0.3       # and every word has some length of its own
_FINAL = 1.0          # a word before a pause a writer marks is longer by this


def _syllables(run: str) -> float:
    """Vowel groups in a run of alphabetic letters (at least one), and its consonants."""
    groups, previous, consonants = 0, False, 0
    for i, char in enumerate(run):
        vowel = char in _VOWELS
        groups += vowel and not previous
        # A doubled letter or a digraph ("th", "ck") is one sound.
        consonants += not vowel and not (i and (run[i - 1] == char or run[i - 1:i + 1] in _DIGRAPHS))
        previous = vowel
    if groups > 1 and run.endswith("e") and not run.endswith("le"):
        groups -= 1  # a silent final e: "time", "make"
    return max(groups, 1) + _PER_CONSONANT * consonants


def weight(text: str) -> float:
    """A word's spoken length in rough syllables (always > 0).

    Latin, Greek and Cyrillic letters count by vowel groups, plus 0.3 per consonant
    sound; Indic scripts by aksharas (letters not silenced by a virama; a final bare
    consonant a half); Arabic-script letters a half each (short vowels
    go unwritten); Han, kana and Hangul one per character; other letters 0.4 each; a digit
    1.5 (``"1,250"`` is about six syllables); anything else nothing; and 0.3 per word.
    The constants were fitted on eSpeak NG speech (English and Hindi, 130 to 200 words
    a minute).
    """
    total = 0.0
    run = ""
    chars = unicodedata.normalize("NFD", text.lower())
    for index, char in enumerate(chars):
        category = unicodedata.category(char)
        if category[0] == "M":
            if "VIRAMA" in unicodedata.name(char, "") or "HALANT" in unicodedata.name(char, ""):
                total -= 1.0  # the consonant before it joins the next akshara
            continue
        code = ord(char)
        if category[0] == "L" and code < 0x0530:  # Latin, Greek, Cyrillic
            run += char
            continue
        if run:
            total += _syllables(run)
            run = ""
        if category[0] == "N":
            total += 1.5
        elif category[0] == "L":
            if 0x0900 <= code <= 0x0DFF:
                # A final consonant with no vowel sign loses its inherent vowel ("भारत" is bhā-rat).
                final = index == len(chars) - 1 and 0x0915 <= code <= 0x0939
                total += 0.5 if final else 1.0
            elif 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F:
                total += 0.5
            elif 0x1100 <= code <= 0x11FF or 0x3040 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF:
                total += 1.0
            else:
                total += 0.4
    if run:
        total += _syllables(run)
    return max(total, 0.5) + _PER_WORD


def naive_times(tokens: Sequence[Token], duration: float) -> Times:
    """The baseline: words spread by character count over ``[0, duration]``, back to back."""
    if not tokens:
        return []
    sizes = np.array([max(len(token.text), 1) for token in tokens], dtype=np.float64)
    edges = np.concatenate(([0.0], np.cumsum(sizes))) / sizes.sum() * max(duration, 0.0)
    return [(float(edges[i]), float(edges[i + 1])) for i in range(len(tokens))]


def pauses(samples: "np.ndarray", sample_rate: int) -> Tuple[float, float, "np.ndarray"]:
    """Where the speech in ``samples`` (int16) starts and ends, and its pauses.

    Returns:
        ``(start, end, spans)``: seconds; ``spans`` is an ``(n, 2)`` array of the silent
        stretches of at least 60 ms strictly inside ``(start, end)``. ``start == end``
        when there is no speech at all.
    """
    hop = max(int(round(sample_rate * _FRAME)), 1)
    count = len(samples) // hop
    none = np.zeros((0, 2))
    if count == 0:
        return 0.0, 0.0, none
    frames = samples[:count * hop].astype(np.float64).reshape(count, hop) / 32768.0
    level = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    threshold = max(float(np.percentile(level, 95)) - _BELOW_SPEECH_DB, _FLOOR_DB)
    voiced = level > threshold
    if not voiced.any():
        return 0.0, 0.0, none
    first = int(np.argmax(voiced))
    last = count - int(np.argmax(voiced[::-1]))  # one past the last voiced frame
    edges = np.diff(np.concatenate(([1], voiced[first:last].astype(np.int8), [1])))
    starts = np.flatnonzero(edges == -1) + first
    ends = np.flatnonzero(edges == 1) + first
    keep = (ends - starts) * _FRAME >= _MIN_PAUSE - 1e-9
    spans = np.stack([starts[keep], ends[keep]], axis=1).astype(np.float64) * (hop / sample_rate)
    return first * hop / sample_rate, min(last * hop / sample_rate, len(samples) / sample_rate), spans


def _pin(fractions: "np.ndarray", marked: "np.ndarray", at: "np.ndarray", lengths: "np.ndarray") -> List[Tuple[int, int]]:
    """Which pause each boundary is pinned to: ``(boundary, pause)`` pairs, both increasing.

    ``fractions[b]`` is where the weights put boundary ``b`` (after word ``b``), ``at[j]``
    where pause ``j`` lies, both as fractions of the speech; the best-scoring monotone
    matching, by a dynamic programme over (pause, boundary), vectorised per pause.
    """
    n, m = len(fractions), len(at)
    if n == 0 or m == 0:
        return []
    score = (_BASE + _PER_SECOND * np.minimum(lengths, _PAUSE_CAP))[:, None] + _MARKED * marked[None, :] \
        - _PER_DISTANCE * np.abs(at[:, None] - fractions[None, :])
    best = np.zeros((m + 1, n + 1))  # best[j, b]: pauses < j matched to boundaries < b
    for j in range(m):
        take = np.concatenate(([-np.inf], best[j, :-1] + score[j]))
        best[j + 1] = np.maximum.accumulate(np.maximum(best[j], take))
    pairs: List[Tuple[int, int]] = []
    j, b = m, n
    while j > 0 and b > 0:
        if best[j, b] == best[j - 1, b]:
            j -= 1
        elif best[j, b] == best[j, b - 1]:
            b -= 1
        else:
            pairs.append((b - 1, j - 1))
            j, b = j - 1, b - 1
    return pairs[::-1]


def estimate(tokens: Sequence[Token], pcm: bytes, sample_rate: int, *, text: Optional[str] = None) -> Times:
    """Each word's ``(start, end)``, seconds from the first sample of ``pcm``.

    Args:
        tokens: the words, in order (from ``tokenize``).
        pcm: their audio, 16-bit signed little-endian mono.
        sample_rate: of ``pcm``.
        text: the text the tokens' offsets point into; the punctuation between two words
            marks a boundary likely to fall in a pause. Without it every boundary is alike.

    Returns:
        One pair per token: starts strictly increasing (when the speech lasts longer than
        a microsecond per word), ``start <= end <= next start``, all within the audio.
        Without any sound in ``pcm``, the words are spread over it as ``naive_times`` does.

    Raises:
        InvalidParameterError: ``sample_rate`` is not a positive integer.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise InvalidParameterError(f"sample_rate must be a positive whole number of Hz, not {sample_rate!r}",
                                    parameter="sample_rate")
    if not tokens:
        return []
    samples = np.frombuffer(pcm[:len(pcm) // 2 * 2], dtype="<i2")  # an odd last byte is no sample
    duration = len(samples) / sample_rate
    begin, finish, spans = pauses(samples, sample_rate)
    if finish <= begin:
        return naive_times(tokens, duration)
    # The speech stretches between the pauses, and the speech time before each.
    stretch_starts = np.concatenate(([begin], spans[:, 1]))
    stretch_ends = np.concatenate((spans[:, 0], [finish]))
    before = np.concatenate(([0.0], np.cumsum(stretch_ends - stretch_starts)))
    total = float(before[-1])
    weights = np.array([weight(token.text) for token in tokens])
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    fractions = cumulative / cumulative[-1]
    marked = np.zeros(len(tokens) - 1)
    if text is not None:
        for b in range(len(tokens) - 1):
            between = text[tokens[b].char_end:tokens[b + 1].char_start]
            marked[b] = any(char in _BREAKS for char in between)
    # A word before punctuation or at the end is drawn out (phrase-final lengthening).
    weights[:-1] += _FINAL * marked
    weights[-1] += _FINAL
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    fractions = cumulative / cumulative[-1]
    lengths = spans[:, 1] - spans[:, 0]
    pins = _pin(fractions[1:-1], marked, before[1:-1] / total, lengths)
    # Pinned boundaries sit at their pause's speech time; the others between, by weight.
    knot_fractions = np.array([0.0] + [fractions[b + 1] for b, _ in pins] + [1.0])
    knot_times = np.array([0.0] + [before[j + 1] for _, j in pins] + [total])
    position = np.interp(fractions, knot_fractions, knot_times)
    # Speech time to audio time: a start at a pause goes after it, an end before it.
    index = np.clip(np.searchsorted(before[:-1], position[:-1], side="right") - 1, 0, len(stretch_starts) - 1)
    starts = stretch_starts[index] + (position[:-1] - before[index])
    index = np.clip(np.searchsorted(before[1:], position[1:], side="left"), 0, len(stretch_starts) - 1)
    ends = stretch_starts[index] + (position[1:] - before[index])
    starts = np.clip(starts, 0.0, duration)
    ends = np.clip(np.maximum(ends, starts), 0.0, duration)
    ends[:-1] = np.minimum(ends[:-1], starts[1:])
    return [(float(s), float(e)) for s, e in zip(starts, ends)]
