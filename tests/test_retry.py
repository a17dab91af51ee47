"""Timeouts that say which limit ran out, and retries before the first byte, never after.

A ``Door`` stands in front of the bundled server on loopback: it turns away the first
connections (an HTTP status, or a TCP connection closed at once) and then lets the rest
through to the server byte for byte, so a client meets a flaky front door exactly as it
would on a real network.
"""

from __future__ import annotations

import logging

import pytest

from ttsstream import (
    AuthenticationError,
    ConnectionFailed,
    InvalidParameterError,
    ServerError,
    SynthesisTimeout,
    Timeouts,
    TTSClient,
)
from ttsstream.server import tone_pcm

from doors import HTTP_401, HTTP_503

KEY = "sk-retry-7a1c9e"




# -- timeouts ------------------------------------------------------------------------


def test_one_number_sets_all_three_limits_and_timeouts_refine_them():
    assert Timeouts.of(5) == Timeouts(5, 5, 5)
    assert Timeouts(first_audio=2) == Timeouts(connect=30, first_audio=2, between_chunks=30)
    for bad in (0, -1, True, "5", float("nan"), 4000):
        with pytest.raises(InvalidParameterError, match="timeout"):
            TTSClient(provider="local", timeout=bad)
    with pytest.raises(InvalidParameterError, match="first_audio"):
        Timeouts(first_audio=0)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_no_first_audio_in_time_names_the_first_audio_limit(make_server, provider):
    server = make_server(fault="stall", fault_after=0)
    with TTSClient(provider=provider, url=server.url, timeout=Timeouts(first_audio=0.3)) as client:
        with pytest.raises(SynthesisTimeout, match="first_audio") as caught:
            client.speak("Nothing will come.")
    assert caught.value.limit == "first_audio"


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_stall_mid_speech_names_the_between_chunks_limit(make_server, provider):
    server = make_server(fault="stall", fault_after=2)
    with TTSClient(provider=provider, url=server.url, timeout=Timeouts(between_chunks=0.3)) as client:
        speech = client.speak("Two frames and then silence.", block=False)
        with pytest.raises(SynthesisTimeout, match="between_chunks") as caught:
            speech.wait(10)
    assert caught.value.limit == "between_chunks"
    assert speech.pcm == server.transcript[-1].pcm and len(speech.pcm) > 0  # what came is kept


def test_a_steady_stream_longer_than_every_limit_never_times_out(make_server):
    # 100 ms frames paced in real time: 2.6 s of audio against limits of 0.4 s each.
    server = make_server(realtime=1.0, frame_bytes=4800)
    text = "A steady stream, paced in real time, for two seconds."
    with TTSClient(provider="eigenai", url=server.url, timeout=0.4) as client:
        speech = client.speak(text)
    assert speech.duration > 3 * 0.4
    assert speech.pcm == tone_pcm(text)


# -- retries before the first byte -----------------------------------------------------


@pytest.mark.parametrize("answer", [HTTP_503, b""], ids=["http-503", "closed-at-once"])
def test_a_failed_handshake_is_retried_and_logged_without_the_key(server, door, answer, caplog):
    caplog.set_level(logging.INFO, logger="ttsstream")
    gate = door(refusals=2, answer=answer)
    with TTSClient(provider="eigenai", url=f"ws://127.0.0.1:{gate.port}", api_key=KEY) as client:
        speech = client.speak("Third time lucky.")
    assert speech.pcm == tone_pcm("Third time lucky.")
    assert gate.accepted == 3
    retries = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert len(retries) == 2 and "attempt 2 of 4" in retries[0] and "attempt 3 of 4" in retries[1]
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_a_prewarmed_connection_is_retried_too(server, door):
    gate = door(refusals=1, answer=HTTP_503)
    with TTSClient(provider="eigenai", url=f"ws://127.0.0.1:{gate.port}") as client:
        client.prewarm(1, wait=True)
    assert gate.accepted == 2


def test_retries_stop_after_the_count(server, door):
    gate = door(refusals=10, answer=HTTP_503)
    with TTSClient(provider="eigenai", url=f"ws://127.0.0.1:{gate.port}", retries=2) as client:
        with pytest.raises(ConnectionFailed, match="503") as caught:
            client.speak("Never.")
    assert caught.value.status == 503
    assert gate.accepted == 3


def test_retries_stop_when_the_connect_budget_is_spent(server, door):
    gate = door(refusals=10_000, answer=HTTP_503)
    with TTSClient(provider="eigenai", url=f"ws://127.0.0.1:{gate.port}", retries=100,
                   timeout=Timeouts(connect=0.5)) as client:
        with pytest.raises(SynthesisTimeout) as caught:
            client.speak("Never.")
    assert caught.value.limit == "connect"
    assert 1 < gate.accepted < 101


@pytest.mark.parametrize("answer, error", [(HTTP_401, AuthenticationError),
                                           (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", ConnectionFailed)],
                         ids=["401", "404"])
def test_a_refused_key_or_a_wrong_url_is_never_retried(server, door, answer, error):
    gate = door(refusals=1, answer=answer)
    with TTSClient(provider="eigenai", url=f"ws://127.0.0.1:{gate.port}") as client:
        with pytest.raises(error):
            client.speak("Once.")
    assert gate.accepted == 1


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_connection_that_drops_before_any_audio_is_retried(make_server, provider):
    server = make_server(fault="drop", fault_after=0)  # every utterance: dropped before its audio
    with TTSClient(provider=provider, url=server.url, retries=2) as client:
        with pytest.raises(ConnectionFailed):
            client.speak("Dropped each time.")
    served = [u for u in server.transcript if u.text == "Dropped each time."]
    assert len(served) == 3 and all(u.pcm == b"" for u in served)


def test_a_server_error_message_is_never_retried(make_server):
    server = make_server(fault="error", fault_after=0)
    with TTSClient(provider="eigenai", url=server.url) as client:
        with pytest.raises(ServerError):
            client.speak("Refused by the engine.")
    assert len(server.transcript) == 1


def test_retries_zero_never_retries(make_server):
    server = make_server(fault="drop", fault_after=0)
    with TTSClient(provider="eigenai", url=server.url, retries=0) as client:
        with pytest.raises(ConnectionFailed):
            client.speak("Once only.")
    assert len(server.transcript) == 1
    with pytest.raises(InvalidParameterError, match="retries"):
        TTSClient(provider="eigenai", url=server.url, retries=-1)
