"""Cutting a byte stream into frames of one exact size, whatever sizes it arrives in.

This module owns ``Framer``. Pure: imports the standard library only.
"""

from __future__ import annotations

from typing import List, Optional

__all__ = ["Framer"]


class Framer:
    """Cuts a stream of bytes into frames of exactly ``frame_bytes`` bytes.

    ``push`` returns the whole frames the stream holds so far; what is left waits for
    the next ``push``, and ``flush`` hands it out at the stream's end (the one frame
    that may be short).

    Args:
        frame_bytes: the size of a frame (at least 1).

    Raises:
        ValueError: ``frame_bytes`` is not a positive int.

    Thread: one thread at a time.
    """

    def __init__(self, frame_bytes: int) -> None:
        if isinstance(frame_bytes, bool) or not isinstance(frame_bytes, int) or frame_bytes < 1:
            raise ValueError(f"frame_bytes must be a positive int, got {frame_bytes!r}")
        self.frame_bytes = frame_bytes
        self._pending = bytearray()

    @property
    def pending(self) -> int:
        """How many bytes wait for the rest of their frame."""
        return len(self._pending)

    def push(self, data: bytes) -> List[bytes]:
        """Add ``data``; return the frames now complete, in order (maybe none)."""
        self._pending += data
        size = self.frame_bytes
        whole = len(self._pending) - len(self._pending) % size
        frames = [bytes(self._pending[start:start + size]) for start in range(0, whole, size)]
        del self._pending[:whole]
        return frames

    def flush(self) -> Optional[bytes]:
        """Return the last, short frame (None if nothing waits) and start afresh."""
        if not self._pending:
            return None
        rest = bytes(self._pending)
        self._pending.clear()
        return rest
