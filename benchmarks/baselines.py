"""The baselines: EigenAI streaming written by hand, the way a typical user writes it.

One class per library, each with the same contract, so that the suite drives them all
alike (and ttsstream too, in ``trials.py``):

- ``open()``: connect and authenticate (send ``{"token", "model"}``); the connection
  then waits, open, for a request (the "prewarmed" case);
- ``speak(text, on_audio)``: send the request on the open connection, call
  ``on_audio(frame)`` with every binary frame as it arrives, return at
  ``{"type": "complete"}``, and close;
- ``speak_now(text, on_audio)``: the whole flow from nothing (the "cold" case), as the
  user would write it in one go.

Each is the plain, idiomatic code of its library's documentation, with the timeouts a
careful user sets; nothing is tuned. The frames are handed to ``on_audio`` as the
library returns them (bytes), which is where the suite stamps their arrival.

Imports: websocket-client, websockets.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional

import websocket
import websockets
from websockets.sync.client import connect as sync_connect

API_KEY = ""          # a loopback server needs none
MODEL = "higgs2p5"
VOICE = "Linda"
TIMEOUT = 30.0        # seconds: connecting, and waiting for a frame

OnAudio = Callable[[bytes], Any]


class ServerError(Exception):
    """The server ended the stream with an error message (or closed it)."""


def auth_message() -> str:
    return json.dumps({"token": API_KEY, "model": MODEL})


def request_message(text: str) -> str:
    return json.dumps({"text": text, "voice": VOICE})


def is_complete(message: str) -> bool:
    """True for ``{"type": "complete"}``; raises ServerError for an error message."""
    data = json.loads(message)
    if data.get("type") == "error":
        raise ServerError(data.get("message", message))
    return data.get("type") == "complete"


class WebsocketClientLoop:
    """websocket-client: ``create_connection``, then ``recv()`` in a loop."""

    name = "websocket-client loop"

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Optional[websocket.WebSocket] = None

    def open(self) -> None:
        self.ws = websocket.create_connection(self.url, timeout=TIMEOUT)
        self.ws.send(auth_message())

    def speak(self, text: str, on_audio: OnAudio) -> None:
        ws = self.ws
        assert ws is not None, "open() first"
        try:
            ws.send(request_message(text))
            while True:
                message = ws.recv()
                if isinstance(message, bytes):
                    on_audio(message)
                elif not message:
                    raise ServerError("the server closed the connection")
                elif is_complete(message):
                    break
        finally:
            ws.close()

    def speak_now(self, text: str, on_audio: OnAudio) -> None:
        self.open()
        self.speak(text, on_audio)


class WebSocketAppThread:
    """websocket-client's callback API: a ``WebSocketApp`` with ``run_forever()`` on a thread."""

    name = "WebSocketApp run_forever"

    def __init__(self, url: str) -> None:
        self.url = url
        self.app: Optional[websocket.WebSocketApp] = None
        self.thread: Optional[threading.Thread] = None
        self.on_audio: Optional[OnAudio] = None
        self.first_request: Optional[str] = None  # sent with the auth message by speak_now()
        self.opened = threading.Event()
        self.error: Optional[BaseException] = None
        self.completed = False

    def _on_open(self, ws: websocket.WebSocketApp) -> None:
        ws.send(auth_message())
        if self.first_request is not None:
            ws.send(self.first_request)
        self.opened.set()

    def _on_message(self, ws: websocket.WebSocketApp, message: Any) -> None:
        if isinstance(message, bytes):
            if self.on_audio is not None:
                self.on_audio(message)
        elif is_complete(message):
            self.completed = True
            ws.close()

    def _on_error(self, ws: websocket.WebSocketApp, error: BaseException) -> None:
        self.error = error

    def _start(self) -> None:
        self.app = websocket.WebSocketApp(self.url, on_open=self._on_open, on_message=self._on_message,
                                          on_error=self._on_error)
        self.thread = threading.Thread(target=self.app.run_forever, name="websocketapp", daemon=True)
        self.thread.start()

    def open(self) -> None:
        self._start()
        if not self.opened.wait(TIMEOUT):
            raise TimeoutError("the WebSocketApp did not open")

    def speak(self, text: str, on_audio: OnAudio) -> None:
        assert self.app is not None and self.thread is not None, "open() first"
        self.on_audio = on_audio
        self.app.send(request_message(text))
        self._finish()

    def speak_now(self, text: str, on_audio: OnAudio) -> None:
        self.on_audio = on_audio
        self.first_request = request_message(text)
        self._start()
        self._finish()

    def _finish(self) -> None:
        assert self.thread is not None
        self.thread.join(3600)  # run_forever returns once on_message has closed the socket
        if not self.completed:
            raise ServerError(f"the stream did not complete: {self.error!r}")


class WebsocketsSync:
    """websockets' threaded client: ``websockets.sync.client.connect`` and ``for message in ws``."""

    name = "websockets.sync"

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None

    def open(self) -> None:
        self.ws = sync_connect(self.url, open_timeout=TIMEOUT)
        self.ws.send(auth_message())

    def speak(self, text: str, on_audio: OnAudio) -> None:
        assert self.ws is not None, "open() first"
        with self.ws as ws:
            ws.send(request_message(text))
            for message in ws:
                if isinstance(message, bytes):
                    on_audio(message)
                elif is_complete(message):
                    break
            else:
                raise ServerError("the server closed the connection")

    def speak_now(self, text: str, on_audio: OnAudio) -> None:
        self.open()
        self.speak(text, on_audio)


class AsyncioExample:
    """asyncio ``websockets``, in the style of the EigenAI document's example (coroutines)."""

    name = "asyncio websockets (EigenAI example)"

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None

    async def open(self) -> None:
        self.ws = await websockets.connect(self.url)
        await self.ws.send(auth_message())

    async def speak(self, text: str, on_audio: OnAudio) -> None:
        assert self.ws is not None, "open() first"
        async with self.ws as ws:
            await ws.send(request_message(text))
            async for message in ws:
                if isinstance(message, bytes):
                    on_audio(message)
                elif is_complete(message):
                    break
            else:
                raise ServerError("the server closed the connection")

    async def speak_now(self, text: str, on_audio: OnAudio) -> None:
        """The document's example as written: connect, authenticate, request, receive."""
        async with websockets.connect(self.url) as ws:
            await ws.send(json.dumps({"token": API_KEY, "model": MODEL}))
            await ws.send(json.dumps({"text": text, "voice": VOICE}))
            async for message in ws:
                if isinstance(message, bytes):
                    on_audio(message)
                else:
                    data = json.loads(message)
                    if data.get("type") == "complete":
                        break
