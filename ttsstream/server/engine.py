"""The speech engine interface of the bundled server: text in, 16-bit PCM pieces out.

An engine turns one utterance into an iterator of PCM pieces (signed 16-bit
little-endian mono) so the server can frame and send audio while the rest is still
being made. Engines may be slow and may block: the server advances their iterators
on worker threads, never on its event loop, and closes an iterator it abandons.

An engine that knows when each word is spoken returns a ``TimedPieces`` (still an
iterator of PCM pieces) whose ``words`` grow as its pieces are taken: the server then
tells a client that asked for them (the ``ttsstream.words`` extension message). An
engine that returns a plain iterator simply reports no words.

This module owns that interface (``Engine``, ``TimedPieces``, ``SpokenWord``), the errors
an engine raises for a voice or language it lacks, and the check of speed and sample
rate every engine makes. It
knows nothing of sockets, threads or dialects, imports only ``ttsstream.checks`` and
the standard library, and imports no engine: engines import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ..checks import require_number

__all__ = ["Engine", "SpokenWord", "TimedPieces", "UnknownVoice", "UnknownLanguage", "check_speed_and_rate"]


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


class SpokenWord(NamedTuple):
    """One word of an utterance, where the engine spoke it.

    Attributes:
        char_start: offset of the word's first character in the text given to
            ``synthesize``; ``text[char_start:char_end]`` is the word.
        char_end: offset just past its last character.
        start: the sample where the word's sound begins, counted from the utterance's
            first sample at its ``sample_rate``.
        end: the sample just past its sound (``>= start``; trailing silence excluded).
    """

    char_start: int
    char_end: int
    start: int
    end: int


class TimedPieces(Iterator[bytes]):
    """An engine's PCM pieces that also say which words they spoke.

    Args:
        pieces: ``(pcm, words)`` pairs: each piece of PCM with the words whose sound is
            complete once it (and the pieces before it) have been played.

    Attributes:
        words: every word reported so far, in order; it grows as pieces are taken, so
            after the last piece it holds all of the utterance's words.

    Thread: one at a time, like any engine iterator.
    """

    def __init__(self, pieces: Iterator[Tuple[bytes, Sequence[SpokenWord]]]) -> None:
        self._pieces = pieces
        self.words: List[SpokenWord] = []

    def __iter__(self) -> "TimedPieces":
        return self

    def __next__(self) -> bytes:
        pcm, words = next(self._pieces)
        self.words.extend(words)
        return pcm

    def close(self) -> None:
        """Close the underlying generator (the server does, when it stops early)."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


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
    require_number("speed", speed, 0.05, 20.0)
    require_number("sample_rate", sample_rate, 1000, 384_000, integer=True)
