"""A lean WebSocket server speaking EigenAI's dialect, for the benchmark suite.

    python benchmarks/bench_server.py [--port 0] [--reuseport] [--max-seconds 3600]

Raw non-blocking sockets and one epoll loop per process: no asyncio and no websockets
library, so that a frame costs the server little CPU and the client is what is
measured. Several processes may share one port (``--reuseport``; the kernel spreads
connections between them); ``ServerGroup`` starts them and sums their counters.

The dialect: the client's first text message is ``{"token", "model"}``, the second a
request ``{"text", ...}``; the server answers with binary PCM frames, then the text
frame ``{"type": "complete"}``. The request's text says what to send::

    bench frames=N bytes=B period_ms=P

N binary frames of B bytes (B even, at least 8), one every P ms from the request's
arrival (the first at once), or as fast as the socket takes them when P is 0. The first
8 bytes of every frame are ``time.monotonic_ns()`` just before the frame is handed to
the kernel, little-endian (CLOCK_MONOTONIC, shared by every process on Linux), so that
the client can tell each frame's latency; the rest is silence.

Control (one line on stdin, one JSON line back on stdout): ``stats`` returns and resets
the counters since the last ``stats``: frames and audio bytes sent, connections
accepted, CPU seconds, and how late paced frames left against their schedule (the
server's own lag: it must stay small for the load to be what was asked). The server
exits when stdin closes, after ``--max-seconds``, or on SIGTERM.

Imports: procinfo (and the standard library).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import itertools
import json
import os
import re
import selectors
import signal
import socket
import sys
import time
from array import array
from typing import Any, Dict, List, Optional, Tuple

from procinfo import raise_open_files

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SPEC = re.compile(r"bench frames=(\d+) bytes=(\d+) period_ms=(\d+(?:\.\d+)?)")
COMPLETE = b"\x81" + bytes([len(b'{"type":"complete"}')]) + b'{"type":"complete"}'
MAX_FRAME_BYTES = 1 << 20
BURST = 64  # unpaced frames sent per wake-up of one connection, so that others get a turn


def frame_header(opcode: int, length: int) -> bytes:
    """An unmasked server frame's header (FIN set)."""
    if length < 126:
        return bytes([0x80 | opcode, length])
    if length < 65536:
        return bytes([0x80 | opcode, 126]) + length.to_bytes(2, "big")
    return bytes([0x80 | opcode, 127]) + length.to_bytes(8, "big")


def parse_spec(text: str) -> Tuple[int, int, int]:
    """``(frames, bytes per frame, period in ns)`` from a request's text. Raises ValueError."""
    match = SPEC.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a benchmark request: {text[:60]!r}")
    frames, size, period_ms = int(match.group(1)), int(match.group(2)), float(match.group(3))
    if size < 8 or size % 2 or size > MAX_FRAME_BYTES or frames > 10_000_000:
        raise ValueError(f"bad frame size or count: {size} bytes x {frames}")
    return frames, size, int(period_ms * 1_000_000)


class Stats:
    """Counters since the last report (the loop's own; one process, one thread)."""

    scheduling = "normal"  # how the process is scheduled (see prioritise)

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.audio_bytes = 0
        self.accepted = 0
        self.requests = 0
        self.errors = 0
        self.late_us = array("q")  # paced frames: send time - schedule, microseconds
        self.since = time.monotonic()
        self.cpu_since = time.process_time()

    def report(self) -> Dict[str, Any]:
        late = sorted(self.late_us)

        def pick(q: float) -> float:
            return late[min(len(late) - 1, int(q * len(late)))] / 1000.0 if late else 0.0

        out = {"pid": os.getpid(), "scheduling": self.scheduling, "frames": self.frames,
               "audio_bytes": self.audio_bytes,
               "accepted": self.accepted, "requests": self.requests, "errors": self.errors,
               "wall_s": time.monotonic() - self.since,
               "cpu_s": time.process_time() - self.cpu_since,
               "late_ms_p50": pick(0.5), "late_ms_p99": pick(0.99), "late_ms_max": pick(1.0),
               "paced_frames": len(late)}
        self.reset()
        return out


class Conn:
    """One client connection: its buffers, where it is in the dialect, and its stream."""

    __slots__ = ("sock", "inbuf", "out", "state", "frames_left", "header", "body", "period",
                 "next_due", "writing", "closed")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.out = bytearray()      # bytes the kernel did not take yet
        self.state = "http"         # http -> auth -> request -> streaming -> done
        self.frames_left = 0
        self.header = b""
        self.body = memoryview(b"")
        self.period = 0
        self.next_due = 0
        self.writing = False        # registered for EVENT_WRITE
        self.closed = False


class Server:
    """The epoll loop of one process."""

    def __init__(self, listener: socket.socket, max_seconds: float, max_connections: int) -> None:
        self.listener = listener
        self.deadline = time.monotonic() + max_seconds
        self.max_connections = max_connections
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, None)
        self.sel.register(sys.stdin, selectors.EVENT_READ, "control")
        self.heap: List[Tuple[int, int, Conn]] = []
        self.seq = itertools.count()
        self.conns = 0
        self.stats = Stats()
        self.running = True

    def run(self) -> None:
        while self.running and time.monotonic() < self.deadline:
            timeout = 1.0
            if self.heap:
                timeout = min(1.0, max(0.0, (self.heap[0][0] - time.monotonic_ns()) / 1e9))
            for key, mask in self.sel.select(timeout):
                if key.data is None:
                    self.accept()
                elif key.data == "control":
                    self.control()
                else:
                    conn = key.data
                    if mask & selectors.EVENT_READ and not conn.closed:
                        self.readable(conn)
                    if mask & selectors.EVENT_WRITE and not conn.closed:
                        self.writable(conn)
            self.send_due()

    # -- control ------------------------------------------------------------------

    def control(self) -> None:
        line = sys.stdin.readline()
        if not line:  # the parent is gone
            self.running = False
            return
        if line.strip() == "stats":
            sys.stdout.write(json.dumps(self.stats.report()) + "\n")
            sys.stdout.flush()

    # -- connections ----------------------------------------------------------------

    def accept(self) -> None:
        for _ in range(256):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if self.conns >= self.max_connections:
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock)
            self.conns += 1
            self.stats.accepted += 1
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def close(self, conn: Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns -= 1
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            self.close(conn)
            return
        conn.inbuf += data
        if conn.state == "http":
            self.handshake(conn)
        if conn.state != "http":
            self.client_frames(conn)

    def handshake(self, conn: Conn) -> None:
        end = conn.inbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.inbuf) > 16384:
                self.close(conn)
            return
        head = bytes(conn.inbuf[:end]).decode("latin-1")
        del conn.inbuf[:end + 4]
        match = re.search(r"(?im)^sec-websocket-key:\s*(\S+)\s*$", head)
        if not match:
            self.write(conn, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.close(conn)
            return
        accept = base64.b64encode(hashlib.sha1(match.group(1).encode() + GUID).digest()).decode()
        self.write(conn, ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        conn.state = "auth"

    def client_frames(self, conn: Conn) -> None:
        """Parse the masked frames a client sent: auth, request, ping, close."""
        buf = conn.inbuf
        while len(buf) >= 2 and not conn.closed:
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            at = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, at = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, at = int.from_bytes(buf[2:10], "big"), 10
            if length > MAX_FRAME_BYTES:
                self.close(conn)
                return
            masked = buf[1] & 0x80
            if len(buf) < at + (4 if masked else 0) + length:
                return
            payload = bytes(buf[at + (4 if masked else 0):at + (4 if masked else 0) + length])
            if masked:
                mask = bytes(buf[at:at + 4]) * (length // 4 + 1)
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask[:length], "big")).to_bytes(
                    length, "big") if length else b""
            del buf[:at + (4 if masked else 0) + length]
            self.message(conn, opcode, payload)

    def message(self, conn: Conn, opcode: int, payload: bytes) -> None:
        if opcode == 0x8:  # close: answer it, then close the TCP connection (server side first)
            self.write(conn, frame_header(0x8, min(len(payload), 2)) + payload[:2])
            self.close(conn)
        elif opcode == 0x9:  # ping
            self.write(conn, frame_header(0xA, len(payload)) + payload)
        elif opcode == 0x1 and conn.state == "auth":
            conn.state = "request"
        elif opcode == 0x1 and conn.state == "request":
            self.request(conn, payload)
        elif opcode != 0xA:
            self.error(conn, "unexpected frame")

    def error(self, conn: Conn, message: str) -> None:
        self.stats.errors += 1
        text = json.dumps({"type": "error", "message": message}).encode()
        self.write(conn, frame_header(0x1, len(text)) + text)
        conn.state = "done"

    def request(self, conn: Conn, payload: bytes) -> None:
        try:
            text = json.loads(payload.decode("utf-8"))["text"]
            frames, size, period = parse_spec(text)
        except (ValueError, KeyError, TypeError) as exc:
            self.error(conn, str(exc))
            return
        self.stats.requests += 1
        conn.state = "streaming"
        conn.frames_left = frames
        conn.header = frame_header(0x2, size)
        conn.body = memoryview(bytes(size - 8))
        conn.period = period
        if period:
            conn.next_due = time.monotonic_ns()
            heapq.heappush(self.heap, (conn.next_due, next(self.seq), conn))
        else:
            self.pump(conn)

    # -- sending ------------------------------------------------------------------

    def send_frame(self, conn: Conn) -> None:
        """Stamp and send the connection's next audio frame (and the end, after the last)."""
        stamp = time.monotonic_ns().to_bytes(8, "little")
        if conn.out:
            conn.out += conn.header
            conn.out += stamp
            conn.out += conn.body
        else:
            total = len(conn.header) + 8 + len(conn.body)
            try:
                sent = conn.sock.sendmsg([conn.header, stamp, conn.body])
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close(conn)
                return
            if sent < total:
                conn.out += (conn.header + stamp + conn.body)[sent:]
                self.want_write(conn, True)
        conn.frames_left -= 1
        self.stats.frames += 1
        self.stats.audio_bytes += len(conn.body) + 8
        if conn.frames_left == 0:
            self.write(conn, COMPLETE)
            conn.state = "done"

    def send_due(self) -> None:
        heap = self.heap
        late = self.stats.late_us
        while heap and heap[0][0] <= time.monotonic_ns():
            due, _, conn = heapq.heappop(heap)
            if conn.closed or conn.state != "streaming":
                continue
            late.append((time.monotonic_ns() - due) // 1000)
            self.send_frame(conn)
            if conn.frames_left and not conn.closed:
                conn.next_due = due + conn.period
                heapq.heappush(heap, (conn.next_due, next(self.seq), conn))

    def pump(self, conn: Conn) -> None:
        """Unpaced: send frames until the socket is full (or a burst is out)."""
        for _ in range(BURST):
            if conn.closed or conn.state != "streaming" or conn.out:
                break
            self.send_frame(conn)
        if conn.state == "streaming" and not conn.closed:
            self.want_write(conn, True)

    def write(self, conn: Conn, data: bytes) -> None:
        if conn.closed:
            return
        if conn.out:
            conn.out += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close(conn)
            return
        if sent < len(data):
            conn.out += data[sent:]
            self.want_write(conn, True)

    def writable(self, conn: Conn) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close(conn)
                return
            del conn.out[:sent]
            if conn.out:
                return
        if conn.state == "streaming" and not conn.period:
            self.pump(conn)
        else:
            self.want_write(conn, False)

    def want_write(self, conn: Conn, on: bool) -> None:
        if conn.writing == on or conn.closed:
            return
        conn.writing = on
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0)
        self.sel.modify(conn.sock, events, conn)


def prioritise() -> str:
    """Run ahead of the client's threads: SCHED_FIFO if allowed (root), else nice -10, else
    as is; return which. A client with a thousand busy threads would otherwise delay the
    server's sends (CFS shares the CPU per thread), and the load would come in bursts
    instead of at the pace asked. The server needs little CPU, so it starves no one; the
    kernel caps real-time tasks at 95% of a CPU in any case."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return "SCHED_FIFO 10"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "normal"


def serve(port: int, reuseport: bool, max_seconds: float, max_connections: int, priority: bool) -> None:
    raise_open_files()
    Stats.scheduling = prioritise() if priority else "normal"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Server(listener, max_seconds, max_connections).run()


class ServerGroup:
    """Parent side: ``processes`` server processes sharing one loopback port (``kind``
    "epoll"), or one ``asyncio_server.py`` process (``kind`` "asyncio").

    Thread: the caller's. ``close()`` ends and waits for every process.
    """

    def __init__(self, processes: int = 1, max_seconds: float = 3600.0, max_connections: int = 20000,
                 kind: str = "epoll") -> None:
        from children import Child

        self.kind = kind
        self.children: List[Any] = []
        self.port = 0
        try:
            if kind == "asyncio":  # asyncio_server.py: one process at normal priority
                self.children.append(Child("asyncio_server.py", ["--max-seconds", str(max_seconds)]))
                self.port = self.children[0].port
            for _ in range(processes if kind == "epoll" else 0):
                args = ["--port", str(self.port), "--max-seconds", str(max_seconds),
                        "--max-connections", str(max_connections), "--priority"]
                self.children.append(Child("bench_server.py", args + (["--reuseport"] if processes > 1 else [])))
                self.port = self.children[0].port
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> List[int]:
        return [child.pid for child in self.children]

    def url(self, port: Optional[int] = None) -> str:
        """The endpoint, on this group's port or on ``port`` (a proxy's in front of it)."""
        return f"ws://127.0.0.1:{port or self.port}/api/v1/generate/ws"

    def stats(self) -> Dict[str, Any]:
        """The counters of every process since the last call, summed (lateness: the worst)."""
        reports = [json.loads(child.ask("stats")) for child in self.children]
        total: Dict[str, Any] = {"processes": len(reports), "scheduling": reports[0]["scheduling"]}
        for key in ("frames", "audio_bytes", "accepted", "requests", "errors", "cpu_s", "paced_frames"):
            total[key] = sum(r[key] for r in reports)
        for key in ("late_ms_p50", "late_ms_p99", "late_ms_max"):
            total[key] = max(r[key] for r in reports)
        total["wall_s"] = max(r["wall_s"] for r in reports)
        total["cpu_busiest_pct"] = max(100.0 * r["cpu_s"] / max(r["wall_s"], 1e-9) for r in reports)
        return total

    def close(self) -> None:
        for child in self.children:
            child.close()
        self.children = []

    def __enter__(self) -> "ServerGroup":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reuseport", action="store_true", help="share the port with other processes")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long (default 3600)")
    parser.add_argument("--max-connections", type=int, default=20000)
    parser.add_argument("--priority", action="store_true", help="run at real-time priority where allowed")
    args = parser.parse_args(argv)
    serve(args.port, args.reuseport, args.max_seconds, args.max_connections, args.priority)
    return 0


if __name__ == "__main__":
    sys.exit(main())
