"""Every sample in samples/ runs, as a user would run it, and does what its docstring says.

Each runs as a subprocess (this interpreter, a temporary working directory, the
repository on PYTHONPATH, no API keys: the bundled offline server). Audio devices come
from tests/playback_pulse.py (ALSA's file plugin, a missing card, a PulseAudio null
sink); the Tk sample runs under a private Xvfb and is driven with real clicks
(xdotool) and closed with the window manager's WM_DELETE_WINDOW message.

Timeouts here are hang guards, not performance bounds. A developer without Xvfb,
xdotool, ImageMagick, pygame or nbclient may skip those tests; in CI (CI is set) a
missing part fails instead.

UPDATE_DOCS=1 also copies the Tk screenshot to docs/tkinter_reader.png.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import string
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from playback_pulse import PulseDaemon, alsa_file_home, missing_card_home, pulse_missing
from sample_harness import (REPO, SAMPLES, EventStream, Xvfb, click_button, close_window, png_size, sample_env,
                            screenshot)

IN_CI = bool(os.environ.get("CI"))
TIMEOUT = 120  # a hang guard for each sample, not a performance bound
SHARED_SERVER = "ttsstream-local-server"  # stopped at the sample's exit, after its last words


def require(missing: Optional[str]) -> None:
    """Skip when something this test needs is missing; in CI, fail instead."""
    if missing:
        if IN_CI:
            pytest.fail(f"{missing} (CI installs everything the tests need)")
        pytest.skip(missing)


def missing_tools(*tools: str) -> Optional[str]:
    absent = [tool for tool in tools if shutil.which(tool) is None]
    return f"not installed: {', '.join(absent)} (apt-get install xvfb xdotool imagemagick)" if absent else None


def missing_modules(*modules: str) -> Optional[str]:
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    return f"Python modules missing: {', '.join(absent)}" if absent else None


def run_sample(name: str, *args: str, cwd: Path, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    process = subprocess.run([sys.executable, str(SAMPLES / name), *args], cwd=str(cwd),
                             env=env or sample_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert process.returncode == 0, (f"{name} exited {process.returncode}\nstdout:\n{process.stdout[-3000:]}\n"
                                     f"stderr:\n{process.stderr[-5000:]}")
    assert "Traceback" not in process.stderr, process.stderr[-5000:]
    return process


def read_wav(path: Path) -> bytes:
    """The PCM of a 16-bit mono WAV, checking that it is one and is not empty."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        assert wav.getframerate() > 0
        pcm = wav.readframes(wav.getnframes())
    assert len(pcm) > 0 and any(pcm), f"{path} holds no sound"
    return pcm


def last_json(stdout: str) -> Dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line in:\n{stdout[-3000:]}"
    return json.loads(lines[-1])


# ----------------------------------------------------------------- plain scripts

def test_quickstart_plays_through_the_device(tmp_path: Path) -> None:
    require(missing_modules("pyaudio"))
    device = tmp_path / "device.raw"
    env = sample_env(alsa_file_home(tmp_path / "home", str(device)))
    process = run_sample("quickstart.py", cwd=tmp_path, env=env)

    assert process.stdout.startswith("played "), process.stdout
    assert "no audio device" not in process.stdout
    pcm = read_wav(tmp_path / "quickstart.wav")
    received = device.read_bytes()
    # The device got exactly the speech, then at most a partial period of silence.
    assert received[:len(pcm)] == pcm
    assert len(received) - len(pcm) < 480 and not any(received[len(pcm):])


def test_quickstart_writes_a_wav_without_a_device(tmp_path: Path) -> None:
    env = sample_env(missing_card_home(tmp_path / "home"))
    process = run_sample("quickstart.py", "Nothing can play this.", cwd=tmp_path, env=env)

    assert "no audio device" in process.stdout, process.stdout
    assert "wrote quickstart.wav" in process.stdout
    read_wav(tmp_path / "quickstart.wav")


def test_callbacks_numpy_prints_a_level_per_chunk(tmp_path: Path) -> None:
    process = run_sample("callbacks_numpy.py", "levels.wav", cwd=tmp_path)

    chunk_lines = [line for line in process.stdout.splitlines() if line.startswith("chunk ")]
    assert len(chunk_lines) >= 2, process.stdout
    assert [int(line.split()[1].rstrip(":")) for line in chunk_lines] == list(range(len(chunk_lines)))
    levels = [float(line.split()[-2]) for line in chunk_lines]
    assert all(level <= 0 for level in levels) and any(math.isfinite(level) for level in levels)
    pcm = read_wav(tmp_path / "levels.wav")
    # The printed sample counts add up to the file.
    assert sum(int(line.split()[2]) for line in chunk_lines) * 2 == len(pcm)
    assert f"{len(chunk_lines)} chunks" in process.stdout.splitlines()[-1]


def test_callbacks_numpy_default_path(tmp_path: Path) -> None:
    run_sample("callbacks_numpy.py", "--text", "Short.", cwd=tmp_path)
    read_wav(tmp_path / "callbacks.wav")


def test_shunyalabs_multi_reuses_one_connection(tmp_path: Path) -> None:
    process = run_sample("shunyalabs_multi.py", cwd=tmp_path)

    text_lines = [line for line in process.stdout.splitlines() if line.startswith("text ")]
    assert len(text_lines) == 4, process.stdout
    for number in range(1, 5):
        read_wav(tmp_path / f"shunyalabs_{number}.wav")
    assert process.stdout.splitlines()[-1] == "4 texts over 1 connection(s)", process.stdout


# ----------------------------------------------------------------- pygame

def test_pygame_loop_runs_300_frames_and_speaks(tmp_path: Path) -> None:
    require(missing_modules("pygame", "pyaudio"))
    env = sample_env(alsa_file_home(tmp_path / "home", str(tmp_path / "device.raw")),
                     SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    process = run_sample("pygame_loop.py", "--frames", "300", cwd=tmp_path, env=env)
    summary = last_json(process.stdout)

    assert summary["frames"] == 300
    assert summary["speeches_completed"] >= 2, summary
    assert summary["chunks"] > 0
    assert summary["played"] is True, process.stdout  # the ALSA file device took the audio
    assert (tmp_path / "device.raw").stat().st_size > 0
    assert summary["callback_threads"] == ["MainThread"]  # poll() ran them between frames
    frame_ms = summary["frame_ms"]
    assert 0 < frame_ms["median"] <= frame_ms["p99"] <= frame_ms["max"]
    assert frame_ms["max"] < 1000, "a frame stalled for a second: the loop waited on something"
    assert 0 <= summary["frames_over_33ms"] <= 300


# ----------------------------------------------------------------- Jupyter

def test_jupyter_demo_executes_headless(tmp_path: Path) -> None:
    require(missing_modules("nbclient", "nbformat", "ipykernel"))
    import nbformat

    executed = tmp_path / "executed.ipynb"
    process = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("sample_harness.py")), "notebook",
         str(SAMPLES / "jupyter_demo.ipynb"), str(executed)],
        cwd=str(tmp_path), env=sample_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert process.returncode == 0, f"stdout:\n{process.stdout[-3000:]}\nstderr:\n{process.stderr[-6000:]}"

    notebook = nbformat.read(str(executed), as_version=4)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "asyncio" not in code and "await " not in code
    streams = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    html = "".join(output.get("data", {}).get("text/html", "") for output in outputs)
    assert "<audio" in html and "data:audio/ogg;base64," in html and "<svg" in html
    # block=False returned before the speech had finished.
    assert "speech.done = False" in streams, streams
    assert "duration:" in streams and "first audio after:" in streams
    assert "wrote jupyter_demo.wav" in streams
    read_wav(tmp_path / "jupyter_demo.wav")
    callback_line = next(line for line in streams.splitlines() if line.endswith(")") and "chunks;" in line)
    assert "ttsstream-reader" in callback_line  # the poll-free callbacks ran on the reader thread


# ----------------------------------------------------------------- Tkinter under Xvfb

@pytest.fixture(scope="module")
def xvfb() -> Iterator[Xvfb]:
    require(missing_tools("Xvfb", "xdotool", "import") or missing_modules("tkinter"))
    server = Xvfb().start()
    try:
        yield server
    finally:
        server.stop()


def start_reader(tmp_path: Path, env: Dict[str, str]) -> EventStream:
    stderr = tmp_path / "reader.stderr"
    with open(stderr, "wb") as err:
        process = subprocess.Popen([sys.executable, str(SAMPLES / "tkinter_reader.py"), "--selftest"],
                                   cwd=str(tmp_path), env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=err)
    return EventStream(process, stderr)


def status(text: str) -> Any:
    return lambda event: event["event"] == "status" and event["text"].startswith(text)


def close_and_check(app: EventStream, display: str, window: int, played: bool) -> Dict[str, Any]:
    """Close the window as a window manager would; the app exits cleanly with its facts."""
    close_window(display, window)
    code = app.finish(TIMEOUT)
    assert code == 0, app.describe()
    assert "Traceback" not in app.stderr() and "Exception in Tkinter callback" not in app.stderr(), app.describe()
    facts = [event for event in app.events if event["event"] == "exit"]
    assert facts, app.describe()
    facts = facts[-1]
    assert facts["callback_threads"] == ["MainThread"], facts  # every callback ran on Tk's thread
    assert facts["chunks"] > 0
    assert facts["first_audio_ms"] is not None and facts["first_audio_ms"] > 0
    assert facts["meter_max"] > 0, "the level meter never moved"
    assert facts["played"] is played
    assert set(facts["threads_left"]) <= {SHARED_SERVER}, facts["threads_left"]
    return facts


def check_highlights(events: List[Dict[str, Any]], why: str) -> List[Dict[str, Any]]:
    """The highlight moved through the spoken text's units in order, each when its audio
    was heard, and was cleared at the end (``why``). ``events``: one speech's, in order."""
    highlights = [event for event in events if event["event"] == "highlight"]
    assert len(highlights) >= 3, highlights  # the sample's text has three sentences
    assert [event["index"] for event in highlights] == list(range(len(highlights))), highlights
    offset = highlights[0]["chars"][0]
    assert offset == 0, highlights[0]  # the text box's text from its start
    for event in highlights:
        # The widget marks exactly the unit's characters: the units follow one another
        # through the text box, each where the ones before it end.
        assert event["text"] == event["segment_text"].rstrip() and event["text"], event
        assert event["chars"] == [offset, offset + len(event["text"])], (event, offset)
        offset += len(event["segment_text"])
        # Highlighted once its audio was heard (played by the device, or on the timeline
        # without one), not when it arrived: arrival runs seconds ahead of the speech.
        assert event["heard"] >= event["start"], event
    starts = [event["start"] for event in highlights]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), starts
    assert highlights[-1]["segment_text"].rstrip().endswith("Stop to end it."), highlights[-1]
    last = events.index(highlights[-1])
    cleared = [event for event in events[last:] if event["event"] == "highlight_cleared"]
    assert cleared and cleared[0]["why"] == why, events[last:]
    return highlights


def words_of(text: str) -> List[Tuple[str, int, int]]:
    """The words of ``text`` (the sample's is plain English) with their offsets: each
    whitespace-separated token without the punctuation around it."""
    found = []
    for token in re.finditer(r"\S+", text):
        word = token.group().strip(string.punctuation)
        start = token.start() + token.group().index(word)
        found.append((word, start, start + len(word)))
    return found


def check_words(events: List[Dict[str, Any]], why: str) -> None:
    """The word highlight moved through every word of the text spoken, once each and in
    order, marking exactly its characters, always inside the sentence highlighted at that
    moment, never before the word's start on the audio's timeline (played by the device,
    or counted from the first chunk without one); it was cleared at the end (``why``).
    ``events``: one speech's, in order, heard to the end."""
    highlights = [event for event in events if event["event"] == "highlight"]
    spoken = "".join(event["segment_text"] for event in highlights)  # the units are the text spoken
    expected = words_of(spoken)
    words = [event for event in events if event["event"] == "word"]
    assert [event["index"] for event in words] == list(range(len(expected))), words
    assert [(event["text"], *event["chars"]) for event in words] == expected, words
    assert all(event["word_text"] == event["text"] and event["source"] == "exact" for event in words), words
    sentence = None  # the range of the sentence highlighted when each word is
    for event in events:
        if event["event"] == "highlight":
            sentence = event["chars"]
        elif event["event"] == "word":
            assert sentence is not None and sentence[0] <= event["chars"][0] < event["chars"][1] <= sentence[1], \
                (event, sentence)
            assert event["heard"] >= event["start"], event
    starts = [event["start"] for event in words]
    assert starts == sorted(starts), starts
    last = events.index(words[-1])
    cleared = [event for event in events[last:] if event["event"] == "highlight_cleared"]
    assert cleared and cleared[0]["why"] == why and "word" in cleared[0]["tags"], events[last:]


def test_tkinter_reader_plays_pauses_and_stops(tmp_path: Path, xvfb: Xvfb) -> None:
    require(pulse_missing() or missing_modules("pyaudio"))
    with PulseDaemon(tmp_path / "pulse") as pulse:
        app = start_reader(tmp_path, sample_env(pulse.env, DISPLAY=xvfb.display))
        try:
            ready = app.wait_for(lambda event: event["event"] == "ready")
            buttons, window = ready["buttons"], ready["window"]

            click_button(xvfb.display, buttons["speak"])
            first = len(app.events)
            app.wait_for(status("speaking"))
            app.wait_for(lambda event: event["event"] == "first_audio")
            # Mid-speech (the null sink plays in real time; the text lasts about 12 s):
            # once the second sentence is heard a few words in, let the meter follow
            # the playback for a moment, then take the picture.
            second = app.wait_for(lambda event: event["event"] == "highlight" and event["index"] == 1)
            app.wait_for(lambda event: event["event"] == "word" and event["chars"][0] > second["chars"][0] + 10)
            time.sleep(0.3)
            shot = tmp_path / "tkinter_reader.png"
            screenshot(xvfb.display, window, shot)
            width, height = png_size(shot)
            assert 200 <= width <= 1024 and 100 <= height <= 768
            if os.environ.get("UPDATE_DOCS"):
                (REPO / "docs").mkdir(exist_ok=True)
                shutil.copyfile(shot, REPO / "docs" / "tkinter_reader.png")

            click_button(xvfb.display, buttons["pause"])
            assert app.wait_for(status("paused"))["pause_button"] == "Resume"
            click_button(xvfb.display, buttons["pause"])
            assert app.wait_for(status("resumed"))["pause_button"] == "Pause"
            app.wait_for(status("done"), timeout=TIMEOUT)  # played to the end
            check_highlights(app.events[first:], why="done")
            check_words(app.events[first:], why="done")

            # Spoken again and stopped mid-speech: the highlights go with the speech.
            click_button(xvfb.display, buttons["speak"])
            app.wait_for(lambda event: event["event"] == "highlight" and event["index"] == 0)
            app.wait_for(lambda event: event["event"] == "word" and event["index"] == 1)
            click_button(xvfb.display, buttons["stop"])
            cleared = app.wait_for(lambda event: event["event"] == "highlight_cleared")
            assert cleared["why"] == "stopped" and cleared["tags"] == ["heard", "word"], cleared
            stopped = app.events.index(cleared)
            app.wait_for(status("stopped"))

            facts = close_and_check(app, xvfb.display, window, played=True)
            # Its late callbacks (words held back, cues queued) moved no highlight.
            late = [event for event in app.events[stopped:] if event["event"] in ("highlight", "word")]
            assert late == [], late
        finally:
            app.close()
    statuses = facts["statuses"]
    assert statuses[:1] == ["speaking"] and statuses[-1] == "stopped", statuses
    assert statuses.count("done") == 1, statuses
    assert not any(text.startswith("error") for text in statuses), statuses


def test_tkinter_reader_streams_without_a_device(tmp_path: Path, xvfb: Xvfb) -> None:
    env = sample_env(missing_card_home(tmp_path / "home"), DISPLAY=xvfb.display)
    app = start_reader(tmp_path, env)
    try:
        ready = app.wait_for(lambda event: event["event"] == "ready")
        click_button(xvfb.display, ready["buttons"]["speak"])
        first = len(app.events)
        app.wait_for(status("no audio device"))
        app.wait_for(status("received"))
        # Nothing plays: the highlight reads along on the audio's own timeline.
        app.wait_for(status("done (no audio device)"), timeout=TIMEOUT)
        check_highlights(app.events[first:], why="done")
        check_words(app.events[first:], why="done")
        facts = close_and_check(app, xvfb.display, ready["window"], played=False)
    finally:
        app.close()
    assert facts["statuses"][-1] == "done (no audio device)", facts["statuses"]
