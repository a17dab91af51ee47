"""The README, the front door: short, its Quick start unchanged, and every example runs as written.

Each ```python block runs in a process of its own, in a temporary directory, with what a
user's machine would give it (see ``doc_snippets.run_python``). The two Quick start
commands are CI's: ``.ci/run`` runs the second; the first one's ``ttsstream speak`` part
runs here. The docs site's pages are held to the same in tests/test_docs.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest

from doc_snippets import REPO, TIMEOUT, Fence, fences, shell_env, stray_markers
from doc_snippets import run_python as run_python_fence

README = REPO / "README.md"
IN_CI = bool(os.environ.get("CI"))
MAX_WORDS = 1500

INSTALL_AND_SPEAK = ('apt-get update && apt-get install -y portaudio19-dev && pip install -e ".[all]" && '
                     'ttsstream speak "Hello from ttsstream." --out hello.wav')
INSTALL_AND_TEST = ("apt-get update && apt-get install -y portaudio19-dev pulseaudio jackd2 xvfb xdotool imagemagick "
                    'xfonts-base && pip install -e ".[test]" && python -m pytest -q && python -m pytest -q -m slow')

FENCES = fences(README)
PYTHON = [fence for fence in FENCES if fence.lang == "python"]


def section(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert found, f"the README has no '## {heading}'"
    return found.group(1)


def test_the_quick_start_holds_exactly_the_two_commands() -> None:
    """.ci/run takes the second block of "## Quick start" as CI's test command."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", section("Quick start"), re.S | re.M)
    assert [block.strip() for block in blocks] == [INSTALL_AND_SPEAK, INSTALL_AND_TEST]


def test_the_readme_is_short_and_starts_with_the_simplest_call() -> None:
    assert len(README.read_text(encoding="utf-8").split()) <= MAX_WORDS
    assert "ttsstream.speak(" in PYTHON[0].code
    assert len(PYTHON) == 3, "speak, callbacks, an LLM stream"


def test_every_readme_block_is_a_quick_start_command_or_python() -> None:
    """Nothing here escapes the tests: the two bare blocks are the Quick start's, the rest run."""
    kinds = [(fence.section, fence.lang) for fence in FENCES]
    assert kinds == [("Quick start", ""), ("Quick start", "")] + [("Examples", "python")] * len(PYTHON)
    assert all(fence.not_run is None for fence in FENCES)
    assert stray_markers(README) == []


def test_every_readme_snippet_names_what_it_needs() -> None:
    for fence in PYTHON:
        before = README.read_text(encoding="utf-8").splitlines()[max(0, fence.line - 4):fence.line - 1]
        assert any("Needs:" in line for line in before), f"the snippet at line {fence.line} does not say what it needs"


def test_the_readme_links_resolve() -> None:
    """Every relative link points at a file of the repository (the docs pages, LICENSE, CHANGELOG.md)."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [target for target in targets if "://" not in target]
    assert len(local) >= 10
    missing = [target for target in local if not (REPO / target).is_file()]
    assert missing == []
    for needed in ("docs/getting-started/install.md", "docs/guide/streaming.md", "docs/architecture.md",
                   "docs/licences.md", "LICENSE", "CHANGELOG.md"):
        assert needed in local, needed



@pytest.mark.parametrize("fence", PYTHON, ids=[f"line{fence.line}" for fence in PYTHON])
def test_readme_snippet_runs(fence: Fence, screen: str, tmp_path: Path) -> None:
    run_python_fence(fence, tmp_path, screen)


@pytest.mark.skipif(importlib.util.find_spec("pyaudio") is None and not IN_CI, reason="PyAudio is not installed")
def test_the_first_quick_start_commands_speech_runs(tmp_path: Path) -> None:
    """The part of the first command after the installs, as written: it plays, and writes hello.wav."""
    speak = INSTALL_AND_SPEAK.rsplit(" && ", 1)[1]
    result = subprocess.run(["bash", "-c", speak], cwd=str(tmp_path), env=shell_env(tmp_path), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "hello.wav").stat().st_size > 44
    assert any((tmp_path / "device.raw").read_bytes()), "it played nothing"
