"""The connection pool: which connection a speech gets, and every connection a client opened.

A client hands each ``speak()`` to ``ConnectionPool.take``. Where the dialect lets one
connection carry several speeches in turn (Shunyalabs), a connection that finished a
speech normally waits here, keyed by its session (the fields fixed per connection:
model, voice, settings), and the next request with the same session takes it; otherwise
a new connection is made. The pool also remembers every connection it made, so that
closing the client closes them all.

This is where reuse is decided. Imports: connection, protocols, errors.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

from .connection import Connection
from .errors import TTSError
from .protocols import Dialect, Request

__all__ = ["ConnectionPool"]

Endpoint = Union[str, Callable[[], str]]


class ConnectionPool:
    """The connections of one client, and the idle ones by session, for reuse.

    Args:
        dialect: the server dialect (``dialect.reusable`` says whether to reuse).
        api_key: the key, or None.
        timeout: seconds for connecting, and the longest silence between two frames.

    Thread: any. The pool's lock guards everything it holds; connections call back into
    it from their reader threads.
    """

    def __init__(self, dialect: Dialect, api_key: Optional[str], timeout: float) -> None:
        self._dialect = dialect
        self._api_key = api_key
        self._timeout = timeout
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._all: Set[Connection] = set()
        self._idle: Dict[Tuple[Any, ...], List[Connection]] = {}
        self._closed = False

    def take(self, request: Request, endpoint: Endpoint) -> Connection:
        """An idle connection for ``request``'s session, or a new one (not yet connected).

        Args:
            request: the request it will carry.
            endpoint: the URL, or a function the new connection's reader thread calls for it.

        Raises:
            TTSError: the pool is closed.
        """
        me = threading.current_thread()
        with self._lock:
            if self._closed:
                raise TTSError("this TTSClient is closed; make a new one")
            idle = self._idle.get(request.session, [])
            for connection in reversed(idle):
                # Not one whose reader is running this very call (speak() inside a
                # callback): that reader could not read its own answer.
                if connection.alive and connection.thread is not me:
                    idle.remove(connection)
                    return connection
            self._forget_dead()
            connection = Connection(self._dialect, endpoint, self._api_key, self._timeout,
                                    on_idle=self._park, on_exit=self._drop)
            self._all.add(connection)
            return connection

    def close(self) -> None:
        """Close every connection and join its reader (except the calling thread's).

        Connections that finish a speech later are closed instead of kept. Idempotent.
        Thread: any, including a reader thread (from inside a callback).
        """
        with self._lock:
            self._closed = True
            self._idle.clear()
            connections = list(self._all)
        for connection in connections:
            connection.close()
        with self._lock:
            self._forget_dead()

    def _park(self, connection: Connection) -> None:
        """A reusable connection finished a speech: keep it for the next one.

        Thread: the connection's reader thread.
        """
        request = connection.request
        with self._lock:
            if not self._closed and request is not None:
                self._idle.setdefault(request.session, []).append(connection)
                return
        connection.abort()

    def _drop(self, connection: Connection) -> None:
        """A connection's reader is exiting: it can no longer be handed out.

        Thread: the connection's reader thread.
        """
        with self._lock:
            for idle in self._idle.values():
                if connection in idle:
                    idle.remove(connection)

    def _forget_dead(self) -> None:
        """Under the lock: stop remembering connections whose reader has exited."""
        self._all.difference_update([c for c in self._all if c.thread.ident is not None and not c.thread.is_alive()])
