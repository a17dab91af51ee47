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


def test_a_long_running_server_keeps_only_the_latest_utterances():
    # provider="local" and `ttsstream serve` run as long as a program: their transcript
    # must not keep every utterance's audio.
    from ttsstream import TTSClient
    from ttsstream.server import LocalServer, shared_server, stop_shared_server
    from ttsstream.server.running import TRANSCRIPT_LIMIT

    server = LocalServer(engine="tone", transcript_limit=2).start()
    try:
        with TTSClient(provider="eigenai", url=server.url) as client:
            for text in ("One.", "Two.", "Three."):
                client.speak(text)
        server_texts = [u.text for u in server.transcript]
    finally:
        server.stop()
    assert server_texts == ["Two.", "Three."]
    try:
        assert shared_server()._transcript._utterances.maxlen == TRANSCRIPT_LIMIT  # bounded, not unbounded
    finally:
        stop_shared_server()
