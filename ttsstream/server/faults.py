"""Faults the bundled server injects, so that tests can watch a client meet a bad server.

A fault is one entry in ``_ACTIONS``: its name and what it does at an utterance's
fault point (once ``fault_after`` of its binary frames are out). An action may send,
close or abort; it ends the utterance by raising ``Stop`` or returns to let it go on
(returning False: it did not apply to this utterance).
Adding a fault is adding an entry: neither the speaking loop nor the dialect handlers
name any fault.

This module owns ``FAULTS``, the actions and ``FaultInjector``. It imports
``transcript`` and ``ttsstream.checks`` from the package and uses the connection only
through its ``websockets`` methods.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Dict, NamedTuple, Optional

from websockets.asyncio.server import ServerConnection

from ..checks import require_number
from .transcript import Take, Transcript

__all__ = ["FAULTS", "FaultInjector", "Stop"]

log = logging.getLogger("ttsstream.server")

GARBAGE = "this is not json"


class Stop(Exception):
    """Ends the current utterance early; ``keep_serving`` says whether the connection lives on."""

    def __init__(self, keep_serving: bool) -> None:
        super().__init__(keep_serving)
        self.keep_serving = keep_serving


class Scene(NamedTuple):
    """What a fault acts on: the connection, the utterance, and how its dialect says "error"."""

    ws: ServerConnection
    take: Take
    error_frame: Callable[[str, int], str]
    transcript: Transcript

    def record(self) -> None:
        """Record the utterance as not completed, before acting, so that a client that
        sees the fault can already find the record."""
        self.transcript.record(self.take, completed=False)


async def _drop(scene: Scene) -> None:
    """Abort TCP: no close frame."""
    scene.record()
    scene.ws.transport.abort()
    raise Stop(False)


async def _stall(scene: Scene) -> None:
    """Send nothing more until the client leaves."""
    scene.record()
    await scene.ws.wait_closed()
    raise Stop(False)


async def _error(scene: Scene) -> None:
    """The dialect's error message, code 500; the connection serves on."""
    scene.record()
    await scene.ws.send(scene.error_frame("engine failed", 500))
    raise Stop(True)


async def _garbage(scene: Scene) -> None:
    """A text frame that is not JSON, then carry on (the utterance may still complete)."""
    await scene.ws.send(GARBAGE)


async def _close(scene: Scene) -> None:
    """Close with 1011 (internal error)."""
    scene.record()
    await scene.ws.close(1011, "internal error")
    raise Stop(False)


async def _reset_reused(scene: Scene) -> Optional[bool]:
    """On a connection's second and later utterances, abort TCP before answering: what a
    client meets on a connection that a NAT or load balancer dropped while it was idle.
    The first utterance is served."""
    if not any(u.connection == scene.take.connection for u in scene.transcript.utterances()):
        return False
    await _drop(scene)
    return True


_ACTIONS: Dict[str, Callable[[Scene], Awaitable[Optional[bool]]]] = {
    "drop": _drop,
    "stall": _stall,
    "error": _error,
    "garbage": _garbage,
    "close": _close,
    "reset_reused": _reset_reused,
}

# The names LocalServer(fault=...) accepts; None injects nothing.
FAULTS = (None, *_ACTIONS)


class FaultInjector:
    """The fault a server injects into every utterance, and after how many frames.

    Args:
        fault: a name from ``FAULTS``.
        after: how many binary frames of an utterance go out before the fault.

    Raises:
        ValueError: for an unknown fault or a negative or non-int ``after``.

    Thread: point() runs on the event loop; the injector itself never changes.
    """

    def __init__(self, fault: Optional[str], after: int) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: choose one of {', '.join(map(repr, FAULTS))}")
        self._fault = fault
        self._action = _ACTIONS[fault] if fault is not None else None
        self._after = require_number("fault_after", after, 0, integer=True)

    async def point(self, ws: ServerConnection, take: Take, error_frame: Callable[[str, int], str],
                    transcript: Transcript) -> None:
        """Inject the fault if ``take`` is where it is due: once, when ``after`` frames are out.

        Raises:
            Stop: the fault ends the utterance.
        """
        if self._action is None or take.fault_done or take.frames != self._after:
            return
        take.fault_done = True
        take.fault = self._fault
        log.debug("injecting fault %r after %d frames", self._fault, take.frames)
        if await self._action(Scene(ws, take, error_frame, transcript)) is False:
            take.fault = None
