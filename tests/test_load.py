"""Load: 200 speeches at once in one process, on one shared client, against the bundled server.

The server's engine holds every utterance at a barrier until all 200 have arrived, so
the 200 are in flight at the same moment by construction rather than by luck of timing;
then 200 streams' audio interleaves across the client's sockets and reader threads.
Every text is distinct, so audio delivered to the wrong speech would not match.

Two rounds per dialect on one client: 200 threads each calling ``speak()`` (block=True),
then one thread making 200 ``speak(block=False)`` calls and waiting for them all. For
Shunyalabs the second round runs on the 200 connections the first one left open.

Marked ``slow``: ``python -m pytest -q -m slow`` runs it (see setup.cfg).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Dict, Iterator, List, Tuple

import pytest

from conftest import Recorder
from ttsstream import Speech, TTSClient
from ttsstream.server import LocalServer, ToneEngine, Utterance, tone_pcm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

COUNT = 200
GATE_TIMEOUT = 120.0  # a hang guard: how long the server's engine waits for all 200 to arrive
WAIT = 300.0  # a hang guard for the speeches themselves, not a performance bound


class GatedTone(ToneEngine):
    """The tone engine, holding each utterance's audio until ``parties`` utterances are
    waiting; then all of them stream at once. Cyclic: the next ``parties`` wait again.

    A gate that times out breaks: every waiting utterance then fails with the server's
    "engine failed" error, and the test says so.
    """

    name = "gated-tone"

    def __init__(self, parties: int) -> None:
        self._barrier = threading.Barrier(parties, action=self._opened, timeout=GATE_TIMEOUT)
        # Written by the thread that opens the gate, read by the test after the round:
        # (threads in the process, of which the client's reader threads).
        self.threads_at_gate: List[Tuple[int, int]] = []

    def synthesize(self, text: str, **options: object) -> Iterator[bytes]:  # type: ignore[override]
        pieces = super().synthesize(text, **options)  # type: ignore[arg-type]
        return self._after_the_gate(pieces)

    def _after_the_gate(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        self._barrier.wait()  # on the utterance's own engine thread, never the event loop
        yield from pieces

    def _opened(self) -> None:
        threads = threading.enumerate()
        readers = [t for t in threads if t.name.startswith("ttsstream-reader-")]
        self.threads_at_gate.append((len(threads), len(readers)))


@pytest.fixture
def gated() -> Iterator[Tuple[LocalServer, GatedTone]]:
    engine = GatedTone(COUNT)
    server = LocalServer(engine=engine).start()
    try:
        yield server, engine
    finally:
        server.stop()


def texts_for(round_name: str) -> List[str]:
    # Distinct lengths as well as distinct letters: a mix-up changes the audio's length.
    return [f"{round_name} {i} " + "abcdefghij"[i % 10] * (i % 7 + 1) for i in range(COUNT)]


def speak_from_threads(client: TTSClient, texts: List[str]) -> Tuple[Dict[int, Tuple[Speech, Recorder]], list]:
    """Each text from its own thread, all released together; block=True."""
    results: Dict[int, Tuple[Speech, Recorder]] = {}
    errors: list = []
    start = threading.Barrier(len(texts))

    def worker(i: int) -> None:
        try:
            start.wait(GATE_TIMEOUT)
            recorder = Recorder()
            results[i] = (client.speak(texts[i], **recorder.callbacks()), recorder)
        except Exception as exc:  # asserted on the test's thread
            errors.append((i, exc))

    threads = [threading.Thread(target=worker, args=(i,), name=f"load-{i}") for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a speaking thread hung"
    return results, errors


def speak_without_blocking(client: TTSClient, texts: List[str]) -> Tuple[Dict[int, Tuple[Speech, Recorder]], list]:
    """Every text from this thread with block=False, then wait for each."""
    results = {}
    for i, text in enumerate(texts):
        recorder = Recorder()
        results[i] = (client.speak(text, block=False, **recorder.callbacks()), recorder)
    errors = []
    for i, (speech, _) in results.items():
        try:
            speech.wait(WAIT)
        except Exception as exc:
            errors.append((i, exc))
    return results, errors


def check_round(texts: List[str], results: Dict[int, Tuple[Speech, Recorder]], errors: list,
                served: Dict[str, Utterance]) -> None:
    assert errors == []
    assert sorted(results) == list(range(len(texts)))
    for i, (speech, recorder) in results.items():
        text = texts[i]
        assert recorder.wait_end(WAIT)
        recorder.check_shape()  # exactly one terminal callback, after the last on_audio
        assert recorder.kinds[-1] == "complete", (text, speech.error)
        expected = tone_pcm(text)
        assert served[text].pcm == expected and served[text].completed
        assert speech.pcm == expected, f"speech {i} got audio that is not its own"
        assert b"".join(chunk.pcm for chunk in recorder.chunks) == expected
        assert len(recorder.threads) == 1 and threading.get_ident() not in recorder.threads
    # All were in flight at once, so each went on a connection of its own.
    assert len({served[text].connection for text in texts}) == len(texts)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_200_concurrent_speeches_on_one_client(gated, provider, figures, caplog):
    server, engine = gated
    caplog.set_level(logging.WARNING, logger="ttsstream")
    hooked: List[threading.ExceptHookArgs] = []
    previous_hook = threading.excepthook
    threading.excepthook = hooked.append
    try:
        with TTSClient(provider=provider, url=server.url, timeout=WAIT, max_idle=WAIT) as client:
            rounds = []
            for name, run in (("threads", speak_from_threads), ("block=False", speak_without_blocking)):
                texts = texts_for(f"{provider} {name}")
                began = time.perf_counter()
                results, errors = run(client, texts)
                seconds = time.perf_counter() - began
                served = {u.text: u for u in server.transcript if u.text in set(texts)}
                check_round(texts, results, errors, served)
                rounds.append((name, texts, served))
                threads, readers = engine.threads_at_gate[-1]
                figures.add(f"{name}: {COUNT} speeches in flight at once ({readers} client reader threads, "
                            f"{threads} threads in the process with the server's), {seconds:.2f} s, "
                            "all complete and byte-exact")
            connections = server.connections
    finally:
        threading.excepthook = previous_hook
    assert hooked == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-4000:]
    if provider == "shunyalabs":  # the second round reused the first round's 200 connections
        assert connections == COUNT
        first, second = rounds[0][2], rounds[1][2]
        assert {u.connection for u in second.values()} == {u.connection for u in first.values()}
    else:  # one connection per speech
        assert connections == 2 * COUNT
    figures.add(f"{connections} connections for {2 * COUNT} speeches")
