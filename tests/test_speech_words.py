"""A speech's words over real sockets: speech.words, on_word, heard_text, subtitles.

The bundled server's tone engine gives one beep per character and reports each word's
exact time (its ``ttsstream.words`` extension); a server that sends only PCM, as the
real services do, leaves the times to the aligner or the estimator. Callbacks record
into lists; the assertions run on the test's own thread.
"""

from __future__ import annotations

import gc
import io
import re
import threading
import weakref
from typing import Iterator, List, Optional

import pytest

from ttsstream import Cancelled, InvalidParameterError, TTSClient, Word
from ttsstream.cli import main
from ttsstream.server.engine import Engine
from ttsstream.server.engines import get_engine

TEXT = "Hello, world: the words of this speech, one by one, in order."


def check_words(words: List[Word], text: str, duration: float) -> None:
    """Complete, in order, their offsets slice the text, their times inside the audio."""
    expected = [m.group(0).strip(".,:;!?\"'()") for m in re.finditer(r"\S+", text)]
    assert [w.text for w in words] == [e for e in expected if e]
    assert [w.index for w in words] == list(range(len(words)))
    for word in words:
        assert text[word.char_start:word.char_end] == word.text
        assert 0.0 <= word.start <= word.end <= duration + 1e-6
    assert all(a.start < b.start for a, b in zip(words, words[1:]))
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))


def collect(count_of, timeout: float = 10.0) -> None:
    """Wait until ``count_of()`` is true (on_word may come just after wait() returns)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if count_of():
            return
        done.wait(0.01)
    raise AssertionError("on_word did not deliver every word in time")


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_speech_knows_its_words_exactly_from_the_bundled_server(server, provider):
    with TTSClient(provider=provider, url=server.url) as client:
        speech = client.speak(TEXT)
    words = speech.words
    check_words(words, TEXT, speech.duration)
    assert {w.source for w in words} == {"exact"}


def test_on_word_tells_every_word_once_in_order(server):
    told: List[Word] = []
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak(TEXT, on_word=told.append)
        words = speech.words
        collect(lambda: len(told) >= len(words))
    assert told == words
    check_words(told, TEXT, speech.duration)


def test_a_text_stream_times_its_words_on_the_speech_timeline(server):
    told: List[Word] = []
    pieces = ["The first sentence is here. ", "Then a second one, with a clause. ", "And the end."]
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        speech = client.speak(iter(pieces), on_word=told.append)
        words = speech.words
        collect(lambda: len(told) >= len(words))
    text = "".join(pieces)
    assert speech.text == text and len(speech.segments) >= 2
    check_words(words, text, speech.duration)
    assert told == words
    for segment in speech.segments:  # each unit's words lie inside its audio
        inside = [w for w in words if segment.start - 1e-6 <= w.start < (segment.end or speech.duration)]
        assert " ".join(w.text for w in inside) in segment.text.replace(",", "").replace(".", "")


def test_a_units_words_are_told_once_its_audio_is_in_before_the_next_text_comes(server):
    # A language model pauses after a sentence: that unit's words must not wait for the
    # next unit's audio (which cannot come before its text does).
    told: List[Word] = []
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.open_stream(on_word=told.append)
        speech.feed("The first sentence is here. ")
        speech.flush()
        try:
            collect(lambda: len(told) >= 4)
        finally:
            speech.feed("And then the second.")
            speech.finish()
            speech.wait(30)
        collect(lambda: len(told) >= 9)
    assert told == speech.words
    check_words(told, speech.text, speech.duration)


class PcmOnly(Engine):
    """eSpeak NG's audio and nothing else, as the real services send: no word times."""

    name = "pcm-only"

    def __init__(self) -> None:
        self.inner = get_engine("espeak")

    def synthesize(self, text: str, *, voice: Optional[str] = None, language: Optional[str] = None,
                   speed: float = 1.0, sample_rate: int = 24000) -> Iterator[bytes]:
        return iter(list(self.inner.synthesize(text, voice=voice, language=language, speed=speed,
                                               sample_rate=sample_rate)))


def test_a_server_without_word_times_leaves_them_to_the_audio(make_server):
    server = make_server(engine=PcmOnly())
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak(TEXT)
    words = speech.words
    check_words(words, TEXT, speech.duration)
    assert {w.source for w in words} == {"aligned"}  # the aligner is installed with [local]


def test_without_kept_audio_words_are_aligned_only_when_on_word_asks(make_server):
    """keep_audio=False keeps no copy for the aligner unless on_word wants the words:
    the words are then estimated from the text when read, and still slice it in order."""
    server = make_server(engine=PcmOnly())
    told: List[Word] = []
    with TTSClient(provider="eigenai", url=server.url) as client:
        quiet = client.speak(TEXT, keep_audio=False)
        assert not quiet._track.keeps_audio
        asked = client.speak(TEXT, keep_audio=False, on_word=told.append)
        assert asked._track.keeps_audio
        collect(lambda: len(told) == len(asked.words))
    check_words(quiet.words, TEXT, quiet.duration)
    assert {w.source for w in quiet.words} == {"estimated"}
    assert {w.source for w in asked.words} == {"aligned"} and told == asked.words


def test_heard_text_after_a_cancel_holds_only_words_received(make_server):
    server = make_server(engine="tone", realtime=1.0)
    long_text = " ".join(f"word{i}" for i in range(80)) + "."
    audio = threading.Event()
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak(long_text, block=False, on_audio=lambda chunk: chunk.index >= 10 and audio.set())
        assert audio.wait(10)
        speech.cancel()
        with pytest.raises(Cancelled):
            speech.wait(10)
    heard = speech.heard_text
    assert heard and long_text.startswith(heard) and len(heard) < len(long_text)
    assert all(w.end <= speech.duration + 1e-6 for w in speech.words)
    assert speech.played is None  # nothing was played


def test_subtitles_are_written_as_srt_and_vtt(server, tmp_path):
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak(TEXT)
    speech.save_subtitles(tmp_path / "x.srt")
    speech.save_subtitles(tmp_path / "x.vtt")
    srt = (tmp_path / "x.srt").read_text(encoding="utf-8")
    vtt = (tmp_path / "x.vtt").read_text(encoding="utf-8")
    assert srt.startswith("1\n") and re.search(r"\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d", srt)
    assert vtt.startswith("WEBVTT") and re.search(r"\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d", vtt)
    spoken = " ".join(w.text for w in speech.words)
    cues = " ".join(line for line in srt.splitlines() if line and "-->" not in line and not line.isdigit())
    assert re.sub(r"[^\w ]", "", cues) == spoken
    with pytest.raises(InvalidParameterError):
        speech.save_subtitles(tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()


def test_the_cli_writes_subtitles_and_refuses_another_kind(server, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = main(["speak", TEXT, "--url", server.eigenai_url, "--no-play", "-q", "--out", str(tmp_path / "x.wav"),
                 "--subtitles", str(tmp_path / "x.vtt")], out=out, err=err)
    assert code == 0, err.getvalue()
    vtt = (tmp_path / "x.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "Hello" in vtt and "order" in vtt
    before = server.connections
    code = main(["speak", TEXT, "--url", server.eigenai_url, "--no-play", "--subtitles", str(tmp_path / "x.txt")],
                out=out, err=err)
    assert code == 2 and "--subtitles" in err.getvalue() and server.connections == before


def test_a_finished_speech_is_freed_without_the_garbage_collector(server):
    """No reference cycle through a speech's words: the garbage collector may run on any
    thread, and an object a callback kept (a Tk window) must not be freed on the wrong one."""
    gc.collect()
    gc.disable()
    try:
        with TTSClient(provider="eigenai", url=server.url) as client:
            speech = client.speak("Freed as soon as it is dropped.", on_word=lambda word: None)
            assert speech.words
            freed = weakref.ref(speech)
            del speech
        assert freed() is None  # the client closed: no thread holds it, and no cycle does
    finally:
        gc.enable()
