"""The aligner (``ttsstream.words.align``): word times measured from audio, against truth
from an eSpeak NG voice, rate and pitch other than the aligner's reference.

The truth comes from a second private eSpeak instance (``_Reference()``), never from
the process's ordinary one, which a bundled server in this process may be using.
Loose bounds only: the figures that matter are in ``benchmarks/bench_words.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import pytest

from ttsstream import TTSClient
from ttsstream.server import LocalServer
from ttsstream.words import align as aligner
from ttsstream.words import Token, features, tokenize

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_words.py"


ENGLISH = "Please call Stella. Ask her to bring these things with her from the store, and then wait."
HINDI = "आज मौसम बहुत अच्छा है और हम पार्क में घूमने जाएंगे। कृपया अपना नाम यहाँ लिखिए।"


@pytest.fixture(scope="module")
def truth_voice() -> aligner._Reference:
    return aligner._Reference()


def spoken(truth_voice: aligner._Reference, text: str, voice: str, wpm: int,
           pitch: int) -> Tuple[bytes, int, List[Optional[float]]]:
    """Audio of ``text`` and each token's true start (None where eSpeak reports none)."""
    result = truth_voice.speak(text, voice, wpm, pitch)
    assert result is not None
    pcm, events = result
    starts: List[Optional[float]] = []
    for _, low, high in tokenize(text):
        inside = [sample for position, sample in events if low <= position - 1 < high]
        starts.append(inside[0] / truth_voice.sample_rate if inside else None)
    return pcm, truth_voice.sample_rate, starts


@pytest.mark.parametrize("text, language, voice, wpm, pitch", [
    (ENGLISH, "en", "en-us+m3", 140, 70),
    (ENGLISH, None, "en+f2", 200, 30),
    (HINDI, "hi", "hi+f3", 150, 65),
    (HINDI, None, "hi+m2", 195, 35),
])
def test_aligned_starts_are_near_the_truth(truth_voice: aligner._Reference, text: str, language: Optional[str],
                                           voice: str, wpm: int, pitch: int) -> None:
    pcm, rate, truth = spoken(truth_voice, text, voice, wpm, pitch)
    tokens = tokenize(text)
    spans = aligner.align(tokens, text, pcm, rate, language)
    assert spans is not None and len(spans) == len(tokens)
    errors = [abs(start - true) for (start, _), true in zip(spans, truth) if true is not None]
    assert len(errors) >= len(tokens) - 3
    assert statistics.median(errors) < 0.080, errors
    # Far better than spreading words over the audio by their length.
    duration = len(pcm) / 2 / rate
    weights = np.cumsum([0] + [len(token[0]) + 1 for token in tokens])[:-1] / (sum(len(t[0]) + 1 for t in tokens))
    naive = [abs(weight * duration - true) for weight, true in zip(weights, truth) if true is not None]
    assert statistics.median(errors) < statistics.median(naive) / 2


def test_spans_are_in_order_and_within_the_audio(truth_voice: aligner._Reference) -> None:
    pcm, rate, _ = spoken(truth_voice, ENGLISH, "en-us+m3", 160, 60)
    # Half a second of silence either side, at another rate: the received audio is
    # resampled, and its silence is not part of any word.
    samples = np.frombuffer(pcm, dtype=np.int16)
    padded = np.concatenate([np.zeros(rate // 2, np.int16), samples, np.zeros(rate // 2, np.int16)])
    spans = aligner.align(tokenize(ENGLISH), ENGLISH, padded.tobytes(), rate)
    assert spans is not None
    duration = padded.size / rate
    for (start, end), (next_start, _) in zip(spans, spans[1:] + [(duration, duration)]):
        assert 0.0 <= start <= end <= next_start <= duration
    assert spans[0][0] > 0.4 and spans[-1][1] < duration - 0.3


def test_odd_byte_counts_and_other_rates_are_accepted(truth_voice: aligner._Reference) -> None:
    pcm, rate, _ = spoken(truth_voice, "Good morning, everyone.", "en-us+m3", 160, 60)
    spans = aligner.align(tokenize("Good morning, everyone."), "Good morning, everyone.", pcm + b"\x01", rate)
    assert spans is not None and len(spans) == 3


@pytest.mark.parametrize("tokens, text, pcm, rate, language", [
    ([], "", b"\x10\x00" * 24000, 24000, None),                                        # no words
    ([("hello", 0, 5)], "hello", b"\x00\x00" * 48000, 24000, None),                    # silence
    ([("hello", 0, 5)], "hello", b"", 24000, None),                                    # no audio
    ([("hello", 0, 5)], "hello", (np.ones(240, np.int16) * 8000).tobytes(), 24000, None),  # 10 ms
    ([("bonjour", 0, 7)], "bonjour", b"\x10\x00" * 24000, 24000, "fr"),                # no voice for it
])
def test_nothing_to_align_gives_none(tokens: List[Token], text: str, pcm: bytes, rate: int,
                                     language: Optional[str]) -> None:
    assert aligner.align(tokens, text, pcm, rate, language) is None


def test_concurrent_alignments_give_what_each_gives_alone(truth_voice: aligner._Reference) -> None:
    cases = [(text, spoken(truth_voice, text, voice, wpm, 60)) for text, voice, wpm in (
        (ENGLISH, "en-us+m3", 140), (HINDI, "hi+f3", 180), ("The quick brown fox jumps over the lazy dog.",
                                                             "en+m7", 190), (HINDI, "hi+m2", 150))]
    alone = [aligner.align(tokenize(text), text, pcm, rate) for text, (pcm, rate, _) in cases]
    results: List[List[object]] = [[] for _ in cases]
    barrier = threading.Barrier(len(cases))

    def work(index: int) -> None:
        text, (pcm, rate, _) = cases[index]
        barrier.wait(timeout=30)
        for _ in range(3):
            results[index].append(aligner.align(tokenize(text), text, pcm, rate))

    threads = [threading.Thread(target=work, args=(index,), name=f"test-align-{index}") for index in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    # eSpeak's reference varies by a few samples from call to call, so the times may
    # differ by a frame or two; a race on its state would garble them by far more.
    for index, expected in enumerate(alone):
        assert expected is not None and len(results[index]) == 3
        for spans in results[index]:
            assert spans is not None and len(spans) == len(expected)
            assert max(abs(a[0] - b[0]) for a, b in zip(spans, expected)) < 0.05


def test_aligning_does_not_change_what_a_bundled_espeak_server_says(truth_voice: aligner._Reference) -> None:
    # The aligner's eSpeak is a private instance: the server's, in this same process,
    # keeps its voice and its callback while alignments run beside it.
    server = LocalServer(engine="espeak").start()
    try:
        with TTSClient(provider="eigenai", url=server.url, voice="Jack") as client:
            before = client.speak(ENGLISH).wait(timeout=30).pcm
            pcm, rate, _ = spoken(truth_voice, HINDI, "hi+f3", 180, 60)
            stop = threading.Event()
            aligned: List[object] = []

            def keep_aligning() -> None:
                while not stop.is_set():
                    aligned.append(aligner.align(tokenize(HINDI), HINDI, pcm, rate, "hi"))

            thread = threading.Thread(target=keep_aligning, name="test-align-beside-server")
            thread.start()
            try:
                during = [client.speak(ENGLISH).wait(timeout=30).pcm for _ in range(3)]
            finally:
                stop.set()
                thread.join(timeout=30)
    finally:
        server.stop()
    assert not thread.is_alive()
    # eSpeak's output varies by a few samples from call to call; a voice, rate or
    # callback changed behind the server's back changes it by far more, or empties it.
    for pcm in during:
        assert abs(len(pcm) - len(before)) < 0.02 * len(before), (len(pcm), len(before))
        assert _spectrum_distance(pcm, before) < 0.5
    assert aligned and all(spans is not None for spans in aligned)


def _spectrum_distance(one: bytes, other: bytes) -> float:
    """How far apart two recordings' average log spectra are (0 for alike; a voice of
    another pitch or sex, or another language, is well above 1)."""
    def spectrum(pcm: bytes) -> "np.ndarray":
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        frames = samples[:samples.size // 512 * 512].reshape(-1, 512)
        return np.log(np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)).mean(axis=0) + 1.0)
    return float(np.sqrt(np.mean((spectrum(one) - spectrum(other)) ** 2)))


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_the_warp_finds_a_known_stretch(factor: int) -> None:
    # The received signal is the reference with every frame repeated ``factor`` times
    # and its short pause made long: each reference frame of sound must map to its first
    # copy. Long enough (90 s at 10 ms) that factors 2 and 3 take the two-pass warp.
    rng = np.random.default_rng(7)
    noise = rng.normal(size=(3000 + 9, 12))
    # Features that change smoothly from frame to frame, as speech's do over 10 ms, and
    # a silence far from every sound.
    sound = np.stack([np.convolve(noise[:, k], np.hanning(10), mode="valid") for k in range(12)], axis=1)
    reference = np.concatenate([sound[:1500], np.full((5, 12), -8.0), sound[1500:]])
    stretched = np.repeat(sound, factor, axis=0)
    received = np.concatenate([stretched[:1500 * factor], np.full((400, 12), -8.0), stretched[1500 * factor:]])
    path = features.warp(reference, received)
    assert np.array_equal(path[:1500], np.arange(1500) * factor)
    assert np.array_equal(path[1505:], np.arange(1500, 3000) * factor + 400)


def test_a_long_unit_is_aligned_as_well_as_a_short_one(truth_voice: aligner._Reference) -> None:
    text = " ".join([ENGLISH] * 14)  # about 90 s: the two-pass warp
    pcm, rate, truth = spoken(truth_voice, text, "en-us+m3", 150, 65)
    assert len(pcm) / 2 / rate > 60
    spans = aligner.align(tokenize(text), text, pcm, rate, "en")
    assert spans is not None
    errors = [abs(start - true) for (start, _), true in zip(spans, truth) if true is not None]
    assert statistics.median(errors) < 0.080
    assert sorted(errors)[int(0.9 * len(errors))] < 0.200


def test_the_words_benchmark_runs_and_reports_every_source(tmp_path: Path) -> None:
    out = tmp_path / "words.json"
    env = dict(os.environ, PYTHONPATH=str(BENCHMARK.parent.parent))
    done = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--json", str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = {(row["source"], row["method"]): row for row in report["table"]}
    sources = {source for source, _ in rows}
    assert {"en", "hi"} <= {row["language"] for row in report["table"]}
    for source in sources:
        assert rows[(source, "aligned")]["words"] > 10
        assert rows[(source, "naive")]["words"] == rows[(source, "aligned")]["words"]
        assert rows[(source, "estimated")]["words"] == rows[(source, "aligned")]["words"]
    assert report["cpu_per_audio_second"] > 0 and report["audio_seconds"] > 10
    assert "alignment cost" in done.stdout and "naive" in done.stdout


def test_without_espeak_alignment_gives_none_and_says_why_once() -> None:
    # A process where espeakng_loader cannot be imported (None in sys.modules makes
    # the import fail as if it were not installed).
    code = ("import logging, sys\n"
            "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
            "sys.modules['espeakng_loader'] = None\n"
            "from ttsstream.words import align\n"
            "pcm = b'\\x00\\x10' * 24000\n"
            "print([align.align([('hello', 0, 5)], 'hello', pcm, 24000) for _ in range(2)])\n")
    env = dict(os.environ, PYTHONPATH=str(BENCHMARK.parent.parent))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[None, None]"
    assert done.stderr.count("word alignment is off") == 1, done.stderr


def test_tokens_may_be_objects_with_offsets(truth_voice: aligner._Reference) -> None:
    class Token(NamedTuple):  # as ttsstream.words.Token: the offsets by name
        text: str
        char_start: int
        char_end: int

    class Word:  # no indexing at all
        def __init__(self, text: str, char_start: int, char_end: int) -> None:
            self.text, self.char_start, self.char_end = text, char_start, char_end

    pcm, rate, _ = spoken(truth_voice, ENGLISH, "en-us+m3", 160, 60)
    as_tuples = aligner.align(tokenize(ENGLISH), ENGLISH, pcm, rate)
    as_named = aligner.align([Token(*token) for token in tokenize(ENGLISH)], ENGLISH, pcm, rate)
    as_objects = aligner.align([Word(*token) for token in tokenize(ENGLISH)], ENGLISH, pcm, rate)
    assert as_tuples is not None and as_named is not None and as_objects is not None
    assert len(as_tuples) == len(as_named) == len(as_objects) == len(tokenize(ENGLISH))
    for other in (as_named, as_objects):  # the same, but for eSpeak's call-to-call jitter
        assert max(abs(a[0] - b[0]) for a, b in zip(as_tuples, other)) < 0.05
