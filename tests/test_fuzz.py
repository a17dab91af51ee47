"""Fuzz: hypothesis plays a server, frame by frame and byte by byte, against a TTSClient.

``ScriptServer`` is a WebSocket server of a few dozen lines on a raw loopback socket:
it does the HTTP upgrade by hand, reads the client's opening frames and request, then
sends what hypothesis drew: binary frames of any size (odd and empty ones too), whole
or fragmented with pings between the fragments, the dialect's JSON (end messages,
errors, metadata), unknown JSON, JSON that is not an object, text that is not JSON or
not UTF-8, frames that break the WebSocket protocol, short pauses; the bytes cut into
TCP segments at random points; then an ending: a close frame with or without a code, a
TCP close with no close frame, a TCP reset, a frame cut off by either, or nothing more.

For every example the client must keep its contract (API.md):

- the speech ends: its terminal callback comes within a bound far beyond the timeout;
- exactly one of on_complete / on_error, after the last on_audio; chunks numbered in
  order, whole 16-bit samples;
- no exception escapes a thread (``threading.excepthook``) and nothing is logged at
  ERROR (the reader's "internal error" net);
- without an error, the audio is byte for byte the binary payloads the server sent
  before its end message; with one, what arrived is a prefix of them;
- the outcome is the one the script calls for (``expect``): complete exactly when the
  end message came after whole samples and before anything that ends a stream. Text
  frames are read with the dialect's own ``parse_text`` (pure, tested in
  test_protocols.py), so this checks the reader, the connection and the speech, not
  the JSON rules twice;
- every thread the client started has ended once it is closed.

Marked ``slow``: ``python -m pytest -q -m slow`` runs it (see setup.cfg). Under
``CI=true`` the examples are derandomized, so CI tests the same ones every run;
``TTSSTREAM_FUZZ_EXAMPLES`` sets how many per dialect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import socket
import struct
import threading
import time
from collections import Counter
from typing import Any, List, NamedTuple, Optional, Tuple, Union

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import Recorder
from test_frames import close_payload, frame
from ttsstream import (ConnectionFailed, ProtocolError, SynthesisTimeout,
                       Timeouts, TTSClient, TTSError)
from ttsstream.frames import OPCODE_BINARY, OPCODE_CLOSE, OPCODE_CONT, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT
from ttsstream.protocols import Done, Failed, Metadata, get_dialect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

IN_CI = bool(os.environ.get("CI"))
EXAMPLES = int(os.environ.get("TTSSTREAM_FUZZ_EXAMPLES", "300"))
LIMIT = 2.0  # the client's first_audio and between_chunks timeouts: scripts pause 20 ms at most
NO_HANG = 30.0  # the bound on a speech's end: far beyond every timeout and retry
HANG_GUARD = 30.0  # the script server's own socket timeout
PATHS = {"eigenai": "/api/v1/generate/ws", "shunyalabs": "/ws"}
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- what a script is made of ----------------------------------------------------------------


class Audio(NamedTuple):
    """A binary message: ``size`` bytes from ``seed``, cut into fragments at ``cuts``."""
    size: int
    seed: int
    cuts: Tuple[int, ...] = ()
    ping_between: bool = False

    @property
    def payload(self) -> bytes:
        return random.Random(self.seed).randbytes(self.size)


class Text(NamedTuple):
    """A text message (its bytes need not be UTF-8), cut into fragments at ``cuts``."""
    data: bytes
    cuts: Tuple[int, ...] = ()


class Control(NamedTuple):
    """A ping (which the client must answer) or an unsolicited pong."""
    opcode: int
    data: bytes


class Pause(NamedTuple):
    seconds: float


class Violation(NamedTuple):
    """Bytes that break the WebSocket protocol (RFC 6455 section 5)."""
    kind: str
    data: bytes


class Ending(NamedTuple):
    """How the server leaves: ``hold`` (sends nothing more and waits), ``close`` (a close
    frame, ``code`` None for none), ``fin`` (TCP close, no close frame), ``reset`` (TCP
    RST), ``cut_fin``/``cut_reset`` (the first ``cut`` bytes of a binary frame, then
    FIN or RST)."""
    kind: str
    code: Optional[int] = None
    reason: str = ""
    cut: int = 0


Action = Union[Audio, Text, Control, Pause, Violation]


class Script(NamedTuple):
    actions: Tuple[Action, ...]
    ending: Ending
    segments: Tuple[int, ...]  # TCP segment sizes, used in turn
    dribble: bool  # a short sleep between segments, so that they arrive apart


def fragments(data: bytes, cuts: Tuple[int, ...]) -> List[bytes]:
    points = [0] + sorted(min(c, len(data)) for c in cuts) + [len(data)]
    return [data[a:b] for a, b in zip(points, points[1:])]


def wire_bytes(action: Action) -> bytes:
    """The frames of one action, as the server sends them."""
    if isinstance(action, (Audio, Text)):
        opcode, data = (OPCODE_BINARY, action.payload) if isinstance(action, Audio) else (OPCODE_TEXT, action.data)
        pieces = fragments(data, action.cuts)
        out = []
        for i, piece in enumerate(pieces):
            out.append(frame(opcode if i == 0 else OPCODE_CONT, piece, fin=i == len(pieces) - 1))
            if i < len(pieces) - 1 and isinstance(action, Audio) and action.ping_between:
                out.append(frame(OPCODE_PING, b"between"))
        return b"".join(out)
    if isinstance(action, Control):
        return frame(action.opcode, action.data)
    if isinstance(action, Violation):
        return action.data
    return b""


# -- what the client must make of it ------------------------------------------------------


class Expected(NamedTuple):
    complete: Optional[bool]  # None: either (a reset may destroy what came before it unread)
    error: Optional[type]  # the error class when it ends with one (None: not predicted)
    audio: bytes  # the binary payloads before the stream's end
    sample_rate: int

    reset: bool = False  # the stream ends with a TCP reset, which may destroy unread audio

    def connections(self, retries: int) -> Optional[int]:
        """How many connections the client opens (None: not predicted). A connection that
        drops before any audio is tried again on a new one, ``retries`` times (retry.py);
        after a reset, audio the server sent may never have reached the client, which
        then rightly takes the connection for one that died before any audio."""
        if self.complete is None or (self.complete is False and self.error is None):
            return None
        if self.error is ConnectionFailed and not self.audio:
            return 1 + retries
        return None if self.reset else 1


def expect(dialect_name: str, script: Script) -> Expected:
    """The outcome the client's contract calls for, from the script alone."""
    dialect = get_dialect(dialect_name)
    audio = bytearray()
    rate = dialect.sample_rate
    seen = False  # non-empty audio arrived (what the dialect's parse_text is told)
    # TCP delivers everything sent before a FIN or a close frame; a reset may destroy
    # what the client had not read yet, so after one only "not complete" is certain.
    reset = script.ending.kind in ("reset", "cut_reset")
    for action in script.actions:
        if isinstance(action, Audio):
            audio += action.payload
            seen = seen or action.size > 0
        elif isinstance(action, Violation):
            return Expected(False, None if reset else ProtocolError, bytes(audio), rate)
        elif isinstance(action, Text):
            try:
                event = dialect.parse_text(action.data.decode("utf-8"), seen)
            except (UnicodeDecodeError, ProtocolError):
                return Expected(False, None if reset else ProtocolError, bytes(audio), rate)
            if isinstance(event, Done):
                if len(audio) % 2:
                    return Expected(False, None if reset else ProtocolError, bytes(audio), rate)
                return Expected(None if reset else True, None, bytes(audio), rate)
            if isinstance(event, Failed):
                return Expected(False, None if reset else type(event.error), bytes(audio), rate)
            if isinstance(event, Metadata) and event.sample_rate is not None and not audio:
                rate = event.sample_rate
    ending = script.ending
    if ending.kind == "hold":
        error: type = SynthesisTimeout
    elif ending.kind == "close":
        error = type(dialect.close_error(ending.code, ending.reason, seen))
    else:
        error = ConnectionFailed
    return Expected(False, error, bytes(audio), rate, reset=reset)


# -- the server ---------------------------------------------------------------------------


class ClientFrames:
    """Reads the client's (masked) frames from a socket: just enough for a test server."""

    def __init__(self, sock: socket.socket, data: bytes = b"") -> None:
        self._sock = sock
        self._buffer = bytearray(data)

    def _need(self, n: int) -> bool:
        while len(self._buffer) < n:
            data = self._sock.recv(65536)
            if not data:
                return False
            self._buffer += data
        return True

    def read(self) -> Optional[Tuple[int, bytes]]:
        """The next frame's (opcode, unmasked payload), or None at EOF."""
        if not self._need(2):
            return None
        length, pos = self._buffer[1] & 0x7F, 2
        if length == 126:
            if not self._need(4):
                return None
            length, pos = struct.unpack("!H", self._buffer[2:4])[0], 4
        elif length == 127:
            if not self._need(10):
                return None
            length, pos = struct.unpack("!Q", self._buffer[2:10])[0], 10
        if not self._need(pos + 4 + length):
            return None
        opcode, key = self._buffer[0] & 0x0F, self._buffer[pos:pos + 4]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(self._buffer[pos + 4:pos + 4 + length]))
        del self._buffer[:pos + 4 + length]
        return opcode, payload


class ScriptServer:
    """A WebSocket server on 127.0.0.1 that plays the current script to every connection.

    Thread: ``play`` and ``finish`` on the test's thread; one thread per connection.
    Everything its threads meet that a client could not cause lands in ``problems``.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        # Guarded by the lock.
        self._script: Optional[Script] = None
        self._threads: List[threading.Thread] = []
        self.connections = 0
        self.problems: List[str] = []
        self._accepting = threading.Thread(target=self._accept, name="fuzz-server")
        self._accepting.start()

    def play(self, script: Script) -> None:
        """Serve ``script`` to the connections that come next."""
        with self._lock:
            self._script, self.connections, self.problems = script, 0, []

    def finish(self) -> None:
        """Wait for the current connections' threads to end (each ends at the client's EOF)."""
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(HANG_GUARD)
            if thread.is_alive():
                self.problems.append(f"{thread.name} did not end")

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._listener.close()
        self._accepting.join(HANG_GUARD)
        self.finish()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                script = self._script
                self.connections += 1
                thread = threading.Thread(target=self._serve, args=(conn, script),
                                          name=f"fuzz-server-{self.connections}")
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, script: Optional[Script]) -> None:
        try:
            conn.settimeout(HANG_GUARD)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = self._handshake(conn)
            if reader is None or script is None:
                return
            for _ in range(2):  # EigenAI: auth, request; Shunyalabs: config, input
                got = reader.read()
                if got is None or got[0] != OPCODE_TEXT:
                    self.problems.append(f"expected the client's opening text frames, got {got!r}")
                    return
            self._send_script(conn, script)
            self._leave(conn, reader, script.ending)
        except socket.timeout:
            self.problems.append(f"the client kept its connection open and silent for {HANG_GUARD:g} s")
        except OSError:
            pass  # the client left first (reset, closed, shut down): nothing to check
        except Exception as exc:  # a bug of the test server: reported on the test's thread
            self.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    @staticmethod
    def _handshake(conn: socket.socket) -> Optional[ClientFrames]:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return None
            request += data
        head, rest = request.split(b"\r\n\r\n", 1)
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        return ClientFrames(conn, rest)

    @staticmethod
    def _send_script(conn: socket.socket, script: Script) -> None:
        """Each run of frames between pauses is one byte stream, cut into segments."""
        def send(stream: bytes) -> None:
            i = turn = 0
            while i < len(stream):
                size = script.segments[turn % len(script.segments)] if turn < 64 else len(stream)
                conn.sendall(stream[i:i + size])
                i, turn = i + size, turn + 1
                if script.dribble and i < len(stream) and turn < 64:
                    time.sleep(0.0005)

        pending = bytearray()
        for action in script.actions:
            if isinstance(action, Pause):
                send(bytes(pending))
                pending.clear()
                time.sleep(action.seconds)
            else:
                pending += wire_bytes(action)
        ending = script.ending
        if ending.kind == "close":
            pending += frame(OPCODE_CLOSE, b"" if ending.code is None else close_payload(ending.code, ending.reason))
        elif ending.kind.startswith("cut_"):
            pending += frame(OPCODE_BINARY, bytes(64))[:ending.cut]
        send(bytes(pending))

    @staticmethod
    def _leave(conn: socket.socket, reader: ClientFrames, ending: Ending) -> None:
        if ending.kind in ("reset", "cut_reset"):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # the close in _serve sends the RST
        if ending.kind in ("fin", "cut_fin"):
            conn.shutdown(socket.SHUT_WR)
        # Read until the client leaves, answering its close frame as a server would.
        closed = ending.kind != "hold"
        while True:
            got = reader.read()
            if got is None:
                return
            if got[0] == OPCODE_CLOSE and not closed:
                conn.sendall(frame(OPCODE_CLOSE, got[1][:2]))
                closed = True


# -- strategies ----------------------------------------------------------------------------

# True about one time in ten. (Hypothesis favours the simplest value, 0 or the first
# choice, far beyond its share: so the rare case is the last value, not the first.)
rarely = st.integers(0, 9).map(lambda i: i == 9)
sometimes = st.integers(0, 3).map(lambda i: i == 3)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


def text_messages(dialect: str) -> st.SearchStrategy[str]:
    """Text frames as a server of ``dialect`` might send them, right or wrong."""
    if dialect == "eigenai":
        end = st.just({"type": "complete"})
        error = st.one_of(
            st.fixed_dictionaries({"type": st.just("error")},
                                  optional={"message": json_values, "code": json_values, "detail": json_values}),
            st.fixed_dictionaries({"error": json_values}))
        metadata = st.fixed_dictionaries({"type": st.sampled_from(["progress", "chunk", "audio"])},
                                         optional={"sample_rate": json_values})
    else:
        end = st.fixed_dictionaries({"type": st.sampled_from(["completion", "complete", "done"])},
                                    optional={"status": st.sampled_from(["complete", "error", "ok"]),
                                              "error": json_values, "total_chunks": st.integers(0, 99)})
        error = st.fixed_dictionaries({"type": st.just("error")},
                                      optional={"error": json_values, "error_message": json_values,
                                                "message": json_values, "code": json_values})
        metadata = st.fixed_dictionaries(
            {"type": st.just("chunk"),
             "sample_rate": st.one_of(st.sampled_from([8000, 16000, 22050, 24000, 44100, 48000, "16000"]),
                                      json_values)},
            optional={"chunk_index": st.integers(0, 99), "is_final": st.booleans(), "format": st.just("pcm")})
    benign = st.one_of(metadata, st.dictionaries(st.text(max_size=8), json_values, max_size=4),
                       json_values.filter(lambda v: not isinstance(v, dict)))  # unknown, or JSON but no object
    odd = st.sampled_from(['{"type":"chunk","sample_rate":NaN}', '{"type":"chunk","sample_rate":Infinity}',
                           '{"type":"chunk","sample_rate":1e400}', "[" * 5000 + "]" * 5000])  # JSON's corners
    return st.one_of(
        benign.map(json.dumps), benign.map(json.dumps), benign.map(json.dumps),
        st.one_of(end, error).map(json.dumps),
        st.one_of(odd, st.text(max_size=30).map(lambda s: "{" + s)),  # mostly not JSON at all
    )


@st.composite
def audio_messages(draw: Any) -> Audio:
    size = draw(st.one_of(st.integers(0, 4), st.integers(5, 300), st.integers(300, 20_000),
                          st.integers(65_530, 70_000)))
    cuts = draw(st.lists(st.integers(0, size), max_size=3)) if draw(st.booleans()) else []
    return Audio(size, draw(st.integers(0, 2 ** 32)), tuple(cuts), draw(st.booleans()))


@st.composite
def texts(draw: Any, dialect: str) -> Text:
    data = draw(text_messages(dialect)).encode("utf-8")
    if draw(rarely):  # not UTF-8: a stray byte, or a character cut short
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"])) + data[at:]
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=3)) if draw(st.booleans()) else []
    return Text(data, tuple(cuts))


violations = st.sampled_from([
    Violation("unknown opcode", frame(0x3, b"x")),
    Violation("reserved bit", frame(OPCODE_BINARY, b"ab", rsv=0x40)),
    Violation("masked", frame(OPCODE_BINARY, b"abcd", masked=True)),
    Violation("stray continuation", frame(OPCODE_CONT, b"ab")),
    Violation("long ping", frame(OPCODE_PING, bytes(126))),
    Violation("fragmented ping", frame(OPCODE_PING, b"p", fin=False)),
    Violation("close of one byte", frame(OPCODE_CLOSE, b"\x03")),
    Violation("new message inside a fragmented one", frame(OPCODE_BINARY, b"ab", fin=False) + frame(OPCODE_TEXT, b"{}")),
])


def actions(dialect: str) -> st.SearchStrategy[Action]:
    return st.one_of(
        audio_messages(), audio_messages(), audio_messages(),  # audio is what servers mostly send
        texts(dialect),
        st.builds(Control, st.sampled_from([OPCODE_PING, OPCODE_PONG]), st.binary(max_size=125)),
        st.builds(Pause, st.floats(0.001, 0.02)),
    )


endings = st.one_of(  # a reset may destroy what came before it, so it proves less: the rarest
    st.builds(Ending, st.just("close"),
              st.one_of(st.none(), st.sampled_from([1000, 1001, 1008, 1011, 3000, 4001, 4999])),
              st.text(max_size=20)),
    st.builds(Ending, st.just("fin")),
    st.builds(Ending, st.just("cut_fin"), cut=st.integers(1, 65)),
    st.builds(Ending, st.sampled_from(["reset", "cut_reset"]), cut=st.integers(1, 65)),
)


@st.composite
def scripts(draw: Any, dialect: str) -> Script:
    body = draw(st.lists(actions(dialect), max_size=12))
    if draw(sometimes):
        body.insert(draw(st.integers(0, len(body))), draw(violations))
    if not draw(rarely):  # most streams end as a stream should, somewhere
        body.insert(draw(st.integers(0, len(body))), Text(json.dumps(
            {"type": "complete"} if dialect == "eigenai" else {"type": "completion", "status": "complete"}).encode()))
    # A hold with no end message waits out the client's timeout (LIMIT): kept rare.
    ending = Ending("hold") if draw(rarely) else draw(endings)
    segments = tuple(draw(st.lists(st.integers(1, 3000), min_size=1, max_size=6)))
    return Script(tuple(body), ending, segments, draw(st.booleans()))


# -- the test --------------------------------------------------------------------------------


def pinned(dialect: str) -> List[Tuple[Script, int, bool]]:
    """Cases every run tries first, whatever hypothesis draws: one per way a stream ends."""
    if dialect == "eigenai":
        end, metadata = {"type": "complete"}, {"type": "progress", "sample_rate": 16000}
        error = {"type": "error", "message": {"nested": [1, 2]}, "code": {"not": "hashable"}}
    else:
        end, metadata = {"type": "completion", "status": "complete"}, {"type": "chunk", "sample_rate": 16000}
        error = {"type": "error", "error": {"message": "engine failed", "code": 500}}
    end_text, metadata_text = Text(json.dumps(end).encode()), Text(json.dumps(metadata).encode())
    return [
        # Everything a well-behaved stream may do, byte by byte: metadata first, fragments
        # with pings between them, samples split across frames, a 64-bit length, empty frames.
        (Script((metadata_text, Audio(5, 1, (1, 2, 4), True), Audio(0, 0), Audio(1, 2), Control(OPCODE_PONG, b"x"),
                 Audio(70_000, 3, (65_536,), True), Pause(0.005), Text(json.dumps(end).encode(), (3, 3))),
                Ending("close", 1000, "bye"), (1, 2, 3000), True), 0, True),
        (Script((Audio(4800, 4),), Ending("hold"), (4800,), False), 0, True),  # silence: SynthesisTimeout
        (Script((Audio(3001, 5), Pause(0.01)), Ending("reset"), (7,), True), 1, False),  # reset mid-stream
        (Script((), Ending("close", 4001, "bad key"), (100,), False), 1, True),  # AuthenticationError, once
        (Script((Audio(0, 0),), Ending("cut_fin", cut=3), (1,), False), 1, True),  # dropped before audio: retried
        (Script((Audio(10, 6), Text(b'{"type": "x\xff"}', (12,))), Ending("fin"), (5,), False), 0, True),  # not UTF-8
        (Script((Audio(10, 7), Text(json.dumps(error).encode())), Ending("hold"), (64,), False), 0, False),
        (Script((Audio(9, 8), end_text), Ending("fin"), (9,), False), 0, True),  # ends mid-sample
    ]



class ErrorLog(logging.Handler):
    """Collects ERROR records of ttsstream's loggers (the reader's "internal error" net)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Tally:
    """What the examples did, for the figures."""

    def __init__(self) -> None:
        self.examples = 0
        self.outcomes: Counter = Counter()
        self.connections = 0
        self.audio_bytes = 0


def run_example(server: ScriptServer, dialect: str, script: Script, retries: int, keep_audio: bool,
                tally: Tally) -> None:
    expected = expect(dialect, script)
    server.play(script)
    recorder = Recorder()
    readers_before = {t for t in threading.enumerate() if t.name.startswith("ttsstream-reader-")}
    client = TTSClient(provider=dialect, url=f"ws://127.0.0.1:{server.port}{PATHS[dialect]}", retries=retries,
                       timeout=Timeouts(connect=10, first_audio=LIMIT, between_chunks=LIMIT))
    try:
        speech = client.speak("Fuzz me.", block=False, keep_audio=keep_audio, **recorder.callbacks())
        ended = recorder.wait_end(NO_HANG)
    finally:
        client.close()
    readers = [t for t in threading.enumerate() if t.name.startswith("ttsstream-reader-") and t not in readers_before]
    for thread in readers:
        thread.join(NO_HANG)
    server.finish()

    assert ended, "the speech did not end: a hang"
    assert not [t.name for t in readers if t.is_alive()], "a reader thread outlived close()"
    assert server.problems == []
    assert expected.connections(retries) in (None, server.connections), f"{server.connections} connections"
    recorder.check_shape()  # one terminal callback, last; chunks in order; whole samples
    audio = b"".join(chunk.pcm for chunk in recorder.chunks)
    kind, outcome = recorder.events[-1][:2]
    if keep_audio:
        assert speech.pcm == audio
    if kind == "complete":
        assert expected.complete is not False, f"completed, but the script calls for {expected.error}"
        assert speech.error is None and speech.wait(0) is speech
        assert audio == expected.audio, "completed with other audio than the server sent"
        assert speech.sample_rate == expected.sample_rate
    else:
        assert isinstance(outcome, TTSError) and speech.error is outcome
        with pytest.raises(type(outcome)):
            speech.wait(0)
        assert expected.complete is not True, f"{type(outcome).__name__}: {outcome}, but the script completes"
        if expected.error is not None:
            assert type(outcome) is expected.error, f"{type(outcome).__name__}: {outcome}"
        assert expected.audio.startswith(audio), "audio that the server did not send"
    tally.examples += 1
    tally.outcomes["complete" if kind == "complete" else type(outcome).__name__] += 1
    tally.connections += server.connections
    tally.audio_bytes += len(audio)


@pytest.mark.parametrize("dialect", ["eigenai", "shunyalabs"])
def test_any_server_behaviour_keeps_the_client_contract(dialect, figures):
    server = ScriptServer()
    tally = Tally()
    hooked: List[Any] = []
    errors = ErrorLog()
    logger = logging.getLogger("ttsstream")
    previous_hook, threading.excepthook = threading.excepthook, hooked.append
    logger.addHandler(errors)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=IN_CI, database=None,
              suppress_health_check=list(HealthCheck))
    @given(script=scripts(dialect), retries=st.sampled_from([0, 1]), keep_audio=st.booleans())
    def fuzz(script: Script, retries: int, keep_audio: bool) -> None:
        run_example(server, dialect, script, retries, keep_audio, tally)
        assert hooked == [], hooked
        assert errors.records == [], [r.getMessage() for r in errors.records]

    for script, retries, keep_audio in pinned(dialect):
        fuzz = example(script=script, retries=retries, keep_audio=keep_audio)(fuzz)

    began = time.perf_counter()
    try:
        fuzz()
    finally:
        seconds = time.perf_counter() - began
        logger.removeHandler(errors)
        threading.excepthook = previous_hook
        server.close()
        outcomes = ", ".join(f"{name} {count}" for name, count in tally.outcomes.most_common())
        figures.add(f"{tally.examples} examples in {seconds:.1f} s ({'derandomized' if IN_CI else 'random'}), "
                    f"{tally.connections} connections, {tally.audio_bytes / 1e6:.1f} MB of audio: {outcomes}")
    assert server.problems == []
