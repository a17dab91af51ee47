"""Never silent: a speech that fails before its first audio is spoken by the next provider.

Every test runs a real client against bundled servers on loopback: the first provider
misbehaves (one of the server's faults, a front door that counts knocks, or a port with
nothing behind it), the fallback is a healthy server whose exact audio is known, so
"the speech completed" is checked byte for byte against what the fallback sent.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest

from ttsstream import (AuthenticationError, ConnectionFailed, InvalidParameterError, Provider, RateLimited,
                       ServerError, SynthesisTimeout, Timeouts, TTSClient, health)
from ttsstream.server import tone_pcm

from doors import HTTP_401, HTTP_503

KEY = "sk-primary-31c9d7e0"
FALLBACK_KEY = "sk-fallback-b6a2"


@pytest.fixture
def dead_url() -> str:
    """A loopback URL with nothing listening: every connection is refused."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"ws://127.0.0.1:{port}/api/v1/generate/ws"


def fallback_to(server, provider: str = "eigenai") -> Provider:
    return Provider(provider, api_key=FALLBACK_KEY, url=server.url)


def test_a_refused_connection_falls_back_and_says_so(dead_url, server, caplog):
    caplog.set_level(logging.INFO, logger="ttsstream")
    backup = fallback_to(server)
    with TTSClient("eigenai", api_key=KEY, url=dead_url, fallback=[backup]) as client:
        speech = client.speak("Spoken by the second provider.")
    assert speech.pcm == tone_pcm("Spoken by the second provider.")
    assert speech.provider == Provider("eigenai", api_key=FALLBACK_KEY, model="higgs2p5", url=server.url)
    [(failed, error)] = speech.attempts
    assert failed.url == dead_url and isinstance(error, ConnectionFailed) and "refused" in str(error)
    switches = [r for r in caplog.records if r.levelno == logging.WARNING and "instead" in r.getMessage()]
    assert len(switches) == 1 and "refused" in switches[0].getMessage()
    assert all(KEY not in r.getMessage() and FALLBACK_KEY not in r.getMessage() for r in caplog.records)
    assert KEY not in repr(speech.attempts) and FALLBACK_KEY not in repr(speech.provider)


@pytest.mark.parametrize("fault, error", [
    ("http_500", ConnectionFailed),         # a handshake the service answers 5xx
    ("http_401", AuthenticationError),      # a refused key
    ("close:after=0", ConnectionFailed),    # a close frame before any audio
    ("error:after=0", ServerError),         # the service's own error before any audio
    ("drop:after=0", ConnectionFailed),     # TCP dropped before any audio
    ("stall:after=0", SynthesisTimeout),    # silent after the request
    ("silent", SynthesisTimeout),           # connected, request accepted, and never a word
    ("http_503", ConnectionFailed),
    ("http_429", RateLimited),              # too many requests
    ("slow_first_audio:after=3", SynthesisTimeout),  # slower than the first_audio limit
])
@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_every_failure_before_audio_falls_back(make_server, server, fault, error, provider):
    primary = make_server(fault=fault)
    with TTSClient(provider, api_key=KEY, url=primary.url, timeout=Timeouts(first_audio=0.5),
                   fallback=[fallback_to(server)]) as client:
        speech = client.speak("The fallback speaks.")
    assert speech.pcm == tone_pcm("The fallback speaks.") == server.transcript[-1].pcm
    [(_, failure)] = speech.attempts
    assert isinstance(failure, error)


@pytest.mark.parametrize("fault", ["drop:after=2", "close:after=2", "error:after=2", "close_before_end"])
def test_nothing_is_spoken_twice_after_audio_began(make_server, server, fault):
    primary = make_server(fault=fault)
    with TTSClient("eigenai", api_key=KEY, url=primary.url, fallback=[fallback_to(server)]) as client:
        speech = client.speak("Cut short after it began.", block=False)
        with pytest.raises((ConnectionFailed, ServerError)):
            speech.wait(10)
    assert speech.pcm == primary.transcript[-1].pcm and speech.pcm  # what came, and no more
    assert server.transcript == [] and speech.attempts == []
    assert speech.provider is not None and speech.provider.url == primary.url


def test_a_callers_mistake_never_falls_back(dead_url, server):
    with TTSClient("eigenai", api_key=KEY, url=dead_url, fallback=[fallback_to(server)]) as client:
        with pytest.raises(InvalidParameterError, match="exaggeration"):
            client.speak("Wrong parameter.", exaggeration=0.5)  # chatterbox's, not higgs2p5's
    assert server.transcript == []


def test_a_dead_first_provider_costs_one_attempt_not_four(door, server):
    gate = door(refusals=1000, answer=HTTP_503)
    with TTSClient("eigenai", api_key=KEY, url=f"ws://127.0.0.1:{gate.port}", retries=3,
                   fallback=[fallback_to(server)]) as client:
        speech = client.speak("One knock only.")
    assert speech.pcm == tone_pcm("One knock only.")
    assert gate.accepted == 1


def test_the_last_provider_keeps_its_retries(door, server, dead_url):
    gate = door(refusals=2, answer=HTTP_503)  # the third knock goes through to the server
    backup = Provider("eigenai", api_key=FALLBACK_KEY, url=f"ws://127.0.0.1:{gate.port}")
    with TTSClient("eigenai", api_key=KEY, url=dead_url, retries=3, fallback=[backup]) as client:
        speech = client.speak("Third time lucky.")
    assert speech.pcm == tone_pcm("Third time lucky.") and gate.accepted == 3


def test_when_every_provider_fails_the_error_is_the_last_ones(dead_url, make_server):
    refusing = make_server(fault="http_401")
    with TTSClient("eigenai", api_key=KEY, url=dead_url, fallback=[fallback_to(refusing)]) as client:
        speech = client.speak("Nobody can say this.", block=False)
        with pytest.raises(AuthenticationError) as caught:
            speech.wait(10)
    assert [type(error) for _, error in speech.attempts] == [ConnectionFailed, AuthenticationError]
    assert caught.value is speech.error is speech.attempts[-1][1]


def test_a_rejected_key_is_tried_exactly_once(door, server):
    gate = door(refusals=1000, answer=HTTP_401)
    with TTSClient("eigenai", api_key=KEY, url=f"ws://127.0.0.1:{gate.port}",
                   fallback=[fallback_to(server)]) as client:
        speeches = [client.speak(f"Speech number {n}.") for n in range(4)]
    assert gate.accepted == 1
    assert all(s.pcm == tone_pcm(s.text) for s in speeches)
    assert all(isinstance(s.attempts[0][1], AuthenticationError) for s in speeches)
    assert "not tried again" in str(speeches[-1].attempts[0][1])


def test_a_failing_provider_is_left_alone_by_the_circuit_breaker(door, server, caplog):
    gate = door(refusals=1000, answer=HTTP_503)
    caplog.set_level(logging.WARNING, logger="ttsstream.fallback")
    with TTSClient("eigenai", api_key=KEY, url=f"ws://127.0.0.1:{gate.port}",
                   fallback=[fallback_to(server)]) as client:
        speeches = [client.speak(f"Breaker speech {n}.") for n in range(8)]
    said = [r.getMessage() for r in caplog.records if "instead" in r.getMessage()]
    assert sum("failed before any audio" in line for line in said) == 3
    assert sum("is not tried now" in line for line in said) == 5
    assert all(s.pcm == tone_pcm(s.text) for s in speeches)
    assert gate.accepted == 3  # three in a row open the breaker; the cool-down has not passed
    skipped = speeches[-1].attempts[0][1]
    assert isinstance(skipped, ConnectionFailed) and "circuit breaker" in str(skipped)
    assert "fallback=[Provider('eigenai'" in repr(client) and FALLBACK_KEY not in repr(client)


def test_without_a_fallback_an_open_breaker_fails_at_once(door, server):
    gate = door(refusals=1000, answer=HTTP_503)
    with TTSClient("eigenai", api_key=KEY, url=f"ws://127.0.0.1:{gate.port}", retries=0) as client:
        errors = []
        for n in range(5):
            with pytest.raises(ConnectionFailed) as caught:
                client.speak(f"Nobody hears {n}.")
            errors.append(caught.value)
    assert gate.accepted == 3
    assert "503" in str(errors[0]) and "circuit breaker" in str(errors[-1])


def test_a_fallback_speaks_with_its_own_voice_and_drops_what_its_model_does_not_take(dead_url, server, caplog):
    caplog.set_level(logging.WARNING, logger="ttsstream")
    backup = Provider("eigenai", api_key=FALLBACK_KEY, url=server.url, model="qwen3-tts", voice="Ryan")
    with TTSClient("eigenai", api_key=KEY, url=dead_url, model="chatterbox", fallback=[backup]) as client:
        speech = client.speak("Exaggerated, then plain.", exaggeration=0.7, temperature=0.5)
    [served] = server.transcript
    assert served.model == "qwen3-tts" and served.voice == "Ryan"
    assert "exaggeration" not in served.request and "temperature" not in served.request
    assert speech.pcm == served.pcm
    [first] = [r.getMessage() for r in caplog.records if "for the first time" in r.getMessage()]
    assert "exaggeration" in first and "temperature" in first and "'Ryan'" in first


def test_a_plain_name_is_that_provider_with_its_defaults_and_bad_fallbacks_are_refused(server):
    assert Provider.of("local") == Provider("local")
    with pytest.raises(InvalidParameterError, match="provider"):
        TTSClient("eigenai", api_key=KEY, url=server.url, fallback=["nowhere"])
    with pytest.raises(InvalidParameterError, match="list"):
        TTSClient("eigenai", api_key=KEY, url=server.url, fallback="local")
    with pytest.raises(InvalidParameterError, match="fallback"):
        TTSClient("eigenai", api_key=KEY, url=server.url, fallback=[42])
    with pytest.raises(InvalidParameterError, match="max_concurrent"):
        TTSClient("eigenai", api_key=KEY, url=server.url, max_concurrent=0)
    assert KEY not in repr(Provider("eigenai", api_key=KEY))


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_text_stream_falls_back_before_its_first_audio_and_stays(dead_url, server, provider):
    primary = dead_url if provider == "eigenai" else dead_url.replace("/api/v1/generate/ws", "/ws")
    sentences = ["The first sentence is short. ", "The second one follows it. ", "And a third ends it."]
    with TTSClient(provider, api_key=KEY, url=primary, fallback=[fallback_to(server, provider)]) as client:
        speech = client.open_stream()
        for sentence in sentences:
            speech.feed(sentence)
        speech.finish()
        speech.wait(30)
    served = [u for u in server.transcript]
    assert b"".join(u.pcm for u in served) == speech.pcm and speech.pcm
    assert "".join(u.text for u in served).replace(" ", "") == "".join(sentences).replace(" ", "")
    assert speech.provider is not None and speech.provider.url == server.url
    assert len(speech.attempts) >= 1 and all(isinstance(e, ConnectionFailed) for _, e in speech.attempts)


# -- with the bundled server's load faults -----------------------------------------------


def test_a_rate_limited_provider_is_not_tried_again_before_retry_after(make_server, server):
    primary = make_server(fault="http_429:after=30")
    with TTSClient("eigenai", api_key=KEY, url=primary.url, fallback=[fallback_to(server)]) as client:
        speeches = [client.speak(f"Limited {n}.") for n in range(3)]
    assert primary.handshakes == 1
    assert all(s.pcm == tone_pcm(s.text) for s in speeches)
    first, later = speeches[0].attempts[0][1], speeches[-1].attempts[0][1]
    assert isinstance(first, RateLimited) and first.retry_after == 30 and first.code == 429
    assert isinstance(later, RateLimited) and 0 < later.retry_after <= 30 and "left alone" in str(later)


def test_max_concurrent_keeps_under_a_services_concurrency_limit(make_server):
    texts = [f"Overlapping speech {n}, long enough to overlap." for n in range(6)]

    def run(max_concurrent):
        server = make_server(fault="concurrency_limit:after=2", realtime=4.0)
        with TTSClient("shunyalabs", url=server.url, max_concurrent=max_concurrent, retries=0) as client:
            speeches = [client.speak(text, block=False) for text in texts]
            for speech in speeches:
                try:
                    speech.wait(30)
                except RateLimited:
                    pass
        return speeches

    capped = run(2)
    assert all(s.error is None and s.pcm == tone_pcm(s.text) for s in capped)
    uncapped = run(None)  # the same speeches all at once: the service refuses some
    assert any(isinstance(s.error, RateLimited) for s in uncapped)


def test_a_down_provider_gets_one_probe_after_its_cool_down_and_is_used_again_once_it_answers(
        make_server, server, monkeypatch):
    monkeypatch.setattr(health, "COOL_DOWN", 0.5)
    primary = make_server(fault="http_503")
    with TTSClient("eigenai", api_key=KEY, url=primary.url, timeout=Timeouts(first_audio=1.0),
                   fallback=[fallback_to(server)]) as client:
        for n in range(health.FAILURES_TO_OPEN + 2):
            client.speak(f"While it is down {n}.")
        assert primary.handshakes == health.FAILURES_TO_OPEN  # open: not knocked on since
        primary.set_fault("silent")  # answers the handshake, then says nothing
        deadline = time.monotonic() + 10
        while primary.handshakes == health.FAILURES_TO_OPEN and time.monotonic() < deadline:
            burst = [client.speak(f"Probe burst {n}.", block=False) for n in range(5)]
            for speech in burst:
                speech.wait(10)
        assert primary.handshakes == health.FAILURES_TO_OPEN + 1  # one probe, however many spoke
        assert all(s.pcm == tone_pcm(s.text) for s in burst)
        primary.set_fault(None)
        while time.monotonic() < deadline:
            back = client.speak("Is it back?")
            if back.provider is not None and back.provider.url == primary.url:
                break
        else:
            pytest.fail("the recovered provider was never used again")
        after = client.speak("It is back.")
    assert after.provider.url == primary.url and after.attempts == []
    assert after.pcm == tone_pcm("It is back.")
