"""Shared fixtures: a bundled server on a real loopback port, a callback recorder, a
throwaway certificate authority for ``wss://``, a virtual screen for the examples that
open windows, and a guard that fails any test leaving a thread behind."""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from ttsstream.server import LocalServer

# The process-wide server behind provider="local" lives until the interpreter exits.
# Dask's distributed client keeps one offload thread per process, by design, once used.
SHARED_THREADS = {"ttsstream-local-server", "Dask-Offload_0"}
THREAD_GRACE = 5.0


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail the test if it leaves a thread running (after a short grace to finish)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE
    for thread in threading.enumerate():
        if thread not in before and thread.name not in SHARED_THREADS:
            thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate()
            if t not in before and t.is_alive() and t.name not in SHARED_THREADS]
    assert not left, f"threads left running: {left}"


@pytest.fixture(autouse=True)
def own_cache_folder(tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test (and the commands it runs) gets an empty cache folder, so that a notice said
    once per machine is said in each test, and no test writes into the user's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A bundled server (tone engine: exact, predictable audio) on an ephemeral loopback port."""
    srv = LocalServer(engine="tone").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server() -> Iterator[Any]:
    """A factory for bundled servers with options (faults, keys, frame sizes; the tone
    engine unless ``engine`` is given); all stopped after."""
    made: List[LocalServer] = []

    def make(**options: Any) -> LocalServer:
        options.setdefault("engine", "tone")
        srv = LocalServer(**options).start()
        made.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in made:
            srv.stop()


class TLSFiles(NamedTuple):
    """PEM files of a throwaway CA and of a server certificate it issued for 127.0.0.1,
    ::1 and localhost."""

    ca_file: Path    # the CA's certificate: what a client trusts
    certfile: Path   # the server's certificate and its chain
    keyfile: Path    # the server's private key
    combined: Path   # certificate, chain and key in one file


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: Any) -> TLSFiles:
    """A CA made for this test run (``trustme``), and a server certificate from it.

    ``LocalServer(certfile=tls_files.certfile, keyfile=tls_files.keyfile)`` serves
    ``wss://``; a client trusts ``tls_files.ca_file``.
    """
    import trustme  # in the [test] extra: missing, it fails the test rather than skipping it

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "::1", "localhost")
    files = TLSFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "combined.pem")
    ca.cert_pem.write_to_path(str(files.ca_file))
    cert.private_key_pem.write_to_path(str(files.keyfile))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(files.certfile), append=True)
        blob.write_to_path(str(files.combined), append=True)
    cert.private_key_pem.write_to_path(str(files.combined), append=True)
    return files


class Recorder:
    """Records what a speech's callbacks receive, with the thread each ran on.

    Tests assert on their own thread, after ``wait_end``; nothing asserts inside a callback.
    """

    def __init__(self, on_audio_extra: Optional[Any] = None) -> None:
        self.events: List[Tuple[str, Any, int]] = []
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._extra = on_audio_extra

    def on_audio(self, chunk: Any) -> None:
        with self._lock:
            self.events.append(("audio", chunk, threading.get_ident()))
        if self._extra is not None:
            self._extra(chunk)

    def on_complete(self, speech: Any) -> None:
        with self._lock:
            self.events.append(("complete", speech, threading.get_ident()))
        self._ended.set()

    def on_error(self, error: Any) -> None:
        with self._lock:
            self.events.append(("error", error, threading.get_ident()))
        self._ended.set()

    def callbacks(self) -> dict:
        return {"on_audio": self.on_audio, "on_complete": self.on_complete, "on_error": self.on_error}

    def wait_end(self, timeout: float = 10.0) -> bool:
        return self._ended.wait(timeout)

    @property
    def chunks(self) -> List[Any]:
        return [payload for kind, payload, _ in self.events if kind == "audio"]

    @property
    def kinds(self) -> List[str]:
        return [kind for kind, _, _ in self.events]

    @property
    def threads(self) -> set:
        return {ident for _, _, ident in self.events}

    def check_shape(self) -> None:
        """Exactly one terminal event, last; chunk indexes 0, 1, 2, …; whole samples."""
        kinds = self.kinds
        terminal = [k for k in kinds if k != "audio"]
        assert len(terminal) == 1, kinds
        assert kinds[-1] in ("complete", "error"), kinds
        assert [c.index for c in self.chunks] == list(range(len(self.chunks)))
        assert all(len(c.pcm) % 2 == 0 and c.pcm for c in self.chunks)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# -- figures for the CI log ----------------------------------------------------------------

_FIGURES = pytest.StashKey[List[str]]()


class Figures:
    """Lines a test reports for the log (load, soak and fuzz figures): printed in the
    terminal summary under "reliability figures", whatever ``-q`` or ``-s`` say."""

    def __init__(self, lines: List[str], prefix: str) -> None:
        self._lines = lines
        self._prefix = prefix

    def add(self, line: str) -> None:
        self._lines.append(f"{self._prefix}: {line}")


@pytest.fixture
def figures(request: Any) -> Figures:
    lines = request.config.stash.setdefault(_FIGURES, [])
    return Figures(lines, request.node.name)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.write_sep("=", "reliability figures")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    """Run the soak first, so that its memory figures describe the client alone rather than
    what the load test's 600 threads left in the process's allocator."""
    items.sort(key=lambda item: item.path.name != "test_soak.py")


@pytest.fixture(scope="module")
def screen() -> Iterator[str]:
    """An Xvfb display for the README's and the docs' examples (Tk, pygame, Jupyter)."""
    from sample_harness import Xvfb

    needs = [name for name in ("tkinter", "pygame", "IPython") if importlib.util.find_spec(name) is None]
    if shutil.which("Xvfb") is None:
        needs.append("Xvfb (apt-get install xvfb)")
    if importlib.util.find_spec("pyaudio") is None:
        needs.append("pyaudio")
    if needs:  # a missing part fails CI; on a developer's laptop it skips
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"missing: {', '.join(needs)}")
    display = Xvfb().start()
    try:
        assert display.display is not None
        yield display.display
    finally:
        display.stop()
