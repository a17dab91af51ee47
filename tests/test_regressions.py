"""Bugs that the load, soak and fuzz tests (test_load.py, test_soak.py, test_fuzz.py) ran
into, each kept as a plain, quick test of its own so that the default run guards it."""

from __future__ import annotations

import socket

from ttsstream import TTSClient


def test_the_bundled_server_turns_nagle_off_on_its_connections(server):
    """Found by the soak: every speech against the bundled server took ~44 ms, whatever its
    length, because its end message waited for the client's delayed ACK (40 ms on Linux).

    ``socket.create_server`` makes a socket whose ``proto`` is 0, and asyncio sets
    TCP_NODELAY only on sockets whose ``proto`` is IPPROTO_TCP; so the server's
    connections kept Nagle's algorithm, which holds a small write (the end message) while
    an earlier one (the last audio frame) is unacknowledged.
    """
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        client.speak("Nagle.")
        (connection,) = server._live  # the one connection, idle between speeches
        sock = connection.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
