"""``FaultInjector``: the server's fault points, each of which runs the fault if it acts there.

The server calls every point whatever the fault; a point looks the fault's row up in
the table and does nothing unless the fault acts there. So neither the server, nor
the speaking loop, nor the dialect handlers name any fault.

Each connection draws its fault at its handshake, from what the server injects at that
moment (a spec, a ``FaultMix`` or nothing; ``set_source`` changes it for the
connections that arrive later). websockets runs a connection's handshake and its
handler in one task, so the draw is kept in a context variable and every later point
of that connection (and the tasks it starts) reads it.

This module owns the injector and its per-connection state (the draws, ``Visit``s for
faults that watch a connection, the connections open). It imports ``actions``,
``table``, ``spec`` and ``mix`` from the package and uses a connection only through
its ``websockets`` methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from typing import AsyncIterator, Dict, Iterator, Optional, Set, Tuple

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request as HTTPRequest, Response as HTTPResponse

from .actions import Doorway, Scene, Visit
from .mix import FaultMix, FaultSource
from .spec import FaultSpec
from .table import Fault

__all__ = ["FaultInjector"]

log = logging.getLogger("ttsstream.server")

# The fault the current connection drew at its handshake (None: none).
_drawn: contextvars.ContextVar[Optional[FaultSpec]] = contextvars.ContextVar("ttsstream_fault", default=None)


class FaultInjector:
    """The fault a server injects (or none), run at each of the server's fault points.

    Args:
        source: the fault and its ``after``, a ``FaultMix`` to draw one from per
            connection, or None to inject nothing.

    Thread: the points run on the event loop; only they touch the visits and the open
    connections. ``source``, ``set_source`` and ``handshakes``: any thread.
    """

    def __init__(self, source: FaultSource) -> None:
        # Guarded by the lock: set_source() and handshakes come from any thread.
        self._lock = threading.Lock()
        self._source = source
        self._handshakes = 0
        # Only the event loop touches these: the connections a "connection" fault watches,
        # the connections let through the handshake and not closed yet, and their watchers.
        self._visits: Dict[ServerConnection, Visit] = {}
        self._open: Set[ServerConnection] = set()
        self._watchers: Set["asyncio.Task[None]"] = set()

    @property
    def source(self) -> FaultSource:
        """What new connections get: a spec, a mix, or None. Thread: any."""
        with self._lock:
            return self._source

    def set_source(self, source: FaultSource) -> None:
        """Inject ``source`` into the connections that arrive from now on. Thread: any."""
        with self._lock:
            self._source = source

    @property
    def handshakes(self) -> int:
        """How many upgrade requests arrived, refused ones included. Thread: any."""
        with self._lock:
            return self._handshakes

    @property
    def holds_handshakes(self) -> bool:
        """Whether the fault keeps handshakes open, so that they must not time out."""
        source = self.source
        if isinstance(source, FaultMix):
            return source.holds_handshakes
        return source is not None and source.fault.holds_handshake

    @staticmethod
    def _acting_at(point: str) -> Optional[Tuple[Fault, FaultSpec]]:
        spec = _drawn.get()
        return (spec.fault, spec) if spec is not None and spec.fault.point == point else None

    # -- the points, in the order a connection meets them ------------------------------------

    async def at_handshake(self, connection: ServerConnection, request: HTTPRequest,
                           stopping: asyncio.Event) -> Optional[HTTPResponse]:
        """Draw the connection's fault; return the response to send instead of the 101,
        or None to go on."""
        with self._lock:
            self._handshakes += 1
            source = self._source
        _drawn.set(source.draw() if isinstance(source, FaultMix) else source)
        acting = self._acting_at("handshake")
        response: Optional[HTTPResponse] = None
        if acting is not None:
            fault, spec = acting
            log.debug("injecting fault %r at the handshake", fault.name)
            response = await fault.action(Doorway(connection, request, stopping, spec.after, len(self._open)))
        if response is None:  # let through: open until it closes
            self._open.add(connection)
            watcher = asyncio.ensure_future(self._forget_when_closed(connection))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
        return response

    async def _forget_when_closed(self, connection: ServerConnection) -> None:
        try:
            await connection.wait_closed()
        finally:
            self._open.discard(connection)

    def judge_key(self, verdict: bool) -> bool:
        """Whether a key is accepted, given the server's own ``verdict``."""
        acting = self._acting_at("key")
        return verdict if acting is None else bool(acting[0].action(verdict))

    @contextlib.asynccontextmanager
    async def watching(self, ws: ServerConnection) -> AsyncIterator[None]:
        """Run the fault beside a connection's handler, for the connection's whole life."""
        acting = self._acting_at("connection")
        if acting is None:
            yield
            return
        fault, spec = acting
        visit = Visit(ws, spec.after if spec.after is not None else 0.0)
        self._visits[ws] = visit
        task = asyncio.ensure_future(fault.action(visit))
        try:
            yield
        finally:
            del self._visits[ws]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @contextlib.contextmanager
    def speaking(self, ws: ServerConnection) -> Iterator[None]:
        """Mark an utterance as under way on ``ws`` (a connection fault may care)."""
        visit = self._visits.get(ws)
        if visit is None:
            yield
            return
        visit.begin()
        try:
            yield
        finally:
            visit.end()

    async def at_frame(self, scene: Scene) -> None:
        """Before each binary frame of an utterance, and once after its last one: act once
        ``after`` frames are out (before the first, if ``after`` counts no frames).

        Raises:
            Stop: the fault ends the utterance.
        """
        acting = self._acting_at("frame")
        if acting is None:
            return
        fault, spec = acting
        if scene.take.frames == (spec.after if fault.unit == "frames" else 0):
            await self._act(fault, spec, scene)

    async def at_end(self, scene: Scene) -> None:
        """When all the audio of an utterance is out, before its end message.

        Raises:
            Stop: the fault ends the utterance.
        """
        acting = self._acting_at("end")
        if acting is not None:
            await self._act(*acting, scene)

    async def _act(self, fault: Fault, spec: FaultSpec, scene: Scene) -> None:
        take = scene.take
        if take.fault_done:
            return
        take.fault_done = True
        take.fault = fault.name
        log.debug("injecting fault %r after %d frames", fault.name, take.frames)
        if await fault.action(scene._replace(after=spec.after)) is False:
            take.fault = None
