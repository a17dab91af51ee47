"""The espeak engine, heard for real: speech recognised as speech, streamed, resampled,
with the services' voice names, through the bundled server, a WebSocket and the client.

Nothing is mocked: eSpeak NG speaks, the server frames it on a loopback port, TTSClient
receives it and writes a WAV, and PocketSphinx (with a grammar of digit words) listens
to that WAV. The same listener fails the tone engine and white noise, so the check
can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
import websocket

soxr = pytest.importorskip("soxr")
pocketsphinx = pytest.importorskip("pocketsphinx")

import ttsstream  # noqa: E402
from ttsstream.protocols import shunyalabs  # noqa: E402
from ttsstream.server import ENGINES, LocalServer, UnknownLanguage, UnknownVoice, get_engine  # noqa: E402
from ttsstream.server.espeak import EspeakEngine  # noqa: E402

WAIT = 30.0
DIGIT_STRINGS = ["4 7 1 9 2", "3 0 8 5 6", "9 2 6 4 1", "5 8 3 7 0", "1 6 9 2 8", "7 4 0 3 5"]
WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
         "six": "6", "seven": "7", "eight": "8", "nine": "9"}
GRAMMAR = ("#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( " + " | ".join(WORDS) + " )+ ;\n")
PASS = 0.8  # the share of digits that must be recognised

PARAGRAPH = ("The quick brown fox jumps over the lazy dog, and then it runs into the forest. "
             "Meanwhile, the birds sing while the sun rises slowly over the hills; "
             "everyone in the village wakes up and starts the day.")

# The voice names users of the real services know, with the sex of each.
EIGENAI_FEMALE = ["Linda", "Vivian", "Serena", "Ono_Anna", "Sohee"]
EIGENAI_MALE = ["Jack", "Uncle_Fu", "Dylan", "Eric", "Ryan", "Aiden"]
SHUNYALABS_FEMALE = ["Nisha", "Priya", "Kavya"]
SHUNYALABS_MALE = ["Varun", "Rajesh", "Arjun"]


# -- listening --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listener() -> "pocketsphinx.Decoder":
    """PocketSphinx's bundled US English model, restricted to digit words."""
    decoder = pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")
    decoder.add_jsgf_string("digits", GRAMMAR)
    decoder.activate_search("digits")
    return decoder


def hear_digits(decoder: "pocketsphinx.Decoder", pcm: np.ndarray, rate: int) -> str:
    """The digits PocketSphinx hears in ``pcm`` (int16 mono at ``rate``), as a string."""
    audio = soxr.resample(pcm, rate, 16000) if rate != 16000 else pcm
    decoder.start_utt()
    decoder.process_raw(audio.astype("<i2").tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    words = hypothesis.hypstr.split() if hypothesis is not None else []
    return "".join(WORDS[word] for word in words)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def digit_accuracy(expected: Sequence[str], heard: Sequence[str]) -> float:
    """1 - (insertions + deletions + substitutions) / digits expected, aligned per string."""
    wanted = [text.replace(" ", "") for text in expected]
    errors = sum(edit_distance(w, h) for w, h in zip(wanted, heard))
    return max(0.0, 1.0 - errors / sum(map(len, wanted)))


def read_wav(path: Path) -> Tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def speak_to_wav(client: ttsstream.TTSClient, text: str, path: Path, **params: object) -> Tuple[int, np.ndarray]:
    """Speak ``text`` through the client, save the speech as a WAV, read the WAV back."""
    speech = client.speak(text, **params)
    speech.save(path)
    return read_wav(path)


def heard_over_the_wire(server: LocalServer, listener: "pocketsphinx.Decoder", tmp_path: Path) -> Tuple[
        List[str], List[int]]:
    heard, lengths = [], []
    with ttsstream.TTSClient(url=server.eigenai_url) as client:
        for i, text in enumerate(DIGIT_STRINGS):
            rate, pcm = speak_to_wav(client, text, tmp_path / f"digits-{i}.wav")
            assert rate == 24000
            heard.append(hear_digits(listener, pcm, rate))
            lengths.append(len(pcm))
    return heard, lengths


def pitch_hz(pcm: np.ndarray, rate: int) -> float:
    """The median fundamental frequency over voiced 40 ms frames (autocorrelation)."""
    frame, hop = int(0.04 * rate), int(0.02 * rate)
    low, high = rate // 400, rate // 60
    found = []
    samples = pcm.astype(np.float64)
    for start in range(0, len(samples) - frame, hop):
        part = samples[start:start + frame]
        if np.sqrt(np.mean(part ** 2)) < 1000:  # silence or a consonant
            continue
        part = part - part.mean()
        correlation = np.correlate(part, part, "full")[frame - 1:]
        lag = low + int(np.argmax(correlation[low:high]))
        if correlation[lag] > 0.3 * correlation[0]:
            found.append(rate / lag)
    assert found, "no voiced frame found"
    return float(np.median(found))


# -- speech, not noise ------------------------------------------------------------------


def test_espeak_is_the_default_engine_and_loads_lazily():
    check = ("import sys, ttsstream.server\n"
             "assert 'ttsstream.server.espeak' not in sys.modules and 'espeakng_loader' not in sys.modules\n")
    assert subprocess.run([sys.executable, "-c", check], cwd=str(Path(__file__).parent.parent),
                          timeout=WAIT).returncode == 0
    assert LocalServer().engine.name == "espeak"
    assert isinstance(get_engine("espeak"), EspeakEngine)
    assert set(ENGINES) >= {"tone", "espeak"}


def test_spoken_digits_are_recognised(make_server, listener, tmp_path):
    server = make_server(engine="espeak")
    heard, _ = heard_over_the_wire(server, listener, tmp_path)
    assert digit_accuracy(DIGIT_STRINGS, heard) >= PASS, heard


def test_the_recognition_check_fails_tones_and_noise(make_server, listener, tmp_path):
    server = make_server(engine="tone")
    heard, lengths = heard_over_the_wire(server, listener, tmp_path)
    assert digit_accuracy(DIGIT_STRINGS, heard) < PASS, heard
    noise = np.random.default_rng(7)
    heard_noise = [hear_digits(listener, (noise.standard_normal(n) * 3000).astype(np.int16), 24000)
                   for n in lengths]
    assert digit_accuracy(DIGIT_STRINGS, heard_noise) < PASS, heard_noise


# -- streaming ----------------------------------------------------------------------------


def test_a_paragraph_streams_clause_by_clause():
    engine = EspeakEngine()
    assert len(PARAGRAPH) >= 190
    called = time.perf_counter()
    stamps, pieces = [], []
    for piece in engine.synthesize(PARAGRAPH, voice="Linda", sample_rate=24000):
        stamps.append(time.perf_counter())
        pieces.append(piece)
    finished = time.perf_counter()
    assert len(pieces) > 1
    assert called < stamps[0] < stamps[-1] <= finished
    total = sum(map(len, pieces))
    assert len(pieces[0]) < total / 2  # the first piece is a clause, not the paragraph
    assert all(len(piece) % 2 == 0 for piece in pieces)


def test_concurrent_utterances_interleave_without_deadlock():
    """Two utterances advanced in turn on one thread: no lock is held between pieces."""
    engine = EspeakEngine()
    done: List[List[bytes]] = []

    def alternate() -> None:
        first = engine.synthesize(PARAGRAPH, voice="Linda")
        second = engine.synthesize(PARAGRAPH, voice="Jack", language="en-gb")
        pieces: Dict[int, List[bytes]] = {0: [], 1: []}
        live = {0: first, 1: second}
        while live:
            for key in list(live):
                piece = next(live[key], None)
                if piece is None:
                    del live[key]
                else:
                    pieces[key].append(piece)
        done.extend([pieces[0], pieces[1]])

    worker = threading.Thread(target=alternate, name="test-alternate")
    worker.start()
    worker.join(WAIT)
    assert not worker.is_alive(), "interleaved utterances deadlocked"
    assert len(done) == 2 and all(len(pieces) > 1 for pieces in done)


def test_two_concurrent_speeches_through_the_server_both_complete(make_server):
    server = make_server(engine="espeak")
    with ttsstream.TTSClient(url=server.eigenai_url) as one, \
            ttsstream.TTSClient(provider="shunyalabs", url=server.shunyalabs_url) as two:
        a = one.speak(PARAGRAPH, voice="Linda", block=False)
        b = two.speak(PARAGRAPH, voice="Varun", block=False)
        a.wait(WAIT)
        b.wait(WAIT)
    assert a.duration > 5 and b.duration > 5


def test_an_abandoned_utterance_leaves_the_engine_usable(make_server):
    engine = EspeakEngine()
    started = engine.synthesize(PARAGRAPH)
    assert next(started)
    started.close()  # what the server does when a client goes away mid-stream
    forgotten = engine.synthesize(PARAGRAPH)
    assert next(forgotten)
    del forgotten  # never closed: collected with a clause still to come
    assert b"".join(engine.synthesize("Still here."))

    # And through the server: a client cancels mid-stream (audio paced at 10x real time).
    server = make_server(engine="espeak", realtime=10.0)
    with ttsstream.TTSClient(url=server.eigenai_url) as client:
        audio = threading.Event()
        cancelled = client.speak(PARAGRAPH * 2, block=False, on_audio=lambda chunk: audio.set())
        assert audio.wait(WAIT)
        cancelled.cancel()
        with pytest.raises(ttsstream.Cancelled):
            cancelled.wait(WAIT)
        after = client.speak("Still speaking after a cancel.")
    assert after.duration > 1
    deadline = time.monotonic() + WAIT
    while len(server.transcript) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    records = {record.text: record for record in server.transcript}
    assert records[PARAGRAPH * 2].completed is False
    assert records["Still speaking after a cancel."].completed is True


# -- rates, speed, language ---------------------------------------------------------------


def test_eigenai_audio_is_24_khz_resampled_not_decimated(make_server, tmp_path):
    server = make_server(engine="espeak")
    with ttsstream.TTSClient(url=server.eigenai_url) as client:
        speech = client.speak(PARAGRAPH, voice="Linda")
    speech.save(tmp_path / "p.wav")
    rate, pcm = read_wav(tmp_path / "p.wav")
    assert speech.sample_rate == rate == 24000
    native = EspeakEngine().native_rate
    unresampled = b"".join(EspeakEngine().synthesize(PARAGRAPH, voice="Linda", sample_rate=native))
    assert len(pcm) / 24000 == pytest.approx(len(unresampled) / 2 / native, rel=0.02)
    # eSpeak's audio ends at its Nyquist frequency; a resampler keeps it there, while
    # repeating samples would mirror it into the band above.
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    above = spectrum[int(len(spectrum) * (native / 2 + 200) / (24000 / 2)):].sum()
    assert above / spectrum.sum() < 0.001


def test_shunyalabs_audio_comes_at_the_rate_the_server_declares(make_server):
    server = make_server(engine="espeak", shunyalabs_metadata=True, shunyalabs_sample_rate=16000)
    with ttsstream.TTSClient(provider="shunyalabs", url=server.shunyalabs_url) as client:
        speech = client.speak(PARAGRAPH, voice="Nisha")
    assert speech.sample_rate == server.transcript[-1].sample_rate == 16000
    native = EspeakEngine().native_rate
    unresampled = b"".join(EspeakEngine().synthesize(PARAGRAPH, voice="Nisha", sample_rate=native))
    assert speech.duration == pytest.approx(len(unresampled) / 2 / native, rel=0.02)


def test_speed_is_honoured_by_both_dialects(make_server):
    server = make_server(engine="espeak")
    with ttsstream.TTSClient(url=server.eigenai_url) as eigenai:
        normal = eigenai.speak(PARAGRAPH).duration
        fast = eigenai.speak(PARAGRAPH, voice_settings={"speed": 2.0}).duration
    assert fast < 0.75 * normal
    with ttsstream.TTSClient(provider="shunyalabs", url=server.shunyalabs_url) as client:
        normal = client.speak(PARAGRAPH).duration
        fast = client.speak(PARAGRAPH, speed=2.0).duration
    assert fast < 0.75 * normal


def test_language_changes_the_speech(make_server, listener):
    server = make_server(engine="espeak")
    text = DIGIT_STRINGS[0]
    with ttsstream.TTSClient(url=server.eigenai_url, model="qwen3-tts") as qwen:
        english = qwen.speak(text, language="English")
        hindi = qwen.speak(text, language="Hindi")
    with ttsstream.TTSClient(url=server.eigenai_url, model="chatterbox") as chatterbox:
        en = chatterbox.speak(text, language_id="en")
        fr = chatterbox.speak(text, language_id="fr")
    with ttsstream.TTSClient(provider="shunyalabs", url=server.shunyalabs_url) as client:
        plain = client.speak(text)
        tamil = client.speak(text, language="ta")
        again = client.speak(text)
    # eSpeak varies a few samples from run to run; another language changes the words.
    assert abs(plain.duration - again.duration) < 0.002 * plain.duration
    for a, b in ((english, hindi), (en, fr), (plain, tamil)):
        assert abs(a.duration - b.duration) > 0.02 * a.duration, (a.duration, b.duration)
    # Hindi says "chaar saat ek nau do": an English digit listener does not hear 47192.
    assert digit_accuracy([text], [hear_digits(listener, hindi.audio, 24000)]) < PASS
    assert [record.language for record in server.transcript] == ["English", "Hindi", "en", "fr", None, "ta", None]


# -- voices ---------------------------------------------------------------------------------


def test_every_known_voice_speaks_in_its_sex(make_server):
    server = make_server(engine="espeak")
    text = "Hello there, how are you doing today?"
    pitches: Dict[str, float] = {}
    with ttsstream.TTSClient(url=server.eigenai_url, model="qwen3-tts") as eigenai, \
            ttsstream.TTSClient(provider="shunyalabs", url=server.shunyalabs_url) as shunya:
        for voice in EIGENAI_FEMALE + EIGENAI_MALE:
            speech = eigenai.speak(text, voice=voice)
            assert speech.duration > 0.5, voice
            pitches[voice] = pitch_hz(speech.audio, speech.sample_rate)
        for voice in shunyalabs.VOICES:
            speech = shunya.speak(text, voice=voice)
            assert speech.duration > 0.5, voice
            pitches[voice] = pitch_hz(speech.audio, speech.sample_rate)
    assert set(shunyalabs.VOICES) == set(SHUNYALABS_FEMALE + SHUNYALABS_MALE)
    for voice in EIGENAI_FEMALE + SHUNYALABS_FEMALE:
        assert pitches[voice] > 150, (voice, pitches)
    for voice in EIGENAI_MALE + SHUNYALABS_MALE:
        assert pitches[voice] < 150, (voice, pitches)


def test_voice_names_match_in_any_case_and_chatterbox_needs_none(make_server):
    server = make_server(engine="espeak")
    with ttsstream.TTSClient(url=server.eigenai_url) as client:
        assert client.speak("Hi.", voice="LINDA").duration > 0
        assert client.speak("Hi.", voice="uncle_fu").duration > 0
    with ttsstream.TTSClient(url=server.eigenai_url, model="chatterbox") as client:
        assert client.speak("Hi.").duration > 0
    assert [record.voice for record in server.transcript] == ["LINDA", "uncle_fu", None]


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_an_unknown_voice_is_a_server_error_naming_it(make_server, provider):
    server = make_server(engine="espeak")
    url = server.eigenai_url if provider == "eigenai" else server.shunyalabs_url
    with ttsstream.TTSClient(provider=provider, url=url) as client:
        with pytest.raises(ttsstream.ServerError) as caught:
            client.speak("Hello.", voice="Bob")
        assert "'Bob'" in str(caught.value) and "Linda" in str(caught.value) and "Nisha" in str(caught.value)
        assert caught.value.code == 400
        assert client.speak("Hello again.").duration > 0.5
    assert server.transcript[0].completed is False and server.transcript[1].completed is True


def test_an_unknown_language_is_a_server_error_naming_it(make_server):
    server = make_server(engine="espeak")
    with ttsstream.TTSClient(url=server.eigenai_url, model="qwen3-tts") as client:
        with pytest.raises(ttsstream.ServerError, match="Klingonese") as caught:
            client.speak("Hello.", language="Klingonese")
        assert caught.value.code == 400 and "Hindi" in str(caught.value)
    with ttsstream.TTSClient(provider="shunyalabs", url=server.shunyalabs_url) as client:
        with pytest.raises(ttsstream.ServerError, match="'xq'"):
            client.speak("Hello.", language="xq")


def test_the_connection_stays_usable_after_an_unknown_voice(make_server):
    server = make_server(engine="espeak")
    ws = websocket.create_connection(server.eigenai_url, timeout=WAIT)
    try:
        ws.send(json.dumps({"token": "", "model": "higgs2p5"}))
        ws.send(json.dumps({"text": "Hello.", "voice": "Nobody"}))
        error = json.loads(ws.recv())
        assert error["type"] == "error" and error["code"] == 400 and "'Nobody'" in error["message"]
        ws.send(json.dumps({"text": "Hello.", "voice": "Jack"}))
        audio = b""
        while True:
            message = ws.recv()
            if isinstance(message, bytes):
                audio += message
            else:
                assert json.loads(message) == {"type": "complete"}
                break
        assert len(audio) > 4800
    finally:
        ws.close()


def test_the_engine_refuses_before_any_audio():
    engine = EspeakEngine()
    with pytest.raises(UnknownVoice) as caught:
        engine.synthesize("Hello.", voice="Zaphod")  # raised by the call, not on first next()
    assert caught.value.voice == "Zaphod" and "Sohee" in caught.value.known
    with pytest.raises(UnknownLanguage):
        engine.synthesize("Hello.", language="Elvish")
    for language in ("hi", "Hindi", "hi-IN", "HINDI", "auto", "en-gb", "zh"):
        assert engine.synthesize("4 7", language=language) is not None
    with pytest.raises(ValueError, match="speed"):
        engine.synthesize("Hello.", speed=0)


def test_indic_languages_and_text_are_spoken():
    engine = EspeakEngine()
    for code, name in shunyalabs.LANGUAGES.items():
        by_code = b"".join(engine.synthesize("1 2 3", voice="Nisha", language=code))
        by_name = b"".join(engine.synthesize("1 2 3", voice="Nisha", language=name))
        assert len(by_code) > 4800 and len(by_name) == pytest.approx(len(by_code), rel=0.003), name
    # Devanagari with no language is read as Hindi, as with language="hi" (eSpeak's
    # English voice would read it too, but differently: 1.5 % longer).
    text = "नमस्ते, आप कैसे हैं?"
    unnamed = b"".join(engine.synthesize(text, voice="Nisha"))
    hindi = b"".join(engine.synthesize(text, voice="Nisha", language="hi"))
    assert len(unnamed) == pytest.approx(len(hindi), rel=0.003)
