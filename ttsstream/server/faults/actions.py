"""What each fault does, written against the one thing it acts on at its point.

- At the handshake a fault gets a ``Doorway`` (the connection, its HTTP request, the
  fault's ``after`` and how many connections are open) and returns the HTTP response
  to send instead of the 101, or None to let the handshake go on.
- For a connection's whole life a fault gets a ``Visit`` and runs beside the handler.
- Where a key is checked a fault gets the verdict and returns its own.
- Inside an utterance (after some of its frames, or before its end message) a fault
  gets a ``Scene``. It may send, close or abort; it ends the utterance by raising
  ``Stop``, lets it go on by returning, and returns False when it did not apply.

This module owns those four views and the actions; ``table`` says which action is
which fault, at which point. It imports ``transcript`` and ``synthesis`` (the pacer)
from the package and uses a connection only through its ``websockets`` methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from http import HTTPStatus
from typing import Awaitable, Callable, NamedTuple, Optional, Protocol

try:  # Unix: to ask the kernel what it has not sent yet
    import fcntl
    import termios
    _IOCTL = True
except ImportError:  # pragma: no cover  (Windows)
    _IOCTL = False

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request as HTTPRequest, Response as HTTPResponse

from ..synthesis import Pacer
from ..transcript import Take, Transcript

__all__ = ["Stop", "Doorway", "Visit", "Scene", "GARBAGE", "UNKNOWN_JSON", "HUGE_FRAME_BYTES",
           "IDLE_CLOSE_CODE", "IDLE_CLOSE_REASON", "SLOW_PACE", "TOO_MANY"]

log = logging.getLogger("ttsstream.server")

GARBAGE = "this is not json"
# Valid JSON of a type no dialect defines, with none of the fields a client keys on
# ("error", "sample_rate"): a client must skip it.
UNKNOWN_JSON = '{"type":"x-ttsstream-unknown","detail":"a message type no client knows"}'
HUGE_FRAME_BYTES = 4 * 1024 * 1024
# 1001, "going away": what load balancers close an idle WebSocket with.
IDLE_CLOSE_CODE = 1001
IDLE_CLOSE_REASON = "idle timeout"
SLOW_PACE = 0.5  # "slow": audio leaves at half the speed it plays
_SEND_PATIENCE = 1.0
# What concurrency_limit answers beyond its limit, as ElevenLabs and Cartesia word it.
TOO_MANY = "too many concurrent connections"


class Stop(Exception):
    """Ends the current utterance early; ``keep_serving`` says whether the connection lives on."""

    def __init__(self, keep_serving: bool) -> None:
        super().__init__(keep_serving)
        self.keep_serving = keep_serving


# -- the handshake ---------------------------------------------------------------------


class Doorway(NamedTuple):
    """A connection at its handshake: what a handshake fault acts on.

    Attributes:
        connection: the connection (its HTTP request has arrived; nothing was answered).
        request: that request.
        stopping: set when the server stops.
        after: the fault's ``after`` (seconds or connections), or None.
        open_connections: how many of the server's connections are open (not this one).
    """

    connection: ServerConnection
    request: HTTPRequest
    stopping: asyncio.Event
    after: Optional[float] = None
    open_connections: int = 0


async def http_401(door: Doorway) -> HTTPResponse:
    return door.connection.respond(HTTPStatus.UNAUTHORIZED, "invalid API key\n")


async def http_500(door: Doorway) -> HTTPResponse:
    return door.connection.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error\n")


async def http_503(door: Doorway) -> HTTPResponse:
    return door.connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "service unavailable\n")


async def http_429(door: Doorway) -> HTTPResponse:
    seconds = door.after if door.after is not None else 1.0
    return _too_many(door, "rate limit exceeded", "rate_limit_exceeded", seconds)


async def concurrency_limit(door: Doorway) -> Optional[HTTPResponse]:
    limit = door.after if door.after is not None else 2
    if door.open_connections < limit:
        return None
    return _too_many(door, TOO_MANY, "concurrency_limit_exceeded", 1.0)


def _too_many(door: Doorway, said: str, code: str, retry_after: float) -> HTTPResponse:
    """HTTP 429 with a ``Retry-After`` and a JSON body, as rate-limited services answer."""
    body = json.dumps({"error": {"message": said, "code": code, "retry_after": retry_after}})
    response = door.connection.respond(HTTPStatus.TOO_MANY_REQUESTS, body + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    response.headers["Retry-After"] = f"{retry_after:g}"
    return response


async def no_handshake(door: Doorway) -> HTTPResponse:
    """Say nothing until the client leaves or the server stops; then drop the TCP connection."""
    waits = [asyncio.ensure_future(door.connection.wait_closed()), asyncio.ensure_future(door.stopping.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    door.connection.transport.abort()
    # Never sent: the transport is closed. websockets needs a response to finish the handshake.
    return door.connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "")


# -- a connection ----------------------------------------------------------------------


class Visit:
    """One accepted connection, as a connection fault sees it: is an utterance under way?

    Attributes:
        ws: the connection.
        after: the fault's ``after`` (seconds).

    Thread: the event loop only.
    """

    def __init__(self, ws: ServerConnection, after: float) -> None:
        self.ws = ws
        self.after = after
        self._busy = 0
        self._changed = asyncio.Event()

    def begin(self) -> None:
        """An utterance starts on the connection."""
        self._busy += 1
        self._changed.set()

    def end(self) -> None:
        """An utterance on the connection has ended, however it ended."""
        self._busy -= 1
        self._changed.set()

    async def idle_for(self, seconds: float) -> None:
        """Return once no utterance has been under way for ``seconds``."""
        while True:
            self._changed.clear()
            if self._busy:
                await self._changed.wait()
                continue
            try:
                await asyncio.wait_for(self._changed.wait(), seconds)
            except asyncio.TimeoutError:
                return


async def idle_close(visit: Visit) -> None:
    await visit.idle_for(visit.after)
    log.debug("closing a connection idle for %g s", visit.after)
    await visit.ws.close(IDLE_CLOSE_CODE, IDLE_CLOSE_REASON)


# -- the key ------------------------------------------------------------------------------


def refuse_every_key(verdict: bool) -> bool:
    return False


# -- an utterance -------------------------------------------------------------------------


class _SendAudio(Protocol):
    """Sends one binary frame of an utterance (``is_final`` for its last) and records it."""

    def __call__(self, frame: bytes, is_final: bool = False) -> Awaitable[None]: ...


class Scene(NamedTuple):
    """An utterance at a fault point: what an utterance fault acts on.

    Attributes:
        ws: the connection.
        take: the utterance so far.
        error_frame: the dialect's error message, from its text and code.
        transcript: the server's record.
        pacer: paces the rest of the utterance's frames.
        send_audio: sends one binary frame of the utterance (after its metadata, if the
            dialect has any) and records it, unpaced.
        after: the fault's ``after``, set by the injector when it acts.
    """

    ws: ServerConnection
    take: Take
    error_frame: Callable[[str, int], str]
    transcript: Transcript
    pacer: Pacer
    send_audio: _SendAudio
    after: Optional[float] = None

    def record(self) -> None:
        """Record the utterance as not completed, before acting, so that a client that
        sees the fault can already find the record."""
        self.transcript.record(self.take, completed=False)


async def drop(scene: Scene) -> None:
    scene.record()
    scene.ws.transport.abort()
    raise Stop(False)


async def reset(scene: Scene) -> None:
    scene.record()
    transport = scene.ws.transport
    sock = transport.get_extra_info("socket")
    # A reset throws away what the kernel has not sent yet (Linux even holds small
    # writes back for a moment), so the frames said to be out must be out first.
    await _until_sent(transport, sock)
    # Lingering for 0 s makes close() send RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    raise Stop(False)


async def _until_sent(transport: asyncio.WriteTransport, sock: socket.socket) -> None:
    """Wait until everything written has been sent and acknowledged, or for a second at most
    (a client that reads nothing never acknowledges)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SEND_PATIENCE
    while loop.time() < deadline and (transport.get_write_buffer_size() or _unacknowledged(sock)):
        await asyncio.sleep(0.002)


def _unacknowledged(sock: socket.socket) -> int:
    """Bytes in the socket's send queue (Linux's SIOCOUTQ); 0 where that cannot be asked."""
    request = getattr(termios, "TIOCOUTQ", None) if _IOCTL else None
    if request is None:
        return 0
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0])
    except OSError:
        return 0


async def stall(scene: Scene) -> None:
    scene.record()
    await scene.ws.wait_closed()
    raise Stop(False)


async def error(scene: Scene) -> None:
    scene.record()
    await scene.ws.send(scene.error_frame("engine failed", 500))
    raise Stop(True)


async def garbage(scene: Scene) -> None:
    await scene.ws.send(GARBAGE)


async def unknown_json(scene: Scene) -> None:
    await scene.ws.send(UNKNOWN_JSON)


async def empty_frame(scene: Scene) -> None:
    await scene.send_audio(b"")


async def split_samples(scene: Scene) -> None:
    scene.take.short_by = 1


async def huge_frame(scene: Scene) -> None:
    await scene.send_audio(bytes(HUGE_FRAME_BYTES))


async def close(scene: Scene) -> None:
    scene.record()
    await scene.ws.close(1011, "internal error")
    raise Stop(False)


async def close_before_end(scene: Scene) -> None:
    scene.record()
    await scene.ws.close(1000)
    raise Stop(False)


async def realtime(scene: Scene) -> None:
    scene.pacer.pace(1.0)


async def slow_first_audio(scene: Scene) -> None:
    # Hold the first frame back; a client that leaves meanwhile ends the wait.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(scene.ws.wait_closed(), scene.after or 0.0)


async def slow(scene: Scene) -> None:
    scene.pacer.pace(SLOW_PACE)


async def reset_reused(scene: Scene) -> Optional[bool]:
    """Applies on a connection's second and later utterances only."""
    if not any(u.connection == scene.take.connection for u in scene.transcript.utterances()):
        return False
    await drop(scene)
    return True
