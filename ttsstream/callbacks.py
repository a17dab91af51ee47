"""Calling user code, and waiting for it: the one place a user's callback runs.

``invoke`` runs one callback: what it raises is logged with its traceback and kept in
``speech.callback_errors``, so a user's bug never ends a reader or player thread. Until
the application configures logging (the package's own NullHandler would swallow the
record), the first such error of each speech is printed to standard error with its
traceback, the way ``threading.excepthook`` reports a thread's exception. It
also remembers which speech's callback a thread is running, so that a blocking wait
from inside it can refuse instead of deadlocking (``in_callback_of``).
``interruptible_wait`` waits on an event in slices on the main thread, so that Ctrl-C
gets through.

Imports: audio, errors (for the callback types). Never the client or a connection.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Optional

from .audio import AudioChunk
from .errors import TTSError

if TYPE_CHECKING:
    from .speech import Segment, Speech
    from .words import Word

__all__ = ["AudioCallback", "CompleteCallback", "ErrorCallback", "SegmentCallback", "WordCallback", "invoke", "in_callback_of",
           "interruptible_wait"]

logger = logging.getLogger("ttsstream")

AudioCallback = Callable[[AudioChunk], Any]
CompleteCallback = Callable[["Speech"], Any]
ErrorCallback = Callable[[TTSError], Any]
SegmentCallback = Callable[["Segment"], Any]
WordCallback = Callable[["Word"], Any]


# Which speech's callback this thread is running, so that a blocking wait from inside
# it can refuse instead of deadlocking.
_in_callback = threading.local()


def invoke(speech: "Speech", callback: Callable[[Any], Any], argument: Any) -> None:
    """Run one user callback. The only place that calls user code.

    What the callback raises is logged with its traceback and kept in
    ``speech.callback_errors``; it never ends the calling thread.
    """
    previous = getattr(_in_callback, "speech", None)
    _in_callback.speech = speech
    try:
        callback(argument)
    except Exception as exc:
        speech.callback_errors.append(exc)
        logger.exception("%s callback %r raised; ttsstream carries on", speech, callback)
        if len(speech.callback_errors) == 1 and not _logging_configured():
            _print_to_stderr(speech, callback, exc)
    finally:
        _in_callback.speech = previous


def _logging_configured() -> bool:
    """Whether a record of ours reaches a handler the application installed (anything but
    the package's NullHandler, on our logger or an ancestor it propagates to)."""
    current: Optional[logging.Logger] = logger
    while current is not None:
        if any(not isinstance(handler, logging.NullHandler) for handler in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def _print_to_stderr(speech: "Speech", callback: Callable[[Any], Any], exc: Exception) -> None:
    """What ``threading.excepthook`` would print: a heading and the traceback."""
    stream = sys.stderr
    if stream is None:  # pythonw: nowhere to print
        return
    try:
        print(f"ttsstream: {speech} callback {callback!r} raised (ttsstream carries on; this speech's later "
              "callback errors are in speech.callback_errors, and configure logging to see every one):",
              file=stream)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=stream)
        stream.flush()
    except (OSError, ValueError):  # standard error closed: the record was still logged
        pass


# How often a wait on the main thread wakes to let Python run signal handlers: a
# SIGINT that the kernel hands to another thread (PortAudio's, a reader) does not
# interrupt the main thread's blocked lock, so Ctrl-C would wait for the speech to end.
_SIGNAL_SLICE = 0.1


def interruptible_wait(event: threading.Event, timeout: Optional[float]) -> bool:
    """``event.wait(timeout)``, in slices on the main thread so that Ctrl-C gets through."""
    if threading.current_thread() is not threading.main_thread():
        return event.wait(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = _SIGNAL_SLICE if deadline is None else min(_SIGNAL_SLICE, deadline - time.monotonic())
        if event.wait(max(0.0, remaining)):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def in_callback_of() -> Optional["Speech"]:
    """The speech whose callback this thread is running, or None."""
    return getattr(_in_callback, "speech", None)
