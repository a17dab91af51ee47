"""The implementations under test, behind one interface, and what records their audio.

``IMPLS`` maps a short key to a maker: ttsstream and the four baselines of
``baselines.py``. Each made object offers:

- ``cold(text, rec)``: from nothing to the end of the speech (connect, authenticate,
  request, receive); ``rec.start()`` is called at the user's first call;
- ``warm(text, rec)``: the connection is opened (and authenticated) ahead, untimed;
  ``rec.start()`` is called when the speech is asked for on it. ttsstream:
  ``prewarm(1, wait=True)`` then ``speak()``;
- ``many(n, text, period, recs, window)``: n speeches at once in this process, started
  ``period / n`` seconds apart (so that n real-time streams spread over one frame
  period, as independent users do), after every connection is open, each calling
  ``rec.start()`` when its speech is asked for; ``window.begin()``
  and ``window.end()`` bracket the streaming, for its CPU and wall time. ttsstream: n
  threads calling ``speak()`` on one shared client after ``prewarm(n)`` (``ttsstream-cold``:
  without it, so each speech connects when it is asked for; ``ttsstream-once``:
  ``prewarm(n, keep=False)``, which replaces none); the threaded
  baselines: n threads, each with its own connection; asyncio: n tasks on one loop;
- ``close()``.

A ``Recorder`` is each speech's ``on_audio``: per frame it takes the arrival time
(``time.monotonic_ns()``), the byte count, and the latency from the server's stamp in
the frame's first 8 bytes. Every implementation calls the same recorder the same way.

Imports: baselines, ttsstream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import baselines

TIMEOUT = 30.0    # seconds: connect, and silence between frames
SETTLE = 0.02     # seconds between opening a connection ahead and using it (same for all)


class Recorder:
    """One speech's audio as it arrives: times, bytes, and per-frame latency (ns).

    Thread: the one that delivers the speech's audio; read after the speech ended.
    """

    __slots__ = ("t0", "first", "last", "bytes", "frames", "first_bytes", "latencies", "keep")

    def __init__(self, keep_latencies: bool = True) -> None:
        self.t0 = self.first = self.last = 0
        self.bytes = self.frames = self.first_bytes = 0
        self.latencies: List[int] = []
        self.keep = keep_latencies

    def start(self) -> None:
        self.t0 = time.monotonic_ns()

    def audio(self, pcm: bytes) -> None:
        now = time.monotonic_ns()
        if not self.frames:
            self.first, self.first_bytes = now, len(pcm)
        self.last = now
        self.bytes += len(pcm)
        self.frames += 1
        if self.keep:
            self.latencies.append(now - int.from_bytes(pcm[:8], "little"))

    def chunk(self, chunk: Any) -> None:
        """ttsstream's ``on_audio``: an ``AudioChunk``."""
        self.audio(chunk.pcm)


class Window:
    """CPU seconds and wall seconds of this process between ``begin`` and ``end``."""

    def __init__(self) -> None:
        self.cpu = self.wall = 0.0
        self._cpu0 = self._wall0 = 0.0

    def begin(self) -> None:
        self._cpu0, self._wall0 = time.process_time(), time.monotonic()

    def end(self) -> None:
        self.cpu, self.wall = time.process_time() - self._cpu0, time.monotonic() - self._wall0


def run_threads(n: int, prepare: Optional[Callable[[int], None]], act: Callable[[int], None],
                period: float, window: Window, limit: float) -> List[str]:
    """Start n threads; each runs ``prepare(k)``, then, once all are ready, ``act(k)`` at
    its slot (``k * period / n`` after the start). Returns the errors raised."""
    errors: List[str] = []
    lock = threading.Lock()
    ready = [0]
    all_ready, go = threading.Event(), threading.Event()
    start_at = [0.0]

    def body(k: int) -> None:
        try:
            if prepare is not None:
                prepare(k)
        except Exception as exc:
            errors.append(f"prepare: {exc!r}")
        with lock:
            ready[0] += 1
            if ready[0] == n:
                all_ready.set()
        if not go.wait(limit):
            return
        delay = start_at[0] + k * period / n - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            act(k)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=body, args=(k,), name=f"bench-user-{k}", daemon=True) for k in range(n)]
    for thread in threads:
        thread.start()
    if not all_ready.wait(limit):
        errors.append("not every connection opened in time")
    window.begin()
    start_at[0] = time.monotonic() + 0.01
    go.set()
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    window.end()
    if any(thread.is_alive() for thread in threads):
        errors.append("threads still running at the time limit")
    return errors


class Ttsstream:
    """ttsstream: ``TTSClient(provider="eigenai", url=...).speak(text, on_audio=..., keep_audio=False)``."""

    def __init__(self, url: str, prewarm: bool = True, keep: bool = True) -> None:
        import ttsstream

        self.prewarm = prewarm  # many(): open the n connections ahead (else each speech connects)
        self.keep = keep        # ... and keep n open (prewarm's keep)
        self._make = lambda: ttsstream.TTSClient(provider="eigenai", url=url, timeout=TIMEOUT)
        self._cold = self._make()
        self._warm: Optional[Any] = None

    def cold(self, text: str, rec: Recorder) -> None:
        rec.start()
        self._cold.speak(text, on_audio=rec.chunk, keep_audio=False)

    def warm(self, text: str, rec: Recorder) -> None:
        if self._warm is None:
            self._warm = self._make()
        self._warm.prewarm(1, wait=True, timeout=TIMEOUT)
        time.sleep(SETTLE)
        rec.start()
        self._warm.speak(text, on_audio=rec.chunk, keep_audio=False)

    def many(self, n: int, text: str, period: float, recs: List[Recorder], window: Window, limit: float) -> List[str]:
        client = self._make()
        try:
            if self.prewarm:
                client.prewarm(n, wait=True, timeout=limit, keep=self.keep)

            def act(k: int) -> None:
                recs[k].start()
                client.speak(text, on_audio=recs[k].chunk, keep_audio=False)
            return run_threads(n, None, act, period, window, limit)
        finally:
            client.close()

    def close(self) -> None:
        self._cold.close()
        if self._warm is not None:
            self._warm.close()


class Threaded:
    """A baseline of ``baselines.py`` driven from ordinary threads."""

    def __init__(self, kind: Any, url: str) -> None:
        self.kind, self.url = kind, url

    def cold(self, text: str, rec: Recorder) -> None:
        rec.start()
        self.kind(self.url).speak_now(text, rec.audio)

    def warm(self, text: str, rec: Recorder) -> None:
        session = self.kind(self.url)
        session.open()
        time.sleep(SETTLE)
        rec.start()
        session.speak(text, rec.audio)

    def many(self, n: int, text: str, period: float, recs: List[Recorder], window: Window, limit: float) -> List[str]:
        sessions = [self.kind(self.url) for _ in range(n)]

        def act(k: int) -> None:
            recs[k].start()
            sessions[k].speak(text, recs[k].audio)
        return run_threads(n, lambda k: sessions[k].open(), act, period, window, limit)

    def close(self) -> None:
        pass


class AsyncioBaseline:
    """The asyncio baseline, each measure run to completion on an event loop of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()

    def _run(self, coroutine: Any, limit: float = 3600.0) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, limit))

    def cold(self, text: str, rec: Recorder) -> None:
        async def cold() -> None:
            rec.start()
            await baselines.AsyncioExample(self.url).speak_now(text, rec.audio)
        self._run(cold())

    def warm(self, text: str, rec: Recorder) -> None:
        async def warm() -> None:
            session = baselines.AsyncioExample(self.url)
            await session.open()
            await asyncio.sleep(SETTLE)
            rec.start()
            await session.speak(text, rec.audio)
        self._run(warm())

    def many(self, n: int, text: str, period: float, recs: List[Recorder], window: Window, limit: float) -> List[str]:
        async def many() -> List[str]:
            loop = asyncio.get_running_loop()
            sessions = [baselines.AsyncioExample(self.url) for _ in range(n)]
            opened = await asyncio.gather(*(s.open() for s in sessions), return_exceptions=True)
            errors = [f"prepare: {e!r}" for e in opened if isinstance(e, BaseException)]
            window.begin()
            start = loop.time() + 0.01

            async def one(k: int) -> None:
                await asyncio.sleep(max(0.0, start + k * period / n - loop.time()))
                recs[k].start()
                await sessions[k].speak(text, recs[k].audio)

            results = await asyncio.gather(*(one(k) for k in range(n)), return_exceptions=True)
            window.end()
            return errors + [repr(e) for e in results if isinstance(e, BaseException)]
        return self._run(many(), limit)

    def close(self) -> None:
        self.loop.close()


IMPLS: Dict[str, Callable[[str], Any]] = {
    "ttsstream": Ttsstream,
    "ttsstream-cold": lambda url: Ttsstream(url, prewarm=False),
    "ttsstream-once": lambda url: Ttsstream(url, keep=False),
    "loop": lambda url: Threaded(baselines.WebsocketClientLoop, url),
    "app": lambda url: Threaded(baselines.WebSocketAppThread, url),
    "sync": lambda url: Threaded(baselines.WebsocketsSync, url),
    "asyncio": AsyncioBaseline,
}

LABELS = {
    "ttsstream": "ttsstream",
    "ttsstream-cold": "ttsstream, no prewarm",
    "ttsstream-once": "ttsstream, prewarm keep=False",
    "loop": "websocket-client recv() loop",
    "app": "WebSocketApp run_forever",
    "sync": "websockets.sync",
    "asyncio": "asyncio websockets (EigenAI ex.)",
}
BASELINE = "loop"  # ratios are to this one
