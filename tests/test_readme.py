"""Every Python snippet and shell example in the README runs as written.

Each ```python block runs in a process of its own, in a temporary directory, with what a
user's machine would give it: an audio device (ALSA's file plugin, whose output file is
checked for sound where the snippet plays), a screen (a private Xvfb) for the Tk and
pygame snippets, and no API key, so the local voice speaks.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from playback_pulse import alsa_file_home
from sample_harness import Xvfb, sample_env

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
IN_CI = bool(os.environ.get("CI"))
TIMEOUT = 120  # a hang guard, not a performance bound


def snippets() -> List[Tuple[str, str]]:
    """(the section heading, the code) of every ```python block in the README."""
    found, heading = [], ""
    for match in re.finditer(r"^## ([^\n]+)$|^```python\n(.*?)^```", README.read_text(), re.M | re.S):
        if match.group(1):
            heading = match.group(1).strip()
        else:
            found.append((heading, match.group(2)))
    return found


SNIPPETS = snippets()


def test_the_readme_has_a_snippet_per_integration() -> None:
    headings = {heading for heading, _ in SNIPPETS}
    assert {"In a Tkinter app", "In a game loop", "In Jupyter", "In a plain script", "Playing audio"} <= headings


@pytest.fixture(scope="module")
def screen() -> Iterator[str]:
    needs = [name for name in ("tkinter", "pygame", "IPython") if importlib.util.find_spec(name) is None]
    if shutil.which("Xvfb") is None:
        needs.append("Xvfb (apt-get install xvfb)")
    if importlib.util.find_spec("pyaudio") is None:
        needs.append("pyaudio")
    if needs:
        (pytest.fail if IN_CI else pytest.skip)(f"missing: {', '.join(needs)}")
    display = Xvfb().start()
    try:
        yield display.display
    finally:
        display.stop()


@pytest.mark.parametrize("heading, code", SNIPPETS, ids=[heading for heading, _ in SNIPPETS])
def test_readme_snippet_runs(heading: str, code: str, screen: str, tmp_path: Path) -> None:
    device = tmp_path / "device.raw"
    env = sample_env(alsa_file_home(tmp_path / "home", str(device)), DISPLAY=screen)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    process = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env, capture_output=True,
                             text=True, timeout=TIMEOUT)
    assert process.returncode == 0, f"the snippet under '{heading}' failed:\n{process.stderr[-4000:]}"
    assert "Traceback" not in process.stderr
    if "play=True" in code and "# play=True" not in code:
        assert device.exists() and any(device.read_bytes()), "the snippet played nothing"
    for name in re.findall(r'save\("([^"]+)"\)', code):
        assert (tmp_path / name).stat().st_size > 44, f"{name} is empty"


# -- the tour's parameter examples, and the shell examples of "## Command line" -------------------


def section(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    return re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## )", text, re.S | re.M).group(1)


def test_the_tours_parameter_examples_run(tmp_path: Path) -> None:
    """Each inline ``client.speak(...)`` of the "Models and parameters" bullet, on a local client
    with the model the bullet names just before it."""
    bullet = re.search(r"\*\*Models and parameters\.\*\*(.*?)(?=\n- \*\*)", section("A tour of the API"), re.S).group(1)
    cases, model = [], None
    for span in re.findall(r"`([^`]+)`", bullet.replace("\n  ", " ")):
        named = re.search(r'model="([^"]+)"', span) or re.fullmatch(r"(higgs2p5|chatterbox|qwen3-tts|zero-indic)",
                                                                      span)
        if named:
            model = named.group(1)
        elif span.startswith("client.speak("):
            cases.append((model, span))
    assert len(cases) >= 2 and all(model for model, _ in cases), cases
    script = tmp_path / "tour.py"
    script.write_text("import ttsstream\n" + "".join(
        f"with ttsstream.TTSClient(provider='local', model={model!r}) as client:\n"
        f"    assert {call}.duration > 0\n" for model, call in cases))
    process = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=sample_env(), capture_output=True,
                             text=True, timeout=TIMEOUT)
    assert process.returncode == 0, process.stderr[-3000:]


def shell_blocks() -> List[List[str]]:
    """The command lines of each shell block under "## Command line" (comments dropped)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", section("Command line"), re.S | re.M)
    return [[re.sub(r"\s+#[^\"']*$", "", line).strip() for line in block.splitlines() if line.strip()]
            for block in blocks]


def test_the_command_line_section_has_its_examples_and_exit_codes() -> None:
    text = section("Command line")
    blocks = shell_blocks()
    assert len(blocks) == 2 and len(blocks[0]) >= 8
    for needed in ("--out - |", "--param", "--language", "--speed", "voices", "serve", "devices", "--api-key"):
        assert any(needed in line for line in blocks[0] + blocks[1]), needed
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 130 |", "| 141 |"):
        assert code in text, code


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(importlib.util.find_spec("pyaudio") is None and not IN_CI, reason="PyAudio is not installed")
def test_the_command_line_examples_run(tmp_path: Path) -> None:
    """Every shell example runs as written, in bash, with the console script: the server on
    a free port instead of 8765, stand-ins for aplay and ffplay that keep what they are
    piped, an audio device that writes to a file, and for the "with a key" lines the keys
    set and ``--url`` pointing at the bundled server (which checks them)."""
    port = _free_port()
    device = tmp_path / "device.raw"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for player in ("aplay", "ffplay"):
        (stubs / player).write_text(f'#!/bin/sh\ncat > "{tmp_path}/{player}.in"\n')
        (stubs / player).chmod(0o755)
    (tmp_path / "text.txt").write_text("नमस्ते. A line from a file.\n", encoding="utf-8")
    env = sample_env(alsa_file_home(tmp_path / "home", str(device)))
    env["PATH"] = f"{stubs}{os.pathsep}{env['PATH']}"
    local, keyed = shell_blocks()
    serve = [line for line in local if " serve " in f" {line} "]
    assert len(serve) == 1
    server = subprocess.Popen(["bash", "-c", "exec " + serve[0].replace("8765", str(port))], cwd=str(tmp_path),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in server.stdout.readline(), server.stderr.read()
        runs = [(line, env) for line in local if line not in serve]
        keys = dict(env, EIGENAI_API_KEY="KEY", SHUNYALABS_API_KEY="KEY")
        for line in keyed:
            if line.startswith("export "):
                continue
            path = "/ws" if "shunyalabs" in line else "/api/v1/generate/ws"
            command, pipe, rest = line.partition(" | ")
            runs.append((f"{command} --url ws://127.0.0.1:{port}{path} --no-play{pipe}{rest}", keys))
        for line, line_env in runs:
            shell = shutil.which("bash")
            result = subprocess.run([shell, "-o", "pipefail", "-c", line.replace("8765", str(port))],
                                    cwd=str(tmp_path), env=line_env, capture_output=True, text=True, timeout=TIMEOUT)
            assert result.returncode == 0, f"{line}\n{result.stderr[-2000:]}"
            assert "Traceback" not in result.stderr, line
            for name in re.findall(r"(?:--out |> )(\S+\.(?:wav|pcm))", line):
                assert (tmp_path / name).stat().st_size > 44, f"{line}: {name} is empty"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            assert server.wait(30) == 0
        finally:
            server.kill()
            server.stdout.close()
            server.stderr.close()
    assert device.exists() and any(device.read_bytes()), "`ttsstream speak \"Some text\"` played nothing"
    for player in ("aplay", "ffplay"):
        assert (tmp_path / f"{player}.in").read_bytes()[:4] == b"RIFF", player
