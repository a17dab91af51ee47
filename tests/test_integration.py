"""Living in other people's loops: Tkinter, notebooks, asyncio hosts and plain scripts.

Tk runs for real on a virtual screen (Xvfb); the bundled server answers on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

import ttsstream
from ttsstream import Cancelled, InvalidParameterError, TTSClient
from ttsstream.api import choose_provider, close_default_clients, default_client
from ttsstream.server import tone_pcm

REPO = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
WAIT = 30.0


# -- Tkinter ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private X display (Xvfb) for Tk; its number is chosen by Xvfb itself."""
    unavailable = pytest.fail if IN_CI else pytest.skip
    if shutil.which("Xvfb") is None:
        unavailable("Xvfb is not installed (apt-get install xvfb)")
    if importlib.util.find_spec("tkinter") is None:
        unavailable("tkinter is not available")
    read, write = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                               pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        assert number, "Xvfb did not report a display"
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def tk_root(display: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    import tkinter

    monkeypatch.setenv("DISPLAY", display)
    root = tkinter.Tk()
    try:
        yield root
    finally:
        try:
            root.destroy()
        except tkinter.TclError:
            pass


def run_tk_until(root: object, condition, timeout: float = WAIT) -> None:
    """Run Tk's loop (update()) until ``condition()`` holds; a hang guard, not a measure."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "Tk loop: the condition never held"
        root.update()
        time.sleep(0.002)


def test_attach_tk_runs_every_callback_on_tks_thread(server, tk_root) -> None:
    import tkinter

    label = tkinter.Label(tk_root, text="")
    label.pack()
    seen = []

    def on_audio(chunk):
        label.configure(text=f"chunk {chunk.index}")  # touching a widget: only safe on Tk's thread
        seen.append(("audio", threading.current_thread().name))

    def on_complete(speech):
        seen.append(("complete", threading.current_thread().name))

    with TTSClient(url=server.eigenai_url, dispatch="poll") as client:
        stop = client.attach_tk(tk_root, interval_ms=5)
        speech = client.speak("Tk callbacks.", on_audio=on_audio, on_complete=on_complete, block=False)
        run_tk_until(tk_root, lambda: any(kind == "complete" for kind, _ in seen))
        stop()
        stop()
    assert speech.pcm == tone_pcm("Tk callbacks.")
    assert {name for _, name in seen} == {threading.main_thread().name}
    assert [kind for kind, _ in seen][-1] == "complete" and len(seen) > 2
    assert label.cget("text").startswith("chunk ")


def test_attach_tk_stops_when_the_window_is_destroyed(server, tk_root) -> None:
    with TTSClient(url=server.eigenai_url, dispatch="poll") as client:
        client.attach_tk(tk_root, interval_ms=5)
        tk_root.update()
        tk_root.destroy()  # the pending after() is gone with it; nothing raises later
        done = []
        speech = client.speak("After the window.", on_complete=done.append, block=False)
        speech.wait(WAIT)
        assert not done  # nothing polls any more...
        assert client.poll() == 1 and done == [speech]  # ...so the callback waits for whoever does


def test_attach_tk_needs_poll_dispatch(server) -> None:
    with TTSClient(url=server.eigenai_url) as client:
        with pytest.raises(InvalidParameterError, match="dispatch='poll'"):
            client.attach_tk(object())
    with TTSClient(url=server.eigenai_url, dispatch="poll") as client:
        with pytest.raises(InvalidParameterError, match="interval_ms"):
            client.attach_tk(object(), interval_ms=0)


def test_wait_inside_a_polled_callback_raises_instead_of_deadlocking(make_server) -> None:
    server = make_server(engine="tone", realtime=2.0)  # still streaming when polled
    problems = []

    def on_audio(chunk):
        try:
            speech.wait(5)
        except RuntimeError as exc:
            problems.append(str(exc))

    with TTSClient(url=server.eigenai_url, dispatch="poll") as client:
        speech = client.speak("Polled while it streams.", on_audio=on_audio, block=False)
        deadline = time.monotonic() + WAIT
        while not problems and time.monotonic() < deadline:
            client.poll(timeout=0.05)
        speech.cancel()
        while client.poll():
            pass
    assert problems and "deadlock" in problems[0]


# -- notebooks ---------------------------------------------------------------------------

def test_a_speech_shows_itself_in_a_notebook_as_audio_with_its_figures(server) -> None:
    with TTSClient(url=server.eigenai_url) as client:
        speech = client.speak("Shown <inline>.")
        page = speech._repr_html_()
        quiet = client.speak("Kept nothing.", keep_audio=False)._repr_html_()
    # Opus at a speech bitrate, not the WAV (tests/test_notebook.py decodes it and weighs it).
    match = re.search(r'<audio controls src="data:audio/ogg;base64,([A-Za-z0-9+/=]+)"', page)
    assert match, page[:200]
    assert base64.b64decode(match.group(1))[:4] == b"OggS" and "<svg" in page
    assert "Shown &lt;inline&gt;." in page  # the text is escaped
    assert f"{speech.duration:.2f} s at 24000 Hz" in page
    assert f"{speech.first_audio_latency * 1000:.0f} ms" in page
    assert "<audio" not in quiet and "no audio kept" in quiet


def test_speak_works_inside_a_running_event_loop(server) -> None:
    """Jupyter runs cells inside an asyncio loop: nothing here may need or start one."""

    async def cell() -> bytes:
        with TTSClient(url=server.eigenai_url) as client:
            quick = client.speak("Inside a loop.", block=False)
            blocking = client.speak("Blocking inside a loop.")
            return quick.wait(WAIT).pcm, blocking.pcm

    assert asyncio.run(cell()) == (tone_pcm("Inside a loop."), tone_pcm("Blocking inside a loop."))


def test_ctrl_c_during_a_blocking_speak_cancels_it(make_server) -> None:
    server = make_server(engine="tone", realtime=1.0)  # paced: the speech takes seconds
    errors = []
    # A process started in the background inherits SIGINT ignored: restore Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with TTSClient(url=server.eigenai_url) as client:
        # A real SIGINT, as Ctrl-C (or a notebook's interrupt) sends.
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            client.speak("A long sentence that is interrupted.", on_error=errors.append)
        timer.join()
        signal.signal(signal.SIGINT, previous)
        after = client.speak("Next.")
    assert len(errors) == 1 and isinstance(errors[0], Cancelled), errors
    assert after.pcm == tone_pcm("Next.")


# -- scripts -------------------------------------------------------------------------------

def test_module_speak_reuses_one_default_client(server) -> None:
    try:
        first = ttsstream.speak("One.", url=server.eigenai_url)
        second = ttsstream.speak("Two.", url=server.eigenai_url, voice="Jack")
        assert default_client(url=server.eigenai_url) is default_client(url=server.eigenai_url)
        assert first.pcm == tone_pcm("One.") and second.pcm == tone_pcm("Two.")
        assert [u.voice for u in server.transcript[-2:]] == ["Linda", "Jack"]
        shunyalabs = ttsstream.speak("Three.", url=server.shunyalabs_url)
        assert server.transcript[-1].dialect == "shunyalabs" and shunyalabs.pcm
    finally:
        close_default_clients()


def test_choose_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EIGENAI_API_KEY", raising=False)
    monkeypatch.delenv("SHUNYALABS_API_KEY", raising=False)
    assert choose_provider() == "local"
    assert choose_provider("eigenai") == "eigenai"
    assert choose_provider(url="wss://example.com/ws") == "shunyalabs"
    assert choose_provider(url="wss://example.com/api/v1/generate/ws") == "eigenai"
    monkeypatch.setenv("SHUNYALABS_API_KEY", "k")
    assert choose_provider() == "shunyalabs"


def test_module_speak_in_a_plain_script(tmp_path: Path) -> None:
    """A legacy script: one import, one call, and the interpreter exits cleanly."""
    script = tmp_path / "legacy.py"
    script.write_text(
        "import ttsstream\n"
        "speech = ttsstream.speak('A legacy script.', block=False)\n"
        "speech.wait(30)\n"
        "speech.save('legacy.wav')\n"
        "print('ok', speech.duration > 0)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("EIGENAI_API_KEY", None)
    env.pop("SHUNYALABS_API_KEY", None)
    result = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok True"
    assert (tmp_path / "legacy.wav").stat().st_size > 44


def test_the_local_server_starts_off_the_callers_thread(tmp_path: Path) -> None:
    """speak(block=False) returns at once even before the local server exists (a game
    frame must not wait for it); what goes wrong there reaches wait() and on_error."""
    code = (
        "import sys, threading\n"
        "sys.modules['websockets'] = None  # the [local] extra is missing\n"
        "import ttsstream\n"
        "errors = []\n"
        "with ttsstream.TTSClient(provider='local') as client:\n"
        "    speech = client.speak('hello', block=False, on_error=errors.append)\n"
        "    print('returned')\n"
        "    try:\n"
        "        speech.wait(30)\n"
        "    except ttsstream.ConnectionFailed as exc:\n"
        "        print('wait:', exc)\n"
        "print('on_error:', type(errors[0]).__name__)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "returned"
    assert lines[1].startswith("wait: provider='local' needs") and "pip install 'ttsstream[local]'" in lines[1]
    assert lines[2] == "on_error: ConnectionFailed"


# -- found in review -------------------------------------------------------------------------

def test_wait_inside_its_own_terminal_callback_returns_the_outcome(server) -> None:
    seen = []

    def on_complete(speech):
        seen.append(("complete", speech.wait(5) is speech))

    def on_error(error):
        try:
            cancelled.wait(5)
        except Cancelled:
            seen.append(("error", "raised Cancelled"))

    with TTSClient(url=server.eigenai_url) as client:
        client.speak("Done.", on_complete=on_complete)
        cancelled = client.speak("Cancelled.", on_error=on_error, block=False)
        cancelled.cancel()
    assert seen == [("complete", True), ("error", "raised Cancelled")]


def test_a_closed_client_refuses_play_before_touching_audio(server) -> None:
    client = TTSClient(url=server.eigenai_url)
    client.close()
    with pytest.raises(ttsstream.TTSError, match="closed"):
        client.speak("Too late.", play=True)
    with pytest.raises(ttsstream.TTSError, match="closed"):
        client.player
    assert not [t for t in threading.enumerate() if t.name == "ttsstream-player"]


def test_attach_tk_delivers_the_callbacks_close_posts(make_server, tk_root) -> None:
    server = make_server(engine="tone", realtime=1.0)
    errors = []
    client = TTSClient(url=server.eigenai_url, dispatch="poll")
    client.attach_tk(tk_root, interval_ms=5)
    speech = client.speak("Closed while it streams.", on_error=errors.append, block=False)
    run_tk_until(tk_root, lambda: speech.duration > 0)
    client.close()
    run_tk_until(tk_root, lambda: bool(errors))
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
