"""Rate limits and concurrency: ``max_concurrent`` queues speeches first come first served,
and a provider that refuses for load is left alone until its ``Retry-After`` has passed.

Real clients against bundled servers on loopback; the server's transcript and its
connection count say what reached it, and in what order.
"""

from __future__ import annotations

import pytest

from ttsstream import Cancelled, ServerError, Timeouts, TTSClient
from ttsstream.health import FAILURES_TO_OPEN
from ttsstream.server import tone_pcm


def test_max_concurrent_sends_in_the_order_spoken(make_server):
    server = make_server(realtime=4.0)  # each speech lasts a little, so the others must wait
    texts = [f"Queued speech number {n}." for n in range(5)]
    with TTSClient("eigenai", url=server.url, max_concurrent=1) as client:
        speeches = [client.speak(text, block=False) for text in texts]
        for speech in speeches:
            speech.wait(30)
    assert [u.text for u in server.transcript] == texts
    assert all(s.pcm == tone_pcm(s.text) for s in speeches)


def test_a_speech_cancelled_while_it_waits_is_never_sent_and_its_turn_passes_on(make_server):
    server = make_server(realtime=4.0)
    with TTSClient("eigenai", url=server.url, max_concurrent=1) as client:
        first = client.speak("The first one talks.", block=False)
        waiting = client.speak("This one never leaves.", block=False)
        last = client.speak("The last one talks too.", block=False)
        waiting.cancel()
        with pytest.raises(Cancelled):
            waiting.wait(10)
        first.wait(30)
        last.wait(30)
    assert [u.text for u in server.transcript] == ["The first one talks.", "The last one talks too."]


def test_slots_are_per_client_and_freed_by_failures(make_server):
    server = make_server(fault="error:after=0")
    with TTSClient("eigenai", url=server.url, max_concurrent=1, retries=0) as client:
        for n in range(FAILURES_TO_OPEN):  # each failure gives its slot back, or the next would wait forever
            with pytest.raises(ServerError):
                client.speak(f"Failing {n}.")
    assert len(server.transcript) == FAILURES_TO_OPEN


def test_a_waiting_speechs_first_audio_limit_starts_when_it_is_sent(make_server):
    # Each speech takes about a second at real time; the limit is half a second. A speech
    # that counted its wait in line would time out before its turn came.
    server = make_server(realtime=1.0)
    texts = [f"In line, number {n}." for n in range(3)]
    with TTSClient("eigenai", url=server.url, max_concurrent=1, timeout=Timeouts(first_audio=0.5)) as client:
        speeches = [client.speak(text, block=False) for text in texts]
        for speech in speeches:
            speech.wait(30)
    assert all(s.pcm == tone_pcm(s.text) for s in speeches)
    assert speeches[0].duration + speeches[1].duration > 1.0  # the wait in line: longer than the limit
    assert speeches[-1].first_audio_latency > 0.5
