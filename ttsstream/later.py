"""Calls due later: one thread per client that runs each at its time.

A text stream's flush time, a phrase from the cache played into its speech, and a
speech that a service asked to wait (``Retry-After``) with no other provider to turn to
all wait here, holding no thread of their own. Started with the first
call that needs it; ``close()`` drops what is left and joins the thread.

Imports nothing of the package.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, List, Optional, Tuple

__all__ = ["Later"]

logger = logging.getLogger("ttsstream")

_ids = itertools.count(1)
_JOIN = 5.0  # seconds close() waits for the thread (a call may be running on it)


class Later:
    """Runs each ``call_at(when, fn)`` on its own thread at ``when`` (``time.monotonic()``).

    Thread: any; the calls run on ``ttsstream-later-N``, one after another.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Guarded by _cond.
        self._heap: List[Tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    def call_at(self, when: float, fn: Callable[[], None]) -> bool:
        """Run ``fn`` at ``when``; False (and never) once closed."""
        with self._cond:
            if self._closed:
                return False
            heapq.heappush(self._heap, (when, next(self._order), fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"ttsstream-later-{next(_ids)}", daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def close(self) -> None:
        """Drop the calls not yet due and join the thread (unless called on it). Idempotent."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN)
            if thread.is_alive():
                logger.warning("the thread of calls due later did not stop within %g s", _JOIN)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, fn = heapq.heappop(self._heap)
                        break
                    self._cond.wait(None if not self._heap else self._heap[0][0] - now)
                else:
                    return
            try:
                fn()
            except Exception:  # one call's failure must not stop the others
                logger.exception("a call due later failed")
