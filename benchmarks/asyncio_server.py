"""The benchmark dialect served by asyncio ``websockets``: the server of the burst group.

    python benchmarks/asyncio_server.py [--port 0] [--priority] [--max-seconds 3600]

The same dialect, request text, frame stamps and ``stats`` control line as
``bench_server.py`` (read its docstring), built the way an independent harness built
its server: one asyncio ``websockets`` server in a process of its own, each connection a
coroutine that paces its frames with ``asyncio.sleep`` and stamps each one just before
``send()``. It costs more CPU per frame than the epoll server and, unlike it, runs at
normal priority unless ``--priority`` is given, so the client's threads and the server
share the two cores as they do on a user's machine. Its lateness counters say when the
server itself fell behind (the load it was asked to carry was not the load it carried).

Imports: bench_server (Stats, parse_spec, prioritise), procinfo; websockets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any, Optional

from websockets.asyncio.server import ServerConnection, serve

from bench_server import Stats, parse_spec, prioritise
from procinfo import raise_open_files

COMPLETE = '{"type":"complete"}'


async def stream(ws: ServerConnection, stats: Stats) -> None:
    """One connection: the auth message, the request, its paced frames, the end marker."""
    stats.accepted += 1
    try:
        await ws.recv()  # {"token", "model"}: any token will do
        request = json.loads(await ws.recv())
        frames, size, period = parse_spec(request["text"])
    except Exception:  # a client that left, or a request this server does not know
        stats.errors += 1
        return
    stats.requests += 1
    silence = bytes(size - 8)
    start = time.monotonic_ns()
    for i in range(frames):
        if period:
            due = start + i * period
            wait = due - time.monotonic_ns()
            if wait > 0:
                await asyncio.sleep(wait / 1e9)
            stats.late_us.append((time.monotonic_ns() - due) // 1000)
        await ws.send(time.monotonic_ns().to_bytes(8, "little") + silence)
        stats.frames += 1
        stats.audio_bytes += size
    await ws.send(COMPLETE)
    await ws.wait_closed()  # the client closes an EigenAI connection after the end marker


async def serve_forever(port: int, max_seconds: float) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def control() -> None:
        line = sys.stdin.readline()
        if not line:  # stdin closed: the suite is done with us
            if not done.done():
                done.set_result(None)
            return
        if line.strip() == "stats":
            sys.stdout.write(json.dumps(stats.report()) + "\n")
            sys.stdout.flush()

    loop.add_reader(sys.stdin.fileno(), control)
    loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
    async with serve(lambda ws: stream(ws, stats), "127.0.0.1", port, compression=None, ping_interval=None,
                     max_size=None, backlog=4096) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {bound}", flush=True)
        try:
            await asyncio.wait_for(done, max_seconds)
        except asyncio.TimeoutError:
            pass


def main(argv: Optional[Any] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long (default 3600)")
    parser.add_argument("--priority", action="store_true", help="run at real-time priority where allowed")
    args = parser.parse_args(argv)
    raise_open_files()
    Stats.scheduling = prioritise() if args.priority else "normal"
    asyncio.run(serve_forever(args.port, args.max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
