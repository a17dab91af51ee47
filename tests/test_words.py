"""The pure core of word timing (``ttsstream.words``): the tokenizer, the estimator, the
subtitles and the heard text.

The estimator is tried on synthetic audio whose pauses hypothesis draws, and on real
speech from the bundled eSpeak NG with its word events as the truth (a child process:
``espeak_words.py``); the accuracy it reaches there is recorded, and only loose sanity
is asserted (timing figures belong in ``benchmarks/``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsstream.errors import InvalidParameterError
from ttsstream.words import (Token, Word, estimate, heard, heard_text, naive_times, phrases, save_subtitles,
                             to_srt, to_vtt, tokenize, weight)

RATE = 16000


def texts(text: str) -> List[str]:
    return [token.text for token in tokenize(text)]


# -- the tokenizer -----------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("1,250", ["1,250"]),
    ("o'clock", ["o'clock"]),
    ("।", []),
    ("—", []),
    ("Hello, world!", ["Hello", "world"]),
    ("\"Quoted,\" she said (twice).", ["Quoted", "she", "said", "twice"]),
    ("‘Single’ and «guillemets» and ¿qué?", ["Single", "and", "guillemets", "and", "qué"]),
    ("It's 3.14, not 3,14.", ["It's", "3.14", "not", "3,14"]),
    ("a well-known, state-of-the-art plan", ["a", "well-known", "state-of-the-art", "plan"]),
    ("wait — no — yes", ["wait", "no", "yes"]),
    ("wait—no", ["wait—no"]),
    ("...and then…", ["and", "then"]),
    ("$5 and 50%", ["$5", "and", "50%"]),
    ("नमस्ते। आप कैसे हैं?", ["नमस्ते", "आप", "कैसे", "हैं"]),
    ("यह ठीक है ।", ["यह", "ठीक", "है"]),
    ("یہ ایک کتاب ہے۔ آپ کیسے ہیں؟", ["یہ", "ایک", "کتاب", "ہے", "آپ", "کیسے", "ہیں"]),
    ("你好，世界。", ["你", "好", "世", "界"]),
    ("コーヒーを飲みます。", ["コー", "ヒー", "を", "飲", "み", "ま", "す"]),
    ("買った", ["買っ", "た"]),
    ("iPhone15を買った", ["iPhone15", "を", "買っ", "た"]),
    ("안녕하세요, 세계!", ["안녕하세요", "세계"]),
    ("", []),
    ("   \n\t ", []),
])
def test_tokenize_finds_the_words_without_the_punctuation_around_them(text: str, words: List[str]) -> None:
    assert texts(text) == words


def test_tokens_point_into_the_text_plus_the_offset() -> None:
    text = "“Hi,” said Ann — at 1,250 m."
    for token in tokenize(text):
        assert text[token.char_start:token.char_end] == token.text
    shifted = tokenize(text, offset=100)
    assert [(t.char_start - 100, t.char_end - 100, t.text) for t in shifted] == \
        [(t.char_start, t.char_end, t.text) for t in tokenize(text)]


_ALPHABET = st.sampled_from(list("ab Z9 ,.'\"-—()।॥नमस्ते्ाیہ۔你好。、コーっ!? \n\t1,") + ["\u0301", "\u200d"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(_ALPHABET, max_size=60).map("".join)), st.integers(0, 1000))
def test_tokens_match_the_text_and_cover_every_letter_and_digit(text: str, offset: int) -> None:
    tokens = tokenize(text, offset)
    covered: Set[int] = set()
    previous_end = offset
    for token in tokens:
        assert text[token.char_start - offset:token.char_end - offset] == token.text
        assert token.char_start >= previous_end and token.char_end > token.char_start
        for edge in (token.text[0], token.text[-1]):
            assert not unicodedata.category(edge).startswith("P") or edge in "%‰‱#@&"  # those are read aloud
        assert not any(char.isspace() for char in token.text)
        assert any(unicodedata.category(char)[0] in "LN" for char in token.text)
        previous_end = token.char_end
        covered.update(range(token.char_start - offset, token.char_end - offset))
    for position, char in enumerate(text):
        if unicodedata.category(char)[0] in "LN":
            assert position in covered, (text, position)


# -- the estimator -----------------------------------------------------------------------

def _check_times(times: Sequence[Tuple[float, float]], count: int, duration: float) -> None:
    assert len(times) == count
    for i, (start, end) in enumerate(times):
        assert 0.0 <= start <= end <= duration + 1e-9
        if i + 1 < count:
            assert start < times[i + 1][0]
            assert end <= times[i + 1][0]


def test_weights_follow_the_spoken_length() -> None:
    assert weight("a") < weight("banana") < weight("unbelievable")
    assert weight("1,250") == pytest.approx(6.3)  # four digits and a word
    assert weight("नमस्ते") == pytest.approx(3.3)  # na-ma-ste: the virama joins s to te
    assert weight("भारत") == pytest.approx(2.8)  # bhā-rat: a final consonant has no vowel
    assert weight("你") == pytest.approx(1.3)
    assert all(weight(word) > 0 for word in ["", "—", "x", "%"])


def _speech(rng: "np.random.Generator", seconds: float) -> "np.ndarray":
    """A stretch of loud, voiced-like sound."""
    count = int(seconds * RATE)
    tone = np.sin(2 * np.pi * 140 * np.arange(count) / RATE) * 8000
    return tone + rng.normal(0, 1500, count)


_WORDS = ["go", "we", "apple", "yesterday", "1,250", "नमस्ते", "to", "remarkable", "cat", "o'clock"]


@st.composite
def _utterances(draw: st.DrawFn) -> Tuple[str, bytes, List[float], List[Tuple[float, float]]]:
    """A text, synthetic audio for it with a pause after every punctuation mark, the audio
    time each word starts at, and the pauses."""
    count = draw(st.integers(2, 25))
    words = draw(st.lists(st.sampled_from(_WORDS), min_size=count, max_size=count))
    marks = draw(st.lists(st.sampled_from(["", "", "", ",", "."]), min_size=count, max_size=count))
    stretch = draw(st.lists(st.floats(0.85, 1.2), min_size=count, max_size=count))
    gaps = draw(st.lists(st.floats(0.2, 0.5), min_size=count, max_size=count))
    lead = draw(st.floats(0.0, 0.5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    text = " ".join(word + mark for word, mark in zip(words, marks))
    pieces = [np.zeros(int(lead * RATE))]
    onsets: List[float] = []
    silences: List[Tuple[float, float]] = []
    position = len(pieces[0])
    for i, word in enumerate(words):
        onsets.append(position / RATE)
        sound = _speech(rng, 0.09 * weight(word) * stretch[i])
        pieces.append(sound)
        position += len(sound)
        if marks[i] and i + 1 < count:
            silence = np.zeros(int(gaps[i] * RATE))
            silences.append((position / RATE, (position + len(silence)) / RATE))
            pieces.append(silence)
            position += len(silence)
    pieces.append(np.zeros(int(0.2 * RATE)))
    pcm = np.concatenate(pieces).clip(-32768, 32767).astype("<i2").tobytes()
    return text, pcm, onsets, silences


@settings(max_examples=150, deadline=None)
@given(_utterances())
def test_estimate_is_ordered_inside_the_audio_and_puts_punctuated_boundaries_in_the_pauses(
        utterance: Tuple[str, bytes, List[float], List[Tuple[float, float]]]) -> None:
    text, pcm, onsets, silences = utterance
    tokens = tokenize(text)
    duration = len(pcm) / 2 / RATE
    times = estimate(tokens, pcm, RATE, text=text)
    _check_times(times, len(tokens), duration)
    assert abs(times[0][0] - onsets[0]) <= 0.011  # the first word starts where the sound does
    for start, end in silences:
        # The word before the pause ends where it begins, the next starts where it ends.
        before = max(i for i, onset in enumerate(onsets) if onset < start)
        assert abs(times[before][1] - start) <= 0.011, (text, silences, times)
        assert abs(times[before + 1][0] - end) <= 0.011, (text, silences, times)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40),
       st.binary(max_size=40000), st.sampled_from([8000, 16000, 22050, 24000, 44100]))
def test_estimate_is_ordered_whatever_the_tokens_and_the_audio(words: List[str], noise: bytes, rate: int) -> None:
    tokens = [Token(word, 2 * i, 2 * i + 1) for i, word in enumerate(words)]
    times = estimate(tokens, noise, rate)
    duration = len(noise) // 2 / rate
    assert len(times) == len(tokens)
    for i, (start, end) in enumerate(times):
        assert 0.0 <= start <= end <= duration + 1e-9
        if i + 1 < len(times):
            assert start <= times[i + 1][0] and end <= times[i + 1][0]
    if duration >= 0.001 * len(tokens):
        assert all(a[0] < b[0] for a, b in zip(times, times[1:]))


def test_estimate_of_silence_or_nothing_spreads_the_words() -> None:
    tokens = tokenize("one two three")
    assert estimate([], b"\0\0" * 1000, RATE) == []
    assert estimate(tokens, b"", RATE) == [(0.0, 0.0)] * 3
    spread = estimate(tokens, b"\0\0" * RATE, RATE)
    _check_times(spread, 3, 1.0)
    assert spread == naive_times(tokens, 1.0)


@pytest.mark.parametrize("rate", [0, -16000, 16000.0, True, "16000"])
def test_estimate_refuses_a_sample_rate_that_is_not_a_positive_integer(rate: object) -> None:
    with pytest.raises(InvalidParameterError, match="sample_rate") as caught:
        estimate(tokenize("one two"), b"\0\0" * 100, rate)  # type: ignore[arg-type]
    assert caught.value.parameter == "sample_rate"


def test_naive_times_spread_by_characters() -> None:
    assert naive_times(tokenize("a bbb"), 2.0) == [(0.0, 0.5), (0.5, 2.0)]
    assert naive_times([], 2.0) == []


# -- on real speech: eSpeak NG's word events as the truth ---------------------------------

_SENTENCES = [
    ("en-us", 175, "Hello, world. It's 1,250 o'clock, and the quick brown fox jumps over the lazy dog."),
    ("en-us", 140, "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."),
    ("en", 200, "Please call Stella. Ask her to bring these things with her from the store: six spoons of "
                "fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob."),
    ("hi", 160, "नमस्ते, आप कैसे हैं? मैं ठीक हूँ। आज मौसम बहुत अच्छा है, चलिए बाहर घूमने चलते हैं।"),
]


def _espeak(voice: str, wpm: int, text: str, tmp_path: Path) -> Tuple[bytes, int, List[List[int]]]:
    out = tmp_path / "speech.pcm"
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("espeak_words.py")), voice, str(wpm), "50",
                           str(out), text], capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(done.stdout)
    return out.read_bytes(), int(answer["rate"]), answer["words"]


def test_estimate_on_espeak_speech_beats_the_naive_baseline(tmp_path: Path, record_property: object) -> None:
    errors: List[float] = []
    naive: List[float] = []
    for voice, wpm, text in _SENTENCES:
        pcm, rate, events = _espeak(voice, wpm, text, tmp_path)
        tokens = tokenize(text)
        times = estimate(tokens, pcm, rate, text=text)
        _check_times(times, len(tokens), len(pcm) / 2 / rate)
        baseline = naive_times(tokens, len(pcm) / 2 / rate)
        for i, token in enumerate(tokens):
            truth = [sample / rate for at, _, sample in events if token.char_start <= at < token.char_end]
            if truth:
                errors.append(abs(times[i][0] - truth[0]))
                naive.append(abs(baseline[i][0] - truth[0]))
    assert len(errors) >= 0.9 * sum(len(tokenize(text)) for _, _, text in _SENTENCES)
    figures = {"words": len(errors),
               "estimated_median_ms": round(float(np.median(errors)) * 1000),
               "estimated_p95_ms": round(float(np.percentile(errors, 95)) * 1000),
               "naive_median_ms": round(float(np.median(naive)) * 1000),
               "naive_p95_ms": round(float(np.percentile(naive, 95)) * 1000)}
    print("word onset error on eSpeak NG speech:", figures)
    for key, value in figures.items():
        record_property(key, value)  # type: ignore[operator]
    assert float(np.median(errors)) < 0.3
    assert float(np.median(errors)) < float(np.median(naive))


# -- subtitles ------------------------------------------------------------------------------

def _words(text: str, seconds: float = 0.4, gap_after: Sequence[int] = ()) -> List[Word]:
    words, at = [], 0.25
    for i, token in enumerate(tokenize(text)):
        words.append(Word(i, token.text, at, at + seconds * 0.9, token.char_start, token.char_end, "estimated"))
        at += seconds + (0.6 if i in gap_after else 0.0)
    return words


_TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
         "foolishness. 你好，世界。 And 1,250 more --> words.")
_TIME = r"(\d\d):(\d\d):(\d\d)[{sep}](\d\d\d)"


def _parse(content: str, separator: str) -> List[Tuple[float, float, str]]:
    pattern = re.compile(rf"^{_TIME.format(sep=separator)} --> {_TIME.format(sep=separator)}$")
    cues: List[Tuple[float, float, str]] = []
    for block in content.strip("\n").split("\n\n"):
        lines = block.split("\n")
        if separator == ",":
            assert lines[0].isdigit() and int(lines[0]) == len(cues) + 1
            lines = lines[1:]
        match = pattern.match(lines[0])
        assert match, lines[0]
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(group) for group in match.groups())
        cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000,
                     "\n".join(lines[1:])))
        assert cues[-1][2] and "-->" not in cues[-1][2]
    return cues


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_subtitles_parse_back_with_every_word_in_one_cue_inside_its_times(kind: str) -> None:
    words = _words(_TEXT, gap_after=[3])
    if kind == "srt":
        content = to_srt(words, _TEXT)
        assert "." not in content.split("\n")[1] and "," in content.split("\n")[1]
        cues = _parse(content, ",")
    else:
        content = to_vtt(words, _TEXT)
        assert content.startswith("WEBVTT\n\n")
        cues = _parse(content[len("WEBVTT\n\n"):], ".")
    assert content.endswith("\n") and not content.endswith("\n\n\n")
    assert [cue[:2] for cue in cues] == sorted(cue[:2] for cue in cues)
    for (_, end), (start, _) in zip([c[:2] for c in cues], [c[:2] for c in cues[1:]]):
        assert end <= start
    # Every word in exactly one cue, in order, and each cue inside its words' times.
    groups = phrases(words, text=_TEXT)
    assert len(groups) == len(cues)
    position = 0
    for start, end, _ in cues:
        inside = [w for w in words if w.start >= start - 0.0005 and w.end <= end + 0.0005]
        assert inside and inside[0].index == position
        assert abs(inside[0].start - start) <= 0.0005 and abs(inside[-1].end - end) <= 0.0005
        position = inside[-1].index + 1
    assert position == len(words)
    assert [w.text for w in words] == " ".join(c[2] for c in groups).replace("你好", "你 好") \
        .replace("世界", "世 界").split()


def test_phrases_are_short_and_end_at_punctuation_and_pauses() -> None:
    words = _words(_TEXT, gap_after=[1])
    cues = phrases(words, max_words=7, max_seconds=3.5, text=_TEXT)
    assert cues[0][2] == "It was"                            # a pause after "was"
    assert cues[1][2] == "the best of times"                 # a comma
    assert all(len(cue[2].split()) <= 7 and cue[1] - cue[0] <= 3.5 for cue in cues)
    assert "你好" in [cue[2] for cue in cues]                # CJK words join without spaces
    assert phrases([]) == [] and to_srt([]) == "" and to_vtt([]) == "WEBVTT\n"


@pytest.mark.parametrize("limits, parameter", [
    ({"max_words": 0}, "max_words"), ({"max_words": 2.5}, "max_words"), ({"max_seconds": 0}, "max_seconds"),
    ({"max_seconds": float("nan")}, "max_seconds"), ({"max_seconds": "3"}, "max_seconds")])
def test_phrases_refuse_limits_that_allow_no_cue(limits: Dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidParameterError, match=parameter) as caught:
        phrases(_words(_TEXT), **limits)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


@pytest.mark.parametrize("name", ["subs.srt", "subs.VTT"])
def test_save_subtitles_writes_by_the_extension(tmp_path: Path, name: str) -> None:
    words = _words(_TEXT)
    save_subtitles(words, tmp_path / name)
    written = (tmp_path / name).read_text(encoding="utf-8")
    assert written == (to_srt(words) if name.endswith(".srt") else to_vtt(words))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


@pytest.mark.parametrize("name", ["subs.txt", "subs", "subs.srt.bak", "subs.ass"])
def test_save_subtitles_refuses_other_extensions_and_writes_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"\.srt or \.vtt") as caught:
        save_subtitles(_words(_TEXT), tmp_path / name)
    assert caught.value.parameter == "path"
    assert list(tmp_path.iterdir()) == []


# -- what was heard -------------------------------------------------------------------------

def test_heard_is_the_words_fully_played_and_their_text_as_written() -> None:
    text = "Well, hello there — “friend”! How are you?"
    words = _words(text)           # word i runs from 0.25 + 0.4 i to 0.61 + 0.4 i
    assert heard(words, 0.0) == [] and heard_text(words, 0.0, text) == ""
    assert [w.text for w in heard(words, 0.61)] == ["Well"]
    assert [w.text for w in heard(words, 1.0)] == ["Well"]  # "hello" ends at 1.01
    assert [w.text for w in heard(words, 1.1)] == ["Well", "hello"]  # "there" is still under way
    assert heard_text(words, 1.5, text) == "Well, hello there"
    assert heard_text(words, 1.9, text) == "Well, hello there — “friend"
    assert heard_text(words, 100.0, text) == "Well, hello there — “friend”! How are you"
