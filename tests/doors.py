"""TCP front doors for tests, so a client meets a flaky service exactly as it would on a
real network.

``Door`` turns away the first connections (an HTTP status, or a TCP connection closed
at once) and then pipes the rest to a server byte for byte; it counts every connection
it accepted. ``ChaosDoor`` draws a behaviour for each connection from a seeded mix
(answer an HTTP status itself, or pipe to one of several servers, faulty or not), can
refuse everything for a while (an outage), and counts connections per behaviour and per
time window. The benchmarks import this module too (``benchmarks/bench_fallback.py``).
"""

from __future__ import annotations

import bisect
import random
import selectors
import socket
import threading
import time
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

HTTP_503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
HTTP_401 = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
HTTP_429 = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n")


class Door:
    """A TCP front door: the first ``refusals`` connections get ``answer`` (raw bytes to
    send before closing, or b"" to close at once); later ones are piped to ``port``."""

    def __init__(self, port: int, refusals: int, answer: bytes) -> None:
        self._target = port
        self._refusals = refusals
        self._answer = answer
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._sockets: List[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, name="door")
        self._accepting.start()

    def _accept(self) -> None:
        for client in _accepted(self._listener):
            self.accepted += 1
            if self.accepted <= self._refusals:
                if self._answer:
                    client.recv(65536)  # the handshake request
                    client.sendall(self._answer)
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, server]
            thread = threading.Thread(target=_pipe_both, args=(client, server), name="door-pipe")
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        _stop_listening(self._listener, self._accepting)
        _cut(self._sockets)
        for thread in self._threads:
            thread.join(5)
        for sock in self._sockets:
            sock.close()


# What ChaosDoor answers itself, by behaviour name; every other behaviour pipes to a port.
ANSWERS = {"http_503": HTTP_503, "http_429": HTTP_429}
OUTAGE = "outage"  # the behaviour of every connection while the door refuses everything (503)
_HANDSHAKE_TIMEOUT = 5.0


class ChaosDoor:
    """A TCP front door that misbehaves at random, reproducibly.

    Each accepted connection draws one behaviour from ``mix`` with a ``random.Random(seed)``
    (so a run's sequence of behaviours is the seed's, whatever the threads' timing):
    ``"http_503"`` and ``"http_429"`` (with ``Retry-After: 1``) are answered by the door
    itself after it has read the handshake; any other name pipes the connection, byte for
    byte, to ``targets[name]`` (a port on loopback). ``refuse(True)`` turns every later
    connection away with HTTP 503 (behaviour ``"outage"``) until ``refuse(False)``.

    Args:
        targets: the port each piping behaviour goes to.
        mix: each behaviour's weight (they need not sum to 1).
        seed: the draw's seed.

    Thread: the door's own accept thread and one thread per connection; the counters are
    read on any thread (one lock guards them).
    """

    def __init__(self, targets: Mapping[str, int], mix: Mapping[str, float], seed: int = 19) -> None:
        unknown = set(mix) - set(targets) - set(ANSWERS)
        if unknown:
            raise ValueError(f"behaviours with no target and no answer: {sorted(unknown)}")
        self._targets = dict(targets)
        self._names = list(mix)
        self._cumulative: List[float] = []
        total = 0.0
        for name in self._names:
            total += mix[name]
            self._cumulative.append(total)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._log: List[Tuple[float, str]] = []     # (monotonic time accepted, behaviour) per connection
        self._refusing = False
        self._windows: List[Tuple[float, Optional[float]]] = []  # the outages: (began, ended or None)
        self._open: Dict[int, Tuple[socket.socket, ...]] = {}  # sockets of connections under way, by id
        self._threads: Dict[int, threading.Thread] = {}
        self._next_id = 0
        # Only the accept thread and close() touch the listener.
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept, name="chaos-door")
        self._accepting.start()

    # -- counting -------------------------------------------------------------------------

    def count(self, behaviour: Optional[str] = None, start: float = float("-inf"), end: float = float("inf")) -> int:
        """Connections accepted in [start, end) (monotonic seconds) with ``behaviour`` (None: any)."""
        with self._lock:
            return sum(1 for when, name in self._log
                       if start <= when < end and (behaviour is None or name == behaviour))

    def counts(self) -> Dict[str, int]:
        """Connections accepted so far, by behaviour."""
        with self._lock:
            found: Dict[str, int] = {}
            for _, name in self._log:
                found[name] = found.get(name, 0) + 1
            return found

    @property
    def outages(self) -> List[Tuple[float, Optional[float]]]:
        """Each outage's (began, ended) in monotonic seconds; ended is None while it lasts."""
        with self._lock:
            return list(self._windows)

    def refuse(self, refusing: bool) -> None:
        """Begin (True) or end (False) an outage: while it lasts, every connection gets HTTP 503."""
        with self._lock:
            if refusing == self._refusing:
                return
            self._refusing = refusing
            now = time.monotonic()
            if refusing:
                self._windows.append((now, None))
            else:
                self._windows[-1] = (self._windows[-1][0], now)

    # -- the connections ------------------------------------------------------------------

    def _draw(self) -> str:
        pick = self._random.random() * self._cumulative[-1]
        return self._names[bisect.bisect_right(self._cumulative, pick)]

    def _accept(self) -> None:
        for client in _accepted(self._listener):
            with self._lock:
                behaviour = OUTAGE if self._refusing else self._draw()
                self._log.append((time.monotonic(), behaviour))
                ident = self._next_id
                self._next_id += 1
                self._open[ident] = (client,)
                thread = threading.Thread(target=self._serve, args=(ident, client, behaviour),
                                          name=f"chaos-door-{ident}")
                self._threads[ident] = thread
            thread.start()

    def _serve(self, ident: int, client: socket.socket, behaviour: str) -> None:
        server: Optional[socket.socket] = None
        try:
            answer = HTTP_503 if behaviour == OUTAGE else ANSWERS.get(behaviour)
            if answer is not None:
                _read_handshake(client)
                client.sendall(answer)
                return
            server = socket.create_connection(("127.0.0.1", self._targets[behaviour]))
            with self._lock:
                if ident not in self._open:  # closed meanwhile
                    return
                self._open[ident] = (client, server)
            _pipe_both(client, server)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.pop(ident, None)
                self._threads.pop(ident, None)
            for sock in (client, server):
                if sock is not None:
                    sock.close()

    def close(self) -> None:
        """Stop accepting, cut every connection under way, and join every thread."""
        _stop_listening(self._listener, self._accepting)
        with self._lock:
            sockets = [sock for pair in self._open.values() for sock in pair]
            self._open.clear()
            threads = list(self._threads.values())
        _cut(sockets)
        for thread in threads:
            thread.join(5)


def _accepted(listener: socket.socket) -> Iterator[socket.socket]:
    """Each connection the listener accepts, until it is closed (``_stop_listening``)."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # closed
        yield client


def _stop_listening(listener: socket.socket, accepting: threading.Thread) -> None:
    try:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
    except OSError:
        pass
    listener.close()
    accepting.join(5)


def _cut(sockets: List[socket.socket]) -> None:
    """Shut every socket both ways: the threads piping them see their ends and return."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _read_handshake(client: socket.socket) -> None:
    """Read the client's HTTP upgrade request (up to its blank line), so that the answer
    is one it reads rather than a reset."""
    client.settimeout(_HANDSHAKE_TIMEOUT)
    seen = b""
    while b"\r\n\r\n" not in seen:
        data = client.recv(65536)
        if not data:
            return
        seen += data


def _pipe_both(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides have ended theirs (a half-close is passed on)."""
    try:
        _copy_both(a, b)
    except OSError:  # a side reset or was cut by close(): the pipe is over
        pass


def _copy_both(a: socket.socket, b: socket.socket) -> None:
    peer = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        for sock in (a, b):
            selector.register(sock, selectors.EVENT_READ)
        live = 2
        while live:
            for key, _ in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(65536)
                if data:
                    peer[source].sendall(data)
                    continue
                selector.unregister(source)
                live -= 1
                try:
                    peer[source].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
