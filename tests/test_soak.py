"""Soak: 5,000 speeches in a row per dialect, with file descriptors, threads and memory flat.

The client runs in this process; the bundled server (``ttsstream serve --engine tone``)
in a process of its own, so that the client's figures are the client's alone. The
figures are taken at the start, after a warm-up, in the middle and at the end, and
printed in the terminal summary ("reliability figures"); the server's are printed
beside them for comparison, not asserted.

EigenAI takes a new connection (and reader thread) per speech; Shunyalabs keeps one
connection for all of them. Every other speech is made with ``keep_audio=False`` and
checked through its callbacks instead. Each speech's audio is checked against the tone
engine's (``tone_pcm``): byte-exact, in order, with exactly one terminal callback.

Marked ``slow``: ``python -m pytest -q -m slow`` runs it (see setup.cfg).
``TTSSTREAM_SOAK_SPEECHES`` sets another count (a longer soak; at least 1,000).
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional

import pytest

from ttsstream import AudioChunk, Speech, TTSClient, TTSError
from ttsstream.server import tone_pcm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SPEECHES = int(os.environ.get("TTSSTREAM_SOAK_SPEECHES", "5000"))
WARM_UP = SPEECHES // 10  # speeches before the figures must stay flat (imports, caches, arenas)
# Growth of the client's resident memory allowed from the middle to the end. Measured:
# see docs/reliability.md (a leak of one 24 kB audio buffer per speech would add 60 MB).
RSS_GROWTH_KB = 4096
JOIN = 10.0  # a hang guard for a finished connection's reader thread
READER = "ttsstream-reader-"


class Usage(NamedTuple):
    fds: int
    threads: int
    rss_kb: int

    def __str__(self) -> str:
        return f"{self.fds} fds, {self.threads} threads, RSS {self.rss_kb / 1024:.1f} MB"


def figures_of(pid: str = "self") -> Usage:
    """Open file descriptors, threads and resident memory of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    return Usage(len(os.listdir(f"/proc/{pid}/fd")), threads, rss)


class ServerProcess:
    """``ttsstream serve --engine tone --port 0`` in a child process."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ttsstream", "serve", "--engine", "tone", "--port", "0"],
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"ws://127\.0\.0\.1:\d+", line)
        if match is None:
            self.stop()
            raise AssertionError(f"the server did not start: {line!r} {log.read_text()[-2000:]}")
        self.url = match.group(0)

    @property
    def pid(self) -> str:
        return str(self.process.pid)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(15)
        finally:
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()  # type: ignore[union-attr]
            self._log.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "server.log")
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, (tmp_path / "server.log").read_text()[-4000:]


class Tally:
    """One speech's callbacks, reduced to what the checks need: no audio is kept, so the
    test itself holds constant memory. Asserted on the test's thread."""

    def __init__(self) -> None:
        self.hasher = hashlib.sha256()
        self.chunks = 0
        self.bad_index = False
        self.complete = 0
        self.errors: List[TTSError] = []
        self.audio_after_end = False

    def on_audio(self, chunk: AudioChunk) -> None:
        if self.complete or self.errors:
            self.audio_after_end = True
        self.bad_index |= chunk.index != self.chunks
        self.chunks += 1
        self.hasher.update(chunk.pcm)

    def on_complete(self, speech: Speech) -> None:
        self.complete += 1

    def on_error(self, error: TTSError) -> None:
        self.errors.append(error)


def speak_one(client: TTSClient, i: int) -> Optional[str]:
    """Speak the i-th text; return what was wrong with it, or None."""
    text = f"soak {i}"
    keep = i % 2 == 0
    tally = Tally()
    speech = client.speak(text, keep_audio=keep, on_audio=tally.on_audio, on_complete=tally.on_complete,
                          on_error=tally.on_error)
    expected = tone_pcm(text)
    if (tally.complete, tally.errors) != (1, []) or tally.audio_after_end or tally.bad_index:
        return f"{text!r}: complete={tally.complete} errors={tally.errors} chunk order or timing wrong"
    if tally.hasher.digest() != hashlib.sha256(expected).digest():
        return f"{text!r}: the callbacks' audio differs from the server's"
    if keep and speech.pcm != expected:
        return f"{text!r}: speech.pcm differs from the server's"
    return None


def settle(reusable: bool) -> List[str]:
    """Wait for the readers of finished connections to exit; return the live readers' names.

    An EigenAI connection ends after its speech, its reader closing the socket just
    after the terminal callback: joined here, so that the figures do not catch one on
    its way out. A Shunyalabs connection stays open for the next speech.
    """
    readers = [t for t in threading.enumerate() if t.name.startswith(READER)]
    if not reusable:
        for thread in readers:
            thread.join(JOIN)
    gc.collect()
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(READER))


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_5000_speeches_in_a_row_leave_fds_threads_and_memory_flat(server_process, provider, figures):
    assert SPEECHES >= 1000, "TTSSTREAM_SOAK_SPEECHES: at least 1000"
    reusable = provider == "shunyalabs"
    marks = {0: "start", WARM_UP: "warm", SPEECHES // 2: "middle", SPEECHES: "end"}
    taken: Dict[str, Usage] = {}
    server_taken: Dict[str, Usage] = {}
    readers: Dict[str, List[str]] = {}
    wrong: List[str] = []
    began = time.perf_counter()
    with TTSClient(provider=provider, url=server_process.url, timeout=30) as client:
        for i in range(SPEECHES + 1):
            if i in marks:
                readers[marks[i]] = settle(reusable)
                taken[marks[i]] = figures_of()
                server_taken[marks[i]] = figures_of(server_process.pid)
            if i < SPEECHES:
                problem = speak_one(client, i)
                if problem is not None:
                    wrong.append(problem)
    seconds = time.perf_counter() - began

    for mark in marks.values():
        figures.add(f"{mark:>6}: client {taken[mark]}; server process {server_taken[mark]}")
    figures.add(f"{SPEECHES} speeches in {seconds:.1f} s ({seconds / SPEECHES * 1000:.1f} ms each), "
                f"{len(wrong)} wrong")
    assert wrong == [], wrong[:10]
    warm, middle, end = taken["warm"], taken["middle"], taken["end"]
    assert (warm.fds, warm.threads) == (middle.fds, middle.threads) == (end.fds, end.threads), taken
    assert end.rss_kb - middle.rss_kb < RSS_GROWTH_KB, taken
    if reusable:  # one connection carried every speech
        assert readers["warm"] == readers["middle"] == readers["end"] and len(readers["end"]) == 1, readers
    else:
        assert readers["warm"] == readers["middle"] == readers["end"] == [], readers
