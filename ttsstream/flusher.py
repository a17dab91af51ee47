"""Text streams' flush times: one thread per client that wakes a stream whose text has waited.

A text stream's segmenter holds text that lacks an end (an LLM paused mid-sentence);
after ``flush_after`` seconds the ``Flusher`` calls the stream's ``flush(now)`` so that
it may release what it holds. Imports nothing of the package.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import List, Optional, Protocol, Tuple

__all__ = ["Flusher", "Flushable"]

logger = logging.getLogger("ttsstream")

_ids = itertools.count(1)


class Flushable(Protocol):
    """What a flusher wakes: a text stream."""

    def flush(self, now: float) -> None: ...


class Flusher:
    """One thread per client that hands text streams their flush time.

    A stream whose text has waited ``flush_after`` seconds (an LLM paused mid-sentence)
    gets ``flush(now)``, so that its segmenter may release what it holds. Started with
    the first stream that needs it; ``close()`` ends it.

    Thread: any; the flushes run on the thread ``ttsstream-flush-N``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Guarded by _cond.
        self._heap: List[Tuple[float, int, Flushable]] = []
        self._order = itertools.count()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    def schedule(self, stream: Flushable, when: float) -> None:
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (when, next(self._order), stream))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"ttsstream-flush-{next(_ids)}", daemon=True)
                self._thread.start()
            self._cond.notify()

    def forget(self, stream: Flushable) -> None:
        with self._cond:
            self._heap = [entry for entry in self._heap if entry[2] is not stream]
            heapq.heapify(self._heap)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, stream = heapq.heappop(self._heap)
                        break
                    self._cond.wait(None if not self._heap else self._heap[0][0] - now)
                else:
                    return
            try:
                stream.flush(time.monotonic())
            except Exception:  # a stream's failure must not stop the others' flushes
                logger.exception("flushing a text stream failed")

