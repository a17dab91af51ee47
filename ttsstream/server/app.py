"""``LocalServer``: the bundled offline server's thread, loop, socket and handshake.

``LocalServer`` runs a ``websockets`` asyncio server on a thread of its own and routes
each connection by its path to a dialect's handler (``handlers.py``). Unknown paths
get HTTP 404, and a handshake a handler does not admit (the gateway without a valid
Bearer key) HTTP 401.

This module owns the server thread and its event loop, the listening socket, start()
and stop(), the handshake and the argument checks; who may connect and how much they
may send is ``security``'s business, what is served the other modules'. It imports
the rest of ``ttsstream.server``, ``ttsstream.protocols`` (for a default),
``redaction`` and ``checks``, never the client side of the package. It logs to ``ttsstream.server``, and websockets' own log
to ``ttsstream.server.wire`` with every key blanked out; it never logs an API key and
prints nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from http import HTTPStatus
from typing import Any, Dict, List, Optional, Set, Union

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HTTPRequest, Response as HTTPResponse

from ..checks import require_number
from ..protocols import shunyalabs
from ..redaction import protect_logger, remember_secret
from .engine import Engine
from .engines import get_engine
from .faults import FaultInjector, FaultMix, FaultSource, FaultSpec, fault_source
from .handlers import EigenAIHandler, GatewayHandler, Handler, ShunyalabsHandler, path_of
from .security import MAX_MESSAGE_BYTES, MAX_TEXT_CHARS, KeyCheck, check_exposure, check_limits, tls_context
from .speaker import Speaker
from .synthesis import Workers
from .transcript import Transcript, Utterance

__all__ = ["LocalServer"]

log = logging.getLogger("ttsstream.server")
# websockets' own log (handshakes, frames at DEBUG, which carry keys) goes here, with
# every key blanked out.
wire_log = protect_logger(logging.getLogger("ttsstream.server.wire"))

_START_TIMEOUT = 10.0
# A client that connects and does not finish its handshake is dropped after this long.
_OPEN_TIMEOUT = 10.0
_JOIN_TIMEOUT = 15.0
# A client that does not answer our close frame gets this long before we drop it;
# it bounds how long stop() waits on a stalled or careless client.
_CLOSE_TIMEOUT = 2.0
# On stop() a client gets less time: stopping should be quick, and a client that
# reads its socket answers a close frame within milliseconds.
_STOP_CLOSE_TIMEOUT = 0.5
_SHUTDOWN_GRACE = 3.0


class LocalServer:
    """A local TTS server speaking EigenAI's and Shunyalabs' dialects over real WebSockets.

    Args:
        host: the interface to bind (``"127.0.0.1"`` by default).
        port: the TCP port; 0 picks a free one (see ``.port`` after ``start()``).
        api_key: the key clients must present; None accepts any (or none). Keys are
            compared in constant time.
        engine: an engine name from ``ENGINES`` or an ``Engine`` instance: ``"espeak"``
            (the default: real speech, from eSpeak NG) or ``"tone"`` (one tone per
            character: deterministic, for tests).
        frame_bytes: the size of every binary frame but the last of an utterance; may be
            odd, so that frames split samples as some servers' frames do.
        fault: None, or a fault to inject: a name from ``FAULTS``, a spec string
            ``"NAME:after=N"`` (see ``parse_fault``), a ``FaultSpec``, or a ``FaultMix``
            (each connection draws one). Each fault acts at its own point (the
            handshake, the key check, a connection's life, an utterance's frames or its
            end); ``describe_faults()`` lists them. ``set_fault()`` changes it.
        fault_after: the fault's ``after``, with a bare name: how many binary frames of
            each utterance go out first, or how many idle seconds a connection gets
            (``idle_close``); None for the fault's default.
        shunyalabs_metadata: on ``/ws``, send a ``chunk`` message before every binary
            frame and produce audio at ``shunyalabs_sample_rate``.
        shunyalabs_sample_rate: the rate for ``/ws`` with metadata and for ``/ws/tts``.
        realtime: pace audio at this multiple of real time (finite); 0 sends as fast as
            possible.
        thread_name: the server thread's name; ``ttsstream-server-<port>`` by default.
        transcript_limit: keep only the latest this many utterances in ``transcript``
            (None keeps all: for tests; a long-running server should set it).
        certfile: a PEM file of a certificate (with its chain): the server then speaks
            ``wss://`` only.
        keyfile: the certificate's key, as PEM; may be left out when ``certfile`` holds
            the key too.
        allow_open: serve on an interface other than loopback without an API key. Without
            it, such a server refuses to be made.
        max_text_chars: the longest text one request may carry; a longer one gets the
            dialect's error message with code 413, and the connection serves on.
        max_message_bytes: the largest message a client may send; a larger one closes
            the connection with 1009 (message too big).

    Raises:
        ValueError: for an unknown engine or fault, an out-of-range number, or a host
            beyond loopback with neither an API key nor ``allow_open``.
        ImportError: the engine's optional dependencies are missing.
        OSError, ssl.SSLError: ``certfile`` or ``keyfile`` cannot be read or used.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: Optional[str] = None,
                 engine: Union[str, Engine] = "espeak", frame_bytes: int = 4800,
                 fault: Union[None, str, FaultSpec, FaultMix] = None, fault_after: Optional[float] = None,
                 shunyalabs_metadata: bool = False,
                 shunyalabs_sample_rate: int = shunyalabs.Shunyalabs.sample_rate, realtime: float = 0.0,
                 thread_name: Optional[str] = None, transcript_limit: Optional[int] = None,
                 certfile: Optional[Union[str, "os.PathLike[str]"]] = None,
                 keyfile: Optional[Union[str, "os.PathLike[str]"]] = None, allow_open: bool = False,
                 max_text_chars: int = MAX_TEXT_CHARS, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        faults = FaultInjector(fault_source(fault, fault_after))
        require_number("frame_bytes", frame_bytes, 1, integer=True)
        check_limits(max_text_chars, max_message_bytes)
        require_number("shunyalabs_sample_rate", shunyalabs_sample_rate, 8000, 192_000, integer=True)
        require_number("realtime", realtime, 0)
        if not isinstance(engine, str) and not callable(getattr(engine, "synthesize", None)):
            raise ValueError(f"engine must be an engine name or have a synthesize() method, got {engine!r}")

        tls = tls_context(certfile, keyfile)
        check_exposure(host, api_key, bool(allow_open), tls is not None)

        # Fixed here; any thread reads them. Transcript and Workers have locks of their own.
        self.host = host
        self._requested_port = port
        remember_secret(api_key or None)
        self._keys = KeyCheck(api_key)
        self._tls = tls
        self._faults = faults
        self._max_message_bytes = max_message_bytes
        self._engine = get_engine(engine) if isinstance(engine, str) else engine
        self._thread_name = thread_name
        self._transcript = Transcript(transcript_limit)
        self._workers = Workers()
        speaker = Speaker(self._engine, self._workers, self._transcript, faults, frame_bytes, float(realtime),
                          max_text_chars)
        gateway = GatewayHandler(speaker, self._key_ok, shunyalabs_sample_rate)
        # By path, in the order the 404 page lists them.
        self._handlers: Dict[str, Handler] = {handler.path: handler for handler in (
            EigenAIHandler(speaker, self._key_ok),
            ShunyalabsHandler(speaker, self._key_ok, gateway, bool(shunyalabs_metadata), shunyalabs_sample_rate),
            gateway,
        )}

        # Guarded by the lock: start() and stop() may race on any threads.
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._port: Optional[int] = None
        # Written by the server thread before it sets its ready Event; start() reads it after.
        self._start_error: Optional[BaseException] = None
        # Set by the server thread while its loop runs; _signal_stop() reads them on any thread.
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stopping: Optional[asyncio.Event] = None
        # Only the event loop touches this.
        self._live: Set[ServerConnection] = set()

    # -- public state ------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (the requested one before ``start()``)."""
        return self._port if self._port is not None else self._requested_port

    @property
    def url(self) -> str:
        """The base URL, ``ws://HOST:PORT`` (``wss://`` with TLS; no path)."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"{'wss' if self._tls is not None else 'ws'}://{host}:{self.port}"

    @property
    def eigenai_url(self) -> str:
        """The EigenAI endpoint, ``url + "/api/v1/generate/ws"``."""
        return self.url + EigenAIHandler.path

    @property
    def shunyalabs_url(self) -> str:
        """The Shunyalabs endpoint, ``url + "/ws"`` (add ``?api_key=KEY`` when a key is set)."""
        return self.url + ShunyalabsHandler.path

    @property
    def gateway_url(self) -> str:
        """The Shunyalabs SDK's gateway endpoint, ``url + "/ws/tts"``."""
        return self.url + GatewayHandler.path

    @property
    def engine(self) -> Engine:
        """The speech engine in use."""
        return self._engine

    @property
    def fault(self) -> FaultSource:
        """The fault new connections get (a ``FaultSpec`` or a ``FaultMix``), or None."""
        return self._faults.source

    def set_fault(self, fault: Union[None, str, FaultSpec, FaultMix]) -> None:
        """Inject ``fault`` (as ``LocalServer(fault=...)`` takes it) into connections
        that arrive from now on; open ones keep theirs. A ``no_handshake`` set on a
        running server that started without one holds a handshake for 10 s at most.

        Thread: any. Raises ValueError as the constructor does.
        """
        self._faults.set_source(fault_source(fault))

    @property
    def handshakes(self) -> int:
        """How many WebSocket upgrade requests arrived so far, refused ones included. Thread: any."""
        return self._faults.handshakes

    @property
    def running(self) -> bool:
        """Whether the server has been started and not stopped."""
        return self._thread is not None

    @property
    def transcript(self) -> List[Utterance]:
        """A snapshot of the utterances served so far, in order of completion.

        Thread: any.
        """
        return self._transcript.utterances()

    @property
    def connections(self) -> int:
        """How many WebSocket connections were accepted (HTTP 101) so far.

        Thread: any.
        """
        return self._transcript.connections

    def __repr__(self) -> str:
        return (f"LocalServer(url={self.url!r}, engine={self._engine.name!r}, "
                f"key_required={self._keys.required}, fault={str(self.fault) if self.fault else None!r}, "
                f"running={self.running})")

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> "LocalServer":
        """Bind the port and start serving on a new thread; return self.

        Does nothing if already running. A stopped server may be started again (it
        binds the port it was constructed with, so port 0 gives a new port).

        Thread: any; returns once the server accepts connections.

        Raises:
            OSError: the port cannot be bound (for example, it is in use).
            TimeoutError: the server thread did not become ready within 10 s.
        """
        with self._lock:
            if self._thread is not None:
                return self
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            # Binding here, on the caller's thread, makes a busy port raise right here
            # and gives the thread its name with the real port.
            sock = socket.create_server((self.host, self._requested_port), family=family, backlog=128)
            # asyncio turns Nagle off only on sockets it made itself (proto IPPROTO_TCP): set
            # here, the accepted ones inherit it, and an end message never waits 40 ms for an ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._port = sock.getsockname()[1]
            self._start_error = None
            ready = threading.Event()
            thread = threading.Thread(target=self._run, args=(sock, ready),
                                      name=self._thread_name or f"ttsstream-server-{self._port}",
                                      daemon=True)  # a safety net only: stop() and atexit end it
            thread.start()
            if not ready.wait(_START_TIMEOUT):
                self._signal_stop()
                thread.join(_JOIN_TIMEOUT)
                raise TimeoutError(f"the local server did not start within {_START_TIMEOUT:g} s")
            if self._start_error is not None:
                thread.join(_JOIN_TIMEOUT)
                raise self._start_error
            self._thread = thread
        log.info("local server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Close every connection, stop the loop and join the thread. Idempotent.

        Thread: any, including the server's own (which then skips the join).
        """
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._signal_stop()
        if thread is threading.current_thread():
            return
        thread.join(_JOIN_TIMEOUT)
        if thread.is_alive():
            log.warning("local server thread %s did not finish within %g s", thread.name, _JOIN_TIMEOUT)
        else:
            log.info("local server on port %s stopped", self._port)

    def _signal_stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None:
            return
        try:
            loop.call_soon_threadsafe(stopping.set)
        except RuntimeError:  # the loop has already closed
            pass

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- the server thread ---------------------------------------------------------

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        """Run the event loop until stop(). Thread: the server thread."""
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(sock, ready))
            _finish_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as exc:  # noqa: BLE001  (report, never die silently)
            if not ready.is_set():
                self._start_error = exc
            log.exception("local server loop failed")
        finally:
            # Handlers close their engine threads; wait for the last ones to finish.
            self._workers.join(_JOIN_TIMEOUT)
            self._loop = None
            self._stopping = None
            loop.close()
            sock.close()  # normally closed already by the server; harmless twice
            ready.set()

    async def _main(self, sock: socket.socket, ready: threading.Event) -> None:
        """Serve until stop(), then close every connection, waiting a bounded time."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await serve(self._handle, sock=sock, compression=None, ssl=self._tls,
                                 process_request=self._process_request,
                                 process_response=self._process_response,
                                 open_timeout=None if self._faults.holds_handshakes else _OPEN_TIMEOUT,
                                 close_timeout=_CLOSE_TIMEOUT, max_size=self._max_message_bytes,
                                 logger=wire_log)
        except Exception as exc:
            self._start_error = exc
            ready.set()
            return
        ready.set()
        await self._stopping.wait()
        await _close_all(server, self._live)

    # -- the handshake -------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: HTTPRequest) -> Optional[HTTPResponse]:
        """Refuse unknown paths (404) and what a handler does not admit (401), after a
        handshake fault has had its say."""
        assert self._stopping is not None  # set before serving starts
        answer = await self._faults.at_handshake(connection, request, self._stopping)
        if answer is not None:
            return answer
        handler = self._handlers.get(path_of(request.path))
        if handler is None:
            log.debug("refused a connection to an unknown path")
            return connection.respond(HTTPStatus.NOT_FOUND,
                                      f"Not found. Endpoints: {', '.join(self._handlers)}\n")
        if not handler.admits(request):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid API key\n")
        return None

    def _process_response(self, connection: ServerConnection, request: HTTPRequest,
                          response: HTTPResponse) -> None:
        # Counted before the 101 goes out, so a client that is connected is already counted.
        if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            self._transcript.count_connection(connection.id)

    def _key_ok(self, given: Optional[str]) -> bool:
        """Whether a client's key will do; every handler asks it. Thread: the event loop."""
        return self._faults.judge_key(self._keys.ok(given))

    # -- connections -----------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        """Serve one connection by its path (the handshake refused other paths).

        Thread: the event loop.
        """
        assert ws.request is not None  # websockets sets it in the handshake, which came first
        handler = self._handlers[path_of(ws.request.path)]
        self._live.add(ws)
        try:
            async with self._faults.watching(ws):
                await handler.serve(ws)
        except ConnectionClosed as exc:
            log.debug("client left (%s)", exc)
        finally:
            self._live.discard(ws)
            self._transcript.forget(ws.id)


async def _close_all(server: Server, live: Set[ServerConnection]) -> None:
    """Close every connection, waiting a bounded time. Thread: the event loop."""
    for ws in live:
        ws.close_timeout = _STOP_CLOSE_TIMEOUT
    # Closes open connections with 1001 and waits for their handlers...
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), _SHUTDOWN_GRACE)
        return
    except asyncio.TimeoutError:
        pass
    # ...and a client that ignores the close loses its TCP connection instead.
    log.debug("aborting %d connections that did not close", len(live))
    for ws in list(live):
        ws.transport.abort()
    try:
        await asyncio.wait_for(server.wait_closed(), _SHUTDOWN_GRACE)
    except asyncio.TimeoutError:
        # A handler is stuck waiting for the engine; cancel it rather than hang stop().
        tasks = list(getattr(server, "handler_tasks", ()))  # not public API: best effort
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_SHUTDOWN_GRACE)


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending on ``loop`` and let them unwind, as ``asyncio.run``
    does before it closes a loop: a connection's task left pending (a client that stayed
    connected until the interpreter exits) would otherwise be destroyed pending, and its
    async generators closed while still running, each with a traceback on stderr."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
