"""The things the player thread is handed besides audio: segment ends, rate changes,
stops, pauses, and the end.

Plain value objects shared by ``feed`` (which queues and hands them out) and ``worker``
(which carries them out). No logic, no locks; imports nothing of the package.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = ["Mark", "RateChange", "Cue", "StopRequest", "PauseRequest", "CLOSE", "DoneCallback"]

DoneCallback = Callable[[bool], Any]


class Mark:
    """End of a segment (``finish()``): drain, then release ``wait()``ers up to ``seq``
    and call ``on_done`` (True: played out; False: dropped)."""

    __slots__ = ("seq", "on_done")

    def __init__(self, seq: int, on_done: Optional[DoneCallback]) -> None:
        self.seq = seq
        self.on_done = on_done


class RateChange:
    """Drain, then reopen the device at ``rate`` for what follows."""

    __slots__ = ("rate",)

    def __init__(self, rate: int) -> None:
        self.rate = rate


class Cue:
    """``cue()``: call ``callback()`` once the audio fed after it begins to reach the
    device (or its segment ends with none). Dropped, uncalled, by a stop or close."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], Any]) -> None:
        self.callback = callback


class StopRequest:
    """Fade out and abort the device for the ``stop()`` calls up to ``seq`` (never
    queued: stop() empties the queue and counts itself; the thread sees the count).
    ``tail``: the audio that was next in the queue, up to a fade's worth, to fade out on."""

    __slots__ = ("seq", "tail")

    def __init__(self, seq: int, tail: bytes) -> None:
        self.seq = seq
        self.tail = tail


class PauseRequest:
    """Fade out for a ``pause()`` on ``tail``, the next audio (up to a fade's worth),
    then write nothing until ``resume()``."""

    __slots__ = ("tail",)

    def __init__(self, tail: bytes) -> None:
        self.tail = tail


CLOSE = object()  # what next_item() returns once the player is closing
