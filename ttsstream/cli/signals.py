"""Signals that end a command: SIGINT, SIGTERM and SIGHUP as one exception on the main thread.

``interrupts()`` installs handlers that raise ``Interrupted`` on the main thread, so that
a terminal closed (SIGHUP) or ``kill``/``timeout`` (SIGTERM) runs the same cleanup as
Ctrl-C: the client closes and joins its threads, a file being written keeps the audio
received so far. ``Interrupted`` is a ``KeyboardInterrupt``, so that every wait that
already cancels on Ctrl-C cancels on these too. Only the first signal raises: one that
follows while the command cleans up is ignored, so that the cleanup (whose waits all
have timeouts) finishes; ``held()`` defers a first signal across a step that must not be
cut in half (giving a finished file its name). The previous handlers are restored on
the way out. The exit code is 128 + the signal's number, as a shell reports it.

Imports: the standard library only.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator, List, Optional

__all__ = ["Interrupted", "interrupts", "held"]

_NAMES = {"SIGINT": "interrupted", "SIGTERM": "terminated (SIGTERM)", "SIGHUP": "hung up (SIGHUP)"}
_SIGNALS: List[signal.Signals] = [getattr(signal, name) for name in _NAMES if hasattr(signal, name)]


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal.

    Attributes:
        signum: the signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + self.signum

    @property
    def reason(self) -> str:
        """``interrupted``, ``terminated (SIGTERM)`` or ``hung up (SIGHUP)``."""
        return _NAMES.get(signal.Signals(self.signum).name, f"stopped by signal {self.signum}")


class _Handler:
    """The installed handler. Thread: the main thread only (Python runs handlers there)."""

    def __init__(self) -> None:
        self.fired = False               # Interrupted was raised: later signals are ignored
        self.holding = 0                 # inside held(): a signal waits in ``pending``
        self.pending: Optional[int] = None

    def __call__(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.fired:
            return
        if self.holding:
            self.pending = self.pending or signum
            return
        self.fired = True
        raise Interrupted(signum)

    def release(self) -> None:
        """Raise the signal that came while held, if one did."""
        if self.holding or self.pending is None or self.fired:
            return
        self.fired = True
        raise Interrupted(self.pending)


_active: Optional[_Handler] = None


@contextmanager
def interrupts() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` (once).

    On a thread other than the main one (a program calling ``main()`` from a thread)
    nothing is installed: Python lets only the main thread set handlers.
    """
    global _active
    if threading.current_thread() is not threading.main_thread() or _active is not None:
        yield
        return
    handler = _Handler()
    previous = {signum: signal.signal(signum, handler) for signum in _SIGNALS}
    _active = handler
    try:
        yield
    finally:
        _active = None
        for signum, before in previous.items():
            signal.signal(signum, before if before is not None else signal.SIG_DFL)


@contextmanager
def held() -> Iterator[None]:
    """Defer a first signal until the block is done, then raise it."""
    handler = _active
    if handler is None:
        yield
        return
    handler.holding += 1
    try:
        yield
    finally:
        handler.holding -= 1
    handler.release()
