"""The docs site's pages: every example runs as written, or says why not; the site covers the API and the modules.

``docs/**/*.md`` are the manual (built by ``mkdocs build --strict`` in .ci/run). Every
fenced block is ```python or ```sh (run), ```console (run, and its output compared) or
```text (output, not code). A block that cannot run on a test machine (a real API key,
system packages, half an hour of benchmarks) has ``<!-- not-run: REASON -->`` on the
line just before it, and ``NOT_RUN`` below counts them page by page: a new excuse needs
a change here, so no example is ever skipped silently.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import ttsstream
from doc_snippets import REPO, Fence, fences, run_console, run_python, run_shell, stray_markers

DOCS = REPO / "docs"
IN_CI = bool(os.environ.get("CI"))
PAGES = sorted(DOCS.rglob("*.md"))
FENCES = [fence for page in PAGES for fence in fences(page)]
RUNNABLE = ("python", "sh", "console")

# The blocks that are not run, page by page, and why (the reasons are in the pages).
NOT_RUN: Dict[str, int] = {
    "docs/getting-started/install.md": 2,       # installs packages (CI installs from the clone)
    "docs/getting-started/first-speech.md": 1,  # the README's first command (its speech runs in test_readme)
    "docs/guide/streaming.md": 3,               # OpenAI, AsyncOpenAI and AsyncOpenAI in a running loop: a real key
    "docs/guide/phone.md": 1,                   # the Twilio bridge serves until Ctrl-C (test_twilio_bridge runs it)
    "docs/reliability.md": 2,                   # the slow group (CI runs it), and a longer soak and fuzz
    "docs/performance.md": 6,                   # 40 minutes; the burst's 10; yappi; festival, PulseAudio and 25
                                                # minutes; a minute of chaos; formats (CI runs the suites with --quick)
    "docs/architecture.md": 1,                  # the README's test command (CI runs it)
    "docs/guide/batch.md": 2,                   # a Dask scheduler with workers; the 8-minute benchmark
}


def _ids(found: List[Fence]) -> List[str]:
    return [f"{fence.page[len('docs/'):]}:{fence.line}" for fence in found]


def test_every_block_is_of_a_known_kind() -> None:
    kinds = {(fence.page, fence.line): fence.lang for fence in FENCES}
    assert {place: lang for place, lang in kinds.items() if lang not in RUNNABLE + ("text",)} == {}


def test_the_blocks_not_run_are_the_counted_ones_and_say_why() -> None:
    counted: Dict[str, int] = {}
    for fence in FENCES:
        if fence.not_run is not None:
            assert len(fence.not_run) >= 20, f"{fence.page}:{fence.line}: say why it cannot run"
            counted[fence.page] = counted.get(fence.page, 0) + 1
    assert counted == NOT_RUN
    assert {str(page.relative_to(REPO)): stray_markers(page) for page in PAGES if stray_markers(page)} == {}


def test_every_page_is_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    listed = set(re.findall(r"([\w/.-]+\.md)\s*$", nav, re.M))
    assert listed == {str(page.relative_to(DOCS)) for page in PAGES}


def test_the_reference_covers_every_public_name() -> None:
    reference = "".join(page.read_text(encoding="utf-8") for page in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: ttsstream\.(\w+)$", reference, re.M))
    assert documented == set(ttsstream.__all__) - {"__version__"}
    assert set(re.findall(r"^::: ttsstream\.server\.(\w+)$", reference, re.M)) == {"LocalServer", "parse_fault", "FaultMix"}


def test_the_module_map_names_every_module() -> None:
    """STYLE.md: the module map is the house; a module missing from it is a room nobody knows."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    package = REPO / "ttsstream"
    missing = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        name = path.name if path.name != "__init__.py" or len(parts) == 1 else ""
        if name and f"`{name}`" not in table:
            missing.append("/".join(parts))
        if len(parts) > 1 and f"`{parts[0]}/`" not in table:
            missing.append(parts[0] + "/")
    assert sorted(set(missing)) == []


def test_every_snippet_names_what_it_needs_beyond_all() -> None:
    """A block that imports what ``ttsstream[all]`` does not bring says so in a ``# needs:`` line."""
    brought = set(sys.stdlib_module_names) - {"tkinter"} | {"ttsstream", "numpy"}
    for fence in FENCES:
        if fence.lang == "python":
            imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(fence.code))
                        if isinstance(node, ast.Import) for alias in node.names}
            imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(fence.code))
                         if isinstance(node, ast.ImportFrom) and node.module}
            needs = " ".join(line for line in fence.code.splitlines() if line.startswith("# needs:"))
            assert [name for name in sorted(imported - brought) if name not in needs] == [], \
                f"{fence.page}:{fence.line}"


def test_the_guide_has_a_section_per_integration() -> None:
    headings = {fence.section for fence in FENCES if fence.page == "docs/guide/integrations.md"}
    assert {"In a Tkinter app", "In a game loop", "In Jupyter", "In a plain script"} <= headings


def test_the_command_line_page_has_its_examples_and_exit_codes() -> None:
    text = (DOCS / "guide" / "cli.md").read_text(encoding="utf-8")
    lines = [line for fence in FENCES if fence.page == "docs/guide/cli.md" and fence.lang == "sh"
             for line in fence.code.splitlines()]
    assert len(lines) >= 12
    for needed in ("--out - |", "--param", "--language", "--speed", "voices", "serve", "devices", "--api-key"):
        assert any(needed in line for line in lines), needed
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 130 |", "| 141 |"):
        assert code in text, code


# -- running them -----------------------------------------------------------------------------------



PYTHON = [fence for fence in FENCES if fence.lang == "python" and fence.not_run is None]
SHELL_PAGES = sorted({fence.page for fence in FENCES if fence.lang == "sh" and fence.not_run is None})
CONSOLE = [fence for fence in FENCES if fence.lang == "console" and fence.not_run is None]


def test_there_is_something_to_run() -> None:
    assert len(PYTHON) >= 15 and SHELL_PAGES == ["docs/guide/batch.md", "docs/guide/cli.md"] and len(CONSOLE) >= 1


@pytest.mark.parametrize("fence", PYTHON, ids=_ids(PYTHON))
def test_docs_python_snippet_runs(fence: Fence, screen: str, tmp_path: Path) -> None:
    run_python(fence, tmp_path, screen)


@pytest.mark.skipif(importlib.util.find_spec("pyaudio") is None and not IN_CI, reason="PyAudio is not installed")
@pytest.mark.parametrize("page", SHELL_PAGES)
def test_docs_shell_examples_run(page: str, tmp_path: Path) -> None:
    """Every line of the page's shell blocks, with the console script (see ``doc_snippets.run_shell``)."""
    ran = run_shell([fence for fence in FENCES if fence.page == page and fence.lang == "sh" and fence.not_run is None],
                    tmp_path)
    assert ran
    if any(line.startswith('ttsstream speak "Some text"') and "--no-play" not in line and "--out -" not in line
           for line in ran):
        assert any((tmp_path / "device.raw").read_bytes()), "`ttsstream speak \"Some text\"` played nothing"
    for player in ("aplay", "ffplay"):
        if any(f"| {player}" in line for line in ran):
            assert (tmp_path / f"{player}.in").read_bytes()[:4] == b"RIFF", player


@pytest.mark.parametrize("fence", CONSOLE, ids=_ids(CONSOLE))
def test_docs_console_transcript_matches(fence: Fence, tmp_path: Path) -> None:
    assert run_console(fence, tmp_path) >= 1
