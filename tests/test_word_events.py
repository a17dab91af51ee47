"""Exact word times from the bundled server: the ``ttsstream.words`` extension, end to end.

Raw websocket-client sockets check the server's side (a client that asks in its
handshake gets one words message per utterance, after the audio and before the end
marker; a client that does not ask gets the very frames it always got); a
``Connection`` with a recording sink and a text stream check the client's side. The
tone engine's times are exact by construction and are checked to the sample; eSpeak
NG's are checked against the audio itself (where sound bursts begin and end).

Everything a test asserts is recorded first and asserted on the test's own thread.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import unicodedata
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest
import websocket

from ttsstream import TTSClient
from ttsstream.connection import Connection, Settings, Sink
from ttsstream.errors import TTSError
from ttsstream.protocols import WordTime, get_dialect
from ttsstream.retry import RetryPolicy, Timeouts
from ttsstream.server import tone_pcm
from ttsstream.server.wordtimes import Span, time_words, word_spans
from ttsstream.streaming import TextStream

ASK = ["X-TTSStream-Extensions: words"]
RATE = 24000
CHAR = 0.05  # seconds per character of the tone engine at speed 1
WAIT = 30.0  # a hang guard for one socket read or one speech, not a performance bound
TEXT = "Hello, (big) world! It's 1,250 — o'clock."


def expected_words(text: str) -> List[Tuple[str, int, int]]:
    """The words of ``text`` by the rule in API.md, found here without the server's code."""
    found = []
    for match in re.finditer(r"\S+", text):
        start, end = match.span()
        while start < end and unicodedata.category(text[start]).startswith("P"):
            start += 1
        while end > start and unicodedata.category(text[end - 1]).startswith("P"):
            end -= 1
        if any(unicodedata.category(char)[0] in "LN" for char in text[start:end]):
            found.append((text[start:end], start, end))
    return found


# -- talking to the server with websocket-client --------------------------------------------


def connect(url: str, ask: List[str], header: Optional[List[str]] = None) -> websocket.WebSocket:
    """A socket whose handshake carries ``ask`` (``ASK``: the words; ``[]``: nothing)."""
    return websocket.create_connection(url, timeout=WAIT, header=(header or []) + ask)


def utterance(ws: websocket.WebSocket) -> List[Tuple[int, bytes]]:
    """Every frame up to and including the end marker (or an error), as (opcode, payload)."""
    frames = []
    while True:
        opcode, data = ws.recv_data()
        frames.append((opcode, bytes(data)))
        if opcode == websocket.ABNF.OPCODE_TEXT:
            kind = json.loads(data).get("type")
            if kind not in ("chunk", "ttsstream.words"):
                return frames
        elif opcode != websocket.ABNF.OPCODE_BINARY:
            raise AssertionError(f"unexpected frame {opcode}: {data!r}")


def split(frames: List[Tuple[int, bytes]]) -> Tuple[bytes, List[Dict[str, Any]], List[str]]:
    """The audio, the words messages' word lists, and the kinds of frame in order."""
    audio, words, kinds = b"", [], []
    for opcode, data in frames:
        if opcode == websocket.ABNF.OPCODE_BINARY:
            audio += data
            kinds.append("audio")
        else:
            message = json.loads(data)
            kinds.append(message["type"])
            if message["type"] == "ttsstream.words":
                words.append(message["words"])
    return audio, words, kinds


def eigenai(server: Any, text: str, ask: List[str], **request: Any) -> List[Tuple[int, bytes]]:
    ws = connect(server.eigenai_url, ask)
    try:
        ws.send(json.dumps({"token": "any", "model": "higgs2p5"}))
        ws.send(json.dumps({"text": text, **request}))
        return utterance(ws)
    finally:
        ws.close(timeout=1)


def shunyalabs(server: Any, texts: List[str], ask: List[str], **config: Any) -> List[List[Tuple[int, bytes]]]:
    ws = connect(server.shunyalabs_url, ask)
    try:
        ws.send(json.dumps({"model": "zero-indic", "voice": "Nisha", "response_format": "pcm", **config}))
        answers = []
        for text in texts:
            ws.send(json.dumps({"input": text}))
            answers.append(utterance(ws))
        return answers
    finally:
        ws.close(timeout=1)


def gateway(server: Any, text: str, ask: List[str], **fields: Any) -> List[Tuple[int, bytes]]:
    ws = connect(server.gateway_url, ask, ["Authorization: Bearer any"])
    try:
        ws.send(json.dumps({"input": text, "request_type": "streaming", "model": "zero-indic",
                            "voice": "Nisha", **fields}))
        return utterance(ws)
    finally:
        ws.close(timeout=1)


def without_ids(frames: List[Tuple[int, bytes]]) -> List[Tuple[int, bytes]]:
    """The frames with Shunyalabs' request ids (fresh per request) blanked out."""
    return [(op, re.sub(rb'"request_id":"[0-9a-f]+"', b'"request_id":"-"', data)) for op, data in frames]


def check_tone_words(words: List[Dict[str, Any]], text: str, speed: float = 1.0) -> None:
    """Exact: each word from its first character's tone to its last's."""
    assert [(w["text"], w["char_start"], w["char_end"]) for w in words] == expected_words(text)
    step = CHAR / speed
    for word in words:
        assert text[word["char_start"]:word["char_end"]] == word["text"]
        assert word["start"] == pytest.approx(word["char_start"] * step, abs=1e-6)
        assert word["end"] == pytest.approx(word["char_end"] * step, abs=1e-6)


# -- the tone engine: exact ------------------------------------------------------------------


def test_eigenai_words_come_after_the_audio_and_before_complete_to_the_sample(make_server):
    server = make_server(frame_bytes=1001)
    frames = eigenai(server, TEXT, ask=ASK)
    audio, words, kinds = split(frames)
    assert audio == tone_pcm(TEXT)
    assert kinds == ["audio"] * (len(kinds) - 2) + ["ttsstream.words", "complete"]
    [only] = words
    check_tone_words(only, TEXT)
    assert [w["text"] for w in only] == ["Hello", "big", "world", "It's", "1,250", "o'clock"]
    assert only[-1]["end"] <= len(audio) / 2 / RATE


def test_the_words_follow_the_speed(make_server):
    server = make_server()
    _, [words], _ = split(eigenai(server, TEXT, ask=ASK, voice_settings={"speed": 2.0}))
    check_tone_words(words, TEXT, speed=2.0)


def test_shunyalabs_gets_words_per_input_on_one_connection(make_server):
    server = make_server(shunyalabs_metadata=True, shunyalabs_sample_rate=16000, frame_bytes=999)
    texts = ["नमस्ते दुनिया।", "  second   input, with (brackets)  ", TEXT]
    answers = shunyalabs(server, texts, ask=ASK)
    assert len({u.connection for u in server.transcript}) == 1
    for text, frames in zip(texts, answers):
        audio, [words], kinds = split(frames)
        assert audio == tone_pcm(text, sample_rate=16000)
        assert kinds[-2:] == ["ttsstream.words", "completion"] and "ttsstream.words" not in kinds[:-2]
        assert [w["text"] for w in words] == [word for word, _, _ in expected_words(text)]
        for word in words:  # exact at 16 kHz too: 800 samples a character
            assert word["start"] * 16000 == pytest.approx(word["char_start"] * 800, abs=0.02)


def test_the_gateway_times_words_from_the_first_sample_not_the_wav_header(make_server):
    server = make_server()
    audio, [words], kinds = split(gateway(server, TEXT, ask=ASK, response_format="wav"))
    assert audio[44:] == tone_pcm(TEXT)
    assert kinds[-2:] == ["ttsstream.words", "completion"]
    check_tone_words(words, TEXT)


def test_a_text_with_no_words_gets_an_empty_words_message(make_server):
    server = make_server()
    _, words, kinds = split(eigenai(server, "— … !", ask=ASK))
    assert words == [[]] and kinds[-2:] == ["ttsstream.words", "complete"]


@pytest.mark.parametrize("header", [[], ["X-TTSStream-Extensions: wordsmith, other"]])
def test_a_client_that_does_not_ask_gets_the_same_frames_as_before(make_server, header):
    """Byte for byte: the frames with the extension, less its one message, are the frames
    without; and without it (or asking only for others), no frame mentions it. Every
    endpoint; Shunyalabs' request ids, fresh per request, blanked."""
    server = make_server(frame_bytes=777)
    meta = make_server(frame_bytes=777, shunyalabs_metadata=True)
    for run in (lambda ask: [eigenai(server, TEXT, ask)],
                lambda ask: shunyalabs(server, [TEXT, "two"], ask),
                lambda ask: shunyalabs(meta, [TEXT, "two"], ask, speed=1.5),
                lambda ask: [gateway(server, TEXT, ask, response_format="wav")]):
        plain = [without_ids(frames) for frames in run([])]
        asked = [without_ids(frames) for frames in run(ASK)]
        ignored = [without_ids(frames) for frames in run(header)]  # other names only: no words either
        for mine, theirs, other in zip(asked, plain, ignored):
            assert not any(b"ttsstream" in data for _, data in theirs + other)
            assert theirs == other
            assert [f for f in mine if b"ttsstream.words" not in f[1]] == theirs
            assert len(mine) == len(theirs) + 1


# -- eSpeak NG: real speech ----------------------------------------------------------------


def envelope(pcm: bytes, ms: int = 5) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    width = RATE * ms // 1000
    count = len(samples) // width
    return np.sqrt((samples[:count * width].reshape(count, width) ** 2).mean(axis=1))


def bursts(pcm: bytes, ms: int = 5, level: float = 0.02, gap: float = 0.04) -> List[Tuple[float, float]]:
    """Where sound begins and ends: runs of 5 ms windows above 2 % of the loudest,
    joined across gaps shorter than 40 ms. An independent measure of word times."""
    loud = envelope(pcm, ms) > level * envelope(pcm, ms).max()
    found: List[List[float]] = []
    for index in np.flatnonzero(loud):
        start, end = index * ms / 1000, (index + 1) * ms / 1000
        if found and start - found[-1][1] < gap:
            found[-1][1] = end
        else:
            found.append([start, end])
    return [(a, b) for a, b in found]


def check_speech_words(words: List[Dict[str, Any]], text: str, audio: bytes) -> None:
    assert [(w["text"], w["char_start"], w["char_end"]) for w in words] == expected_words(text)
    duration = len(audio) / 2 / RATE
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for word, following in zip(words, words[1:] + [None]):
        assert 0 <= word["start"] < word["end"] <= duration
        if following is not None:
            assert word["end"] <= following["start"]
    env = envelope(audio)
    for word in words:  # each word holds sound: some 5 ms of it above a tenth of the loudest
        assert env[int(word["start"] * 200):int(word["end"] * 200) + 1].max() > 0.1 * env.max(), word


ENGLISH = "The quick brown fox jumps over the lazy dog, and then it sleeps: 1,250 times at 3.14 o'clock!"
HINDI = "नमस्ते, आप कैसे हैं? मैं ठीक हूँ, धन्यवाद।"


@pytest.mark.parametrize("text", [ENGLISH, HINDI], ids=["english", "hindi"])
def test_espeak_words_slice_the_text_and_lie_in_order_inside_the_audio(make_server, text):
    server = make_server(engine="espeak")
    audio, [words], kinds = split(eigenai(server, text, ask=ASK))
    assert kinds[-2:] == ["ttsstream.words", "complete"]
    check_speech_words(words, text, audio)
    [answer] = shunyalabs(server, [text], ask=ASK)
    audio, [words], kinds = split(answer)
    assert kinds[-2:] == ["ttsstream.words", "completion"]
    check_speech_words(words, text, audio)


@pytest.mark.parametrize("text", ["One, two, three, four, five, six, seven.",
                                  "Seven; eight: nine, ten! Sleeps, fish, shoes.",
                                  "एक, दो, तीन, चार, पाँच, छह।"], ids=["english", "fricatives", "hindi"])
def test_espeak_word_times_match_the_sound_bursts_of_the_audio(make_server, text):
    """Words between pauses: each starts within 10 ms of a burst of sound beginning and
    ends inside that burst (it may end before: the burst keeps a quiet release)."""
    server = make_server(engine="espeak")
    audio, [words], _ = split(eigenai(server, text, ask=ASK))
    found = bursts(audio)
    errors = []
    for word in words:
        onset, offset = min(found, key=lambda burst: abs(burst[0] - word["start"]))
        errors.append(word["start"] - onset)
        assert abs(word["start"] - onset) <= 0.010, (word, onset)
        assert onset + 0.1 < word["end"] <= offset + 0.010, (word, offset)
    assert len(errors) == len(expected_words(text))


def sound_end(pcm: bytes) -> float:
    """Seconds to the end of the last 5 ms above 5 % of the loudest."""
    env = envelope(pcm)
    return float((np.flatnonzero(env > 0.05 * env.max())[-1] + 1) * 0.005)


NUMBERS = "Numbers: 1,250 is a number, and 3.14 is another."


@pytest.mark.parametrize("text, last_words", [(NUMBERS, ["Numbers", "number"]), (HINDI, ["नमस्ते", "हैं", "हूँ"])],
                         ids=["english", "hindi"])
def test_espeak_clause_final_words_end_where_the_clause_spoken_alone_ends(make_server, text, last_words):
    """The server speaks clause by clause, so a prefix of whole clauses spoken alone is the
    same speech: its sound ends where the last word of its last clause does."""
    server = make_server(engine="espeak")
    _, [words], _ = split(eigenai(server, text, ask=ASK))
    checked = []
    for word in words:
        pause = re.match(r"[.,;:!?\u0964]+\s+", text[word["char_end"]:])
        if pause is None:
            continue
        alone, _, _ = split(eigenai(server, text[:word["char_end"] + pause.end()], ask=[]))
        checked.append(word["text"])
        assert word["end"] == pytest.approx(sound_end(alone), abs=0.010), word
    assert checked == last_words


@pytest.mark.parametrize("text", [NUMBERS, HINDI], ids=["english", "hindi"])
def test_espeak_word_starts_agree_with_each_prefix_spoken_alone(make_server, text):
    """A prefix spoken alone ends a little later than its words do inside a longer clause
    (its last word is said as a clause's last: slower), and a clause's first word
    starts after the pause that the prefix lacks: measured, -0.28 to +0.30 s. Sharing a
    clause's time by characters instead would put "is", after "1,250", 0.9 s early."""
    server = make_server(engine="espeak")
    _, [words], _ = split(eigenai(server, text, ask=ASK))
    for word in words[1:]:
        alone, _, _ = split(eigenai(server, text[:word["char_start"]], ask=[]))
        assert -0.35 <= word["start"] - sound_end(alone) <= 0.35, word


SAME_FRAMES = """
import ctypes, hashlib, json, sys, websocket
from ttsstream.server import LocalServer
from ttsstream.server.espeak import _Espeak
with LocalServer(engine="espeak", frame_bytes=1000) as url:
    # eSpeak NG seeds its randomness from the clock: a fixed seed makes the run repeatable.
    _Espeak.get()._lib.espeak_ng_SetRandSeed(ctypes.c_long(7))
    ws = websocket.create_connection(url + "/api/v1/generate/ws", timeout=30,
                                     header=["X-TTSStream-Extensions: words"] if sys.argv[1] == "ask" else [])
    ws.send(json.dumps({"token": "any", "model": "higgs2p5"}))
    ws.send(json.dumps({"text": sys.argv[2]}))
    frames = []
    while True:
        opcode, data = ws.recv_data()
        if b"ttsstream.words" not in data:
            frames.append(hashlib.sha256(bytes([opcode]) + data).hexdigest()[:12])
        if data.startswith(b'{"type":"complete"'):
            break
    ws.close()
print(" ".join(frames))
"""


def test_espeak_frames_are_the_same_with_and_without_the_words():
    """eSpeak NG carries state from one utterance to the next and seeds its randomness
    from the clock, so each run is a fresh process with a fixed seed: its first
    utterance, asked for words or not, is the same frames."""
    runs = [subprocess.run([sys.executable, "-c", SAME_FRAMES, ask, ENGLISH], capture_output=True, text=True,
                           timeout=120, check=True).stdout.split() for ask in ("ask", "plain")]
    assert len(runs[0]) > 10 and runs[0] == runs[1]


# -- the server's word rules, without a socket ----------------------------------------------


def test_word_spans_strip_punctuation_and_skip_tokens_without_a_letter_or_digit():
    text = "«Hello», (big) 😀 — world! 1,250 o'clock हूँ। $5"
    assert [text[s.char_start:s.char_end] for s in word_spans(text)] == \
        ["Hello", "big", "world", "1,250", "o'clock", "हूँ", "$5"]
    assert [(w, s, e) for w, s, e in expected_words(text)] == \
        [(text[s.char_start:s.char_end], s.char_start, s.char_end) for s in word_spans(text)]
    assert word_spans("") == [] and word_spans(" — … ") == []


def tone_block(samples: int, amplitude: float = 8000.0) -> np.ndarray:
    return (amplitude * np.sin(np.arange(samples) * 0.3)).astype(np.int16)


def test_time_words_uses_the_first_mark_in_each_token_and_the_sound_around_it():
    # 1000 Hz: 5-sample windows. "aa bb cc": sound at 0-300, 400-600, 700-900.
    pcm = np.concatenate([tone_block(300), np.zeros(100, np.int16), tone_block(200),
                          np.zeros(100, np.int16), tone_block(200), np.zeros(100, np.int16)])
    spans = word_spans("aa bb cc")
    # Two marks in "bb" (the earlier wins), one before "cc"'s sound (it moves to the sound).
    marks = [(0, 0), (4, 450), (3, 400), (6, 650)]
    words = time_words(spans, marks, pcm, 1000)
    assert [(w.start, w.end) for w in words] == [(0, 300), (400, 600), (700, 900)]


def test_time_words_shares_unmarked_words_and_keeps_marks_in_order():
    pcm = tone_block(1000)
    spans = word_spans("one twotwo three four")
    # "twotwo" has no mark: it shares 0..600 with "one" by characters (3 : 6); "four"'s
    # mark runs backwards (eSpeak's do at high speeds) and is held at "three"'s.
    words = time_words(spans, [(0, 0), (11, 600), (17, 500)], pcm, 1000)
    assert [w.start for w in words] == [0, 200, 600, 600]
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))
    # No mark at all: the words share the whole stretch.
    assert [w.start for w in time_words(spans, [], pcm, 1000)] == [0, 166, 500, 777]  # 3 : 6 : 5 : 4


def test_a_breath_through_a_pause_is_no_words_sound():
    breath = (np.random.default_rng(1).normal(0, 100, 400)).astype(np.int16)  # 1 % of the word's level
    pcm = np.concatenate([tone_block(300), breath, tone_block(300)])
    words = time_words(word_spans("aa bb"), [(0, 0), (3, 700)], pcm, 1000)
    assert [(w.start, w.end) for w in words] == [(0, 300), (700, 1000)]
    # Silence all through: a word with no sound lasts nothing.
    [silent] = time_words([Span(0, 2, 0, 2)], [(0, 10)], np.zeros(100, np.int16), 1000)
    assert (silent.start, silent.end) == (10, 10)


# -- the client's side: the connection hands the words to its sink --------------------------


class Recorder(Sink):
    """Records what the reader thread hands a sink, in order."""

    def __init__(self) -> None:
        self.events: "queue.SimpleQueue[Tuple[str, Any]]" = queue.SimpleQueue()
        self.ended = threading.Event()

    def _on_audio(self, data: bytes) -> None:
        self.events.put(("audio", data))

    def _on_words(self, words: Tuple[WordTime, ...]) -> None:
        self.events.put(("words", words))

    def _end(self, error: Optional[TTSError]) -> None:
        self.events.put(("end", error))
        self.ended.set()

    def drained(self) -> List[Tuple[str, Any]]:
        found = []
        while not self.events.empty():
            found.append(self.events.get_nowait())
        return found


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_connection_hands_the_words_to_its_sink_after_the_audio_and_before_the_end(server, provider):
    dialect = get_dialect(provider)
    url = server.eigenai_url if provider == "eigenai" else server.shunyalabs_url
    settings = Settings(dialect, url, None, Timeouts(WAIT), 60.0, RetryPolicy(0))
    idle = threading.Event()
    connection = Connection(settings, on_idle=lambda c: idle.set(), on_exit=lambda c: None,
                            on_retry=lambda *args: False)
    sink = Recorder()
    request = dialect.build_request(dialect.default_model, TEXT, dialect.default_voice(dialect.default_model),
                                    {}, None)
    try:
        connection.begin(sink, request)
        assert sink.ended.wait(WAIT)
    finally:
        connection.close()
    events = sink.drained()
    kinds = [kind for kind, _ in events]
    assert kinds == ["audio"] * (len(kinds) - 2) + ["words", "end"]
    assert b"".join(data for kind, data in events if kind == "audio") == tone_pcm(TEXT)
    words = events[-2][1]
    assert all(isinstance(word, WordTime) for word in words)
    assert [(w.text, w.char_start, w.char_end) for w in words] == expected_words(TEXT)
    assert [w.start for w in words] == pytest.approx([w.char_start * CHAR for w in words], abs=1e-6)
    assert events[-1] == ("end", None)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_text_stream_keeps_each_units_words(server, provider, monkeypatch):
    """Each unit gets the server's words for its own request's text, on its own timeline."""
    seen: "queue.SimpleQueue[Tuple[str, Any]]" = queue.SimpleQueue()
    original = TextStream._words

    def recording(stream: TextStream, unit: Any, words: Tuple[WordTime, ...]) -> None:
        original(stream, unit, words)
        seen.put((unit.request.text, unit.words))

    monkeypatch.setattr(TextStream, "_words", recording)
    sentences = ["The first sentence is here.", " Then a second one, with a clause.", " And the end."]
    with TTSClient(provider=provider, url=server.url) as client:
        speech = client.speak(iter(sentences))
        speech.wait(WAIT)
    units = []
    while not seen.empty():
        units.append(seen.get_nowait())
    assert len(units) >= 2 and all(text in "".join(sentences) for text, _ in units)
    spoken = sorted(w.text for _, words in units for w in words)
    assert spoken == sorted(word for word, _, _ in expected_words("".join(sentences)))
    for text, words in units:
        assert [(w.text, w.char_start, w.char_end) for w in words] == expected_words(text)
        assert words[0].start == 0.0 and words[-1].end == pytest.approx(words[-1].char_end * CHAR)
