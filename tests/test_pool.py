"""The connection pool: prewarmed connections, reuse, idle retirement and the stale resend.

Which connection served a speech is read from the server's side: each utterance in
``LocalServer.transcript`` carries the number of the connection that served it, in the
order the server accepted them.
"""

from __future__ import annotations

import threading

import pytest

from ttsstream import AuthenticationError, Cancelled, ConnectionFailed, InvalidParameterError, TTSClient
from ttsstream.server import tone_pcm

from conftest import Recorder


def _wait_for(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` on the test's thread until it holds (background refills)."""
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        event.wait(0.01)
    return condition()


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_prewarmed_connections_are_open_before_speak_and_carry_it(server, provider):
    with TTSClient(provider=provider, url=server.url) as client:
        client.prewarm(2, wait=True)
        assert server.connections == 2  # opened (and authenticated) with no speech yet
        speech = client.speak("Warm start.")
    assert speech.pcm == tone_pcm("Warm start.")
    assert server.transcript[-1].connection in (1, 2)


def test_a_taken_connection_is_replaced_in_the_background(server):
    with TTSClient(provider="eigenai", url=server.url) as client:
        client.prewarm(1, wait=True)
        first = client.speak("One.")
        # EigenAI serves one request per connection: the used one closes, and the pool
        # opens another so that the next speech is warm too.
        assert _wait_for(lambda: server.connections == 2)
        client.prewarm(1, wait=True)  # already topped up: opens nothing more
        second = client.speak("Two.")
    assert [u.connection for u in server.transcript[-2:]] == [1, 2]
    assert first.pcm == tone_pcm("One.") and second.pcm == tone_pcm("Two.")


def test_prewarm_is_per_session_for_shunyalabs(server):
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        client.prewarm(1, wait=True, voice="Varun", speed=1.5)
        assert server.connections == 1
        client.speak("Other settings.")          # Nisha at 1.0: a session of its own
        assert server.transcript[-1].connection == 2
        client.speak("Same settings.", voice="Varun", speed=1.5)
        assert server.transcript[-1].connection == 1
    assert server.transcript[-1].config["voice"] == "Varun"


def test_prewarm_wait_raises_what_the_connection_failed_with():
    with TTSClient(provider="eigenai", url="ws://127.0.0.1:9", timeout=2) as client:
        with pytest.raises(ConnectionFailed, match="refused"):
            client.prewarm(2, wait=True)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_refused_key_on_a_prewarmed_connection_reaches_the_speech(make_server, provider):
    # Neither dialect acknowledges a key: the refusal comes after the connection opened,
    # so it is the speech that reports it (on the prewarmed connection, or a new one).
    server = make_server(api_key="right-key")
    with TTSClient(provider=provider, url=server.url, api_key="wrong-key") as client:
        client.prewarm(1, wait=True)
        with pytest.raises(AuthenticationError):
            client.speak("Hello.")
    # The prewarmed connection, the one the speech may have needed, and the refill its
    # taking started; a connection that failed is not replaced, so no more than that:
    # a refused key is not tried again and again.
    assert server.connections <= 3


def test_prewarm_returns_at_once_and_a_speech_can_take_a_connection_still_opening(server):
    with TTSClient(provider="eigenai", url=server.url) as client:
        client.prewarm(1)
        # The one connection prewarm() started, perhaps still opening (the server
        # numbers connections as their handshakes finish, so its number cannot say).
        (prewarmed,) = [c for idle in client._pool._idle.values() for c in idle]
        speech = client.speak("Right away.")
    assert speech.pcm == tone_pcm("Right away.")
    assert speech._connection is prewarmed


def test_prewarm_arguments_are_checked(server):
    with TTSClient(provider="eigenai", url=server.url) as client:
        for bad in (-1, 1.5, True):
            with pytest.raises(InvalidParameterError, match="n must be"):
                client.prewarm(bad)
        with pytest.raises(InvalidParameterError, match="chatterbox"):
            client.prewarm(1, exaggeration=0.5)  # not a higgs2p5 parameter
    assert server.connections == 0
    with pytest.raises(InvalidParameterError, match="max_idle"):
        TTSClient(provider="eigenai", url=server.url, max_idle=0)


def test_prewarm_zero_lets_connections_lapse_and_close_ends_them(server):
    client = TTSClient(provider="eigenai", url=server.url, max_idle=0.2)
    try:
        client.prewarm(1, wait=True)
        client.prewarm(0)
        # Retired after max_idle and, the target being 0, not replaced.
        assert _wait_for(lambda: not any(t.name.startswith("ttsstream-reader") for t in threading.enumerate()))
        assert server.connections == 1
    finally:
        client.close()


def test_an_idle_connection_retires_and_a_prewarmed_one_is_replaced(server):
    with TTSClient(provider="shunyalabs", url=server.url, max_idle=0.3) as client:
        client.prewarm(1, wait=True)
        # It closes itself after 0.3 s unused and the pool opens its successor.
        assert _wait_for(lambda: server.connections >= 2)
        client.prewarm(1, wait=True)
        speech = client.speak("After a while.")
    assert speech.pcm == tone_pcm("After a while.")
    assert server.transcript[-1].connection >= 2


@pytest.mark.parametrize("prewarmed", [False, True])
def test_a_connection_that_died_while_idle_is_replaced_invisibly(make_server, prewarmed):
    # The server forgets a connection after its first utterance and resets it when the
    # next request comes: a NAT or load balancer that dropped an idle connection.
    server = make_server(fault="reset_reused", fault_after=0)
    recorder = Recorder()
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        if prewarmed:
            client.prewarm(1, wait=True)
        client.speak("First.")
        second = client.speak("Second.", **recorder.callbacks())
    assert recorder.kinds[-1] == "complete" and not second.error
    assert second.pcm == tone_pcm("Second.")
    recorder.check_shape()
    # The reset utterance is recorded when the server sees that connection go, a moment
    # after the client has moved on: wait for it rather than race it. With prewarm the
    # pool may hand the second speech the refill it opened meanwhile (a connection that
    # never spoke, so nothing died under it): then there is nothing to resend.
    assert _wait_for(lambda: len(server.transcript) >= 3 or (prewarmed and len(server.transcript) == 2
                                                             and server.transcript[1].completed))
    served = server.transcript
    if prewarmed and len(served) == 2:
        assert [u.text for u in served] == ["First.", "Second."] and served[1].connection != served[0].connection
        return
    assert [u.text for u in served] == ["First.", "Second.", "Second."]
    assert served[1].fault == "reset_reused" and not served[1].completed and served[1].pcm == b""
    assert served[2].completed and served[2].connection != served[1].connection


def test_a_failure_after_audio_is_never_resent(make_server):
    server = make_server(fault="drop", fault_after=2)
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        with pytest.raises(ConnectionFailed):
            client.speak("A sentence long enough for several frames.")
    assert len(server.transcript) == 1


def test_cancel_is_not_resent(make_server):
    server = make_server(realtime=1.0)
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        client.speak("Warm up.")
        speech = client.speak("Cancelled on a reused connection, and never sent again.", block=False)
        speech.cancel()
        with pytest.raises(Cancelled):
            speech.wait(5)
    assert [u.text for u in server.transcript].count(speech.text) <= 1


def test_speeches_take_the_open_prewarmed_connections_before_the_refills(server):
    with TTSClient(provider="eigenai", url=server.url) as client:
        client.prewarm(3, wait=True)
        prewarmed = {c for idle in client._pool._idle.values() for c in idle}
        # The first audio starts a refill, perhaps still opening when the next speech
        # comes: the open prewarmed ones go first.
        speeches = [client.speak(f"Warm number {n}.", block=False) for n in range(3)]
        for speech in speeches:
            speech.wait(10)
    assert {speech._connection for speech in speeches} == prewarmed


def test_a_kept_pool_refills_one_connection_at_a_time(make_server):
    """A burst that takes every prewarmed connection starts one replacement, not one per
    speech: the next opens once that one is open (here it never opens)."""
    server = make_server(engine="tone")
    with TTSClient(provider="eigenai", url=server.url, timeout=5) as client:
        client.prewarm(3, wait=True)
        server.set_fault("no_handshake")  # replacements hang in their handshake from now on
        before = server.handshakes
        speeches = [client.speak(f"Burst number {n}.", block=False) for n in range(3)]
        for speech in speeches:
            speech.wait(10)
            speech._connection.thread.join(10)  # closed, and out of the pool
        # Every connection used has left it: the one replacement opening is all it holds.
        pool = client._pool
        assert pool._refilling is not None and not pool._refilling.was_open
        assert pool._all == {pool._refilling}
        assert _wait_for(lambda: server.handshakes == before + 1)
    assert [s.pcm for s in speeches] == [tone_pcm(f"Burst number {n}.") for n in range(3)]


def test_prewarm_keep_false_opens_once_and_replaces_none(server):
    with TTSClient(provider="eigenai", url=server.url) as client:
        client.prewarm(2, wait=True, keep=False)
        assert server.connections == 2
        for text in ("First.", "Second."):
            client.speak(text)._connection.thread.join(10)  # closed, and out of the pool
        assert client._pool._all == set()  # and nothing opened in its place
        client.speak("Third, cold.")  # none left: this one connects
        assert server.connections == 3
    served = [u.connection for u in server.transcript[-3:]]
    assert sorted(served[:2]) == [1, 2] and served[2] == 3


def test_during_a_burst_replacements_wait_for_a_speech_to_end(make_server):
    server = make_server(engine="tone", realtime=1.0)
    with TTSClient(provider="eigenai", url=server.url) as client:
        client.prewarm(2, wait=True)
        before = server.handshakes
        # A second chunk means the first one's follow-up (where a refill would start) has run.
        second = [threading.Event(), threading.Event()]
        speeches = [client.speak(" ".join(["burst"] * 12), block=False,
                                 on_audio=lambda chunk, e=e: chunk.index >= 1 and e.set()) for e in second]
        assert all(e.wait(10) for e in second)
        # Both are streaming: no replacement competes with them.
        assert not any(s.done for s in speeches)
        assert client._pool._refilling is None and len(client._pool._all) == 2
        for speech in speeches:
            speech.wait(30)
        # Their ends open the two replacements, one after the other.
        assert _wait_for(lambda: server.handshakes == before + 2)
        client.prewarm(2, wait=True)
        assert server.handshakes == before + 2
