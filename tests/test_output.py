"""Chunks in the caller's format: ``AudioFormat`` per client or per speech, over real sockets.

The bundled server (tone engine: its audio is known exactly) sends frames of whatever
size; the chunks must be the whole speech resampled in one go, encoded, and cut into
exact frames, whatever the server's frames were.
"""

from __future__ import annotations

import queue
import time
from typing import List, Tuple

import pytest

from ttsstream import AudioChunk, AudioFormat, Cancelled, ConnectionFailed, InvalidParameterError, TTSClient
from ttsstream.formats import StreamResampler
from ttsstream.formats.g711 import alaw_encode, mulaw_encode
from ttsstream.audio import pcm_to_array
from ttsstream.server import tone_pcm

TEXT = "Telephone lines take eight thousand samples a second."
PHONE = AudioFormat(8000, "mulaw", frame_ms=20)


def resampled(pcm: bytes, rate_in: int, rate_out: int) -> bytes:
    """The whole speech resampled in one call: what any chunking must add up to."""
    resampler = StreamResampler(rate_in, rate_out)
    return resampler.push(pcm) + resampler.flush()


def speak(client: TTSClient, text: str = TEXT, **options) -> Tuple[List[AudioChunk], object]:
    got: "queue.SimpleQueue[AudioChunk]" = queue.SimpleQueue()
    speech = client.speak(text, on_audio=got.put, **options)
    return [got.get_nowait() for _ in range(got.qsize())], speech


@pytest.mark.parametrize("frame_bytes", [1000, 4800, 333 * 2, 77 * 2])
@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_phone_frames_are_exact_whatever_the_servers_frames(make_server, frame_bytes, provider):
    server = make_server(frame_bytes=frame_bytes)
    with TTSClient(provider, url=server.url) as client:
        chunks, speech = speak(client, output=PHONE)
    expected_pcm = resampled(tone_pcm(TEXT), 24000, 8000)
    assert [len(c.data) for c in chunks[:-1]] == [160] * (len(chunks) - 1) and 0 < len(chunks[-1].data) <= 160
    assert b"".join(c.data for c in chunks) == mulaw_encode(pcm_to_array(expected_pcm))
    assert b"".join(c.pcm for c in chunks) == expected_pcm
    assert {(c.sample_rate, c.encoding) for c in chunks} == {(8000, "mulaw")}
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert speech.pcm == tone_pcm(TEXT) and speech.sample_rate == 24000  # the speech keeps the server's audio


def test_a_clients_format_applies_to_every_speech_and_a_speech_may_choose_its_own(server):
    with TTSClient("eigenai", url=server.url, output=AudioFormat(encoding="alaw")) as client:
        alaw, _ = speak(client)
        wide, _ = speak(client, output=AudioFormat(16000))
    expected8 = resampled(tone_pcm(TEXT), 24000, 8000)
    assert b"".join(c.data for c in alaw) == alaw_encode(pcm_to_array(expected8))
    assert all(c.encoding == "pcm16" and c.data == c.pcm and c.sample_rate == 16000 for c in wide)
    assert b"".join(c.pcm for c in wide) == resampled(tone_pcm(TEXT), 24000, 16000)


def test_a_text_streams_frames_run_across_its_units(server):
    units = ["The first sentence is here. ", "The second follows it. ", "A third one ends."]
    got: "queue.SimpleQueue[AudioChunk]" = queue.SimpleQueue()
    with TTSClient("eigenai", url=server.url) as client:
        speech = client.open_stream(on_audio=got.put, output=PHONE)
        for unit in units:
            speech.feed(unit)
        speech.finish()
        speech.wait(30)
    chunks = [got.get_nowait() for _ in range(got.qsize())]
    assert [len(c.data) for c in chunks[:-1]] == [160] * (len(chunks) - 1)
    assert b"".join(c.pcm for c in chunks) == resampled(speech.pcm, 24000, 8000)


def test_a_failed_speech_still_hands_on_its_last_frame_before_on_error(make_server):
    server = make_server(fault="drop:after=3")
    events: "queue.SimpleQueue[object]" = queue.SimpleQueue()
    with TTSClient("eigenai", url=server.url, retries=0) as client:
        speech = client.speak(TEXT, on_audio=events.put, on_error=events.put, output=PHONE, block=False)
        with pytest.raises(ConnectionFailed):
            speech.wait(10)
    got = [events.get_nowait() for _ in range(events.qsize())]
    chunks, last = got[:-1], got[-1]
    assert isinstance(last, ConnectionFailed) and all(isinstance(c, AudioChunk) for c in chunks)
    assert b"".join(c.pcm for c in chunks) == resampled(speech.pcm, 24000, 8000)


def test_a_cancelled_speech_hands_on_nothing_after_the_cancel(make_server):
    server = make_server(realtime=2.0)
    events: "queue.SimpleQueue[object]" = queue.SimpleQueue()
    with TTSClient("eigenai", url=server.url) as client:
        speech = client.speak(TEXT, on_audio=events.put, on_error=events.put, output=PHONE, block=False)
        first = events.get(timeout=10)
        speech.cancel()
        with pytest.raises(Cancelled):
            speech.wait(10)
    got = [first] + [events.get_nowait() for _ in range(events.qsize())]
    assert isinstance(got[-1], Cancelled) and all(len(c.data) == 160 for c in got[:-1])


def test_poll_dispatch_and_the_cache_give_the_same_frames(server):
    with TTSClient("eigenai", url=server.url, dispatch="poll", cache=True, output=PHONE) as client:
        runs = []
        for _ in range(2):
            got: List[AudioChunk] = []
            ended: "queue.SimpleQueue[object]" = queue.SimpleQueue()
            speech = client.speak(TEXT, on_audio=got.append, on_complete=ended.put, block=False)
            deadline = time.monotonic() + 10
            while ended.empty() and time.monotonic() < deadline:  # the callbacks run here, in order
                client.poll(0.05)
            runs.append((got, speech.cached))
    (first, cached_first), (second, cached_second) = runs
    assert not cached_first and cached_second
    assert [c.data for c in first] == [c.data for c in second] and first


def test_a_bad_output_is_refused_before_anything_is_sent(server):
    with TTSClient("eigenai", url=server.url) as client:
        with pytest.raises(InvalidParameterError, match="AudioFormat"):
            client.speak(TEXT, output="mulaw")
    with pytest.raises(InvalidParameterError, match="AudioFormat"):
        TTSClient("eigenai", url=server.url, output={"encoding": "mulaw"})
    with pytest.raises(InvalidParameterError):
        AudioFormat(encoding="gsm")
    assert server.transcript == []
