"""Every fault of the bundled server, as a client meets it: what the fault table says happens.

A raw websocket-client socket (or a plain TCP socket) records what arrives: frames, bytes,
close codes, HTTP statuses, resets, silence until its own timeout. Everything is asserted
on the test's own thread. The faults that ``test_server.py`` already covers are listed in
``ELSEWHERE``; ``test_every_fault_is_documented_and_tested`` holds the two lists to the table.
"""

from __future__ import annotations

import ast
import json
import re
import socket
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
import websocket

from test_server import KEY, TEXT, close_quietly, connect, eigenai_session, last_json, read, read_utterance
from ttsstream import AuthenticationError, TTSClient
from ttsstream.server import FAULTS, FaultSpec, LocalServer, describe_faults, parse_fault, tone_pcm
from ttsstream.server.faults import TABLE
from ttsstream.server.faults.actions import (HUGE_FRAME_BYTES, IDLE_CLOSE_CODE, IDLE_CLOSE_REASON,
                                             SLOW_PACE, UNKNOWN_JSON)
from ttsstream.server.faults.table import POINTS

TESTS = Path(__file__).resolve().parent
FAULTS_PAGE = TESTS.parent / "docs" / "guide" / "faults.md"
FRAME = 1000  # bytes per frame: TEXT is 29 characters, 69,600 bytes, 70 frames
RATE = 24000

# Faults whose tests live in test_server.py, by the test that shows each.
ELSEWHERE = {
    "drop": "test_fault_drop_aborts_without_a_close_frame",
    "stall": "test_fault_stall_sends_nothing_more",
    "error": "test_fault_error_ends_each_utterance_with_an_error_frame",
    "garbage": "test_fault_garbage_sends_a_frame_that_is_not_json",
    "close": "test_fault_close_closes_with_1011",
}
# Faults whose tests live in test_rate_limits.py (with a real TTSClient), by the test that shows each.
IN_RATE_LIMITS = {
    "http_429": "test_http_429_is_rate_limited_with_its_retry_after_and_not_retried_at_once",
    "http_503": "test_http_503_is_a_connection_failure_that_is_retried",
    "concurrency_limit": "test_concurrency_limit_refuses_one_connection_too_many_until_one_closes",
    "silent": "test_silent_sends_nothing_at_all",
    "slow_first_audio": "test_slow_first_audio_is_late_then_completes",
}
COVERED: Dict[str, Callable[..., Any]] = {}
ENDS = ("complete", "completion", "error")  # the types of message that end an utterance


def shows(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a test as the one that shows fault ``name``."""
    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        COVERED[name] = test
        return test
    return mark


def speak(server: LocalServer, text: str = TEXT) -> websocket.WebSocket:
    """An EigenAI session that has asked for ``text``."""
    ws = eigenai_session(server.eigenai_url)
    ws.send(json.dumps({"text": text}))
    return ws


def read_all(ws: websocket.WebSocket) -> List[Tuple[str, Any]]:
    """Every message until the end message, an error message or a close."""
    messages: List[Tuple[str, Any]] = []
    while True:
        kind, data = read(ws)
        messages.append((kind, data))
        if kind == "close" or (kind == "text" and json.loads(data).get("type") in ENDS):
            return messages


def binary(messages: List[Tuple[str, Any]]) -> List[bytes]:
    return [data for kind, data in messages if kind == "binary"]


def sizes_of(audio_bytes: int, first: int = FRAME) -> List[int]:
    """The frame sizes of ``audio_bytes`` cut into frames of FRAME bytes (the first of ``first``)."""
    sizes = [min(first, audio_bytes)]
    left = audio_bytes - sizes[0]
    while left > 0:
        sizes.append(min(FRAME, left))
        left -= sizes[-1]
    return sizes


# -- the table, the specs and the documentation ------------------------------------------------


def test_every_fault_is_documented_and_tested() -> None:
    names = [name for name in FAULTS if name is not None]
    assert FAULTS[0] is None and names == list(TABLE)
    for name in names:
        fault = TABLE[name]
        assert fault.point in POINTS and fault.happens and fault.advice, name
        assert (fault.after is None) == (fault.unit is None), name
    assert set(COVERED) | set(ELSEWHERE) | set(IN_RATE_LIMITS) == set(names)
    assert len(COVERED) + len(ELSEWHERE) + len(IN_RATE_LIMITS) == len(names)
    for module, tests in (("test_server.py", ELSEWHERE), ("test_rate_limits.py", IN_RATE_LIMITS)):
        defined = {node.name for node in ast.walk(ast.parse((TESTS / module).read_text()))
                   if isinstance(node, ast.FunctionDef)}
        assert set(tests.values()) <= defined, module
    help_lines = describe_faults().splitlines()
    assert [re.split(r"[\[:]", line)[0] for line in help_lines] == names
    assert "\nidle_close[:after=SECONDS] (default 5): a connection with" in describe_faults()
    assert "\nhttp_500: the handshake is answered HTTP 500" in describe_faults()
    assert "\nhttp_429[:after=SECONDS] (default 1): the handshake is answered HTTP 429" in describe_faults()
    assert "\nconcurrency_limit[:after=CONNECTIONS] (default 2): at most" in describe_faults()
    assert "\nsilent: the connection opens" in describe_faults()


def test_the_docs_list_every_fault() -> None:
    text = FAULTS_PAGE.read_text(encoding="utf-8")
    section = text.split("\n## The faults\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_0-9]+)(?::after=[^`]*)?` \|", section, re.M)
    assert listed == [name for name in FAULTS if name is not None]


@pytest.mark.parametrize("text, name, after", [
    ("drop", "drop", 1),
    (" drop:after=0 ", "drop", 0),
    ("stall:after=12", "stall", 12),
    ("idle_close", "idle_close", 5.0),
    ("idle_close:after=2", "idle_close", 2.0),
    ("idle_close:after=0.25", "idle_close", 0.25),
    ("realtime", "realtime", 0),
    ("http_500", "http_500", None),
    ("http_429", "http_429", 1.0),
    ("http_429:after=2.5", "http_429", 2.5),
    ("concurrency_limit", "concurrency_limit", 2),
    ("concurrency_limit:after=5", "concurrency_limit", 5),
    ("slow_first_audio:after=0.5", "slow_first_audio", 0.5),
    ("silent", "silent", None),
    ("close_before_end", "close_before_end", None),
])
def test_parse_fault_reads_a_name_and_after(text, name, after) -> None:
    spec = parse_fault(text)
    assert (spec.name, spec.after) == (name, after) and spec == FaultSpec(name, after)
    assert parse_fault(str(spec)) == spec and parse_fault(spec) is spec


@pytest.mark.parametrize("text, message", [
    ("", "unknown fault ''"),
    ("explode", "unknown fault 'explode': choose one of drop, "),
    ("drop:after=1.5", "must be an int >= 0"),
    ("drop:after=-1", "must be an int >= 0"),
    ("drop:after=x", "after= takes a number"),
    ("drop:after", "write NAME or NAME:after=N"),
    ("drop:before=1", "write NAME or NAME:after=N"),
    ("idle_close:after=0", "must be a number > 0"),
    ("idle_close:after=nan", "after= takes a number"),
    ("http_500:after=1", "takes no 'after'"),
    ("silent:after=1", "takes no 'after'"),
    ("http_429:after=0", "must be a number > 0"),
    ("concurrency_limit:after=0", "must be an int >= 1"),
    ("concurrency_limit:after=1.5", "must be an int >= 1"),
    (None, "must be a str"),
])
def test_parse_fault_says_what_is_wrong(text, message) -> None:
    with pytest.raises(ValueError) as caught:
        parse_fault(text)
    assert message in str(caught.value)


def test_local_server_takes_a_fault_the_same_three_ways() -> None:
    expected = FaultSpec("idle_close", 2.0)
    for options in ({"fault": "idle_close:after=2"}, {"fault": "idle_close", "fault_after": 2},
                    {"fault": expected}):
        assert LocalServer(engine="tone", **options).fault == expected
    assert LocalServer(engine="tone", fault="drop").fault == FaultSpec("drop", 1)
    assert LocalServer(engine="tone").fault is None
    assert "fault='idle_close:after=2'" in repr(LocalServer(engine="tone", fault=expected))
    with pytest.raises(ValueError, match="leave fault_after out"):
        LocalServer(engine="tone", fault="drop:after=1", fault_after=2)
    with pytest.raises(ValueError, match="takes no 'after'"):
        LocalServer(engine="tone", fault="http_401", fault_after=1)


# -- in an utterance, after some of its frames ---------------------------------------------------


@shows("reset")
def test_fault_reset_sends_the_frames_then_a_tcp_reset(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="reset", fault_after=2)
    ws = speak(server)
    received = [read(ws), read(ws)]
    with pytest.raises(ConnectionResetError):  # an RST: not the end of file a drop gives
        read(ws)
    ws.shutdown()
    server.stop()
    assert received == [("binary", tone_pcm(TEXT)[:FRAME]), ("binary", tone_pcm(TEXT)[FRAME:2 * FRAME])]
    [record] = server.transcript
    assert (record.fault, record.completed, record.frame_sizes) == ("reset", False, [FRAME, FRAME])


@shows("unknown_json")
def test_fault_unknown_json_is_valid_json_of_an_unknown_type(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="unknown_json", fault_after=2)
    ws = speak(server)
    messages = read_all(ws)
    close_quietly(ws)
    texts = [data for kind, data in messages if kind == "text"]
    assert [kind for kind, _ in messages[:3]] == ["binary", "binary", "text"]
    assert texts == [UNKNOWN_JSON, '{"type":"complete"}']
    unknown = json.loads(UNKNOWN_JSON)
    assert unknown["type"] not in ("complete", "error", "chunk", "completion") and "sample_rate" not in unknown
    assert b"".join(binary(messages)) == tone_pcm(TEXT)
    assert server.transcript[0].fault == "unknown_json" and server.transcript[0].completed


@shows("empty_frame")
def test_fault_empty_frame_is_a_zero_length_binary_frame_then_the_rest(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="empty_frame", fault_after=2)
    ws = speak(server)
    messages = read_all(ws)
    close_quietly(ws)
    frames = binary(messages)
    expected = sizes_of(len(tone_pcm(TEXT)))
    assert [len(f) for f in frames] == expected[:2] + [0] + expected[2:]
    assert b"".join(frames) == tone_pcm(TEXT) and messages[-1] == ("text", '{"type":"complete"}')
    assert server.transcript[0].frame_sizes == [len(f) for f in frames]


def test_fault_empty_frame_has_its_chunk_message_in_the_gateway_dialect(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="empty_frame", fault_after=1)
    ws = connect(server.gateway_url)
    ws.send(json.dumps({"input": "hi", "request_type": "streaming", "response_format": "pcm"}))
    messages = read_all(ws)
    close_quietly(ws)
    kinds = [kind for kind, _ in messages]
    assert kinds[:4] == ["text", "binary", "text", "binary"] and messages[3] == ("binary", b"")
    chunks = [json.loads(data) for kind, data in messages[:-1] if kind == "text"]
    assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert b"".join(binary(messages)) == tone_pcm("hi")


@shows("split_samples")
def test_fault_split_samples_puts_every_later_boundary_inside_a_sample(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="split_samples", fault_after=1)
    ws = speak(server)
    messages = read_all(ws)
    close_quietly(ws)
    frames = binary(messages)
    total = len(tone_pcm(TEXT))
    assert [len(f) for f in frames] == [FRAME] + sizes_of(total - FRAME, first=FRAME - 1)
    boundaries = [sum(len(f) for f in frames[:i]) for i in range(1, len(frames))]
    assert boundaries[0] % 2 == 0 and all(b % 2 == 1 for b in boundaries[1:])  # mid-sample, every one
    assert b"".join(frames) == tone_pcm(TEXT) and messages[-1] == ("text", '{"type":"complete"}')


@shows("huge_frame")
def test_fault_huge_frame_is_4_mib_of_silence_then_the_rest(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="huge_frame", fault_after=1)
    ws = speak(server, "hi")
    messages = read_all(ws)
    close_quietly(ws)
    frames = binary(messages)
    audio = tone_pcm("hi")
    assert len(frames[1]) == HUGE_FRAME_BYTES == 4 * 1024 * 1024 and not any(frames[1])
    assert frames[0] + b"".join(frames[2:]) == audio
    assert messages[-1] == ("text", '{"type":"complete"}')
    assert server.transcript[0].pcm == audio[:FRAME] + bytes(HUGE_FRAME_BYTES) + audio[FRAME:]


@shows("reset_reused")
def test_fault_reset_reused_serves_a_connection_once_then_drops_it(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="reset_reused")
    ws = connect(server.shunyalabs_url)
    ws.send(json.dumps({"model": "zero-indic", "voice": "Nisha"}))
    ws.send(json.dumps({"input": "first"}))
    first, end = read_utterance(ws)
    ws.send(json.dumps({"input": "second"}))
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        read(ws)  # no audio, no close frame
    ws.shutdown()
    server.stop()
    assert b"".join(first) == tone_pcm("first") and last_json(end)["type"] == "completion"
    assert [(u.text, u.fault, u.completed, u.pcm) for u in server.transcript] == \
        [("first", None, True, tone_pcm("first")), ("second", "reset_reused", False, b"")]


def arrivals(server: LocalServer, text: str) -> Tuple[float, List[float], List[Tuple[str, Any]]]:
    """Ask for ``text``; return when it was asked, when each binary frame arrived, and the messages."""
    ws = eigenai_session(server.eigenai_url)
    asked = time.monotonic()
    ws.send(json.dumps({"text": text}))
    times, messages = [], []
    while not messages or messages[-1][0] == "binary":
        messages.append(read(ws))
        times.append(time.monotonic())
    close_quietly(ws)
    return asked, times[:-1], messages


@shows("realtime")
@shows("slow")
@pytest.mark.parametrize("fault, pace", [("realtime", 1.0), ("slow", SLOW_PACE)])
def test_fault_realtime_and_slow_hold_each_frame_until_it_is_due(make_server, fault, pace) -> None:
    # Lower bounds only: the server may send late on a busy machine, never early.
    server = make_server(frame_bytes=2400, fault=fault)  # 50 ms of audio a frame
    asked, times, messages = arrivals(server, "abcd")    # 200 ms of audio
    frames = binary(messages)
    assert b"".join(frames) == tone_pcm("abcd") and messages[-1] == ("text", '{"type":"complete"}')
    for index, arrived in enumerate(times):
        due = index * 0.050 / pace  # the pacer lets a frame go once the ones before it have played
        assert arrived - asked >= due - 0.002, (index, arrived - asked, due)
    assert server.transcript[0].fault == fault


# -- in an utterance, at its end ----------------------------------------------------------------


@shows("close_before_end")
def test_fault_close_before_end_sends_all_the_audio_then_closes_1000(make_server) -> None:
    server = make_server(frame_bytes=FRAME, fault="close_before_end")
    ws = speak(server)
    messages = read_all(ws)
    close_quietly(ws)
    assert b"".join(binary(messages)) == tone_pcm(TEXT)
    assert [kind for kind, _ in messages[:-1]] == ["binary"] * (len(messages) - 1)
    assert messages[-1] == ("close", (1000, ""))
    [record] = server.transcript
    assert (record.fault, record.completed, record.pcm) == ("close_before_end", False, tone_pcm(TEXT))


# -- a connection ---------------------------------------------------------------------------------


@shows("idle_close")
def test_fault_idle_close_closes_a_connection_that_asks_for_nothing(make_server) -> None:
    server = make_server(fault="idle_close:after=0.2")
    ws = connect(server.shunyalabs_url)
    message = read(ws)
    close_quietly(ws)
    assert message == ("close", (IDLE_CLOSE_CODE, IDLE_CLOSE_REASON)) == ("close", (1001, "idle timeout"))


def test_fault_idle_close_never_cuts_an_utterance_short(make_server) -> None:
    # One second of idleness allowed; the utterance, paced at real time, lasts 1.5 s: the
    # close may come only after its end message.
    server = make_server(fault="idle_close:after=1", realtime=1.0, frame_bytes=9600)
    text = "x" * 30
    ws = speak(server, text)
    messages = read_all(ws)
    after = read(ws)
    close_quietly(ws)
    assert b"".join(binary(messages)) == tone_pcm(text) and messages[-1] == ("text", '{"type":"complete"}')
    assert after == ("close", (1001, "idle timeout"))
    assert server.transcript[0].completed


# -- the key --------------------------------------------------------------------------------------


@shows("auth_reject")
def test_fault_auth_reject_refuses_every_key_as_each_dialect_does(make_server) -> None:
    server = make_server(fault="auth_reject")  # the server has no key: any would do without the fault
    eigenai = eigenai_session(server.eigenai_url, token="any")
    refused = [read(eigenai), read(eigenai)]
    close_quietly(eigenai)
    shunyalabs = connect(f"{server.shunyalabs_url}?api_key=any")
    closed = read(shunyalabs)
    close_quietly(shunyalabs)
    with pytest.raises(websocket.WebSocketBadStatusException) as gateway:
        connect(server.gateway_url, header=["Authorization: Bearer any"])
    assert refused[0] == ("text", '{"type":"error","message":"invalid API key","code":401}')
    assert refused[1] == ("close", (1008, "invalid API key"))
    assert closed == ("close", (4001, "invalid API key"))
    assert gateway.value.status_code == 401
    assert server.transcript == []


def test_fault_auth_reject_is_an_authentication_error_for_ttsstream(make_server) -> None:
    server = make_server(fault="auth_reject")
    with TTSClient(provider="eigenai", url=server.eigenai_url, api_key=KEY) as client:
        with pytest.raises(AuthenticationError):
            client.speak("hello")


# -- the handshake -------------------------------------------------------------------------------


@shows("http_401")
@shows("http_500")
@pytest.mark.parametrize("fault, status", [("http_401", 401), ("http_500", 500)])
def test_fault_http_status_answers_every_handshake(make_server, fault, status) -> None:
    server = make_server(fault=fault)
    statuses = []
    for url in (server.eigenai_url, server.shunyalabs_url, server.gateway_url, server.url + "/nope"):
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect(url)
        statuses.append(caught.value.status_code)
    assert statuses == [status] * 4
    assert server.connections == 0


UPGRADE = (b"GET /api/v1/generate/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


@shows("no_handshake")
def test_fault_no_handshake_accepts_and_says_nothing(make_server) -> None:
    server = make_server(fault="no_handshake")
    with pytest.raises(websocket.WebSocketTimeoutException):
        websocket.create_connection(server.eigenai_url, timeout=0.3)  # our own timeout ends it
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        raw.sendall(UPGRADE)
        raw.settimeout(0.3)
        with pytest.raises(socket.timeout):
            raw.recv(1024)  # accepted, and silent
        server.stop()       # stopping drops the waiting connection: no HTTP answer, ever
        raw.settimeout(10)
        assert raw.recv(1024) == b""
    finally:
        raw.close()
    assert server.connections == 0
