"""Speech engines for the bundled server: text in, 16-bit PCM pieces out.

An engine turns one utterance into an iterator of PCM pieces (signed 16-bit
little-endian mono) so the server can frame and send audio while the rest is still
being made. Engines may be slow and may block: the server advances their iterators
on worker threads, never on its event loop, and closes an iterator it abandons.

This module owns the engine interface (with the errors an engine raises for a voice or
language it lacks), the ``tone`` engine and the registry. It knows nothing of sockets,
threads or dialects and imports only numpy and the standard library; the ``espeak``
engine (``espeak.py``) is imported only when one is made.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from abc import ABC, abstractmethod
from typing import Callable, Dict, Iterable, Iterator, Optional

import numpy as np

__all__ = ["Engine", "ToneEngine", "UnknownVoice", "UnknownLanguage", "tone_pcm", "ENGINES", "get_engine"]

# One character lasts 50 ms at speed 1.0: long enough to hear, short enough for tests.
CHAR_SECONDS = 0.05
FADE_SECONDS = 0.005
AMPLITUDE = 0.3  # of full scale: well clear of clipping
BASE_HZ = 220.0

# A word and the spaces after it, or a run of leading spaces: the pieces we yield.
_PIECE = re.compile(r"\S+\s*|\s+")


class Engine(ABC):
    """What the server needs from a speech engine.

    Implementations must be safe to call from several worker threads at once (one
    utterance per call); each returned iterator is advanced by one thread at a time.
    """

    name = ""

    @abstractmethod
    def synthesize(self, text: str, *, voice: Optional[str] = None, language: Optional[str] = None,
                   speed: float = 1.0, sample_rate: int = 24000) -> Iterator[bytes]:
        """Return an iterator of PCM pieces (int16 LE mono) that together speak ``text``.

        Pieces may be of any length, including odd ones; the server re-frames them.
        If the iterator is a generator, the server closes it when it stops early.

        Thread: a server worker thread, never the event loop; may block.

        Raises:
            UnknownVoice, UnknownLanguage: for a voice or language the engine does not
                have; raised by this call itself, before any audio, so the server can
                answer with a clear error instead of silence.
            ValueError: for a speed or sample rate the engine cannot produce.
        """
        ...


class UnknownVoice(ValueError):
    """An engine has no voice by the name asked for.

    Attributes:
        voice: the name asked for.
        known: the names the engine does have.
    """

    def __init__(self, voice: str, known: Iterable[str]) -> None:
        self.voice = voice
        self.known = tuple(known)
        super().__init__(f"unknown voice {voice!r}: choose one of {', '.join(self.known)}")


class UnknownLanguage(ValueError):
    """An engine cannot speak the language asked for.

    Attributes:
        language: the language asked for.
        known: examples of what the engine accepts (names or codes).
    """

    def __init__(self, language: str, known: Iterable[str], hint: str = "") -> None:
        self.language = language
        self.known = tuple(known)
        super().__init__(f"unknown language {language!r}: choose one of {', '.join(self.known)}{hint}")


def check_speed_and_rate(speed: float, sample_rate: int) -> None:
    """Raise ValueError unless ``speed`` is 0.05..20 and ``sample_rate`` an int of 1000..384000 Hz."""
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.05 <= speed <= 20.0:
        raise ValueError(f"speed must be a number from 0.05 to 20, got {speed!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 384_000:
        raise ValueError(f"sample_rate must be an int from 1000 to 384000 Hz, got {sample_rate!r}")


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
    wave = np.sin(2.0 * np.pi * hz * t)
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
                   speed: float = 1.0, sample_rate: int = 24000) -> Iterator[bytes]:
        """Yield the tones word by word (each word with the spaces that follow it).

        Thread: any; pure computation.

        Raises:
            ValueError: at once, for a speed outside 0.05..20 or an implausible rate.
        """
        check_speed_and_rate(speed, sample_rate)
        samples = max(1, int(round(sample_rate * CHAR_SECONDS / speed)))
        return self._pieces(text, samples, sample_rate)

    @staticmethod
    def _pieces(text: str, samples: int, sample_rate: int) -> Iterator[bytes]:
        for match in _PIECE.finditer(text):
            yield b"".join(_char_pcm(char, samples, sample_rate) for char in match.group())


def tone_pcm(text: str, sample_rate: int = 24000, speed: float = 1.0) -> bytes:
    """Return all of the tone engine's audio for ``text`` at once (int16 LE mono).

    This is exactly what the server streams for ``text`` with the tone engine, so
    tests use it as the expected audio.
    """
    return b"".join(ToneEngine().synthesize(text, speed=speed, sample_rate=sample_rate))


def _espeak() -> Engine:
    # Imported here so that importing the registry never loads eSpeak NG or its wheel.
    from .espeak import EspeakEngine

    return EspeakEngine()


# Engine factories by name: a class, or a function that imports its engine on first use.
ENGINES: Dict[str, Callable[[], Engine]] = {"tone": ToneEngine, "espeak": _espeak}


def get_engine(name: str) -> Engine:
    """Return a new engine by name.

    Raises:
        ValueError: for an unknown name; the message lists the choices.
        ImportError: the engine's optional dependencies are missing (the message says
            what to install).
        RuntimeError: the engine's library failed to start.
    """
    try:
        factory = ENGINES[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name
        raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(sorted(ENGINES))}") from None
    return factory()
