"""A slow link for the benchmarks: a loopback TCP proxy that delays each direction.

    python benchmarks/delay_proxy.py --target 127.0.0.1:PORT [--delay-ms 20]
                                     [--max-seconds 600] [--max-connections 2000]

On a real network the round trips, not the bytes, decide the time to first audio: a
client that connects for every speech pays TCP's handshake, the WebSocket upgrade and
the request, about three round trips, where a client with an open connection pays one.
This proxy makes loopback behave like such a link: everything either side sends reaches
the other ``--delay-ms`` later (default 20 ms each way: a 40 ms round trip), in order,
with no bandwidth limit.

The TCP handshake: a user-space proxy cannot delay it (the kernel accepts the
connection at once), so the first bytes of each connection are held one extra round
trip, as the client would have waited for SYN-ACK before sending them: a client that
connects and then sends hears its first answer two round trips after the connect, as
over a real link. TLS (``wss://``), which adds one or two more round trips on a real
network, is not modelled.

Bounded: it accepts at most ``--max-connections`` at once (more are closed at once) and
exits after ``--max-seconds``, when its stdin closes (its parent is gone), or on SIGTERM.
It prints ``PORT n`` once listening. Loopback only.

Imports: the standard library only (asyncio).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import List, Optional, Tuple

READ_SIZE = 65536


class DelayProxy:
    """Forwards connections on 127.0.0.1 to ``target``, each direction ``delay`` seconds late.

    Thread: one event loop's.
    """

    def __init__(self, target: Tuple[str, int], delay: float, max_connections: int) -> None:
        if target[0] not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the delay proxy forwards to loopback only")
        self.target = target
        self.delay = delay
        self.max_connections = max_connections
        self.active = 0
        self.served = 0

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            await self.forward(client_reader, client_writer)
        except asyncio.CancelledError:
            pass  # the proxy is stopping; Python 3.11's stream callback would log it as an error

    async def forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.active >= self.max_connections:
            client_writer.close()
            return
        self.active += 1
        self.served += 1
        try:
            try:
                server_reader, server_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            try:
                await asyncio.gather(
                    self.pipe(client_reader, server_writer, first_extra=2 * self.delay),
                    self.pipe(server_reader, client_writer, first_extra=0.0))
            finally:
                server_writer.close()
        finally:
            self.active -= 1
            client_writer.close()

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_extra: float) -> None:
        """Copy ``reader`` to ``writer``, each chunk ``delay`` late (the first ``first_extra``
        later still), keeping the order; forward the end of stream likewise."""
        loop = asyncio.get_running_loop()
        queue: "asyncio.Queue[Tuple[float, Optional[bytes]]]" = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        last_due = 0.0
        extra = first_extra
        try:
            while True:
                try:
                    data: Optional[bytes] = await reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                due = max(loop.time() + self.delay + extra, last_due)
                extra, last_due = 0.0, due
                queue.put_nowait((due, data or None))
                if not data:
                    break
            await delivering
        except (ConnectionError, OSError):
            pass  # the other side went away: the connection ends
        finally:
            if not delivering.done():
                delivering.cancel()


async def run(target: Tuple[str, int], delay: float, port: int, max_seconds: float, max_connections: int) -> None:
    proxy = DelayProxy(target, delay, max_connections)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # stdin closing means the parent is gone (or done with us).
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def watch_stdin() -> None:
        while await stdin.readline():
            pass
        stop.set()

    watcher = asyncio.ensure_future(watch_stdin())
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except asyncio.TimeoutError:
        pass
    finally:
        watcher.cancel()
        server.close()
        # From Python 3.12 wait_closed() also waits for open connections: bounded.
        try:
            await asyncio.wait_for(server.wait_closed(), 1.0)
        except asyncio.TimeoutError:
            pass


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the server (loopback)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="one-way delay (default 20)")
    parser.add_argument("--port", type=int, default=0, help="where to listen (default: any free port)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="exit after this long (default 600)")
    parser.add_argument("--max-connections", type=int, default=2000, help="at once (default 2000)")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    asyncio.run(run((host, int(port)), args.delay_ms / 1000.0, args.port, args.max_seconds, args.max_connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
