"""The bundled server, seen from outside: raw websocket-client sockets, the official
Shunyalabs SDK and EigenAI's documented example client, all over real loopback sockets.

Everything a test asserts is recorded first and asserted on the test's own thread.
"""

from __future__ import annotations

import json
import logging
import queue
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import websocket

from ttsstream.server import (
    ENGINES,
    Engine,
    LocalServer,
    ToneEngine,
    get_engine,
    serve_forever,
    shared_server,
    stop_shared_server,
    tone_pcm,
)

KEY = "sk-test-0123456789abcdef"
TEXT = "Hello, streaming audio world!"
RATE = 24000
SAMPLES_PER_CHAR = RATE // 20  # 50 ms per character at speed 1.0
WAIT = 10.0  # the longest any single socket read may take


# -- helpers ----------------------------------------------------------------------------


@pytest.fixture
def start_server() -> Iterator[Any]:
    """Start LocalServers with options (the tone engine unless ``engine`` is given);
    every one is stopped after the test."""
    made: List[LocalServer] = []

    def start(**options: Any) -> LocalServer:
        options.setdefault("engine", "tone")
        server = LocalServer(**options)
        made.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in made:
            server.stop()


def connect(url: str, **options: Any) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=WAIT, **options)


def read(ws: websocket.WebSocket) -> Tuple[str, Any]:
    """One message: ("binary", bytes) | ("text", str) | ("close", (code, reason))."""
    opcode, data = ws.recv_data()
    if opcode == websocket.ABNF.OPCODE_BINARY:
        return "binary", data
    if opcode == websocket.ABNF.OPCODE_TEXT:
        return "text", data.decode("utf-8")
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
        return "close", (code, data[2:].decode("utf-8"))
    raise AssertionError(f"unexpected opcode {opcode}")


def read_utterance(ws: websocket.WebSocket) -> Tuple[List[bytes], List[Tuple[str, Any]]]:
    """Read until a text message that is not chunk metadata, or a close.

    Returns the binary frames and every message in order.
    """
    frames: List[bytes] = []
    messages: List[Tuple[str, Any]] = []
    while True:
        kind, data = read(ws)
        messages.append((kind, data))
        if kind == "binary":
            frames.append(data)
        elif kind == "close":
            return frames, messages
        else:
            try:
                parsed = json.loads(data)
            except ValueError:
                return frames, messages
            if parsed.get("type") != "chunk":
                return frames, messages


def last_json(messages: List[Tuple[str, Any]]) -> Dict[str, Any]:
    kind, data = messages[-1]
    assert kind == "text", messages[-1]
    return json.loads(data)


def eigenai_session(url: str, token: str = KEY, model: str = "higgs2p5") -> websocket.WebSocket:
    ws = connect(url)
    ws.send(json.dumps({"token": token, "model": model}))
    return ws


def close_quietly(ws: websocket.WebSocket) -> None:
    """Close our side; after the server's close frame, close() is a no-op, so also shut the socket."""
    ws.close(timeout=1)
    ws.shutdown()


def server_threads() -> List[str]:
    return [t.name for t in threading.enumerate()
            if t.name.startswith("ttsstream-server") or "-engine-" in t.name]


def wav_fields(header: bytes) -> Tuple[Any, ...]:
    return struct.unpack("<4sI4s4sIHHIIHH4sI", header)


# -- the tone engine ----------------------------------------------------------------------


def test_tone_engine_is_deterministic_streamed_and_follows_the_text():
    engine = ToneEngine()
    pieces = list(engine.synthesize("one two three"))
    assert len(pieces) == 3  # word by word
    assert b"".join(pieces) == tone_pcm("one two three")
    assert tone_pcm("one two three") == tone_pcm("one two three")
    assert len(tone_pcm("abcd")) == 4 * SAMPLES_PER_CHAR * 2
    assert len(tone_pcm("abcd", speed=2.0)) == 2 * SAMPLES_PER_CHAR * 2
    assert len(tone_pcm("abcd", sample_rate=16000)) == 4 * 800 * 2
    assert tone_pcm("a") != tone_pcm("b")

    import numpy as np

    samples = np.frombuffer(tone_pcm("a b"), dtype="<i2")
    tone, space = samples[:SAMPLES_PER_CHAR], samples[SAMPLES_PER_CHAR:2 * SAMPLES_PER_CHAR]
    assert 0 < np.abs(tone).max() < 16384  # a real waveform, well below clipping
    assert not space.any()  # silence for spaces
    assert abs(int(tone[0])) < 100 and abs(int(tone[-1])) < 300  # faded: no clicks


def test_engine_registry():
    assert ENGINES["tone"] is ToneEngine
    assert isinstance(get_engine("tone"), ToneEngine)
    with pytest.raises(ValueError, match="tone"):
        get_engine("nope")
    with pytest.raises(ValueError, match="engine"):
        LocalServer(engine="nope")
    with pytest.raises(ValueError, match="fault"):
        LocalServer(fault="explode")


# -- EigenAI -------------------------------------------------------------------------------


def test_eigenai_streams_exact_frames_of_an_odd_size(start_server):
    server = start_server(api_key=KEY, frame_bytes=1001)
    ws = eigenai_session(server.eigenai_url)
    request = {"text": TEXT, "voice": "Linda", "voice_settings": {"speed": 1.0}}
    ws.send(json.dumps(request))
    frames, messages = read_utterance(ws)
    close_quietly(ws)

    expected = tone_pcm(TEXT)
    assert [len(f) for f in frames[:-1]] == [1001] * (len(frames) - 1)
    assert 0 < len(frames[-1]) <= 1001
    assert b"".join(frames) == expected
    assert messages[-1] == ("text", '{"type":"complete"}')
    assert json.loads(messages[-1][1]) == {"type": "complete"}

    [record] = server.transcript
    assert (record.dialect, record.text, record.voice, record.model) == ("eigenai", TEXT, "Linda", "higgs2p5")
    assert record.request == request
    assert record.pcm == expected
    assert record.frame_sizes == [len(f) for f in frames]
    assert record.sample_rate == 24000
    assert record.completed and record.fault is None
    assert server.connections == 1


def test_eigenai_honours_speed_and_serves_several_requests(start_server):
    server = start_server()
    ws = eigenai_session(server.eigenai_url, token="anything: no key is required")
    ws.send(json.dumps({"text": "fast", "voice_settings": {"speed": 2.0}}))
    fast, _ = read_utterance(ws)
    ws.send(json.dumps({"text": "slow one"}))
    slow, _ = read_utterance(ws)
    close_quietly(ws)
    assert b"".join(fast) == tone_pcm("fast", speed=2.0)
    assert b"".join(slow) == tone_pcm("slow one")
    assert [r.text for r in server.transcript] == ["fast", "slow one"]
    assert server.transcript[1].voice == "Linda"  # the model's default


def test_eigenai_bad_request_gets_an_error_and_the_next_is_served(start_server):
    server = start_server(api_key=KEY)
    ws = eigenai_session(server.eigenai_url)
    ws.send(json.dumps({"voice": "Linda"}))  # no text
    _, bad = read_utterance(ws)
    ws.send("{not json")
    _, garbled = read_utterance(ws)
    ws.send_binary(b"\x00\x01")
    _, binary = read_utterance(ws)
    ws.send(json.dumps({"text": "after the errors"}))
    frames, good = read_utterance(ws)
    close_quietly(ws)

    for messages in (bad, garbled, binary):
        error = last_json(messages)
        assert error["type"] == "error" and error["code"] == 400 and error["message"]
    assert last_json(good) == {"type": "complete"}
    assert b"".join(frames) == tone_pcm("after the errors")
    assert [r.text for r in server.transcript] == ["after the errors"]


def test_eigenai_refuses_a_wrong_key_with_401_then_1008(start_server):
    server = start_server(api_key=KEY)
    ws = eigenai_session(server.eigenai_url, token="wrong")
    first, second = read(ws), read(ws)
    close_quietly(ws)
    assert first[0] == "text"
    assert json.loads(first[1]) == {"type": "error", "message": "invalid API key", "code": 401}
    assert second == ("close", (1008, "invalid API key"))
    assert server.transcript == []


def test_eigenai_bad_first_message_gets_400_then_1008(start_server):
    server = start_server(api_key=KEY)
    ws = connect(server.eigenai_url)
    ws.send(json.dumps({"text": "I forgot to authenticate"}))
    first, second = read(ws), read(ws)
    close_quietly(ws)
    assert json.loads(first[1])["code"] == 400
    assert second[0] == "close" and second[1][0] == 1008


def test_the_api_key_is_never_logged(start_server, caplog):
    caplog.set_level(logging.DEBUG)  # websockets logs handshakes and frames at DEBUG
    server = start_server(api_key=KEY)
    for token in (KEY, KEY + "x"):
        ws = eigenai_session(server.eigenai_url, token=token)
        ws.send(json.dumps({"text": "hi"}))
        read_utterance(ws)
        close_quietly(ws)
    ws = connect(f"{server.shunyalabs_url}?api_key={KEY}x")
    read(ws)
    close_quietly(ws)
    with pytest.raises(websocket.WebSocketBadStatusException):
        connect(server.gateway_url, header=[f"Authorization: Bearer {KEY}x"])
    server.stop()
    wire = "\n".join(r.getMessage() for r in caplog.records if r.name == "ttsstream.server.wire")
    assert 'api_key=***' in wire and 'Bearer ***' in wire and '"token": "***' in wire  # it did log
    assert KEY not in caplog.text


# -- Shunyalabs /ws -------------------------------------------------------------------------


def test_shunyalabs_serves_two_inputs_on_one_connection(start_server):
    server = start_server(api_key=KEY, frame_bytes=3000)
    ws = connect(f"{server.shunyalabs_url}?api_key={KEY}&sm-sdk=whatever")
    config = {"model": "zero-indic", "voice": "Varun", "response_format": "pcm", "speed": 2.0}
    ws.send(json.dumps(config))
    results = []
    for text in ("Namaste duniya", "second input"):
        ws.send(json.dumps({"input": text}))
        results.append(read_utterance(ws))
    close_quietly(ws)

    for text, (frames, messages) in zip(("Namaste duniya", "second input"), results):
        assert all(kind == "binary" for kind, _ in messages[:-1])  # no metadata by default
        assert [len(f) for f in frames[:-1]] == [3000] * (len(frames) - 1)
        assert b"".join(frames) == tone_pcm(text, speed=2.0)
        done = last_json(messages)
        assert done["type"] == "completion" and done["status"] == "complete"
        assert done["total_chunks"] == len(frames) and done["sample_rate"] == 24000
    first, second = server.transcript
    assert (first.dialect, first.text, first.voice, first.model, first.speed) == \
        ("shunyalabs", "Namaste duniya", "Varun", "zero-indic", 2.0)
    assert first.config == config and first.request == {"input": "Namaste duniya"}
    assert second.pcm == tone_pcm("second input", speed=2.0)


@pytest.mark.parametrize("frame_bytes", [1999, 1600])  # 1600: the audio fills its last frame exactly
def test_shunyalabs_metadata_precedes_every_frame_at_its_rate(start_server, frame_bytes):
    server = start_server(shunyalabs_metadata=True, shunyalabs_sample_rate=16000, frame_bytes=frame_bytes)
    ws = connect(server.shunyalabs_url)
    ws.send(json.dumps({"model": "zero-indic", "voice": "Nisha", "response_format": "pcm"}))
    ws.send(json.dumps({"input": TEXT}))
    frames, messages = read_utterance(ws)
    close_quietly(ws)

    body = messages[:-1]
    assert len(body) == 2 * len(frames)
    chunks = [json.loads(data) for kind, data in body[0::2]]
    assert [kind for kind, _ in body[0::2]] == ["text"] * len(frames)
    assert [kind for kind, _ in body[1::2]] == ["binary"] * len(frames)
    assert [c["type"] for c in chunks] == ["chunk"] * len(frames)
    assert [c["chunk_index"] for c in chunks] == list(range(len(frames)))
    assert [c["is_final"] for c in chunks] == [False] * (len(frames) - 1) + [True]
    assert {c["sample_rate"] for c in chunks} == {16000}
    assert len({c["request_id"] for c in chunks}) == 1
    assert b"".join(frames) == tone_pcm(TEXT, sample_rate=16000)
    done = last_json(messages)
    assert done["type"] == "completion" and done["request_id"] == chunks[0]["request_id"]
    assert server.transcript[0].sample_rate == 16000


def test_shunyalabs_refuses_a_missing_or_wrong_key_with_4001(start_server):
    server = start_server(api_key=KEY)
    observed = []
    for url in (server.shunyalabs_url, f"{server.shunyalabs_url}?api_key=wrong"):
        ws = connect(url)
        observed.append(read(ws))
        close_quietly(ws)
    assert observed == [("close", (4001, "invalid API key"))] * 2
    assert server.connections == 2  # accepted, then closed


def test_shunyalabs_bad_input_gets_an_error_and_the_connection_serves_on(start_server):
    server = start_server()
    ws = connect(server.shunyalabs_url)
    ws.send(json.dumps({"voice": "Nisha"}))
    ws.send(json.dumps({"input": ""}))
    _, bad = read_utterance(ws)
    ws.send(json.dumps({"input": "still here"}))
    frames, good = read_utterance(ws)
    close_quietly(ws)
    error = last_json(bad)
    assert error["type"] == "error" and error["code"] == 400 and error["error"]
    assert last_json(good)["type"] == "completion"
    assert b"".join(frames) == tone_pcm("still here")


# -- the gateway (/ws/tts) -------------------------------------------------------------------


def gateway_request(text: str, **fields: Any) -> str:
    return json.dumps({"input": text, "request_type": "streaming", "model": "zero-indic",
                       "language": "en", "voice": "Nisha", **fields})


def test_gateway_streams_a_wav_with_a_streaming_header(start_server):
    server = start_server(api_key=KEY, frame_bytes=2000)
    ws = connect(server.gateway_url, header=[f"Authorization: Bearer {KEY}"])
    ws.send(gateway_request(TEXT, response_format="wav"))
    frames, messages = read_utterance(ws)
    close_quietly(ws)

    body = b"".join(frames)
    assert wav_fields(body[:44]) == (b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, 24000, 48000, 2, 16,
                                     b"data", 0xFFFFFFFF)
    assert body[44:] == tone_pcm(TEXT)
    assert [len(f) for f in frames[:-1]] == [2000] * (len(frames) - 1)
    assert [json.loads(d)["type"] for k, d in messages[:-1] if k == "text"] == ["chunk"] * len(frames)
    done = last_json(messages)
    assert done["type"] == "completion" and done["format"] == "wav"
    assert done["total_duration_seconds"] == round(len(tone_pcm(TEXT)) / 48000, 3)
    [record] = server.transcript
    assert record.dialect == "gateway" and record.response_format == "wav" and record.pcm == body


def test_gateway_refuses_a_wrong_key_at_the_handshake(start_server):
    server = start_server(api_key=KEY)
    statuses = []
    for header in ([], ["Authorization: Bearer wrong"]):
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect(server.gateway_url, header=header)
        statuses.append(caught.value.status_code)
    assert statuses == [401, 401]
    assert server.connections == 0


def test_unknown_path_is_404(start_server):
    server = start_server()
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        connect(server.url + "/nope")
    assert caught.value.status_code == 404
    assert server.connections == 0


# -- faults --------------------------------------------------------------------------------


def faulted_eigenai(start_server, fault: str, fault_after: int = 2):
    server = start_server(frame_bytes=1000, fault=fault, fault_after=fault_after)
    ws = eigenai_session(server.eigenai_url)
    ws.send(json.dumps({"text": TEXT}))
    return server, ws


def test_fault_drop_aborts_without_a_close_frame(start_server):
    server, ws = faulted_eigenai(start_server, "drop")
    received = [read(ws), read(ws)]
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        read(ws)
    ws.shutdown()
    server.stop()  # joins the handler: the transcript is final
    assert [kind for kind, _ in received] == ["binary", "binary"]
    [record] = server.transcript
    assert record.fault == "drop" and not record.completed
    assert record.frame_sizes == [1000, 1000] and record.pcm == tone_pcm(TEXT)[:2000]


def test_fault_stall_sends_nothing_more(start_server):
    server, ws = faulted_eigenai(start_server, "stall")
    received = [read(ws), read(ws)]
    ws.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        read(ws)
    close_quietly(ws)
    server.stop()
    assert [kind for kind, _ in received] == ["binary", "binary"]
    assert server.transcript[0].fault == "stall" and server.transcript[0].frame_sizes == [1000, 1000]


def test_fault_error_ends_each_utterance_with_an_error_frame(start_server):
    server, ws = faulted_eigenai(start_server, "error")
    first_frames, first = read_utterance(ws)
    ws.send(json.dumps({"text": "again"}))
    second_frames, second = read_utterance(ws)
    close_quietly(ws)
    for frames, messages in ((first_frames, first), (second_frames, second)):
        assert len(frames) == 2
        assert last_json(messages) == {"type": "error", "message": "engine failed", "code": 500}
    assert [(r.text, r.fault, r.completed) for r in server.transcript] == \
        [(TEXT, "error", False), ("again", "error", False)]


def test_fault_error_before_any_audio(start_server):
    server, ws = faulted_eigenai(start_server, "error", fault_after=0)
    frames, messages = read_utterance(ws)
    close_quietly(ws)
    assert frames == [] and last_json(messages)["code"] == 500
    assert server.transcript[0].pcm == b""


def test_fault_garbage_sends_a_frame_that_is_not_json(start_server):
    server, ws = faulted_eigenai(start_server, "garbage")
    frames, messages = read_utterance(ws)
    rest, tail = read_utterance(ws)
    close_quietly(ws)
    assert len(frames) == 2 and messages[-1] == ("text", "this is not json")
    assert b"".join(frames + rest) == tone_pcm(TEXT)  # the stream then carries on
    assert last_json(tail) == {"type": "complete"}
    assert server.transcript[0].fault == "garbage" and server.transcript[0].completed


def test_fault_close_closes_with_1011(start_server):
    server, ws = faulted_eigenai(start_server, "close")
    frames, messages = read_utterance(ws)
    close_quietly(ws)
    assert len(frames) == 2
    assert messages[-1] == ("close", (1011, "internal error"))
    assert server.transcript[0].fault == "close"


def test_fault_error_in_the_shunyalabs_dialect(start_server):
    server = start_server(fault="error", fault_after=1, frame_bytes=1000)
    ws = connect(server.shunyalabs_url)
    ws.send(json.dumps({"model": "zero-indic", "voice": "Nisha"}))
    ws.send(json.dumps({"input": TEXT}))
    frames, messages = read_utterance(ws)
    close_quietly(ws)
    assert len(frames) == 1
    assert last_json(messages) == {"type": "error", "error": "engine failed", "code": 500}


# -- the official Shunyalabs SDK, unchanged --------------------------------------------------


def test_official_sdk_streams_pcm_and_writes_a_wav(start_server, monkeypatch, tmp_path):
    shunyalabs = pytest.importorskip("shunyalabs")
    from shunyalabs.tts import TTSConfig

    server = start_server(api_key=KEY)
    monkeypatch.setenv("SHUNYALABS_TTS_WS_URL", server.gateway_url)
    client = shunyalabs.ShunyaClient(api_key=KEY)
    chunks = list(client.tts.stream(TEXT, config=TTSConfig(language="en", voice="Nisha", response_format="pcm")))
    path = tmp_path / "out.wav"
    completion = client.tts.stream_to_file(TEXT, str(path), config=TTSConfig(language="en", voice="Nisha"))

    assert len(chunks) > 1 and b"".join(chunks) == tone_pcm(TEXT)
    data = path.read_bytes()
    fields = wav_fields(data[:44])
    assert fields[0] == b"RIFF" and fields[2] == b"WAVE" and fields[7] == 24000 and fields[10] == 16
    assert data[44:] == tone_pcm(TEXT)
    assert completion.status == "complete" and completion.total_chunks == len(server.transcript[1].frame_sizes)
    assert [(r.dialect, r.voice, r.language, r.response_format) for r in server.transcript] == \
        [("gateway", "Nisha", "en", "pcm"), ("gateway", "Nisha", "en", "wav")]


def test_official_sdk_works_against_slash_ws_too(start_server, monkeypatch):
    shunyalabs = pytest.importorskip("shunyalabs")
    from shunyalabs.tts import TTSConfig

    server = start_server(api_key=KEY)
    monkeypatch.setenv("SHUNYALABS_TTS_WS_URL", server.shunyalabs_url)
    client = shunyalabs.ShunyaClient(api_key=KEY)
    audio = b"".join(client.tts.stream("on slash ws", config=TTSConfig(language="hi", voice="Varun",
                                                                        response_format="pcm")))
    assert audio == tone_pcm("on slash ws")
    assert server.transcript[0].dialect == "gateway" and server.transcript[0].voice == "Varun"


def test_official_sdk_reports_a_wrong_key(start_server, monkeypatch):
    shunyalabs = pytest.importorskip("shunyalabs")
    from shunyalabs.tts import TTSConfig

    server = start_server(api_key=KEY)
    monkeypatch.setenv("SHUNYALABS_TTS_WS_URL", server.gateway_url)
    client = shunyalabs.ShunyaClient(api_key="wrong-key")
    with pytest.raises(shunyalabs.ConnectionError, match="401"):
        list(client.tts.stream(TEXT, config=TTSConfig(language="en", voice="Nisha")))
    assert server.transcript == []


def test_official_sdk_sees_a_server_error(start_server, monkeypatch):
    shunyalabs = pytest.importorskip("shunyalabs")
    from shunyalabs.tts import TTSConfig

    server = start_server(fault="error", fault_after=1)
    monkeypatch.setenv("SHUNYALABS_TTS_WS_URL", server.gateway_url)
    client = shunyalabs.ShunyaClient(api_key=KEY)
    with pytest.raises(shunyalabs.SynthesisError, match="engine failed"):
        list(client.tts.stream(TEXT, config=TTSConfig(language="en", voice="Nisha")))


# -- EigenAI's documented example client ------------------------------------------------------

# Verbatim from the EigenAI WebSocket document; the test changes only WS_URL and the output path.
EIGENAI_EXAMPLE = '''import asyncio
import websockets
import json

API_KEY = "YOUR_API_KEY"
WS_URL = "wss://api-web.eigenai.com/api/v1/generate/ws"

async def stream_audio():
    async with websockets.connect(WS_URL) as ws:
        # Step 1: Authenticate
        await ws.send(json.dumps({"token": API_KEY, "model": "higgs2p5"}))

        # Step 2: Send TTS request
        await ws.send(json.dumps({"text": "Hello, streaming audio world!", "voice": "Linda"}))

        # Step 3: Receive audio chunks
        with open("output.pcm", "wb") as f:
            async for message in ws:
                if isinstance(message, bytes):
                    f.write(message)
                else:
                    data = json.loads(message)
                    if data.get("type") == "complete":
                        print("Stream complete")
                        break

asyncio.run(stream_audio())
'''


def test_eigenai_documented_example_client(start_server, tmp_path):
    server = start_server(api_key="YOUR_API_KEY")
    output = tmp_path / "output.pcm"
    url_line = 'WS_URL = "wss://api-web.eigenai.com/api/v1/generate/ws"'
    assert url_line in EIGENAI_EXAMPLE and '"output.pcm"' in EIGENAI_EXAMPLE
    script = EIGENAI_EXAMPLE.replace(url_line, f"WS_URL = {server.eigenai_url!r}")
    script = script.replace('"output.pcm"', repr(str(output)))
    (tmp_path / "example.py").write_text(script)

    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Stream complete"
    [record] = server.transcript
    assert output.read_bytes() == record.pcm == tone_pcm("Hello, streaming audio world!")
    assert record.voice == "Linda"


# -- concurrency and a slow engine ------------------------------------------------------------


def test_twenty_simultaneous_connections_each_get_their_own_audio(start_server):
    server = start_server(api_key=KEY, frame_bytes=777)
    count = 20
    barrier = threading.Barrier(count, timeout=WAIT)
    results: "queue.Queue[Tuple[int, Any]]" = queue.Queue()

    def client(i: int) -> None:
        try:
            text = f"client number {i} says {'la ' * i}"
            if i % 2:
                ws = eigenai_session(server.eigenai_url)
                barrier.wait()
                ws.send(json.dumps({"text": text}))
            else:
                ws = connect(f"{server.shunyalabs_url}?api_key={KEY}")
                ws.send(json.dumps({"voice": "Nisha"}))
                barrier.wait()
                ws.send(json.dumps({"input": text}))
            frames, messages = read_utterance(ws)
            close_quietly(ws)
            results.put((i, (text, b"".join(frames), last_json(messages)["type"])))
        except Exception as exc:  # reported to the test thread
            results.put((i, exc))

    threads = [threading.Thread(target=client, args=(i,), name=f"test-client-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    got = dict(results.get_nowait() for _ in range(count))
    for i in range(count):
        assert not isinstance(got[i], Exception), got[i]
        text, audio, end = got[i]
        assert audio == tone_pcm(text), i
        assert end == ("completion" if i % 2 == 0 else "complete")
    assert sorted(r.text for r in server.transcript) == sorted(v[0] for v in got.values())
    assert server.connections == count


class GateEngine(Engine):
    """The tone engine, except that "slow" blocks until the test releases it."""

    name = "gate"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def synthesize(self, text, *, voice=None, language=None, speed=1.0, sample_rate=24000):
        def pieces():
            if text == "slow":
                self.started.set()
                if not self.release.wait(WAIT):
                    raise RuntimeError("never released")
            yield from ToneEngine().synthesize(text, speed=speed, sample_rate=sample_rate)
        return pieces()


def test_a_blocking_engine_does_not_hold_up_other_connections(start_server):
    engine = GateEngine()
    server = start_server(engine=engine)
    slow = eigenai_session(server.eigenai_url)
    slow.send(json.dumps({"text": "slow"}))
    assert engine.started.wait(WAIT)
    fast = eigenai_session(server.eigenai_url)
    fast.settimeout(5)
    fast.send(json.dumps({"text": "fast"}))
    fast_frames, fast_messages = read_utterance(fast)  # served while "slow" is blocked
    engine.release.set()
    slow_frames, _ = read_utterance(slow)
    close_quietly(fast)
    close_quietly(slow)
    assert b"".join(fast_frames) == tone_pcm("fast") and last_json(fast_messages) == {"type": "complete"}
    assert b"".join(slow_frames) == tone_pcm("slow")
    assert [r.text for r in server.transcript] == ["fast", "slow"]


class BrokenEngine(Engine):
    name = "broken"

    def synthesize(self, text, **params):
        def pieces():
            yield tone_pcm("ok")
            raise RuntimeError("the synthesiser crashed")
        return pieces()


def test_an_engine_failure_is_an_error_frame_and_the_connection_lives(start_server, caplog):
    server = start_server(engine=BrokenEngine(), frame_bytes=100_000)
    ws = eigenai_session(server.eigenai_url)
    ws.send(json.dumps({"text": "one"}))
    _, first = read_utterance(ws)
    ws.send(json.dumps({"text": "two"}))
    _, second = read_utterance(ws)
    close_quietly(ws)
    assert last_json(first) == last_json(second) == {"type": "error", "message": "engine failed", "code": 500}
    assert "the synthesiser crashed" in caplog.text


def test_realtime_paces_the_audio(start_server):
    server = start_server(realtime=5.0, frame_bytes=2400)
    text = "x" * 20  # one second of audio: at five times real time, no less than 0.2 s
    ws = eigenai_session(server.eigenai_url)
    began = time.monotonic()
    ws.send(json.dumps({"text": text}))
    frames, _ = read_utterance(ws)
    elapsed = time.monotonic() - began
    close_quietly(ws)
    assert b"".join(frames) == tone_pcm(text)
    assert elapsed >= 0.9 * (1.0 - 2400 / 48000) / 5.0  # the last frame goes without a wait


# -- lifecycle --------------------------------------------------------------------------------


def test_start_and_stop_twice_and_leave_no_thread():
    server = LocalServer(engine="tone")
    for _ in range(2):
        assert server.start() is server
        assert server.start() is server  # already running: nothing happens
        assert server.running and server.url == f"ws://127.0.0.1:{server.port}"
        assert server.eigenai_url == server.url + "/api/v1/generate/ws"
        assert server.shunyalabs_url == server.url + "/ws"
        assert server.gateway_url == server.url + "/ws/tts"
        assert f"ttsstream-server-{server.port}" in server_threads()
        ws = eigenai_session(server.eigenai_url)
        ws.send(json.dumps({"text": "hi"}))
        read_utterance(ws)
        server.stop()  # the client is still connected: stop closes it
        server.stop()
        assert not server.running
        assert server_threads() == []
        close_quietly(ws)
    assert [r.text for r in server.transcript] == ["hi", "hi"]


def test_context_manager_returns_the_url():
    server = LocalServer(engine="tone")
    with server as url:
        assert url == server.url and server.running
        ws = connect(server.eigenai_url)
        close_quietly(ws)
    assert not server.running and server_threads() == []


def test_stop_from_another_thread_ends_a_stalled_connection(start_server):
    server = start_server(fault="stall", fault_after=0)
    ws = eigenai_session(server.eigenai_url)
    ws.send(json.dumps({"text": TEXT}))
    stopper = threading.Thread(target=server.stop, name="test-stopper")
    stopper.start()
    message = read(ws)  # the server closes: 1001 going away
    close_quietly(ws)
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert message == ("close", (1001, ""))
    assert server_threads() == []


def test_a_port_in_use_raises_oserror_in_the_caller(start_server):
    first = start_server()
    second = LocalServer(port=first.port, engine="tone")
    with pytest.raises(OSError):
        second.start()
    assert not second.running
    assert server_threads() == [f"ttsstream-server-{first.port}"]


def test_shared_server_is_one_lazily_started_instance():
    try:
        servers: "queue.Queue[LocalServer]" = queue.Queue()
        threads = [threading.Thread(target=lambda: servers.put(shared_server())) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        got = {id(servers.get_nowait()) for _ in range(4)}
        server = shared_server()
        assert got == {id(server)} and server.running
        assert server.engine.name == "espeak"  # provider="local" speaks, not beeps
        assert "ttsstream-local-server" in [t.name for t in threading.enumerate()]
        ws = eigenai_session(server.eigenai_url)
        ws.send(json.dumps({"text": "local"}))
        frames, messages = read_utterance(ws)
        close_quietly(ws)
        assert frames and last_json(messages) == {"type": "complete"}
        assert server.transcript[-1].pcm == b"".join(frames)
    finally:
        stop_shared_server()
    assert "ttsstream-local-server" not in [t.name for t in threading.enumerate()]


def test_serve_forever_reports_ready_and_stops_cleanly():
    ready: "queue.Queue[str]" = queue.Queue()
    stop = threading.Event()
    runner = threading.Thread(target=serve_forever, name="test-serve-forever",
                              kwargs=dict(host="127.0.0.1", port=0, api_key=KEY, engine="tone",
                                          on_ready=ready.put, stop_event=stop))
    runner.start()
    try:
        url = ready.get(timeout=WAIT)
        ws = eigenai_session(url + "/api/v1/generate/ws")
        ws.send(json.dumps({"text": "serve"}))
        frames, _ = read_utterance(ws)
        close_quietly(ws)
    finally:
        stop.set()
        runner.join(WAIT)
    assert url.startswith("ws://127.0.0.1:")
    assert b"".join(frames) == tone_pcm("serve")
    assert not runner.is_alive() and server_threads() == []


def test_serve_forever_raises_when_the_port_is_taken(start_server):
    taken = start_server()
    with pytest.raises(OSError):
        serve_forever("127.0.0.1", taken.port, None, "tone", stop_event=threading.Event())


def test_serve_forever_stops_cleanly_on_sigterm(tmp_path):
    code = ("from ttsstream.server import serve_forever\n"
            "serve_forever('127.0.0.1', 0, None, 'tone', on_ready=lambda url: print(url, flush=True))\n"
            "print('returned', flush=True)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        url = process.stdout.readline().strip()
        ws = eigenai_session(url + "/api/v1/generate/ws")
        ws.send(json.dumps({"text": "bye"}))
        frames, _ = read_utterance(ws)
        process.terminate()  # SIGTERM
        out, err = process.communicate(timeout=WAIT)
        close_quietly(ws)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert b"".join(frames) == tone_pcm("bye")
    assert process.returncode == 0, err
    assert out == "returned\n" and err == ""  # the server itself prints nothing


def test_a_stopping_server_loop_unwinds_the_tasks_still_pending():
    """What ``asyncio.run`` does before closing a loop: a task still pending when the
    server's main ends (a client connected until the interpreter exits) is cancelled and
    its async generator closed, not destroyed pending with a traceback on stderr."""
    import asyncio

    from ttsstream.server.app import _finish_tasks

    closed = []

    async def frames():
        try:
            while True:
                await asyncio.sleep(1)
                yield b""
        finally:
            closed.append("generator")

    async def handler():
        async for _ in frames():
            pass

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(handler())
        loop.run_until_complete(asyncio.sleep(0.01))  # the handler is inside its generator
        _finish_tasks(loop)
        assert task.cancelled() and closed == ["generator"]
        assert not asyncio.all_tasks(loop)
    finally:
        loop.close()
