"""Running a LocalServer for the rest of the package: the process's shared server, and the CLI's.

``shared_server()`` is what ``provider="local"`` connects to: one server per process,
started on first use and stopped at exit. ``serve_forever()`` is ``ttsstream serve``:
a server in the foreground until Ctrl-C, SIGTERM or an Event.

This module owns the shared server (guarded by ``_shared_lock``) and the signal
handlers ``serve_forever`` installs. It imports only ``app`` from the package, and
prints nothing.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from typing import Any, Callable, Optional

from .app import LocalServer

__all__ = ["shared_server", "stop_shared_server", "serve_forever"]

log = logging.getLogger("ttsstream.server")

# Guarded by _shared_lock: any thread may call shared_server() first.
_shared_lock = threading.Lock()
_shared: Optional[LocalServer] = None
_atexit_registered = False

# The shared server (provider="local") and ``ttsstream serve`` run as long as a program
# does: they keep the latest utterances only, not every one's audio.
TRANSCRIPT_LIMIT = 100


def shared_server() -> LocalServer:
    """Return the process's local server for ``provider="local"``, starting it on first use.

    It listens on 127.0.0.1 on a free port, needs no key, speaks with the espeak engine,
    runs on the thread ``ttsstream-local-server`` and is stopped at interpreter exit.

    Thread: any; concurrent first calls start one server.

    Raises:
        OSError: the server could not bind a port.
        ImportError: the espeak engine's dependencies are missing.
    """
    global _shared, _atexit_registered
    with _shared_lock:
        if _shared is None or not _shared.running:
            server = LocalServer(thread_name="ttsstream-local-server", transcript_limit=TRANSCRIPT_LIMIT).start()
            _shared = server
            if not _atexit_registered:
                atexit.register(stop_shared_server)
                _atexit_registered = True
        return _shared


def stop_shared_server() -> None:
    """Stop the process's local server if it runs (``shared_server()`` starts a new one).

    Thread: any.
    """
    global _shared
    with _shared_lock:
        server, _shared = _shared, None
    if server is not None:
        server.stop()


class _Terminated(Exception):
    """Raised on the main thread by our SIGTERM handler to end ``serve_forever``."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def serve_forever(host: str = "127.0.0.1", port: int = 8765, api_key: Optional[str] = None,
                  engine: str = "espeak", on_ready: Optional[Callable[[str], None]] = None, *,
                  stop_event: Optional[threading.Event] = None, **options: Any) -> None:
    """Run a LocalServer until KeyboardInterrupt, SIGTERM or ``stop_event``; then stop it.

    Args:
        host, port, api_key, engine: as for ``LocalServer``. A host other than loopback
            needs an ``api_key``, or ``allow_open=True``.
        on_ready: called once with the base URL (``ws://`` or ``wss://``) when the port
            is bound.
        stop_event: set it (from any thread) to return; for embedding and tests.
        options: any other ``LocalServer`` keyword: ``fault`` (a name or
            ``"NAME:after=N"``), ``fault_after``, ``certfile``, ``keyfile``,
            ``allow_open``, ``max_text_chars``, ``max_message_bytes``, ``realtime``, ...

    Returns normally after a clean stop; prints nothing.

    Thread: blocks the calling thread. SIGTERM and SIGINT are handled only on the main
    thread.

    Raises:
        ValueError: an unknown engine or fault, a bad option, or a host beyond loopback
            with neither a key nor ``allow_open`` (raised before anything is bound; the
            message says what to do).
        OSError, ssl.SSLError: the port cannot be bound, or the certificate or key
            cannot be used.
    """
    options.setdefault("transcript_limit", TRANSCRIPT_LIMIT)
    server = LocalServer(host, port, api_key=api_key, engine=engine, **options)
    stop = stop_event if stop_event is not None else threading.Event()
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    # Ctrl-C stops the server even if it was started from a background job, which
    # inherits SIGINT ignored.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if on_main else None
    try:
        server.start()
        if on_ready is not None:
            on_ready(server.url)
        stop.wait()
    except (KeyboardInterrupt, _Terminated):
        log.info("stopping the local server on a signal")
    finally:
        server.stop()
        if on_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.SIG_DFL)
