"""``FaultInjector``: the server's fault points, each of which runs the fault if it acts there.

The server calls every point whatever the fault; a point looks the fault's row up in
the table and does nothing unless the fault acts there. So neither the server, nor
the speaking loop, nor the dialect handlers name any fault.

This module owns the injector and its per-connection state (``Visit``s, for faults
that watch a connection). It imports ``actions``, ``table`` and ``spec`` from the
package and uses a connection only through its ``websockets`` methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Dict, Iterator, Optional

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request as HTTPRequest, Response as HTTPResponse

from .actions import Doorway, Scene, Visit
from .spec import FaultSpec
from .table import Fault

__all__ = ["FaultInjector"]

log = logging.getLogger("ttsstream.server")


class FaultInjector:
    """The fault a server injects (or none), run at each of the server's fault points.

    Args:
        spec: the fault and its ``after``; None injects nothing.

    Thread: the points run on the event loop; only they touch the visits.
    """

    def __init__(self, spec: Optional[FaultSpec]) -> None:
        self.spec = spec
        self._fault: Optional[Fault] = spec.fault if spec is not None else None
        # Only the event loop touches this: the connections a "connection" fault watches.
        self._visits: Dict[ServerConnection, Visit] = {}

    def _acting_at(self, point: str) -> Optional[Fault]:
        fault = self._fault
        return fault if fault is not None and fault.point == point else None

    @property
    def holds_handshakes(self) -> bool:
        """Whether the fault keeps handshakes open, so that they must not time out."""
        return self._fault is not None and self._fault.holds_handshake

    # -- the points, in the order a connection meets them ------------------------------------

    async def at_handshake(self, connection: ServerConnection, request: HTTPRequest,
                           stopping: asyncio.Event) -> Optional[HTTPResponse]:
        """The response to send instead of the 101, or None to go on."""
        fault = self._acting_at("handshake")
        if fault is None:
            return None
        log.debug("injecting fault %r at the handshake", fault.name)
        response: Optional[HTTPResponse] = await fault.action(Doorway(connection, request, stopping))
        return response

    def judge_key(self, verdict: bool) -> bool:
        """Whether a key is accepted, given the server's own ``verdict``."""
        fault = self._acting_at("key")
        return verdict if fault is None else fault.action(verdict)

    @contextlib.asynccontextmanager
    async def watching(self, ws: ServerConnection) -> AsyncIterator[None]:
        """Run the fault beside a connection's handler, for the connection's whole life."""
        fault = self._acting_at("connection")
        if fault is None:
            yield
            return
        after = self.spec.after if self.spec is not None else None
        visit = Visit(ws, after if after is not None else 0.0)
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
        ``after`` frames are out.

        Raises:
            Stop: the fault ends the utterance.
        """
        fault = self._acting_at("frame")
        if fault is not None and self.spec is not None and scene.take.frames == self.spec.after:
            await self._act(fault, scene)

    async def at_end(self, scene: Scene) -> None:
        """When all the audio of an utterance is out, before its end message.

        Raises:
            Stop: the fault ends the utterance.
        """
        fault = self._acting_at("end")
        if fault is not None:
            await self._act(fault, scene)

    async def _act(self, fault: Fault, scene: Scene) -> None:
        take = scene.take
        if take.fault_done:
            return
        take.fault_done = True
        take.fault = fault.name
        log.debug("injecting fault %r after %d frames", fault.name, take.frames)
        if await fault.action(scene) is False:
            take.fault = None
