"""The phrase cache's player: a cached phrase's audio, handed to its speech on a thread of its own.

A cache hit has no connection and so no reader thread to deliver its audio; this
module's one thread (``ttsstream-cache``, started at the first hit, stopped by the
client's ``close``) plays that part: it hands the cached chunks to the speech (or text
stream unit) exactly as a reader would (rate, audio in the chunks it came in, word
times, the end), so callbacks, playback and words work unchanged. A hit is queued, not
delivered on the caller's thread: ``speak(block=False)`` returns before any callback
runs, and a text stream's unit is cut under its stream's lock.

Imports: connection (the Sink interface), cache (what a hit holds), errors.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Optional, Tuple

from .cache import CachedAudio
from .connection import Sink
from .errors import ConnectionFailed

__all__ = ["Replayer"]

logger = logging.getLogger("ttsstream.cache")

_JOIN = 5.0  # seconds close() waits for the thread (a callback may be running on it)
_Item = Optional[Tuple[Sink, CachedAudio]]


class Replayer:
    """One thread that delivers cache hits to their sinks, one after another, in order.

    Thread: any; ``play`` and ``close`` may be called from any thread, a callback
    running on this one included.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self._queue: "queue.SimpleQueue[_Item]" = queue.SimpleQueue()

    def play(self, sink: Sink, audio: CachedAudio) -> bool:
        """Deliver ``audio`` to ``sink`` soon, on the replay thread; False once closed."""
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ttsstream-cache", daemon=True)
                self._thread.start()
            self._queue.put((sink, audio))
        return True

    def close(self) -> None:
        """Stop the thread after the hits already queued; join it (unless called on it)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        if thread is not threading.current_thread():
            thread.join(_JOIN)
            if thread.is_alive():
                logger.warning("the cache's player thread did not stop within %g s", _JOIN)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            sink, audio = item
            try:
                _deliver(sink, audio)
            except Exception as exc:  # a bug of ours must end that speech, not this thread
                logger.exception("replaying a cached phrase failed")
                sink._end(ConnectionFailed(f"internal error replaying a cached phrase: {exc!r}"))


def _deliver(sink: Sink, audio: CachedAudio) -> None:
    sink._on_metadata(audio.sample_rate)
    for chunk in audio.chunks:
        if sink._unwanted():  # cancelled meanwhile: the rest is not wanted
            return
        sink._on_audio(chunk)
    if audio.words:
        sink._on_words(audio.words)
    sink._end(None)
