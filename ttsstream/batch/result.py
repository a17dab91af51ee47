"""What a batch tells its caller: ``Progress`` after each item, ``BatchResult`` at the end.

This module owns both. Imports only ``ttsstream.errors`` and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, NamedTuple, Tuple

from ..errors import TTSError

__all__ = ["Progress", "BatchResult"]


class Progress(NamedTuple):
    """Where a batch stands, given to ``batch(progress=...)`` after each item.

    Attributes:
        total: items in the batch.
        done: items spoken by this run so far.
        skipped: items finished by an earlier run (found unchanged, or adopted).
        failed: items that failed in this run so far.
        audio_seconds: seconds of audio spoken by this run so far (skipped items not counted).
        elapsed: seconds since the batch started.
    """

    total: int
    done: int
    skipped: int
    failed: int
    audio_seconds: float
    elapsed: float


@dataclass
class BatchResult:
    """What a batch did.

    Attributes:
        done: ids of the items spoken by this run, in the order they finished.
        skipped: ids of the items an earlier run had finished (unchanged, file intact).
        failed: ``(id, error)`` for each item that failed; the next run retries them.
        audio_seconds: seconds of audio this run spoke.
        elapsed: seconds this run took.
        out_dir: the output directory.
    """

    done: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    failed: List[Tuple[str, TTSError]] = field(default_factory=list)
    audio_seconds: float = 0.0
    elapsed: float = 0.0
    out_dir: str = ""

    @property
    def ok(self) -> bool:
        """Whether no item failed."""
        return not self.failed

    def __repr__(self) -> str:
        first = ""
        if self.failed:
            item_id, error = self.failed[0]
            first = f", first failure={item_id!r}: {type(error).__name__}: {error.message[:80]!r}"
        return (f"BatchResult(done={len(self.done)}, skipped={len(self.skipped)}, failed={len(self.failed)}, "
                f"audio_seconds={self.audio_seconds:.1f}, elapsed={self.elapsed:.1f}{first})")
