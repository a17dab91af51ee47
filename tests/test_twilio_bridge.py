"""samples/twilio_bridge.py against a fake Twilio: a WebSocket client on loopback that
speaks Twilio's Media Streams messages (``connected``, ``start``, ``mark`` echoes,
``dtmf``, ``stop``) and records everything the bridge sends.

The bridge runs in this process (its class, imported from the sample) with a bundled
server's tone engine behind it, whose audio is known exactly; once it runs as the
command a user types. Nothing leaves loopback.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import queue
import re
import select
import signal
import subprocess
import sys
from types import ModuleType
from typing import Any, Dict, Iterator, List, Optional

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from sample_harness import SAMPLES, sample_env
from ttsstream import Cancelled, TTSClient
from ttsstream.audio import pcm_to_array
from ttsstream.formats import StreamResampler
from ttsstream.formats.g711 import mulaw_encode
from ttsstream.server import LocalServer, tone_pcm

TIMEOUT = 30.0  # a hang guard for each wait, not a performance bound
TEXT = "Thank you for calling. Your order left the warehouse this morning."
UNITS = ["The first sentence is spoken here and it is long enough. ",  # each a unit: a sentence
         "The second one follows it a little while after the first. ",  # of 40 characters or more
         "A third one ends the reply and then the caller hangs up."]


def load_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location("twilio_bridge", SAMPLES / "twilio_bridge.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bridge_sample = load_sample()


def phone_audio(pcm: bytes) -> bytes:
    """What the call must hear for ``pcm`` (24 kHz): resampled in one go to 8 kHz, mu-law."""
    resampler = StreamResampler(24000, 8000)
    return mulaw_encode(pcm_to_array(resampler.push(pcm) + resampler.flush()))


class FakeTwilio:
    """Twilio's side of one call's Media Stream; ``got`` holds every message the bridge sent."""

    def __init__(self, port: int, stream_sid: str = "MZ0001", call_sid: str = "CA0001") -> None:
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.got: List[Dict[str, Any]] = []
        self.closed = False
        # Entered as a context manager would be (websockets >= 17.1 warns otherwise); close() ends it.
        self._websocket: ClientConnection = connect(f"ws://127.0.0.1:{port}", open_timeout=TIMEOUT).__enter__()

    def send(self, event: str, **fields: Any) -> None:
        self._websocket.send(json.dumps({"event": event, "streamSid": self.stream_sid, **fields}))

    def start(self) -> None:
        self._websocket.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        self.send("start", sequenceNumber="1", start={
            "streamSid": self.stream_sid, "callSid": self.call_sid, "accountSid": "AC0001", "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}})

    def until(self, done: Any) -> Dict[str, Any]:
        """Read messages until one satisfies ``done(message)``; return it."""
        while True:
            message = json.loads(self._websocket.recv(timeout=TIMEOUT))
            self.got.append(message)
            if done(message):
                return message

    def stop(self) -> None:
        """Twilio ends the stream; read what is left until the bridge closes the connection."""
        self.send("stop", sequenceNumber="99", stop={"accountSid": "AC0001", "callSid": self.call_sid})
        self.read_to_close()

    def read_to_close(self) -> None:
        try:
            while True:
                self.got.append(json.loads(self._websocket.recv(timeout=TIMEOUT)))
        except ConnectionClosed:
            self.closed = True
        self._websocket.close()

    def close(self) -> None:
        self._websocket.close()

    def events(self) -> List[str]:
        return [message["event"] for message in self.got]

    def media(self, messages: Optional[List[Dict[str, Any]]] = None) -> List[bytes]:
        return [base64.b64decode(m["media"]["payload"]) for m in (self.got if messages is None else messages)
                if m["event"] == "media"]


@pytest.fixture
def dial() -> Iterator[Any]:
    """``dial(port, ...)``: a FakeTwilio calling the bridge; every one is closed after the test."""
    made: List[FakeTwilio] = []

    def make(port: int, **sids: str) -> FakeTwilio:
        made.append(FakeTwilio(port, **sids))
        return made[-1]

    yield make
    for twilio in made:
        twilio.close()


@pytest.fixture
def bridge(server: LocalServer) -> Iterator[Any]:
    """A bridge whose calls are handed to the test (``bridge.calls.get()``) to speak in."""
    calls: "queue.Queue[Any]" = queue.Queue()
    with TTSClient("eigenai", url=server.url) as client:
        with bridge_sample.TwilioBridge(client, on_call=calls.put, port=0) as running:
            running.calls = calls
            yield running


def test_a_reply_arrives_as_20ms_mulaw_frames_then_its_mark(bridge: Any, dial: Any) -> None:
    twilio = dial(bridge.port)
    twilio.start()
    call = bridge.calls.get(timeout=TIMEOUT)
    call.say(TEXT)
    mark = twilio.until(lambda m: m["event"] == "mark")
    twilio.send("mark", sequenceNumber="5", mark=mark["mark"])  # the caller has heard it
    twilio.stop()

    assert twilio.closed and twilio.events() == ["media"] * (len(twilio.got) - 1) + ["mark"]
    frames = twilio.media()
    assert [len(f) for f in frames[:-1]] == [160] * (len(frames) - 1) and 0 < len(frames[-1]) <= 160
    assert b"".join(frames) == phone_audio(tone_pcm(TEXT))
    assert {m["streamSid"] for m in twilio.got} == {"MZ0001"}
    assert (call.stream_sid, call.call_sid) == ("MZ0001", "CA0001")
    assert call.heard == [TEXT]


def test_each_sentence_is_marked_after_its_last_frame_and_the_echoes_say_what_was_heard(
        server: LocalServer, bridge: Any, dial: Any) -> None:
    twilio = dial(bridge.port)
    twilio.start()
    call = bridge.calls.get(timeout=TIMEOUT)
    call.say(iter(UNITS))  # fragments, as an LLM produces them: one sentence a unit
    for _ in UNITS:
        mark = twilio.until(lambda m: m["event"] == "mark")
    marks = [m for m in twilio.got if m["event"] == "mark"]
    for mark in marks[:2]:  # the caller heard two sentences, then hung up
        twilio.send("mark", sequenceNumber="7", mark=mark["mark"])
    twilio.stop()

    (speech,) = call.spoken
    segments = speech.segments
    assert [s.text.strip() for s in segments] == [u.strip() for u in UNITS]
    assert len(marks) == len(segments) and len({m["mark"]["name"] for m in marks}) == len(marks)
    frames = twilio.media()
    sent = [s.text.strip() for s in segments]  # as the units went to the server (maybe not in order)
    assert sorted(sent) == sorted(u.text for u in server.transcript)
    assert b"".join(frames) == phone_audio(b"".join(tone_pcm(text) for text in sent))
    sent_before = [len(b"".join(twilio.media(twilio.got[:twilio.got.index(mark)]))) for mark in marks]
    for segment, before in zip(segments[:-1], sent_before):
        end = int(segment.end * 8000)  # mu-law bytes up to the sentence's end
        assert end <= before < end + 160, (segment.text, end, before)  # right after the frame that ends it
    assert sent_before[-1] == len(b"".join(frames))
    assert [h.strip() for h in call.heard] == [u.strip() for u in UNITS[:2]]


def test_a_refused_reply_is_logged_and_the_next_one_is_spoken(bridge: Any, dial: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    twilio = dial(bridge.port)
    twilio.start()
    call = bridge.calls.get(timeout=TIMEOUT)
    call.say("   ")  # nothing to say: speak() refuses it before any I/O
    call.say(TEXT)
    twilio.until(lambda m: m["event"] == "mark")
    twilio.stop()

    assert b"".join(twilio.media()) == phone_audio(tone_pcm(TEXT))
    assert [len(call.spoken), call.spoken[0].text] == [1, TEXT]
    assert any("a reply failed" in r.getMessage() and "text is empty" in r.getMessage() for r in caplog.records)


@pytest.fixture
def slow_bridge(make_server: Any) -> Iterator[Any]:
    """A bridge over a server that paces its audio at real time, so a reply is still going."""
    calls: "queue.Queue[Any]" = queue.Queue()
    with TTSClient("eigenai", url=make_server(realtime=1.0).url) as client:
        with bridge_sample.TwilioBridge(client, on_call=calls.put, port=0) as running:
            running.calls = calls
            yield running


def after_clear(twilio: FakeTwilio) -> List[Dict[str, Any]]:
    events = twilio.events()
    assert events.count("clear") == 1, events
    return twilio.got[events.index("clear") + 1:]


def test_barge_in_clears_twilios_buffer_and_nothing_of_the_reply_follows(slow_bridge: Any, dial: Any) -> None:
    twilio = dial(slow_bridge.port)
    twilio.start()
    call = slow_bridge.calls.get(timeout=TIMEOUT)
    call.say(TEXT)
    call.say("This reply was waiting and is never spoken.")
    twilio.until(lambda m: m["event"] == "media")
    call.barge_in()
    twilio.until(lambda m: m["event"] == "clear")
    twilio.stop()  # everything the bridge sent is in twilio.got once it has closed

    assert [m["event"] for m in after_clear(twilio)] == []
    assert twilio.got[-1] == {"event": "clear", "streamSid": "MZ0001"}
    sent = b"".join(twilio.media())
    assert 0 < len(sent) < len(phone_audio(tone_pcm(TEXT)))
    (speech,) = call.spoken
    assert isinstance(speech.error, Cancelled) and call.heard == []


def test_a_key_press_barges_in_and_the_next_reply_is_heard_whole(slow_bridge: Any, dial: Any) -> None:
    twilio = dial(slow_bridge.port)
    twilio.start()
    call = slow_bridge.calls.get(timeout=TIMEOUT)
    call.say(TEXT)
    twilio.until(lambda m: m["event"] == "media")
    twilio.send("dtmf", sequenceNumber="3", dtmf={"track": "inbound_track", "digit": "1"})
    twilio.until(lambda m: m["event"] == "clear")
    call.say("Yes?")
    twilio.until(lambda m: m["event"] == "mark")
    twilio.stop()

    later = after_clear(twilio)
    assert [m["event"] for m in later] == ["media"] * (len(later) - 1) + ["mark"]
    assert b"".join(twilio.media(later)) == phone_audio(tone_pcm("Yes?"))
    assert isinstance(call.spoken[0].error, Cancelled) and call.spoken[1].error is None


def test_a_caller_gone_mid_reply_or_a_bridge_closed_mid_call_leaves_no_thread(slow_bridge: Any, dial: Any) -> None:
    gone = dial(slow_bridge.port, stream_sid="MZ0002", call_sid="CA0002")
    gone.start()
    slow_bridge.calls.get(timeout=TIMEOUT).say(TEXT)
    gone.until(lambda m: m["event"] == "media")
    gone.close()  # no stop: the connection just ends

    talking = dial(slow_bridge.port, stream_sid="MZ0003", call_sid="CA0003")
    talking.start()
    call = slow_bridge.calls.get(timeout=TIMEOUT)
    call.say(TEXT)
    talking.until(lambda m: m["event"] == "media")
    slow_bridge.close()  # the bridge hangs up on the call still going
    talking.read_to_close()

    assert talking.closed and "clear" not in talking.events()
    assert isinstance(call.spoken[0].error, Cancelled)
    # the autouse fixture checks that every thread (speaker, reader, server) has ended


def test_the_command_greets_a_caller_and_stops_on_ctrl_c(server: LocalServer, tmp_path: Any, dial: Any) -> None:
    command = [sys.executable, str(SAMPLES / "twilio_bridge.py"), "--port", "0", "--url", server.url]
    # PYTHONFAULTHANDLER: should it hang, SIGABRT makes it print every thread's stack.
    process = subprocess.Popen(command, cwd=str(tmp_path), env=sample_env(PYTHONFAULTHANDLER="1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready, "the bridge printed nothing"
        line = process.stdout.readline()
        found = re.match(r"listening on ws://127\.0\.0\.1:(\d+)$", line.strip())
        assert found, line
        twilio = dial(int(found.group(1)))
        twilio.start()
        marks: List[Dict[str, Any]] = []
        while len(marks) < 2:  # the greeting's, then the first of the reply's
            marks.append(twilio.until(lambda m: m["event"] == "mark"))
        twilio.stop()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGABRT)
            out, err = process.communicate()
    assert process.returncode == 0 and "Traceback" not in err, err
    assert "stopping" in out
    assert [m["mark"]["name"] for m in marks] == ["reply0-sentence0", "reply1-sentence0"]
    greeting = twilio.media(twilio.got[:twilio.got.index(marks[0])])
    assert b"".join(greeting) == phone_audio(tone_pcm(bridge_sample.GREETING))


def test_the_command_says_how_to_run_it(tmp_path: Any) -> None:
    process = subprocess.run([sys.executable, str(SAMPLES / "twilio_bridge.py"), "--help"], cwd=str(tmp_path),
                             env=sample_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert process.returncode == 0
    for option in ("--port", "--url", "--provider", "--host"):
        assert option in process.stdout

