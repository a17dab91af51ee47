"""Issue 19's chaos scenario, shared by ``tests/test_chaos.py`` and ``benchmarks/bench_fallback.py``.

A primary provider behind a ``ChaosDoor`` on loopback that fails at random: 15 % HTTP
503, 10 % HTTP 429 (``Retry-After: 1``), 10 % a close frame before any audio, 5 %
silent (the request accepted, never answered), 5 % a TCP drop after two frames of
audio; the other 55 % reach a healthy server. In the middle, the door refuses
everything (503) for ``outage_seconds``. A second healthy server is the fallback. Every
server is the bundled ``LocalServer`` with the tone engine, so ``tone_pcm(text)`` is the
exact audio each speech must end with, and every speech's text is its own.

``ChaosRig`` starts and stops the servers and the door; ``run`` speaks ``count``
speeches from ``threads`` threads through a client and returns every speech with what
it said; ``tally`` sorts them out. Nothing here asserts: the test asserts on its own
thread, the benchmark prints.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional

from ttsstream import Provider, SynthesisTimeout, Timeouts, TTSClient, TTSError
from ttsstream.health import COOL_DOWN, FAILURES_TO_OPEN
from ttsstream.server import LocalServer, tone_pcm

from doors import ChaosDoor

KEY = "sk-chaos-primary-5e1f"
FALLBACK_KEY = "sk-chaos-fallback-77a0"
PATH = "/api/v1/generate/ws"

# The mix of the primary's behaviours, per connection.
MIX = {"http_503": 0.15, "http_429": 0.10, "close": 0.10, "silent": 0.05, "drop": 0.05, "healthy": 0.55}
FAULTS = {"close": "close:after=0", "silent": "stall:after=0", "drop": "drop:after=2", "healthy": None}
# Short, so that a silent primary costs one second; long enough for a loaded 2-core
# machine's healthy first audio (tens of milliseconds) many times over.
TIMEOUTS = Timeouts(connect=10.0, first_audio=1.0, between_chunks=10.0)
# The door's seed. Its draws come in the order it accepts connections, and the primary's
# breaker and rate limit follow them, so two runs with one seed still differ by timing.
SEED = 2


def text_of(n: int) -> str:
    """Speech ``n``'s own text: long enough for more than two frames of audio (the drop
    fault acts after two), different from every other speech's."""
    return f"Speech number {n} of the chaos run, spoken whatever the first provider does."


class ChaosRig:
    """The servers and the door of one scenario: started by the constructor, stopped by ``close``.

    Args:
        seed: the door's draw.
        mix: the primary's behaviours and their weights (``MIX``); a name in ``FAULTS``
            pipes to a server with that fault, any other must be one the door answers.
        faults: extra piping behaviours: name -> the fault of a server to pipe it to.
    """

    def __init__(self, seed: int = SEED, mix: Optional[Dict[str, float]] = None,
                 faults: Optional[Dict[str, Optional[str]]] = None) -> None:
        mix = dict(MIX if mix is None else mix)
        wanted = {**FAULTS, **(faults or {})}
        self.servers: Dict[str, LocalServer] = {}
        self.door: Optional[ChaosDoor] = None
        try:
            for name in mix:
                if name in wanted:
                    self.servers[name] = LocalServer(engine="tone", fault=wanted[name]).start()
            self.backup = LocalServer(engine="tone").start()
            self.servers["fallback"] = self.backup
            self.door = ChaosDoor({name: server.port for name, server in self.servers.items()}, mix, seed)
        except BaseException:
            self.close()
            raise
        self.url = f"ws://127.0.0.1:{self.door.port}{PATH}"

    def fallback(self) -> Provider:
        return Provider("eigenai", api_key=FALLBACK_KEY, url=self.backup.url)

    def client(self, with_fallback: bool = True, **options: Any) -> TTSClient:
        """A client of the primary (through the door), with the fallback or without."""
        return TTSClient("eigenai", api_key=KEY, url=self.url, timeout=TIMEOUTS,
                         fallback=[self.fallback()] if with_fallback else None, **options)

    def close(self) -> None:
        if self.door is not None:
            self.door.close()
        for server in self.servers.values():
            server.stop()


class Spoken(NamedTuple):
    """One speech of a run: its text, the speech, and the error its wait() raised (or None)."""

    n: int
    text: str
    speech: Any
    error: Optional[TTSError]


class Run(NamedTuple):
    """What one run did."""

    spoken: List[Spoken]
    seconds: float                  # wall time of the whole run
    outage: Optional[tuple]         # (began, ended) in monotonic seconds, or None
    in_flight_at_outage: int        # speeches under way when the outage began
    outage_connections: int         # connections the door accepted during the outage
    leftover: List[str]             # names of worker threads still alive after the join


def run(client: TTSClient, door: ChaosDoor, count: int = 1000, threads: int = 8, outage_at: Optional[int] = 300,
        outage_seconds: float = 4.0, resume_at: int = 600, wait: float = 60.0, start_together: bool = False) -> Run:
    """Speak ``count`` speeches from ``threads`` threads, with an outage in the middle.

    The outage begins when speech ``outage_at`` is handed out and lasts
    ``outage_seconds``; speeches from ``resume_at`` on wait for its end, so that it falls
    inside the run however fast the speeches go. ``wait`` bounds each speech's wait().
    With ``start_together``, the threads' first speeches start at once (a barrier).
    """
    lock = threading.Lock()
    # Guarded by lock.
    state = {"next": 0, "in_flight": 0}
    spoken: List[Optional[Spoken]] = [None] * count
    reached, calm = threading.Event(), threading.Event()
    barrier = threading.Barrier(threads if start_together else 1, timeout=wait)
    if outage_at is None:
        calm.set()

    def take() -> Optional[int]:
        with lock:
            n = state["next"]
            if n >= count:
                return None
            state["next"] += 1
        if n == outage_at:
            reached.set()
        if n >= resume_at:
            calm.wait(wait)
        return n

    def worker() -> None:
        barrier.wait()
        while True:
            n = take()
            if n is None:
                return
            text = text_of(n)
            with lock:
                state["in_flight"] += 1
            error: Optional[TTSError] = None
            speech = None
            try:
                speech = client.speak(text, block=False)
                speech.wait(wait)
            except TTSError as exc:
                error = exc
            finally:
                with lock:
                    state["in_flight"] -= 1
            spoken[n] = Spoken(n, text, speech, error)

    started = time.monotonic()
    workers = [threading.Thread(target=worker, name=f"chaos-speaker-{i}") for i in range(threads)]
    for thread in workers:
        thread.start()
    in_flight = 0
    try:
        if outage_at is not None and reached.wait(wait):
            door.refuse(True)
            with lock:
                in_flight = state["in_flight"]
            threading.Event().wait(outage_seconds)  # the outage's length, not a synchronisation
            door.refuse(False)
    finally:
        calm.set()
        for thread in workers:
            thread.join(wait * 2)
    seconds = time.monotonic() - started
    outage = door.outages[-1] if door.outages else None
    # the connections accepted within the outage's window (each one's behaviour is "outage")
    during = door.count(None, outage[0], outage[1] or float("inf")) if outage is not None else 0
    return Run([s for s in spoken if s is not None], seconds, outage, in_flight, during,
               [t.name for t in workers if t.is_alive()])


class Tally(NamedTuple):
    """A run's speeches sorted out by what became of them."""

    exact: int                  # completed, the audio byte for byte the expected
    by_fallback: int            # of those, spoken by the fallback
    cut_after_audio: int        # ended with an error after audio: a strict prefix of the expected
    lost: List[Spoken]          # anything else: no audio, wrong audio, or audio twice
    failed_before_audio: int    # the speeches that should complete: all but the cut ones
    attempts: Dict[str, int]    # the failures the speeches recorded (speech.attempts), by what the door did

    @property
    def completed_share(self) -> float:
        """Completed byte-exact, of those whose failure (if any) came before the first audio."""
        return self.exact / self.failed_before_audio if self.failed_before_audio else 1.0


def behaviour_of(error: TTSError) -> str:
    """What the door did to an attempt that failed with ``error``, or ``"passed over"``: the
    client did not try (a circuit breaker open, a rate limit not over, a refused key)."""
    status, code = getattr(error, "status", None), getattr(error, "code", None)
    if status in (503, 429, 401):
        return {503: "http_503", 429: "http_429", 401: "refused"}[status]
    if code == 429:  # a RateLimited from the handshake may carry the HTTP status as its code
        return "http_429"
    if code == 1011:
        return "close"
    if isinstance(error, SynthesisTimeout):
        return "silent"
    return "passed over"


def tally(spoken: List[Spoken], primary_url: str) -> Tally:
    exact = by_fallback = cut = 0
    lost: List[Spoken] = []
    attempts: Dict[str, int] = {}
    for item in spoken:
        speech, expected = item.speech, tone_pcm(item.text)
        if speech is None:
            lost.append(item)
            continue
        for _, error in speech.attempts:
            name = behaviour_of(error)
            attempts[name] = attempts.get(name, 0) + 1
        if item.error is None and speech.pcm == expected:
            exact += 1
            if speech.provider is not None and speech.provider.url != primary_url:
                by_fallback += 1
        elif (item.error is not None and speech.pcm and len(speech.pcm) < len(expected)
              and expected.startswith(speech.pcm) and speech.provider is not None
              and speech.provider.url == primary_url and speech.attempts == []):
            cut += 1
        else:
            lost.append(item)
    return Tally(exact, by_fallback, cut, lost, len(spoken) - cut, attempts)


def probe_bound(run_: Run, outage_seconds: float) -> float:
    """The most connections the primary may get during the outage: the speeches already
    under way when it began (each may have been admitted), the failures that open the
    breaker, and one probe per cool-down (plus one at its edge)."""
    return run_.in_flight_at_outage + FAILURES_TO_OPEN + outage_seconds / COOL_DOWN + 1
