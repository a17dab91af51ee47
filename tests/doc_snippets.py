"""Helpers for tests/test_readme.py and tests/test_docs.py: find a page's examples and run them.

- ``fences(path)``: every fenced block of a markdown page, with its language, the section
  it is in, its line, and the reason it is not run when the line just before it is
  ``<!-- not-run: REASON -->``.
- ``run_python``: a ```python block as a script in a process of its own, in a temporary
  directory, with what a user's machine would give it: an audio device (ALSA's file
  plugin, whose output is checked for sound where the block plays), a screen (the
  caller's Xvfb) and no API key, so the local voice speaks.
- ``run_shell``: a page's ```sh blocks, line by line in bash with the console script (see
  its docstring), and ``run_console`` a ```console block's ``$`` commands against the
  output written under them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

from playback_pulse import alsa_file_home
from sample_harness import sample_env

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # a hang guard, not a performance bound
NOT_RUN = re.compile(r"^<!-- not-run: (.+?) -->$")
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```$", re.S | re.M)


class Fence(NamedTuple):
    page: str             # the path from the repository's root
    section: str          # the heading above it
    line: int             # the line of its opening fence
    lang: str             # "" for a bare fence
    code: str
    not_run: Optional[str]  # the reason given just before it, or None


def fences(path: Path) -> List[Fence]:
    """Every fenced block of the page, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.M)
        previous = before.rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.match(previous)
        found.append(Fence(str(path.relative_to(REPO)), headings[-1].strip() if headings else "",
                           before.count("\n") + 1, match.group(1), match.group(2),
                           marker.group(1).strip() if marker else None))
    return found


def stray_markers(path: Path) -> List[int]:
    """Lines of ``not-run`` markers that are not directly followed by a fence (they would excuse nothing)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [number + 1 for number, line in enumerate(lines)
            if line.lstrip().startswith("<!--") and "not-run" in line and not (NOT_RUN.match(line) and number + 1 < len(lines)
                                          and lines[number + 1].startswith("```"))]


def run_python(fence: Fence, tmp_path: Path, display: str) -> None:
    """Run a ```python block as written; it must exit 0, print no traceback, play where it
    says ``play=True`` and write every ``save("NAME")`` it names."""
    device = tmp_path / "device.raw"
    env = sample_env(alsa_file_home(tmp_path / "home", str(device)), DISPLAY=display)
    script = tmp_path / "snippet.py"
    script.write_text(fence.code, encoding="utf-8")
    process = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env, capture_output=True,
                             text=True, timeout=TIMEOUT)
    where = f"{fence.page}:{fence.line} ({fence.section})"
    assert process.returncode == 0, f"the snippet at {where} failed:\n{process.stderr[-4000:]}"
    assert "Traceback" not in process.stderr, f"{where}:\n{process.stderr[-4000:]}"
    if "play=True" in fence.code and "# play=True" not in fence.code:
        assert device.exists() and any(device.read_bytes()), f"the snippet at {where} played nothing"
    for name in re.findall(r'save\("([^"]+)"\)', fence.code):
        assert (tmp_path / name).stat().st_size > 44, f"{where}: {name} is empty"


def command_lines(fence: Fence) -> List[str]:
    """A shell block's command lines, with trailing comments dropped."""
    return [re.sub(r"\s+#[^\"']*$", "", line).strip() for line in fence.code.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shell_env(tmp_path: Path) -> Dict[str, str]:
    """What the shell examples run with: an audio device that writes to ``device.raw``,
    stand-ins for aplay and ffplay that keep what they are piped (``aplay.in``,
    ``ffplay.in``), a ``text.txt`` to read, and no API key."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for player in ("aplay", "ffplay"):
        (stubs / player).write_text(f'#!/bin/sh\ncat > "{tmp_path}/{player}.in"\n')
        (stubs / player).chmod(0o755)
    (tmp_path / "text.txt").write_text("नमस्ते. A line from a file.\n", encoding="utf-8")
    env = sample_env(alsa_file_home(tmp_path / "home", str(tmp_path / "device.raw")))
    env["PATH"] = f"{stubs}{os.pathsep}{env['PATH']}"
    return env


def run_shell(blocks: List[Fence], tmp_path: Path) -> List[str]:
    """Run a page's ```sh blocks as written, in bash, and return the lines run.

    A ``ttsstream serve`` line (at most one a page) runs first, in the background, on a
    free port instead of 8765, until the rest are done. In a block that begins with an
    ``export`` of the API keys, the lines after it speak with those keys set and
    ``--url`` pointing at the bundled server (which checks them) and ``--no-play``.
    Every line must exit 0 and write the ``--out`` or ``>`` file it names.
    """
    port = _free_port()
    env = shell_env(tmp_path)
    keys = dict(env, EIGENAI_API_KEY="KEY", SHUNYALABS_API_KEY="KEY")
    runs, serve = [], []
    for block in blocks:
        lines = command_lines(block)
        keyed = bool(lines) and lines[0].startswith("export ")
        for line in lines[1:] if keyed else lines:
            if " serve " in f" {line} ":
                serve.append(line)
            elif keyed:
                path = "/ws" if "shunyalabs" in line else "/api/v1/generate/ws"
                command, pipe, rest = line.partition(" | ")
                runs.append((f"{command} --url ws://127.0.0.1:{port}{path} --no-play{pipe}{rest}", keys))
            else:
                runs.append((line, env))
    assert len(serve) <= 1, serve
    server = None
    if serve:
        server = subprocess.Popen(["bash", "-c", "exec " + serve[0].replace("8765", str(port))], cwd=str(tmp_path),
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if server is not None:
            assert server.stdout is not None and "listening" in server.stdout.readline()
        for line, line_env in runs:
            result = subprocess.run([shutil.which("bash") or "bash", "-o", "pipefail", "-c",
                                     line.replace("8765", str(port))],
                                    cwd=str(tmp_path), env=line_env, capture_output=True, text=True, timeout=TIMEOUT)
            assert result.returncode == 0, f"{line}\n{result.stderr[-2000:]}"
            assert "Traceback" not in result.stderr, line
            for name in re.findall(r"(?:--out |> )(\S+\.(?:wav|pcm|raw|flac|ogg|opus|mp3|ul|al))", line):
                assert (tmp_path / name).stat().st_size > 44, f"{line}: {name} is empty"
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                assert server.wait(30) == 0
            finally:
                server.kill()
                assert server.stdout is not None and server.stderr is not None
                server.stdout.close()
                server.stderr.close()
    return [line for line, _ in runs] + serve


def run_console(fence: Fence, tmp_path: Path) -> int:
    """Run each ``$ COMMAND`` of a ```console block; what it prints (stdout and stderr)
    must be the lines written under it. Returns how many commands ran."""
    env = shell_env(tmp_path)
    count = 0
    for command, expected in re.findall(r"^\$ (.+)\n((?:(?!\$ ).*\n?)*)", fence.code, re.M):
        result = subprocess.run([shutil.which("bash") or "bash", "-c", command], cwd=str(tmp_path), env=env,
                                capture_output=True, text=True, timeout=TIMEOUT)
        assert (result.stdout + result.stderr).strip() == expected.strip(), f"{fence.page}:{fence.line}: {command}"
        count += 1
    return count
