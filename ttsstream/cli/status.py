"""The live status line of ``ttsstream speak`` on a terminal.

``Progress`` is what the line says: time to first audio, seconds received and played,
underruns, and for a text cut into pieces, how far through it the speech is.
``StatusLine`` redraws it in place (``\\r``) on stderr, at most ten times a second, and
only when stderr is a terminal; elsewhere (a pipe, a log file, ``-q``) it is silent.
Nothing here waits or starts a thread: the command's main thread calls ``draw`` between
slices of its wait.

Imports: the standard library only.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional, TextIO

__all__ = ["Progress", "StatusLine", "INTERVAL"]

INTERVAL = 0.1  # seconds between redraws: ten a second reads as live and costs nothing


class Progress:
    """The numbers of a speech in progress, and the words for them."""

    __slots__ = ("first_audio", "received", "played", "underruns", "piece", "pieces", "done_chars", "chars")

    def __init__(self) -> None:
        self.first_audio: Optional[float] = None  # seconds from the command's speak to the first audio
        self.received = 0.0                        # seconds of audio received
        self.played: Optional[float] = None        # seconds played, when playing
        self.underruns = 0
        self.piece = 0                             # the piece being received, 1-based (0: none yet)
        self.pieces = 0                            # how many pieces
        self.done_chars = 0                        # characters whose audio has all arrived
        self.chars = 0                             # characters in all

    def text(self) -> str:
        """One line: ``first audio 85 ms | received 4.2 s | played 1.3 s | underruns 0 | text 2/6 35%``."""
        parts = ["waiting for audio" if self.first_audio is None else f"first audio {self.first_audio * 1000:.0f} ms",
                 f"received {self.received:.1f} s"]
        if self.played is not None:
            parts.append(f"played {self.played:.1f} s")
            parts.append(f"underruns {self.underruns}")
        if self.pieces > 1:
            percent = 100 * self.done_chars / self.chars if self.chars else 0.0
            parts.append(f"text {self.piece}/{self.pieces} {percent:.0f}%")
        return " | ".join(parts)


class StatusLine:
    """A line redrawn in place on a terminal.

    Args:
        stream: where to draw (stderr).
        enabled: draw at all (stderr is a terminal and no ``-q``).
        clock: the time source, for tests.

    Thread: the command's main thread only.
    """

    def __init__(self, stream: TextIO, enabled: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self.enabled = enabled
        self._clock = clock
        self._last: Optional[float] = None
        self._shown = False

    @classmethod
    def for_stream(cls, stream: TextIO, quiet: bool) -> "StatusLine":
        """A status line that draws only where ``stream`` is a terminal and not ``quiet``."""
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(stream, tty and not quiet)

    def draw(self, progress: Progress, force: bool = False) -> None:
        """Redraw, unless the last redraw was less than ``INTERVAL`` ago (``force`` draws anyway)."""
        if not self.enabled:
            return
        now = self._clock()
        if not force and self._last is not None and now - self._last < INTERVAL:
            return
        self._last = now
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        width = max(20, (columns or 80) - 1)  # a terminal that does not say its size: assume 80
        self._stream.write("\r" + progress.text()[:width] + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the line, so that what follows starts on a clean one."""
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False
