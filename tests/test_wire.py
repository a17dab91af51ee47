"""The wire's timeouts: the kernel's for a plain socket, Python's for TLS, and sends that
end when the server takes nothing.

A plain socket is read blocking, the kernel timing it out (``SO_RCVTIMEO``): one system
call per read. These tests check that a read still comes back as ``Silence`` when
nothing arrives, that TLS keeps Python's timeout, and that a send to a server that has
stopped reading fails with a timeout instead of blocking for ever.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import sys
import threading

import pytest

from ttsstream import ConnectionFailed
from ttsstream.server import LocalServer
from ttsstream.wire import Silence, Wire

PATIENCE = 10.0  # seconds: a hang guard, never a measure
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _opened(url: str, ca_bundle: object = None) -> Wire:
    wire = Wire("EigenAI", "EIGENAI_API_KEY", None if ca_bundle is None else str(ca_bundle))
    wire.open(url + "/api/v1/generate/ws", [], PATIENCE, "the test server")
    return wire


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel timeouts are used on Linux only")
def test_a_plain_socket_is_read_blocking_and_the_kernel_times_it_out(server):
    wire = _opened(server.url)
    try:
        wire.settimeout(0.25)
        sock = wire._ws.sock
        assert sock.gettimeout() is None  # blocking: no poll before each read
        seconds, micros = struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16))
        assert 0.24 <= seconds + micros / 1e6 <= 0.26  # the kernel keeps it in its clock ticks
        # The EigenAI dialect waits for the auth message: nothing comes, and the read says so.
        with pytest.raises(Silence):
            wire.receive("the test server")
        wire.send(['{"token": "t", "model": "higgs2p5"}'], "the test server")  # the wire still works
    finally:
        wire.abort()
        wire.shutdown()


def test_a_tls_socket_keeps_pythons_timeout(tls_files):
    server = LocalServer(engine="tone", certfile=str(tls_files.certfile), keyfile=str(tls_files.keyfile)).start()
    try:
        wire = _opened(server.url, tls_files.ca_file)
        try:
            wire.settimeout(0.25)
            assert wire._ws.sock.gettimeout() == 0.25
            with pytest.raises(Silence):
                wire.receive("the test server")
        finally:
            wire.abort()
            wire.shutdown()
    finally:
        server.stop()


def _server_that_never_reads(listener: socket.socket, done: threading.Event) -> None:
    """Accept one connection, answer its upgrade, then read nothing until ``done``."""
    conn, _ = listener.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        done.wait(PATIENCE)


def test_a_send_to_a_server_that_reads_nothing_times_out():
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by the accepted socket
    done = threading.Event()
    thread = threading.Thread(target=_server_that_never_reads, args=(listener, done), daemon=True)
    thread.start()
    try:
        wire = _opened(f"ws://127.0.0.1:{listener.getsockname()[1]}")
        try:
            wire.settimeout(0.2)
            # Far more than both sides' buffers hold: the send blocks, then the kernel ends it.
            with pytest.raises(ConnectionFailed, match="timed out"):
                wire.send(["x" * 64_000_000], "the test server")
        finally:
            wire.abort()
            wire.shutdown()
    finally:
        done.set()
        thread.join(PATIENCE)
        listener.close()
