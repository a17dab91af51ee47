"""The ``tone`` engine: a deterministic stand-in voice, one faded tone per character.

Its word times are exact by construction: a word (``wordtimes.word_spans``) sounds from
the first sample of its first character's tone to the last of its last's, since the
punctuation stripped around a word is what is silent, so tests check the server's
``ttsstream.words`` messages against them to the sample.

This module owns ``ToneEngine`` and ``tone_pcm`` (the audio tests expect). It imports
only ``engine`` and ``wordtimes`` from the package, numpy and the standard library.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Iterator, List, Optional, Tuple

import numpy as np

from .engine import Engine, SpokenWord, TimedPieces, check_speed_and_rate
from .wordtimes import word_spans

__all__ = ["ToneEngine", "tone_pcm"]

# One character lasts 50 ms at speed 1.0: long enough to hear, short enough for tests.
CHAR_SECONDS = 0.05
FADE_SECONDS = 0.005
AMPLITUDE = 0.3  # of full scale: well clear of clipping
BASE_HZ = 220.0

# A word and the spaces after it, or a run of leading spaces: the pieces we yield.
_PIECE = re.compile(r"\S+\s*|\s+")


def _is_silent(char: str) -> bool:
    # Spaces and punctuation are pauses, as a speaker would make them.
    return char.isspace() or unicodedata.category(char).startswith("P")


@functools.lru_cache(maxsize=1024)
def _char_pcm(char: str, samples: int, sample_rate: int) -> bytes:
    """The PCM for one character: a faded sine, or silence."""
    if _is_silent(char):
        return bytes(2 * samples)
    # Two octaves of semitones, chosen by the code point: same letter, same pitch.
    hz = BASE_HZ * 2.0 ** ((ord(char) % 24) / 12.0)
    t = np.arange(samples, dtype=np.float64) / sample_rate
    wave: np.ndarray = np.sin(2.0 * np.pi * hz * t)
    # Linear fades at both ends so that consecutive tones never click.
    fade = min(max(1, int(round(FADE_SECONDS * sample_rate))), samples // 2)
    if fade:
        ramp = np.arange(fade, dtype=np.float64) / fade
        wave[:fade] *= ramp
        wave[samples - fade:] *= ramp[::-1]
    return np.round(wave * (AMPLITUDE * 32767.0)).astype("<i2").tobytes()


class ToneEngine(Engine):
    """A deterministic stand-in voice: one 50 ms tone per character, silence for spaces.

    The pitch depends on the character, the length on the text and the speed; voice
    and language are accepted and ignored. The same arguments always give the same
    bytes, so tests compare audio exactly (see ``tone_pcm``).
    """

    name = "tone"

    def synthesize(self, text: str, *, voice: Optional[str] = None, language: Optional[str] = None,
                   speed: float = 1.0, sample_rate: int = 24000) -> TimedPieces:
        """Yield the tones word by word (each word with the spaces that follow it), each
        piece with the times of the words it completes.

        Thread: any; pure computation.

        Raises:
            ValueError: at once, for a speed outside 0.05..20 or an implausible rate.
        """
        check_speed_and_rate(speed, sample_rate)
        samples = max(1, int(round(sample_rate * CHAR_SECONDS / speed)))
        return TimedPieces(self._pieces(text, samples, sample_rate))

    @staticmethod
    def _pieces(text: str, samples: int, sample_rate: int) -> Iterator[Tuple[bytes, List[SpokenWord]]]:
        spans = word_spans(text)
        next_span = 0
        for match in _PIECE.finditer(text):
            done = []  # a word lies inside one piece: its token is the piece's
            while next_span < len(spans) and spans[next_span].char_start < match.end():
                span = spans[next_span]
                done.append(SpokenWord(span.char_start, span.char_end, span.char_start * samples,
                                       span.char_end * samples))
                next_span += 1
            yield b"".join(_char_pcm(char, samples, sample_rate) for char in match.group()), done


def tone_pcm(text: str, sample_rate: int = 24000, speed: float = 1.0) -> bytes:
    """Return all of the tone engine's audio for ``text`` at once (int16 LE mono).

    This is exactly what the server streams for ``text`` with the tone engine, so
    tests use it as the expected audio.
    """
    return b"".join(ToneEngine().synthesize(text, speed=speed, sample_rate=sample_rate))
