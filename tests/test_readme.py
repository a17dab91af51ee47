"""Every Python snippet in the README runs as written.

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
