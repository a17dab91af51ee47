"""The bundled server's dialects, one handler per endpoint, spoken from the server's side.

- ``EigenAIHandler``: ``/api/v1/generate/ws`` (an auth message, then requests, each
  answered with PCM and ``complete``).
- ``ShunyalabsHandler``: ``/ws?api_key=KEY`` (a config message, then ``{"input": …}``
  frames); a connection whose first message is a gateway request is served as one.
- ``GatewayHandler``: ``/ws/tts``, what Shunyalabs' own SDK speaks (``Authorization:
  Bearer KEY`` at the handshake, one request, a ``chunk`` message before each binary
  frame, then ``completion``).

A handler reads its dialect's messages, checks the key, and hands each utterance to the
``Speaker`` with its dialect's ``Framing``. Adding a dialect is a module in
``ttsstream.protocols`` and a class here.

This module owns the order of messages on each endpoint. Paths, field names and
frames come from ``ttsstream.protocols``; from the server it imports ``speaker`` and
``transcript``. It never logs a key.
"""

from __future__ import annotations

import json
import logging
import uuid
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, Optional, TypeVar, Union
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request as HTTPRequest

from ..protocols import eigenai, shunyalabs
from .speaker import Framing, Speaker
from .transcript import Take

__all__ = ["Handler", "EigenAIHandler", "ShunyalabsHandler", "GatewayHandler", "path_of"]

log = logging.getLogger("ttsstream.server")

T = TypeVar("T")

_NOT_TEXT = "expected a JSON text frame, got a binary frame"


def _chunk(take: Take, is_final: bool) -> str:
    return shunyalabs.chunk_frame(take.request_id or "", take.frames, is_final, take.response_format,
                                  take.sample_rate)


def _completion(take: Take) -> str:
    return shunyalabs.completion_frame(take.request_id or "", take.frames, take.audio_seconds,
                                       take.response_format, take.sample_rate)


_EIGENAI = Framing(end=lambda take: eigenai.complete_frame(), error=eigenai.error_frame)
_SHUNYALABS = Framing(end=_completion, error=shunyalabs.error_frame)
_SHUNYALABS_WITH_CHUNKS = Framing(end=_completion, error=shunyalabs.error_frame, chunk=_chunk)


class Handler(ABC):
    """One endpoint of the server.

    Args:
        speaker: speaks the utterances.
        key_ok: whether a key a client gave is acceptable (True for any when the server
            has none).

    Thread: the server's event loop; a handler holds no per-connection state.
    """

    path = ""          # the URL path it serves
    framing: Framing   # how its dialect's messages look; each subclass sets its own

    def __init__(self, speaker: Speaker, key_ok: Callable[[Optional[str]], bool]) -> None:
        self._speaker = speaker
        self._key_ok = key_ok

    def admits(self, request: HTTPRequest) -> bool:
        """Whether the handshake may go on (else: HTTP 401). Most dialects check the key later."""
        return True

    @abstractmethod
    async def serve(self, ws: ServerConnection) -> None:
        """Serve one connection until it ends.

        Raises:
            ConnectionClosed: the client went away.
        """

    async def _read(self, ws: ServerConnection, message: Union[str, bytes],
                    parse: Callable[[str], T]) -> Optional[T]:
        """``parse(message)``; or None, after an error message (code 400) saying what was wrong."""
        try:
            if not isinstance(message, str):
                raise ValueError(_NOT_TEXT)
            return parse(message)
        except ValueError as exc:
            await ws.send(self.framing.error(str(exc), 400))
            return None


class EigenAIHandler(Handler):
    """EigenAI's endpoint: ``{"token", "model"}`` first, then any number of requests."""

    path = eigenai.EigenAI.default_path()
    framing = _EIGENAI

    async def serve(self, ws: ServerConnection) -> None:
        first = await ws.recv()
        try:
            if not isinstance(first, str):
                raise ValueError('the first message must be a JSON text frame {"token", "model"}')
            token, model = eigenai.parse_auth(first)
        except ValueError as exc:
            await ws.send(eigenai.error_frame(str(exc), code=400))
            await ws.close(eigenai.REFUSE_CLOSE_CODE, "bad auth message")
            return
        if not self._key_ok(token):
            log.info("refused an EigenAI connection: invalid API key")
            await ws.send(eigenai.error_frame("invalid API key", code=401))
            await ws.close(eigenai.REFUSE_CLOSE_CODE, "invalid API key")
            return
        async for message in ws:
            request = await self._read(ws, message, lambda text: eigenai.parse_request(text, model))
            if request is None:
                continue
            take = Take("eigenai", request["text"], voice=eigenai.voice_of(request, model), model=model,
                        language=eigenai.language_of(request), speed=eigenai.speed_of(request),
                        request=request, config=None, response_format="pcm",
                        sample_rate=eigenai.EigenAI.sample_rate)
            if not await self._speaker.speak(ws, take, self.framing):
                return


class GatewayHandler(Handler):
    """The Shunyalabs SDK's gateway: a Bearer key at the handshake, then one request.

    Args:
        sample_rate: the rate of the audio it serves.
    """

    path = shunyalabs.GATEWAY_PATH
    framing = _SHUNYALABS_WITH_CHUNKS

    def __init__(self, speaker: Speaker, key_ok: Callable[[Optional[str]], bool], sample_rate: int) -> None:
        super().__init__(speaker, key_ok)
        self._rate = sample_rate

    def admits(self, request: HTTPRequest) -> bool:
        if self._key_ok(shunyalabs.bearer_key(request.headers)):
            return True
        log.info("refused a gateway connection: missing or invalid API key")
        return False

    async def serve(self, ws: ServerConnection) -> None:
        await self.serve_request(ws, await ws.recv())

    async def serve_request(self, ws: ServerConnection, message: Union[str, bytes]) -> None:
        """Serve the one request of a gateway connection, then wait for the client to close.

        ``ShunyalabsHandler`` calls it too, for a gateway request that came to ``/ws``.
        """
        request = await self._read(ws, message, shunyalabs.parse_gateway_request)
        if request is not None:
            text, config = request
            take = Take("gateway", text, voice=config.voice or shunyalabs.DEFAULT_VOICE, model=config.model,
                        language=config.language, speed=config.speed, request=json.loads(message),
                        config=None, response_format=config.response_format,
                        sample_rate=self._rate, request_id=uuid.uuid4().hex)
            if not await self._speaker.speak(ws, take, self.framing):
                return
        # The gateway serves one request per connection; the client closes it.
        async for _ in ws:
            pass


class ShunyalabsHandler(Handler):
    """Shunyalabs' ``/ws``: a config message, then ``{"input": …}`` frames on one connection.

    Args:
        gateway: serves a connection whose first message is a gateway request.
        metadata: send a ``chunk`` message before every binary frame, and produce audio
            at ``sample_rate`` (else at the dialect's own rate).
        sample_rate: the rate with ``metadata``.
    """

    path = shunyalabs.Shunyalabs.default_path()
    framing = _SHUNYALABS

    def __init__(self, speaker: Speaker, key_ok: Callable[[Optional[str]], bool], gateway: GatewayHandler,
                 metadata: bool, sample_rate: int) -> None:
        super().__init__(speaker, key_ok)
        self._gateway = gateway
        self._rate = sample_rate if metadata else shunyalabs.Shunyalabs.sample_rate
        if metadata:
            self.framing = _SHUNYALABS_WITH_CHUNKS

    async def serve(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None  # websockets sets it in the handshake, before any handler runs
        given = shunyalabs.query_key(request.path)
        if not (self._key_ok(given) or self._key_ok(shunyalabs.bearer_key(request.headers))):
            log.info("refused a Shunyalabs connection: missing or invalid API key")
            await ws.close(shunyalabs.AUTH_CLOSE_CODE, "invalid API key")
            return
        config: Optional[shunyalabs.ServerConfig] = None
        config_message: Optional[Dict[str, Any]] = None
        async for message in ws:
            if config is None:
                if isinstance(message, str) and shunyalabs.is_gateway_request(message):
                    await self._gateway.serve_request(ws, message)
                    return
                config = await self._read(ws, message, shunyalabs.parse_config)
                if config is None or not isinstance(message, str):  # _read parses only text
                    continue
                config_message = json.loads(message)
                if not shunyalabs.is_input(message):
                    continue
                # A client that skipped the config: its first input configures too.
            text = await self._read(ws, message, shunyalabs.parse_input)
            if text is None:
                continue
            take = Take("shunyalabs", text, voice=config.voice or shunyalabs.DEFAULT_VOICE,
                        model=config.model, language=config.language, speed=config.speed,
                        request=json.loads(message), config=config_message,
                        response_format=config.response_format, sample_rate=self._rate,
                        request_id=uuid.uuid4().hex)
            if not await self._speaker.speak(ws, take, self.framing):
                return


def path_of(target: str) -> str:
    """The path of a request target, without query or trailing slash: what routes it."""
    path = urlsplit(target).path
    return path.rstrip("/") or "/"
