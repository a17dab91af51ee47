"""Never silent: which provider speaks a request, falling back before the first audio.

The client hands every request (a speech's, or a text stream unit's) to its ``Router``,
which walks the client's routes in order (``routes.py``: its own provider first, then
its ``fallback`` list):

1. a phrase already in the cache for the route plays from there, handed to the speech
   on the client's ``Later`` thread as a reader would hand it (``_replay``): no
   connection, no slot, and through an outage;
2. a route whose ``Health`` refuses (a refused key, a rate limit not yet over, an open
   circuit breaker) is passed over at once, its refusal recorded;
3. otherwise an ``Attempt`` waits for one of the route's ``Slots`` and goes out on a
   connection of the route's pool. The attempt stands between the connection and the
   speech: it tells the route's health how it went, fills the cache, and, when it fails
   before any audio for a reason that is the provider's (not the caller's, not a
   cancel), sends the request on to the next route.

Once audio has begun, nothing is sent again: the speech ends with the error (the user
would hear a part twice). A text stream settles on the route of its first audio; its
later units go there, and until then it sends one unit at a time (``Course``). Every
switch is logged at WARNING with its reason; ``speech.provider`` and
``speech.attempts`` say what happened.

Imports: routes, health, later, cache, telemetry, connection (the Sink interface),
protocols, errors.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple, Union

from .cache import CachedAudio, PhraseCache
from .connection import Connection, Sink
from .errors import ConnectionFailed, InvalidParameterError, RateLimited, TTSError
from .health import DEFAULT_RATE_PAUSE, counts_against
from .later import Later
from .protocols import Request, WordTime
from .routes import Route, Spec
from .telemetry import cache_lookup, fallback

if TYPE_CHECKING:
    from .speech import Speech

__all__ = ["Router", "Course"]

logger = logging.getLogger("ttsstream.fallback")

# Audio kept for the cache per attempt at most: a longer speech is not a phrase.
_CACHE_CAP = 8 * 2**20


class Course:
    """A text stream's way through the routes: the route it settled on at its first audio
    (every later unit goes there, and none falls back), and where its units start until then.

    Args:
        widen: called once, when the stream settles: it may send several units at once again.

    Thread: its units' reader threads (under the stream's lock, or with one unit under way).
    """

    __slots__ = ("floor", "settled", "widen")

    def __init__(self, widen: Callable[[], None]) -> None:
        self.floor = 0
        self.settled: Optional[int] = None
        self.widen = widen


class Router:
    """The routes of one client, its phrase cache, and the thread that replays hits.

    Args:
        routes: the client's own route first, then its fallbacks.
        cache: the phrase cache: None, ``True`` (one in memory) or a ``PhraseCache``.
        later: the client's calls due later (a speech waiting out a ``Retry-After``).
        patience: seconds a speech with no provider left may wait out rate limits (the
            connect timeout).

    Raises:
        InvalidParameterError: anything else as ``cache``.

    Thread: any.
    """

    def __init__(self, routes: Tuple[Route, ...], cache: Union[None, bool, PhraseCache], later: Later,
                 patience: float) -> None:
        self.routes = routes
        self.cache = _phrase_cache(cache)
        self.later = later
        self.patience = patience

    def send(self, sink: Sink, spec: Spec, request: Request, owner: "Speech", *, course: Optional[Course] = None,
             from_reader: bool = False, ahead: bool = False) -> None:
        """Get ``request`` spoken into ``sink``, by the first route that can.

        Args:
            sink: what the audio goes to (the speech, or a unit of its text stream).
            spec: what was asked, for the fallbacks' own requests.
            request: the client's own route's request (checked already).
            owner: the speech whose ``provider``, ``attempts`` and ``cached`` say what happened.
            course: a text stream unit's stream's course.
            from_reader: the caller will not block on the answer (see ``ConnectionPool.take``).
            ahead: open the route's next connection once this one's audio flows (a text
                stream on a dialect with one request per connection).

        Failures reach ``sink._end``. Thread: any.
        """
        Job(self, sink, spec, request, owner, course, from_reader, ahead).go()

    def lookup(self, route: Route, request: Request) -> Tuple[Optional[str], Optional[CachedAudio]]:
        """The cache's key for ``request`` on ``route`` (None: not cacheable) and its hit."""
        if self.cache is None:
            return None, None
        try:
            key = self.cache.key(route.cache_parts(request))
        except InvalidParameterError:  # a field that has no canonical form: not kept
            return None, None
        hit = self.cache.get(key)
        cache_lookup(hit is not None)
        return key, hit

    def replay(self, sink: Sink, audio: CachedAudio) -> bool:
        """Hand ``audio`` to ``sink`` soon, on the Later thread (not on the caller's: a
        ``speak(block=False)`` returns first, and a stream's unit is cut under its lock).
        False once the client is closing."""
        return self.later.call_at(time.monotonic(), functools.partial(_replay, sink, audio))

    def close(self) -> None:
        """Close every route's connections. Thread: any."""
        for route in self.routes:
            route.pool.close()


def _replay(sink: Sink, audio: CachedAudio) -> None:
    """A cached phrase into ``sink``, exactly as a reader hands a service's (rate, chunks as
    they first came, word times, the end). Thread: the client's Later thread."""
    try:
        sink._on_metadata(audio.sample_rate)
        for chunk in audio.chunks:
            if sink._unwanted():  # cancelled meanwhile: the rest is not wanted
                return
            sink._on_audio(chunk)
        if audio.words:
            sink._on_words(audio.words)
        sink._end(None)
    except Exception as exc:  # a bug of ours must end that speech, not the Later thread
        logger.exception("replaying a cached phrase failed")
        sink._end(ConnectionFailed(f"internal error replaying a cached phrase: {exc!r}"))


def _phrase_cache(cache: Union[None, bool, PhraseCache]) -> Optional[PhraseCache]:
    """The cache ``TTSClient(cache=...)`` means. Raises InvalidParameterError."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return PhraseCache()
    if isinstance(cache, PhraseCache):
        return cache
    raise InvalidParameterError(f"cache is True, a PhraseCache or None, got {cache!r}", parameter="cache")


class Job:
    """One request's way to audio: the route it is on and what the ones before it said.

    Thread: the caller of ``send``, then the reader threads of its attempts.
    """

    __slots__ = ("router", "sink", "spec", "request", "owner", "course", "from_reader", "ahead", "index", "waited",
                 "waits")

    def __init__(self, router: Router, sink: Sink, spec: Spec, request: Request, owner: "Speech",
                 course: Optional[Course], from_reader: bool, ahead: bool) -> None:
        self.router = router
        self.sink = sink
        self.spec = spec
        self.request = request  # the first route's
        self.owner = owner
        self.course = course
        self.from_reader = from_reader
        self.ahead = ahead
        self.index = 0 if course is None else (course.settled if course.settled is not None else course.floor)
        self.waited = 0.0  # seconds spent waiting out rate limits
        self.waits = 0     # and how many times

    def go(self) -> None:
        """Try the routes from ``self.index`` on until one takes the request or none is left."""
        routes = self.router.routes
        while not self.sink._unwanted():
            route = routes[self.index]
            try:
                request = self.request if route.index == 0 else route.request(self.spec, routes[0])
            except InvalidParameterError as exc:  # a fallback's own parameters do not fit this text
                refusal: Optional[TTSError] = exc
            else:
                key, hit = self.router.lookup(route, request)
                if hit is not None and self._replay(route, hit):
                    return
                refusal, probe = route.health.admit()
                if refusal is None:
                    self._send(Attempt(self, route, request, probe, key))
                    return
            assert refusal is not None
            if not self._move_on(route, refusal, tried=False):
                return

    def _send(self, attempt: Attempt) -> None:
        route = attempt.route
        self.owner.provider = route.provider
        if route.index:  # the rate the speech expects until a server says otherwise
            self.sink._on_metadata(route.dialect.sample_rate)
        route.slots.take(attempt.send)

    def _replay(self, route: Route, hit: CachedAudio) -> bool:
        if not self.router.replay(self.sink, hit):
            return False
        self.owner.provider = route.provider
        if not self.owner._live:
            self.owner.cached = True
        self._settle(route)
        return True

    def _settle(self, route: Route) -> None:
        course = self.course
        if course is not None and course.settled is None:
            course.settled = route.index
            course.widen()

    def _move_on(self, route: Route, error: TTSError, tried: bool = True) -> bool:
        """``route`` failed before any audio (or, not ``tried``, was passed over): True to
        try the next one; else wait out its rate limit if that fits, or end the sink with
        ``error``."""
        course = self.course
        last = self.index + 1 >= len(self.router.routes)
        if last or (course is not None and course.settled is not None):
            if not (isinstance(error, RateLimited) and self._wait_out(error)):
                self.owner.attempts.append((route.provider, error))
                self.sink._end(error)
            return False
        self.owner.attempts.append((route.provider, error))
        self.index += 1
        if course is not None:
            course.floor = max(course.floor, self.index)
        after = self.router.routes[self.index]
        logger.warning("%s %s (%s: %s); speaking with %s instead", route.title,
                       "failed before any audio" if tried else "is not tried now", type(error).__name__, error,
                       after.title)
        fallback(route.provider.name, after.provider.name, error)
        return True

    def _wait_out(self, error: RateLimited) -> bool:
        """With no other provider to turn to: try this one again once its ``Retry-After``
        has passed (with a little jitter, so that the speeches waiting do not return
        together), as often as its ``retries`` allow and if the wait fits in the connect
        timeout, as a client of a rate-limited API does. True if it will."""
        pause = (error.retry_after if error.retry_after is not None else DEFAULT_RATE_PAUSE) * random.uniform(1.0, 1.1)
        if self.waits >= self.router.routes[self.index].retries or self.waited + pause > self.router.patience:
            return False
        self.waits += 1
        self.waited += pause
        logger.info("%s asked to wait %.1f s; the speech waits (%.1f s of the connect timeout so far)",
                    self.router.routes[self.index].title, pause, self.waited)
        self.from_reader = True  # it resumes on the Later thread, which waits on nothing
        return self.router.later.call_at(time.monotonic() + pause, self.go)

    # -- from the attempt, on its reader thread -----------------------------------------

    def heard(self, attempt: Attempt) -> None:
        """The attempt's first audio came (or it completed without any)."""
        attempt.route.health.succeeded(attempt.probe)
        self.owner._live = True  # not (all) from the cache
        self.owner.cached = False
        self._settle(attempt.route)

    def ended(self, attempt: Attempt, error: Optional[TTSError]) -> None:
        route = attempt.route
        if error is None:
            if not attempt.heard:
                self.heard(attempt)
            self._store(attempt)
            self.sink._end(None)
        elif attempt.heard:  # after audio: never sent again
            self.sink._end(error)
        elif self.sink._unwanted() or not counts_against(error):
            route.health.abandoned(attempt.probe)
            self.sink._end(error)
        else:
            route.health.failed(error, attempt.probe)
            if self._move_on(route, error):
                self.from_reader = True  # the caller of send() no longer waits on this thread
                self.go()

    def _store(self, attempt: Attempt) -> None:
        cache = self.router.cache
        if cache is None or attempt.key is None or attempt.chunks is None or not attempt.chunks:
            return
        rate = attempt.rate or attempt.route.dialect.sample_rate
        cache.put(attempt.key, CachedAudio(rate, tuple(attempt.chunks), attempt.words))


class Attempt(Sink):
    """One try of a request on one route: between the connection and the job's sink.

    Thread: the route's connection's reader thread (``send``: whoever gives it a slot).
    """

    __slots__ = ("job", "sink", "route", "request", "probe", "key", "heard", "over", "chunks", "kept", "rate",
                 "words", "caller")

    def __init__(self, job: Job, route: Route, request: Request, probe: bool, key: Optional[str]) -> None:
        self.job = job
        self.sink = job.sink  # read once per chunk
        self.route = route
        self.request = request
        self.probe = probe
        self.key = key
        self.heard = False
        self.over = False
        self.chunks: Optional[List[bytes]] = [] if key is not None else None  # for the cache
        self.kept = 0
        self.rate: Optional[int] = None
        self.words: Optional[Tuple[WordTime, ...]] = None
        self.caller = threading.current_thread()

    def send(self) -> bool:
        """In a slot of the route: take a connection and begin. False if not sent."""
        job, route = self.job, self.route
        if job.sink._unwanted():  # cancelled while it waited for the slot
            route.health.abandoned(self.probe)
            return False
        # Sent from a slot given back on another thread: that thread waits on nothing.
        mine = job.from_reader or threading.current_thread() is not self.caller
        try:
            connection, refill = route.pool.take(self.request, from_own_reader=mine)
        except TTSError as exc:  # the client was closed meanwhile
            route.health.abandoned(self.probe)
            job.sink._end(exc)
            return False
        then = refill
        if job.ahead and not route.dialect.reusable:
            def then() -> None:  # the next unit's connection opens once this one's audio flows
                refill()
                route.pool.open_ahead(self.request)
        self._attach(connection)
        connection.begin(self, self.request, then=then)
        return True

    def _unwanted(self) -> bool:
        return self.job.sink._unwanted()

    def _attach(self, connection: Connection) -> None:
        self.job.sink._attach(connection)

    def _on_metadata(self, sample_rate: Optional[int]) -> None:
        self.rate = sample_rate or self.rate
        self.job.sink._on_metadata(sample_rate)

    def _on_words(self, words: Tuple[WordTime, ...]) -> None:
        self.words = words
        self.job.sink._on_words(words)

    def _on_audio(self, data: bytes) -> None:
        if not self.heard:
            self.heard = True
            self.job.heard(self)
        chunks = self.chunks
        if chunks is not None:
            self.kept += len(data)
            if self.kept <= _CACHE_CAP:
                chunks.append(data)
            else:
                self.chunks = None
        self.sink._on_audio(data)

    def _end(self, error: Optional[TTSError]) -> None:
        if self.over:
            return
        self.over = True
        self.route.slots.give_back()
        self.job.ended(self, error)
