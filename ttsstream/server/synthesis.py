"""The bundled server's engine threads and its pacing: getting PCM off the event loop, on time.

An engine may block (eSpeak NG holds a process-wide lock, starting one may spawn a
process), so each utterance's engine iterator is advanced on a thread of its own
(``Synthesis``), which lives exactly as long as the utterance; ``Workers`` keeps the
live ones so that the server's stop() can join them. ``Pacer`` holds frames back to
a multiple of real time.

This module owns those threads and the hand-off of results to the event loop. It
imports only ``engine`` (the interface) from the package: no sockets, no dialects.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, TypeVar

from .engine import Engine, SpokenWord, TimedPieces

__all__ = ["Workers", "Synthesis", "Pacer"]

log = logging.getLogger("ttsstream.server")

T = TypeVar("T")


class Workers:
    """The live engine threads of one server, so that stop() can join them.

    Thread: any.
    """

    def __init__(self) -> None:
        # Guarded by the lock: the event loop names and adds threads, each thread
        # discards itself, and stop() joins them from the server thread.
        self._lock = threading.Lock()
        self._threads: Set[threading.Thread] = set()
        self._count = 0

    def name(self, prefix: str) -> str:
        with self._lock:
            self._count += 1
            return f"{prefix}-engine-{self._count}"

    def add(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.add(thread)

    def discard(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)

    def join(self, timeout: float) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("engine thread %s is still busy after %g s", thread.name, timeout)


class Synthesis:
    """One utterance's engine iterator, advanced one piece at a time on a thread of its own.

    The thread lives exactly as long as the utterance: it starts when the first piece
    is asked for and ends at close(), so an idle server holds no engine threads and a
    slow engine never blocks the event loop or another connection.

    Thread: next() and close() are awaited on the event loop; the engine runs on the
    worker thread.
    """

    def __init__(self, engine: Engine, text: str, params: Dict[str, Any], thread_name: str,
                 workers: Workers) -> None:
        self._start = lambda: iter(engine.synthesize(text, **params))
        self._thread_name = thread_name
        self._workers = workers
        # The only way between the two threads: (job, future) pairs, then None to end.
        self._jobs: "queue.SimpleQueue[Optional[Tuple[Callable[[], Any], asyncio.Future[Any]]]]" = \
            queue.SimpleQueue()
        # Only the event loop touches these (the worker gets the iterator inside a job).
        self._iterator: Optional[Iterator[bytes]] = None
        self._thread: Optional[threading.Thread] = None

    async def next(self) -> Optional[bytes]:
        """The next piece of PCM, or None at the end. Raises what the engine raised."""
        if self._iterator is None:
            # Even starting may block (an engine may spawn a process), so it runs off-loop too.
            self._iterator = await self._call(self._start)
        iterator = self._iterator
        return await self._call(lambda: next(iterator, None))

    @property
    def words(self) -> Optional[List[SpokenWord]]:
        """The words the engine has reported so far, or None for an engine that reports none.

        Thread: the event loop, between pieces (the engine's thread is idle then).
        """
        iterator = self._iterator
        return list(iterator.words) if isinstance(iterator, TimedPieces) else None

    async def close(self) -> None:
        """Close the iterator (a generator's cleanup may block, so on the thread) and end the thread."""
        if self._thread is None:
            return
        try:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                await self._call(close)
        except Exception:  # noqa: BLE001  (cleanup must go on)
            log.exception("closing the engine's iterator failed")
        finally:
            self._jobs.put(None)

    async def _call(self, job: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, args=(loop,), name=self._thread_name,
                                            daemon=True)  # a safety net: close() ends it
            self._workers.add(self._thread)
            self._thread.start()
        future: "asyncio.Future[T]" = loop.create_future()
        self._jobs.put((job, future))
        return await future

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run jobs until close(). Thread: this utterance's engine thread."""
        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                job, future = item
                result, error = None, None
                try:
                    result = job()
                except BaseException as exc:  # noqa: BLE001  (handed to the loop, which reports it)
                    # A future cannot carry StopIteration; an engine that leaks one is broken.
                    error = RuntimeError(repr(exc)) if isinstance(exc, StopIteration) else exc
                try:
                    loop.call_soon_threadsafe(_settle, future, result, error)
                except RuntimeError:  # the loop has closed: nobody is waiting any more
                    return
        finally:
            self._workers.discard(threading.current_thread())


def _settle(future: "asyncio.Future[Any]", result: Any, error: Optional[BaseException]) -> None:
    """Hand a job's outcome to the task awaiting it. Thread: the event loop."""
    if future.done():  # the waiting task was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Pacer:
    """Holds frames back so audio leaves at ``realtime`` times real time (0: no pacing).

    Thread: the event loop only.
    """

    def __init__(self, realtime: float, sample_rate: int, header_bytes: int) -> None:
        self._realtime = realtime
        self._rate = sample_rate
        self._bytes = -header_bytes  # the WAV header is not audio
        self._start: Optional[float] = None

    def pace(self, realtime: float) -> None:
        """From now on, pace at ``realtime`` times real time (0: no pacing)."""
        self._realtime = realtime
        self._start = None
        self._bytes = min(self._bytes, 0)  # what went before is not held back again

    async def sent(self, count: int) -> None:
        """Count ``count`` bytes as sent; sleep until they are due."""
        if self._realtime <= 0:
            return
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        self._bytes += count
        due = self._start + max(0, self._bytes) / (2 * self._rate) / self._realtime
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
