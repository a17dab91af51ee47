"""Benchmark: receiving binary frames with FrameReader against websocket-client's own loop.

    python benchmarks/bench_frames.py [--reps N] [--megabytes MB] [--json FILE]

A sender in another process accepts a WebSocket handshake on loopback TCP, waits for the
client's "go", and sends a prebuilt stream of N binary frames of one size (4,800 bytes:
100 ms of 24 kHz 16-bit audio; 48,000 bytes: one second) as fast as the socket takes it.
The client connects with websocket-client (``WebSocket(enable_multithread=True)`` and
TCP_NODELAY, as ttsstream.connection does), then reads every frame with:

- websocket-client: ``ws.recv_data_frame(control_frame=False)``, the loop ttsstream has now;
- FrameReader: ``FrameReader(ws.sock, send_pong=ws.pong).read()`` on the same kind of
  connection, the payload left as the view it returns;
- FrameReader + bytes(): the same, copying each payload to ``bytes`` as a caller that
  keeps the audio must.

Figures are medians over interleaved repetitions: MB/s of payload (10^6 bytes) from the
"go" to the last frame, and the reading thread's CPU time per MB. Ratios are against
websocket-client in the same run. Needs only websocket-client.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import websocket  # noqa: E402

from ttsstream.frames import OPCODE_BINARY, FrameReader  # noqa: E402

SIZES = (4800, 48000)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- the sender (its own process) --------------------------------------------------------


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def _serve(listener: socket.socket) -> None:
    """Per connection: handshake, wait for "go", send the stream the path asks for."""
    streams: Dict[Tuple[int, int], bytes] = {}
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            lines = request.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            if path == "/quit":
                return
            key = next(line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            size, count = (int(x) for x in path.strip("/").split("/"))
            if (size, count) not in streams:
                payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
                streams[(size, count)] = _frame(OPCODE_BINARY, payload) * count
            conn.recv(64)  # the client's masked "go"
            conn.sendall(streams[(size, count)])
            while conn.recv(65536):  # until the client closes
                pass


def _sender_main(port: "multiprocessing.Queue[int]") -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port.put(listener.getsockname()[1])
    with listener:
        _serve(listener)


# -- the readers -------------------------------------------------------------------------


def _connect(url: str) -> websocket.WebSocket:
    ws = websocket.WebSocket(enable_multithread=True, sockopt=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),))
    ws.connect(url, timeout=30)
    return ws


def read_websocket_client(ws: websocket.WebSocket, count: int, size: int) -> None:
    for _ in range(count):
        opcode, frame = ws.recv_data_frame(control_frame=False)
        assert opcode == OPCODE_BINARY and len(frame.data) == size


def read_frames(ws: websocket.WebSocket, count: int, size: int) -> None:
    reader = FrameReader(ws.sock, send_pong=ws.pong)
    for _ in range(count):
        opcode, payload = reader.read()
        assert opcode == OPCODE_BINARY and len(payload) == size


def read_frames_copied(ws: websocket.WebSocket, count: int, size: int) -> None:
    reader = FrameReader(ws.sock, send_pong=ws.pong)
    for _ in range(count):
        opcode, payload = reader.read()
        data = bytes(payload)
        assert opcode == OPCODE_BINARY and len(data) == size


METHODS: Dict[str, Callable[[websocket.WebSocket, int, int], None]] = {
    "websocket-client": read_websocket_client,
    "FrameReader": read_frames,
    "FrameReader + bytes()": read_frames_copied,
}


def measure(base: str, method: Callable[[websocket.WebSocket, int, int], None], size: int,
            count: int) -> Tuple[float, float]:
    """One run: (MB/s, reading thread's CPU seconds per MB)."""
    ws = _connect(f"{base}/{size}/{count}")
    try:
        ws.send("go")
        wall, cpu = time.perf_counter(), time.thread_time()
        method(ws, count, size)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    finally:
        ws.shutdown()
    megabytes = size * count / 1e6
    return megabytes / wall, cpu / megabytes


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--megabytes", type=float, default=96.0, help="payload per run")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    ports: "multiprocessing.Queue[int]" = multiprocessing.Queue()
    sender = multiprocessing.Process(target=_sender_main, args=(ports,), name="bench-sender", daemon=True)
    sender.start()
    base = f"ws://127.0.0.1:{ports.get(timeout=30)}"
    results: Dict[Tuple[int, str], List[Tuple[float, float]]] = {}
    try:
        for size in SIZES:
            count = int(args.megabytes * 1e6 // size)
            measure(base, read_frames, size, count)  # warm up: the sender builds its stream
            for _ in range(args.reps):
                for name, method in METHODS.items():  # interleaved, so drift hits all alike
                    results.setdefault((size, name), []).append(measure(base, method, size, count))
    finally:
        try:
            socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=5).sendall(
                b"GET /quit HTTP/1.1\r\n\r\n")
        except OSError:
            pass
        sender.join(10)
        if sender.is_alive():
            sender.terminate()
            sender.join()

    print(f"{args.megabytes:g} MB of binary frames per run over loopback TCP, median of {args.reps} runs, "
          f"Python {sys.version.split()[0]}, websocket-client {websocket.__version__}")
    print(f"{'frame':>8}  {'reader':<22} {'MB/s':>8} {'x':>6}   {'CPU ms/MB':>9} {'x':>6}")
    table = []
    for size in SIZES:
        base_rate = statistics.median(r for r, _ in results[(size, "websocket-client")])
        base_cpu = statistics.median(c for _, c in results[(size, "websocket-client")])
        for name in METHODS:
            rate = statistics.median(r for r, _ in results[(size, name)])
            cpu = statistics.median(c for _, c in results[(size, name)])
            print(f"{size:>8}  {name:<22} {rate:>8.0f} {rate / base_rate:>6.2f}   {cpu * 1e3:>9.2f} {base_cpu / cpu:>6.2f}")
            table.append({"frame_bytes": size, "reader": name, "mb_per_s": rate, "speedup": rate / base_rate,
                          "cpu_ms_per_mb": cpu * 1e3, "cpu_ratio": base_cpu / cpu})
    print("x: MB/s over websocket-client's, and websocket-client's CPU per MB over this reader's")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
