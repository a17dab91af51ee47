"""Refusals for load and the faults that make them: ``RateLimited`` from what servers send,
and the bundled server's ``http_429``, ``http_503``, ``concurrency_limit``, ``silent``,
``slow_first_audio``, ``FaultMix``, ``set_fault`` and ``handshakes``.

The parsing is tested with the strings and frames servers send; the faults with a real
``TTSClient`` (both dialects where the fault applies) or a raw websocket-client socket on
a real loopback port. Everything is asserted on the test's own thread.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from email.utils import formatdate
from typing import Any, List, Optional

import pytest
import websocket

from test_cli_speak import TIMEOUT, env
from test_protocols import failed_error
from test_server import KEY, TEXT, close_quietly, connect, eigenai_session, read
from ttsstream import (AuthenticationError, ConnectionFailed, RateLimited, ServerError, SynthesisTimeout, Timeouts,
                       TTSClient)
from ttsstream.protocols import get_dialect
from ttsstream.retry import RetryPolicy
from ttsstream.server import FaultMix, FaultSpec, LocalServer
from ttsstream.server.faults.actions import TOO_MANY
from ttsstream.wire import retry_after_seconds

NOW = 1_700_000_000.0  # a Unix time, whole seconds: HTTP-dates have no fractions
DIALECTS = ["eigenai", "shunyalabs"]


def url_of(server: LocalServer, provider: str) -> str:
    return server.eigenai_url if provider == "eigenai" else server.shunyalabs_url


def client_of(server: LocalServer, provider: str, **options: Any) -> TTSClient:
    return TTSClient(provider=provider, url=url_of(server, provider), api_key=KEY, **options)


def refused_status(url: str) -> int:
    """The HTTP status a handshake to ``url`` is refused with (101 if it is accepted)."""
    try:
        ws = connect(url)
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code)
    close_quietly(ws)
    return 101


def close_and_wait(ws: websocket.WebSocket) -> None:
    """Close politely and wait until the server has closed TCP: its end is gone too."""
    ws.send_close()
    while ws.recv_data(control_frame=True)[0] != websocket.ABNF.OPCODE_CLOSE:
        pass
    assert ws.sock is not None
    assert ws.sock.recv(1) == b""  # the server's FIN
    ws.shutdown()


# -- the error type --------------------------------------------------------------------------


def test_rate_limited_is_a_server_error_with_retry_after() -> None:
    error = RateLimited("busy", code=429, retry_after=2.5)
    assert isinstance(error, ServerError) and (error.code, error.retry_after, str(error)) == (429, 2.5, "busy")
    assert RateLimited("busy").retry_after is None
    advice = RateLimited.advice(3)
    assert "wait 3 s" in advice and "max_concurrent=" in advice and "fallback=" in advice


def test_a_rate_limit_is_never_retried_by_the_connection() -> None:
    assert not RetryPolicy.retriable(RateLimited("busy", code=429, retry_after=1))
    assert not RetryPolicy.retriable(RateLimited("busy", code=1013))
    assert RetryPolicy.retriable(ConnectionFailed("503", status=503, retry_after=1))  # a 503 still is


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize("value, seconds", [
    ("3", 3.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("1.5", 1.5),
    (formatdate(NOW + 10, usegmt=True), 10.0),                  # an HTTP-date, ten seconds on
    (formatdate(NOW - 60, usegmt=True), 0.0),                   # already past: no wait
    ("Tue, 14 Nov 2023 22:13:30 -0000", 10.0),                  # no zone: GMT anyway
    ("-1", None),
    ("soon", None),
    ("", None),
    ("nan", None),
    ("inf", None),
    (None, None),
])
def test_retry_after_reads_seconds_and_http_dates(value: Optional[str], seconds: Optional[float]) -> None:
    assert retry_after_seconds(value, NOW) == seconds


# -- close codes -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", DIALECTS)
@pytest.mark.parametrize("code", [1013, 4029, 4429])
def test_close_codes_for_load_are_rate_limited(provider: str, code: int) -> None:
    error = get_dialect(provider).close_error(code, "try again in 4 seconds", False)
    assert type(error) is RateLimited and error.code == code and error.retry_after == 4.0
    assert f"code {code}: try again in 4 seconds" in str(error) and "max_concurrent=" in str(error)
    bare = get_dialect(provider).close_error(code, "", True)
    assert type(bare) is RateLimited and bare.retry_after is None


@pytest.mark.parametrize("provider", DIALECTS)
@pytest.mark.parametrize("code", [1011, 1001, 4000, None])
def test_other_close_codes_stay_connection_errors(provider: str, code: Optional[int]) -> None:
    assert type(get_dialect(provider).close_error(code, "rate", False)) is ConnectionFailed


# -- error messages ------------------------------------------------------------------------------

LIMITED = [
    # (the error's fields, its code, retry_after)
    ({"message": "slow down", "code": 429}, 429, None),
    ({"message": "slow down", "code": "429"}, "429", None),
    ({"message": "slow down", "code": "rate_limit_exceeded"}, "rate_limit_exceeded", None),
    ({"message": "slow down", "code": "Too_Many_Requests"}, "Too_Many_Requests", None),
    ({"message": "slow down", "code": "too_many_concurrent_requests"}, "too_many_concurrent_requests", None),
    ({"message": "slow down", "code": "concurrency_limit_exceeded"}, "concurrency_limit_exceeded", None),
    ({"message": "Rate limit exceeded"}, None, None),
    ({"message": "rate-limited: 10 requests per minute"}, None, None),
    ({"message": "Too many requests, try again in 2 seconds"}, None, 2.0),
    ({"message": "concurrency limit reached; retry after 2 s"}, None, 2.0),
    ({"message": "too many concurrent connections", "code": 4029}, 4029, None),
    ({"message": "too many requests", "retry_after": 3}, None, 3.0),
    ({"message": "too many requests", "retry_after": "3"}, None, 3.0),
    ({"message": "too many requests", "retry_after_ms": 1500}, None, 1.5),
    ({"message": "rate limit; retry after 500 ms", "code": 429}, 429, 0.5),
    ({"message": "too many requests for this API key", "code": 429}, 429, None),  # load, not the key
]
ORDINARY = [
    # errors that must stay what they were: ServerError, or AuthenticationError for a key
    ({"message": "engine failed", "code": 500}, ServerError),
    ({"message": "queue full", "code": 503}, ServerError),
    ({"message": "sample rate limited to 24000 Hz", "code": 400}, ServerError),
    ({"message": "text too long; try again in 2 seconds with less", "code": 413}, ServerError),
    ({"message": "bad voice", "code": "invalid_voice"}, ServerError),
    ({"message": "invalid API key", "code": 401}, AuthenticationError),
]


def eigen_frame(fields: Any) -> str:
    return json.dumps({"type": "error", **fields})


def shunya_frames(fields: Any) -> List[str]:
    """The two shapes Shunyalabs' errors come in: flat, and an error object."""
    said = dict(fields)
    message = said.pop("message")
    return [json.dumps({"type": "error", "error": message, **said}),
            json.dumps({"type": "error", "error": {"message": message, **said}})]


@pytest.mark.parametrize("fields, code, wait", LIMITED)
def test_error_messages_for_load_are_rate_limited(fields: Any, code: Any, wait: Optional[float]) -> None:
    errors = [failed_error(get_dialect("eigenai").parse_text(eigen_frame(fields), False))]
    errors += [failed_error(get_dialect("shunyalabs").parse_text(frame, False)) for frame in shunya_frames(fields)]
    for error in errors:
        assert type(error) is RateLimited, error
        assert (error.code, error.retry_after) == (code, wait)
        assert fields["message"] in str(error) and "fallback=" in str(error)


@pytest.mark.parametrize("fields, kind", ORDINARY)
def test_ordinary_errors_are_not_rate_limits(fields: Any, kind: type) -> None:
    assert type(failed_error(get_dialect("eigenai").parse_text(eigen_frame(fields), False))) is kind
    for frame in shunya_frames(fields):
        error = failed_error(get_dialect("shunyalabs").parse_text(frame, False))
        assert type(error) is (ServerError if kind is AuthenticationError else kind)  # Shunyalabs: close 4001


# -- http_429, http_503 ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", DIALECTS)
def test_http_429_is_rate_limited_with_its_retry_after_and_not_retried_at_once(make_server, provider) -> None:
    server = make_server(fault="http_429:after=3")
    with client_of(server, provider, retries=0) as client:
        with pytest.raises(RateLimited) as caught:
            client.speak(TEXT)
    assert (caught.value.code, caught.value.retry_after) == (429, 3.0)
    assert "HTTP 429" in str(caught.value) and "wait 3 s" in str(caught.value) and KEY not in str(caught.value)
    assert server.handshakes == 1 and server.connections == 0  # knocked once: a 429 is not retried at once


@pytest.mark.parametrize("provider", DIALECTS)
def test_with_retries_a_short_retry_after_is_waited_out_each_time(make_server, provider) -> None:
    server = make_server(fault="http_429:after=0.2")
    with client_of(server, provider, retries=2) as client:
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            client.speak(TEXT)
        waited = time.monotonic() - started
    assert server.handshakes == 3 and caught.value.retry_after == 0.2
    assert waited >= 2 * 0.2  # each knock after the service's Retry-After, never before


def test_a_retry_after_longer_than_the_connect_timeout_is_not_waited_out(make_server) -> None:
    server = make_server(fault="http_429:after=60")
    with client_of(server, "eigenai", retries=3) as client:
        with pytest.raises(RateLimited):
            client.speak(TEXT)
    assert server.handshakes == 1


def test_http_429_sends_retry_after_and_a_json_body(make_server) -> None:
    server = make_server(fault="http_429")
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        connect(server.eigenai_url)
    assert caught.value.status_code == 429 and caught.value.resp_headers["retry-after"] == "1"
    assert caught.value.resp_headers["content-type"] == "application/json"
    assert json.loads(caught.value.resp_body)["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("provider", DIALECTS)
def test_http_503_is_a_connection_failure_that_is_retried(make_server, provider) -> None:
    server = make_server(fault="http_503")
    with client_of(server, provider, retries=1) as client:
        with pytest.raises(ConnectionFailed) as caught:
            client.speak(TEXT)
    assert type(caught.value) is ConnectionFailed and caught.value.status == 503
    assert caught.value.retry_after is None  # the fault sends no Retry-After
    assert server.handshakes == 2 and server.connections == 0


# -- concurrency_limit -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", DIALECTS)
def test_concurrency_limit_refuses_one_connection_too_many_until_one_closes(make_server, provider) -> None:
    server = make_server(fault="concurrency_limit:after=2")
    held = [connect(url_of(server, provider)) for _ in range(2)]
    try:
        with client_of(server, provider, retries=0) as client:
            with pytest.raises(RateLimited) as caught:
                client.speak(TEXT)
            close_and_wait(held.pop())  # a place is free again, but this client waits out the Retry-After
            with pytest.raises(RateLimited, match="left alone"):
                client.speak(TEXT)
        with client_of(server, provider, retries=0) as fresh:
            spoken = fresh.speak(TEXT)
    finally:
        for ws in held:
            close_quietly(ws)
    assert (caught.value.code, caught.value.retry_after) == (429, 1.0)
    assert spoken.done and server.transcript[-1].completed
    assert server.handshakes == 4 and server.connections == 3


@pytest.mark.parametrize("provider", DIALECTS)
def test_a_speech_refused_for_concurrency_waits_its_turn_and_is_spoken(make_server, provider) -> None:
    server = make_server(fault="concurrency_limit:after=2")
    held = [connect(url_of(server, provider)) for _ in range(2)]
    try:
        with client_of(server, provider, retries=3) as client:
            speech = client.speak(TEXT, block=False)  # refused: it waits out Retry-After: 1
            deadline = time.monotonic() + 10
            while server.handshakes < 3 and time.monotonic() < deadline:
                time.sleep(0.01)  # until its first knock was refused
            close_and_wait(held.pop())  # a place is free before it knocks again
            speech.wait(10)
    finally:
        for ws in held:
            close_quietly(ws)
    assert speech.error is None and server.transcript[-1].completed
    assert server.handshakes == 4 and speech.attempts == []


def test_concurrency_limit_answers_429_with_a_json_reason(make_server) -> None:
    server = make_server(fault="concurrency_limit:after=1")
    held = connect(server.eigenai_url)
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect(server.gateway_url)  # every endpoint counts against the one limit
    finally:
        close_quietly(held)
    assert caught.value.status_code == 429 and caught.value.resp_headers["retry-after"] == "1"
    assert json.loads(caught.value.resp_body)["error"]["message"] == TOO_MANY


# -- silent, slow_first_audio ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", DIALECTS)
def test_silent_times_out_waiting_for_first_audio(make_server, provider) -> None:
    server = make_server(fault="silent")
    with client_of(server, provider, timeout=Timeouts(first_audio=0.5)) as client:
        with pytest.raises(SynthesisTimeout) as caught:
            client.speak(TEXT)
    assert caught.value.limit == "first_audio"
    assert server.connections == 1 and server.transcript[0].fault == "silent"
    assert server.transcript[0].frame_sizes == []


def test_silent_sends_nothing_at_all(make_server) -> None:
    server = make_server(fault="silent")
    ws = eigenai_session(server.eigenai_url)
    try:
        ws.send(json.dumps({"text": TEXT}))
        ws.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv_data(control_frame=True)  # no audio, no end message, no close: our own timeout ends it
    finally:
        close_quietly(ws)


@pytest.mark.parametrize("provider", DIALECTS)
def test_slow_first_audio_is_late_then_completes(make_server, provider) -> None:
    server = make_server(fault="slow_first_audio:after=0.5")
    with client_of(server, provider) as client:
        speech = client.speak(TEXT)
    assert speech.done and speech.error is None
    assert speech.first_audio_latency is not None and speech.first_audio_latency >= 0.5  # a lower bound only
    assert server.transcript[0].completed and server.transcript[0].fault == "slow_first_audio"


# -- FaultMix, set_fault, handshakes -----------------------------------------------------------------

MIX = {"http_503": .3, "http_429:after=2": .2, "http_401": .2}


def test_a_fault_mix_with_a_seed_draws_the_same_faults_on_every_server(make_server) -> None:
    runs = []
    for _ in range(2):
        server = make_server(fault=FaultMix(MIX, seed=7))
        runs.append([refused_status(server.eigenai_url) for _ in range(40)])
        assert server.handshakes == 40
    assert runs[0] == runs[1]
    assert set(runs[0]) == {503, 429, 401, 101}  # every fault, and none


def test_a_fault_mix_draws_by_weight() -> None:
    mix = FaultMix({"drop:after=2": .5, FaultSpec("close", 0): .25}, seed=1)
    draws = [mix.draw() for _ in range(4000)]
    again = FaultMix({"drop:after=2": .5, FaultSpec("close", 0): .25}, seed=1)
    assert draws == [again.draw() for _ in range(4000)]
    counts = {spec: draws.count(spec) for spec in (FaultSpec("drop", 2), FaultSpec("close", 0), None)}
    assert 1800 < counts[FaultSpec("drop", 2)] < 2200 and 850 < counts[FaultSpec("close", 0)] < 1150
    assert mix.weights == {FaultSpec("drop", 2): .5, FaultSpec("close", 0): .25}
    assert repr(mix) == "FaultMix({'drop:after=2': 0.5, 'close:after=0': 0.25}, seed=1)"


@pytest.mark.parametrize("weights, seed, message", [
    ({}, None, "mapping of faults to chances"),
    ([("drop", 1)], None, "mapping of faults to chances"),
    ({"explode": .1}, None, "unknown fault 'explode'"),
    ({"drop:after=x": .1}, None, "after= takes a number"),
    ({"drop": -0.1}, None, "must be a number >= 0"),
    ({"drop": "half"}, None, "must be a number >= 0"),
    ({"drop": float("nan")}, None, "must be a number >= 0"),
    ({"drop": .6, "close": .6}, None, "add up to 1.2, more than 1"),
    ({"drop": .1, FaultSpec("drop", 1): .1}, None, "named twice"),
    ({"drop": .1}, "one", "seed must be an int"),
])
def test_a_fault_mix_says_what_is_wrong(weights: Any, seed: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        FaultMix(weights, seed=seed)


def test_local_server_takes_a_mix_but_no_fault_after_with_it() -> None:
    mix = FaultMix(MIX, seed=1)
    assert LocalServer(engine="tone", fault=mix).fault is mix
    assert "fault=\"FaultMix({'http_503': 0.3" in repr(LocalServer(engine="tone", fault=mix))
    with pytest.raises(ValueError, match="leave fault_after out"):
        LocalServer(engine="tone", fault=mix, fault_after=1)


def test_set_fault_switches_for_connections_that_arrive_later(make_server) -> None:
    server = make_server()
    before = eigenai_session(server.eigenai_url)  # arrived with no fault: keeps none
    try:
        server.set_fault("http_503")
        assert server.fault == FaultSpec("http_503")
        outage = [refused_status(server.eigenai_url) for _ in range(3)]
        server.set_fault("error:after=0")
        before.send(json.dumps({"text": "ok"}))
        kinds = []
        while not kinds or kinds[-1][0] != "text":
            kinds.append(read(before))
        server.set_fault(None)
        after = refused_status(server.url + "/nope")
    finally:
        close_quietly(before)
    with pytest.raises(ValueError, match="unknown fault 'explode'"):
        server.set_fault("explode")
    assert outage == [503, 503, 503] and after == 404
    assert json.loads(kinds[-1][1])["type"] == "complete"  # the open connection kept its own (none)
    assert server.fault is None and server.handshakes == 5


def test_set_fault_reaches_the_next_connection(make_server) -> None:
    server = make_server()
    server.set_fault("error:after=0")
    ws = eigenai_session(server.eigenai_url)
    try:
        ws.send(json.dumps({"text": "ok"}))
        message = read(ws)
    finally:
        close_quietly(ws)
    assert message[0] == "text" and json.loads(message[1])["code"] == 500


# -- the command line ------------------------------------------------------------------------------


def test_serve_takes_http_429_with_seconds() -> None:
    server = subprocess.Popen([sys.executable, "-m", "ttsstream", "serve", "--port", "0", "--engine", "tone",
                               "--fault", "http_429:after=2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env())
    try:
        match = re.search(r"ws://127\.0\.0\.1:\d+", server.stdout.readline())
        assert match, server.stderr.read()
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect(match.group(0) + "/ws")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(TIMEOUT)
        finally:
            server.kill()
            server.stdout.close()
            server.stderr.close()
    assert caught.value.status_code == 429 and caught.value.resp_headers["retry-after"] == "2"
    assert code == 0
