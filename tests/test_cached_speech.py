"""Phrases played from the client's cache: exact audio, no connection, and through an outage.

A real client against the bundled server on loopback; the server's transcript and
connection count say whether a speech reached it.
"""

from __future__ import annotations

import queue
from typing import List

import pytest

from ttsstream import ConnectionFailed, InvalidParameterError, PhraseCache, Provider, TTSClient
from ttsstream.server import tone_pcm

LINE = "One moment, please."


def chunks_of(speak, text: str, **options) -> List[bytes]:
    got: "queue.SimpleQueue[bytes]" = queue.SimpleQueue()
    speak(text, on_audio=lambda chunk: got.put(chunk.pcm), **options)
    return [got.get_nowait() for _ in range(got.qsize())]


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_phrase_spoken_again_plays_from_the_cache_exactly(make_server, provider):
    server = make_server(frame_bytes=1000)
    with TTSClient(provider, url=server.url, cache=True) as client:
        first = chunks_of(client.speak, LINE)
        served = server.connections
        again = client.speak(LINE, on_audio=lambda chunk: None)
        second = chunks_of(client.speak, LINE)
    assert second == first and b"".join(first) == tone_pcm(LINE)
    assert again.cached and again.pcm == tone_pcm(LINE) and again.first_audio_latency is not None
    assert server.connections == served and len(server.transcript) == 1
    assert again.provider is not None and again.provider.url == server.url and again.attempts == []


def test_any_difference_in_voice_parameters_or_text_is_a_miss(make_server):
    server = make_server()
    with TTSClient("eigenai", url=server.url, cache=True) as client:
        client.speak(LINE)
        for variant in (dict(text=LINE + " "), dict(text=LINE, voice="Ryan"),
                        dict(text=LINE, sampling={"temperature": 0.3}), dict(text=LINE, sampling={"temperature": 0.4}),
                        dict(text=LINE, extra={"seed": 1})):
            speech = client.speak(variant.pop("text"), **variant)
            assert not speech.cached
        assert client.speak(LINE).cached
    assert len(server.transcript) == 6


def test_a_cached_phrase_plays_through_an_outage(make_server):
    server = make_server()
    with TTSClient("eigenai", url=server.url, cache=True, retries=0) as client:
        client.speak(LINE)
        server.stop()
        speech = client.speak(LINE)
    assert speech.cached and speech.pcm == tone_pcm(LINE)


def test_a_failed_or_cancelled_speech_is_not_kept(make_server):
    server = make_server(fault="drop:after=2")
    with TTSClient("eigenai", url=server.url, cache=True) as client:
        for _ in range(2):
            with pytest.raises(ConnectionFailed):
                client.speak(LINE)
    assert len(server.transcript) == 2


def test_a_disk_cache_is_shared_by_clients_naming_the_same_path(make_server, tmp_path):
    server = make_server()
    with TTSClient("eigenai", url=server.url, cache=PhraseCache(tmp_path / "phrases")) as client:
        client.speak(LINE)
    with TTSClient("eigenai", url=server.url, cache=PhraseCache(tmp_path / "phrases")) as client:
        speech = client.speak(LINE)
    assert speech.cached and speech.pcm == tone_pcm(LINE) and len(server.transcript) == 1


def test_a_text_stream_caches_unit_by_unit(make_server):
    server = make_server()
    units = ["The first unit ends here. ", "The second unit is new."]
    with TTSClient("eigenai", url=server.url, cache=True) as client:
        client.speak(units[0].strip())
        speech = client.open_stream()
        for unit in units:
            speech.feed(unit)
        speech.finish()
        speech.wait(30)
    assert [u.text for u in server.transcript] == [units[0].strip(), units[1]]
    assert speech.pcm == tone_pcm(units[0].strip()) + tone_pcm(units[1]) and not speech.cached


def test_a_hit_takes_no_slot_and_is_delivered_off_the_callers_thread(make_server):
    import threading

    server = make_server()
    threads: "queue.SimpleQueue[str]" = queue.SimpleQueue()
    with TTSClient("eigenai", url=server.url, cache=True, max_concurrent=1, dispatch="thread") as client:
        client.speak(LINE)
        speech = client.speak(LINE, block=False, on_audio=lambda chunk: threads.put(threading.current_thread().name))
        speech.wait(10)
    assert speech.cached and threads.get_nowait().startswith("ttsstream-later-")


def test_a_cache_from_the_fallback_plays_when_the_first_provider_is_down(make_server):
    primary, backup = make_server(fault="http_500"), make_server()
    with TTSClient("eigenai", url=primary.url, cache=True, retries=0,
                   fallback=[Provider("eigenai", url=backup.url)]) as client:
        first = client.speak(LINE)
        second = client.speak(LINE)
    assert not first.cached and second.cached and second.pcm == first.pcm == tone_pcm(LINE)
    assert len(backup.transcript) == 1


def test_a_bad_cache_argument_is_refused():
    with pytest.raises(InvalidParameterError, match="cache"):
        TTSClient("local", cache="yes")
