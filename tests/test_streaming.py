"""Speaking text while it is still being written: generators, open_stream, long texts.

The bundled server's tone engine makes each unit's audio exact (``tone_pcm``), and its
transcript records every unit it was sent, so the tests check from both ends that the
audio came in text order with nothing lost or repeated. Event order, not wall-clock
time, shows that the first audio came before the text was finished.
"""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Iterator, List, Optional

import pytest

from ttsstream import Cancelled, InvalidParameterError, TTSClient, TTSError
from ttsstream.segmenter import Segmenter
from ttsstream.server import tone_pcm

SENTENCES = ["The first sentence is here.", " Then a second one, with a clause.",
             " A third: it costs $29.99, or 3.14 of them.", " And the end."]
TEXT = "".join(SENTENCES)


def tokens(text: str, size: int = 4) -> List[str]:
    """The text as an LLM streams it: small pieces."""
    return [text[i:i + size] for i in range(0, len(text), size)]


def _units(server, since: int = 0) -> List:
    return server.transcript[since:]


def recorded(server, count: int) -> List[str]:
    """The texts the server recorded, once it has recorded ``count`` (a unit cut short is
    recorded when the server sees the client leave, a moment after the client is done)."""
    done = threading.Event()
    for _ in range(500):
        if len(server.transcript) >= count:
            break
        done.wait(0.01)
    return [u.text for u in server.transcript]


def check_in_order(speech, server, since: int = 0, speed: float = 1.0) -> None:
    """The speech's audio is its units' audio in text order; the units make up the text.

    The server records utterances as they complete (units synthesized side by side may
    complete out of order), so they are matched to the segments by their text.
    """
    served = {u.text: u for u in _units(server, since)}
    assert speech.error is None
    assert "".join(s.text for s in speech.segments) == speech.text
    sent = [s.text.strip() for s in speech.segments]
    assert sorted(sent) == sorted(served) and len(set(sent)) == len(sent)  # each unit once
    assert all(served[text].completed and served[text].pcm == tone_pcm(text, speed=speed) for text in sent)
    assert speech.pcm == b"".join(tone_pcm(text, speed=speed) for text in sent)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_generator_with_pauses_is_spoken_in_text_order_and_first_audio_comes_before_its_end(
        make_server, provider):
    # Paced at 2x real time, so that on EigenAI the units' streams overlap.
    server = make_server(realtime=2.0, frame_bytes=2400)
    events: List[str] = []
    lock = threading.Lock()
    first_audio = threading.Event()

    def note(event: str) -> None:
        with lock:
            events.append(event)

    def on_audio(chunk) -> None:
        if not first_audio.is_set():
            note("first audio")
            first_audio.set()

    def llm() -> Iterator[str]:
        for token in tokens(SENTENCES[0] + SENTENCES[1]):
            yield token
        # The generator waits for the first audio before going on: a speak() that
        # held the text back until the end would time out here.
        note("waiting" if first_audio.wait(10) else "no audio while the text was still coming")
        for token in tokens(SENTENCES[2] + SENTENCES[3]):
            yield token
        note("generator done")

    with TTSClient(provider=provider, url=server.url) as client:
        speech = client.speak(llm(), on_audio=on_audio)
    assert events == ["first audio", "waiting", "generator done"]
    assert speech.text == TEXT
    check_in_order(speech, server)
    assert len(speech.segments) >= 3
    if provider == "shunyalabs":
        assert len({u.connection for u in server.transcript}) == 1  # one connection, input after input


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_open_stream_fed_from_another_thread(server, provider):
    segments = []
    with TTSClient(provider=provider, url=server.url) as client:
        speech = client.open_stream(on_segment=segments.append)

        def writer() -> None:
            for token in tokens(TEXT, 3):
                speech.feed(token)
            speech.finish()

        thread = threading.Thread(target=writer)
        thread.start()
        speech.wait(30)
        thread.join(10)
    check_in_order(speech, server)
    assert [s.index for s in segments] == list(range(len(speech.segments)))
    starts = [s.start for s in speech.segments]
    ends = [s.end for s in speech.segments]
    assert starts[0] == 0.0 and ends[-1] == pytest.approx(speech.duration)
    assert starts[1:] == pytest.approx(ends[:-1])  # back to back
    with pytest.raises(TTSError, match="finish"):
        speech.feed("more")


def test_cancel_mid_stream_stops_the_text_and_sends_nothing_more(make_server):
    server = make_server(realtime=1.0)
    audio = threading.Event()
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.open_stream(on_audio=lambda chunk: audio.set())
        speech.feed(SENTENCES[0] + " Now")
        assert audio.wait(10)
        speech.cancel()
        speech.feed(SENTENCES[1] + SENTENCES[2])  # ignored: the speech is over
        speech.finish()
        with pytest.raises(Cancelled):
            speech.wait(10)
    assert recorded(server, 1) == [SENTENCES[0].strip()]


def test_client_stop_ends_a_stream_and_its_generator(make_server):
    server = make_server(realtime=1.0)
    produced = []
    release = threading.Event()

    def llm() -> Iterator[str]:
        yield SENTENCES[0] + " "
        release.wait(10)
        for word in "these words come after the stop and are never spoken".split():
            produced.append(word)
            yield word + " "

    with TTSClient(provider="shunyalabs", url=server.url) as client:
        speech = client.speak(llm(), block=False, on_audio=lambda chunk: client.stop())
        with pytest.raises(Cancelled):
            speech.wait(10)
        release.set()
    assert produced in ([], ["these"])  # it stopped asking the generator for more
    assert recorded(server, 1) == [SENTENCES[0].strip()]


def test_a_text_longer_than_one_request_is_one_speech(server):
    text = "".join(f"Sentence number {i} of a long text, far past what one request takes. "
                   for i in range(320))  # 23,000 characters; one request takes 20,000
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        speech = client.speak(text, speed=4.0)  # the tone engine: 4 x shorter audio, a quicker test
    assert len(text) > 20_000
    check_in_order(speech, server, speed=4.0)
    assert len(server.transcript) > 1


def test_bad_fragments_and_an_iterator_that_fails(server):
    with TTSClient(provider="eigenai", url=server.url) as client:
        with pytest.raises(InvalidParameterError, match="iterable"):
            client.speak(b"bytes are not text")
        with pytest.raises(InvalidParameterError, match="iterable"):
            client.speak(42)
        with pytest.raises(InvalidParameterError, match="str"):
            client.speak(iter(["fine. ", 7]))

        def broken() -> Iterator[str]:
            yield "A first sentence that is spoken. "
            raise RuntimeError("the model crashed")

        with pytest.raises(TTSError, match="the model crashed"):
            client.speak(broken())
        speech = client.open_stream()
        with pytest.raises(InvalidParameterError, match="UTF-8"):
            speech.feed("half a pair \ud83d")
        speech.finish()  # nothing was fed: it completes with no audio
        assert speech.wait(10).pcm == b""


def test_text_fed_after_the_client_closed_ends_the_stream_with_an_error(server):
    client = TTSClient(provider="eigenai", url=server.url)
    speech = client.open_stream()
    client.close()  # the stream is cancelled by the close
    speech.feed("Too late. Nothing goes out. ")
    with pytest.raises(Cancelled):
        speech.wait(10)
    assert server.transcript == []


# -- what language models really stream (issue 17) ---------------------------------------

def test_none_and_empty_fragments_are_skipped(server):
    # OpenAI's last delta has content None; some models stream empty tokens.
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak(iter(["Hello ", None, "", "world."]))
        pushed = client.open_stream()
        for token in ["Pushed ", None, "", "text."]:
            pushed.feed(token)
        pushed.finish()
        pushed.wait(10)
    assert speech.text == "Hello world." and pushed.text == "Pushed text."
    assert speech.pcm == tone_pcm("Hello world.") and pushed.pcm == tone_pcm("Pushed text.")


class AsyncTokens:
    """An async iterable that is not a generator, like an ``AsyncOpenAI`` stream: it
    awaits between tokens, yields None at the end, and records its cleanup."""

    def __init__(self, pieces: List[Optional[str]], first_audio: Optional[threading.Event] = None) -> None:
        self.pieces = list(pieces)
        self.first_audio = first_audio
        self.events: List[str] = []

    def __aiter__(self) -> "AsyncTokens":
        return self

    async def __anext__(self) -> Optional[str]:
        await asyncio.sleep(0)
        if not self.pieces:
            self.events.append("exhausted")
            raise StopAsyncIteration
        if self.first_audio is not None and len(self.pieces) == 1:
            # Wait, on this loop, for the first audio: a speak() that read the whole
            # iterable before speaking would never get there.
            for _ in range(1000):
                if self.first_audio.is_set():
                    break
                await asyncio.sleep(0.01)
            self.events.append("audio came first" if self.first_audio.is_set() else "no audio")
        return self.pieces.pop(0)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_an_async_iterable_is_spoken_without_an_event_loop_in_the_caller(server, provider):
    first_audio = threading.Event()
    source = AsyncTokens(tokens(TEXT) + [None], first_audio)
    with TTSClient(provider=provider, url=server.url) as client:
        speech = client.speak(source, on_audio=lambda chunk: first_audio.set())
    assert source.events == ["audio came first", "exhausted"]
    assert speech.text == TEXT
    check_in_order(speech, server)


def test_an_async_generator_is_closed_when_the_speech_is_cancelled_and_its_error_ends_the_speech(make_server):
    server = make_server(realtime=1.0)
    cleanup: List[str] = []

    async def llm() -> AsyncIterator[str]:
        try:
            yield SENTENCES[0] + " "
            for _ in range(1000):
                await asyncio.sleep(0.01)
                yield ""
        finally:
            cleanup.append("closed")

    async def broken() -> AsyncIterator[str]:
        yield "A first sentence that is spoken. "
        raise RuntimeError("the model crashed")

    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak(llm(), block=False, on_audio=lambda chunk: speech.cancel())
        with pytest.raises(Cancelled):
            speech.wait(10)
        failed = client.speak(broken(), block=False)
        with pytest.raises(TTSError, match="the model crashed"):
            failed.wait(10)
    assert cleanup == ["closed"]
    # Both were cut short: the server records each when it sees the client leave, in either order.
    assert SENTENCES[0].strip() in recorded(server, 2)


# -- a text that pauses (issue 17, defect 4): no wait for a timer that is 60 s long ---------


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
@pytest.mark.parametrize("text", ["The first sentence arrives now. ", "Sure! "])
def test_a_complete_sentence_is_spoken_without_waiting_for_more_text(server, provider, text):
    # With flush_after=60 s, only the sentence rule can send it before the 20 s timeout.
    segments: List = []
    begun = threading.Event()
    with TTSClient(provider=provider, url=server.url) as client:
        speech = client.open_stream(segmenter=Segmenter(flush_after=60.0),
                                    on_segment=lambda s: (segments.append(s), begun.set()))
        speech.feed(text)
        assert begun.wait(20)
        speech.finish()
        speech.wait(20)
    assert [s.text for s in segments] == [text]
    check_in_order(speech, server)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_flush_sends_an_unfinished_fragment_now(server, provider):
    segments: List = []
    begun = threading.Event()
    with TTSClient(provider=provider, url=server.url) as client:
        speech = client.open_stream(segmenter=Segmenter(flush_after=60.0),
                                    on_segment=lambda s: (segments.append(s), begun.set()))
        speech.flush()                                        # nothing fed: nothing sent
        speech.feed("Let me check that for you and")
        speech.flush()
        assert begun.wait(20)
        speech.feed(" then ask Dr. ")
        speech.feed("Smith.")
        speech.finish()
        speech.flush()                                        # after finish: a no-op
        speech.wait(20)
        speech.flush()                                        # after the end: a no-op
    assert [s.text for s in segments] == ["Let me check that for you and", " then ask Dr. Smith."]
    check_in_order(speech, server)


def test_flush_after_cancel_is_a_no_op(server):
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.open_stream(segmenter=Segmenter(flush_after=60.0))
        speech.feed("Nothing of this")
        speech.cancel()
        speech.flush()
        with pytest.raises(Cancelled):
            speech.wait(10)
    assert server.transcript == []
