"""The connection pool: which connection a speech gets, connections opened ahead, and closing them all.

A client hands each ``speak()`` to ``ConnectionPool.take``, which gives it an open idle
connection of the same session (the fields fixed per connection: the model for
EigenAI; model, voice and settings for Shunyalabs) or else a new one.

Idle connections come from two places. Where the dialect lets one connection carry
several speeches in turn (Shunyalabs), a connection that finished a speech normally
waits here for the next. And ``prewarm`` opens connections ahead of any speech
(connected, and authenticated where the dialect sends that up front: EigenAI's auth
message, Shunyalabs' config), so that ``speak()`` sends only its request: on a real
network that saves the TCP, TLS and WebSocket round trips, which is most of the time to
first audio. A prewarmed session is kept topped up (unless ``keep=False``): when one of
its connections is taken, or retires, another is opened in the background (the refill),
at a pace that follows demand: one at a time per client, the next once the last is
open; at a speech's first audio when it is the only one running, else when a speech
ends. A burst of speeches taken from a large pool is thus not slowed by as many
handshakes: its replacements open as its speeches end.

An idle connection retires itself after ``max_idle`` seconds (``Connection``), before
a server, load balancer or NAT drops it unseen; one that died unseen anyway is caught
when a speech sent on it fails before any audio, and the speech is sent again on a
fresh connection (``Connection``'s ``on_retry``), invisibly. So is one whose fresh
connection failed before any audio, within the retry policy (``retry.py``).

This is where reuse is decided. Imports: connection, protocols, retry, errors.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from .connection import Connection, Settings, Sink
from .errors import SynthesisTimeout, TTSError
from .protocols import Request

__all__ = ["ConnectionPool", "DEFAULT_MAX_IDLE"]

logger = logging.getLogger("ttsstream.pool")

# Seconds an open connection may wait unused. Load balancers and proxies drop idle
# WebSockets silently after 60 s by default (AWS ALB, nginx's proxy_read_timeout, Heroku's
# 55 s) and some after 30 s; retiring at 30 s keeps clear of all of them, and costs one
# handshake per half minute for each prewarmed connection.
DEFAULT_MAX_IDLE = 30.0

Session = Tuple[Any, ...]


class ConnectionPool:
    """The connections of one client: the idle ones by session, and all of them, to close.

    Args:
        settings: what its connections share: the dialect (``dialect.reusable`` says
            whether to reuse), endpoint, key, timeouts, idle age and retry policy.

    Thread: any. The pool's lock guards everything below it; connections call back
    into the pool from their reader threads, never while holding a lock of their own.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._all: Set[Connection] = set()
        # Idle connections by session, oldest first (a dict as an ordered set: removing
        # one is O(1), which a thousand streams need).
        self._idle: Dict[Session, Dict[Connection, None]] = {}
        self._warm: Dict[Session, Tuple[Request, int]] = {}  # sessions kept topped up: a request of it, how many
        self._refilling: Optional[Connection] = None  # the replacement opening now (one at a time)
        self._closed = False

    def take(self, request: Request, from_own_reader: bool = False) -> Tuple[Connection, Callable[[], None]]:
        """An idle connection for ``request``'s session, or a new one (not yet connected).

        An open one first (the most recently used), else one still opening (the first
        to start); never the replacement a take has just started.

        Args:
            request: the request it is for.
            from_own_reader: a connection whose reader thread is the caller's may be
                taken (the caller will not block waiting for its answer).

        Returns:
            The connection, and ``refill``: call it once the request's first audio has
            arrived (``Connection.begin``'s ``then``), to start opening a kept session's
            replacement if the client is quiet (see ``_next_refill``): a new connection's
            thread and handshake would otherwise compete with the answer.

        Raises:
            TTSError: the pool is closed.
        """
        me = None if from_own_reader else threading.current_thread()
        with self._lock:
            self._check_open()
            # Not one whose reader is running this very call (speak() inside a callback):
            # that reader could not read its own answer.
            idle = self._idle.get(request.session, {})
            connection = opening = None
            for candidate in list(idle):
                if not candidate.alive:
                    del idle[candidate]
                elif candidate.thread is not me:
                    if candidate.was_open:
                        connection = candidate
                        break
                    opening = opening or candidate
            connection = connection or opening
            if connection is not None:
                del idle[connection]
            else:
                connection = self._new()
        return connection, self._refill

    def prewarm(self, template: Request, count: int, keep: bool = True) -> List[Connection]:
        """Open what is missing of ``count`` idle connections of ``template``'s session now
        (in the background), and with ``keep`` keep that many open (0 lets them lapse);
        without it, open them once: those taken or retired are not replaced.

        Returns:
            The session's idle connections (see ``Connection.wait_open``).

        Raises:
            TTSError: the pool is closed.
        """
        with self._lock:
            self._check_open()
            session = template.session
            self._warm[session] = (template, count)
            fresh = self._top_up(session)  # all at once: the caller asked for them now
            if not count or not keep:
                del self._warm[session]
            ready = list(self._idle.get(session, {}))
        self._open_all(fresh)
        return ready

    def open_ahead(self, template: Request) -> None:
        """Open one connection of ``template``'s session now unless one is idle already:
        the next request of a text stream then skips connecting. Nothing is kept up after.
        """
        with self._lock:
            if self._closed:
                return
            idle = self._idle.setdefault(template.session, {})
            if any(c.alive for c in idle):
                return
            connection = self._new()
            idle[connection] = None
        connection.open(template)

    def wait_open(self, connections: List[Connection], timeout: float) -> None:
        """Block until every one of ``connections`` is open.

        Raises:
            SynthesisTimeout: ``timeout`` seconds passed first (``limit="connect"``).
            TTSError: a connection failed to open (its error: refused, bad key, ...).
        """
        deadline = time.monotonic() + timeout
        for connection in connections:
            if not connection.wait_open(max(0.0, deadline - time.monotonic())):
                raise SynthesisTimeout(f"the connections were not open within {timeout:g} s", limit="connect")

    def close(self) -> None:
        """Close every connection and join its reader (except the calling thread's).

        Connections that finish a speech later are closed instead of kept. Idempotent.
        Thread: any, including a reader thread (from inside a callback).
        """
        with self._lock:
            self._closed = True
            self._idle.clear()
            self._warm.clear()
            connections = list(self._all)
        for connection in connections:
            connection.close()
        with self._lock:
            self._forget_dead()

    # -- under the lock ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TTSError("this TTSClient is closed; make a new one")

    def _new(self, attempt: int = 0, deadline: Optional[float] = None) -> Connection:
        """A new connection, remembered (not started)."""
        connection = Connection(self._settings, on_idle=self._park, on_exit=self._drop, on_retry=self._resend,
                                on_open=self._refill, attempt=attempt, deadline=deadline)
        self._all.add(connection)
        return connection

    def _top_up(self, session: Session, at_most: Optional[int] = None) -> List[Tuple[Connection, Request]]:
        """New idle connections (``at_most`` of them, if given) for a kept ``session`` that
        has fewer than it should; the caller opens them after letting go of the lock."""
        if self._closed or session not in self._warm:
            return []
        template, count = self._warm[session]
        idle = self._idle.setdefault(session, {})  # exiting connections leave it (_drop)
        missing = count - len(idle)
        fresh = [self._new() for _ in range(missing if at_most is None else min(at_most, missing))]
        idle.update(dict.fromkeys(fresh))
        return [(connection, template) for connection in fresh]

    def _next_refill(self, ended: bool = False) -> List[Tuple[Connection, Request]]:
        """The next replacement to open, if none is opening and a kept session is short,
        and the client is quiet (at most one speech running) or a speech has just
        ``ended``: during a burst, replacements wait for its speeches to end."""
        serving = len(self._all) - sum(len(idle) for idle in self._idle.values())  # taken, or a resend's
        if self._refilling is not None or (serving > 1 and not ended):
            return []
        for session in self._warm:
            fresh = self._top_up(session, at_most=1)
            if fresh:
                self._refilling = fresh[0][0]
                return fresh
        return []

    def _forget_dead(self) -> None:
        """Stop remembering connections whose reader has exited."""
        self._all.difference_update([c for c in self._all if c.thread.ident is not None and not c.thread.is_alive()])

    # -- called by connections, on their reader threads ---------------------------------

    @staticmethod
    def _open_all(fresh: List[Tuple[Connection, Request]]) -> None:
        for connection, template in fresh:
            connection.open(template)

    def _refill(self, done: Optional[Connection] = None) -> None:
        """Open the next replacement a kept session is short of, unless one is opening
        (``done``: the one that was has opened, or ended). Thread: any, no lock held."""
        with self._lock:
            if done is not None and self._refilling is done:
                self._refilling = None
            fresh = self._next_refill()
        self._open_all(fresh)

    def _park(self, connection: Connection) -> None:
        """A reusable connection finished a speech: keep it for the next one."""
        request = connection.request
        with self._lock:
            if not self._closed and request is not None:
                self._idle.setdefault(request.session, {})[connection] = None
                return
        connection.abort()

    def _drop(self, connection: Connection) -> None:
        """A connection's reader is exiting: it can no longer be handed out. One that ended
        cleanly after it opened (it retired, or the server closed it normally) is
        replaced if its session is kept (by the refill); one that failed is not, so that
        a server that is down, or refuses the key, is not called again and again."""
        request = connection.request
        clean = connection.was_open and connection.error is None
        with self._lock:
            self._all.discard(connection)
            if request is not None:
                self._idle.get(request.session, {}).pop(connection, None)
            if self._refilling is connection:
                self._refilling = None
            fresh = self._next_refill(ended=True) if clean else []
        self._open_all(fresh)

    def _resend(self, sink: Sink, request: Request, error: TTSError, attempt: int,
                deadline: Optional[float]) -> bool:
        """A speech failed before any of its audio, in a way worth trying again: send it
        on a new connection (which waits out the backoff for ``attempt`` first)."""
        with self._lock:
            if self._closed:
                return False
            connection = self._new(attempt, deadline)
        if attempt:
            logger.info("the connection failed before any audio (%s); attempt %d of %d follows", error,
                        attempt + 1, self._settings.retry.retries + 1)
        else:
            logger.info("a reused connection had closed while idle (%s); sending the speech again on a new one",
                        error)
        sink._attach(connection)
        connection.begin(sink, request)
        return True
