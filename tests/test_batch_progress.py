"""A batch's progress: the tqdm bar on a terminal and in a notebook, nothing in a pipe,
and a callable that sees every step.

The command runs as a process with its stderr on a real pseudo-terminal (or a pipe);
the notebook is a real Jupyter kernel (nbclient); the batches speak to the bundled server
over loopback (tone engine). Where tqdm must be missing, the child process runs with
``tests/blocker`` on its path, as on a machine without the ``batch`` extra.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import ttsstream
from ttsstream.batch import Progress
from ttsstream.batch.progress import ProgressBar, shown, watched
from ttsstream.errors import InvalidParameterError, TTSError
from ttsstream.server import tone_pcm

from processes import read_pty, reaped

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # a hang guard, not a performance bound
TEXTS = [f"Line {n}." for n in range(12)]
# What tqdm draws last: "batch: 100%|██████████| 12/12 [00:00<00:00, 30.1item/s, 8.4 s audio]".
BAR = re.compile(r"batch: +(\d+)%\|[^|]*\| (\d+)/(\d+) \[[^\]]*item/s(?:, ([^\]]*))?\]")


def child_env(blocked: str = "") -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EIGENAI_API_KEY", "SHUNYALABS_API_KEY", "CI")}
    path = [str(REPO)] + ([str(REPO / "tests" / "blocker")] if blocked else [])
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["TTSSTREAM_TEST_BLOCK"] = blocked
    env["COLUMNS"] = "120"
    return env


def on_a_terminal(args: List[str], cwd: Path, blocked: str = "",
                  size: Optional[Tuple[int, int]] = None) -> Tuple[int, str, str]:
    """Run ``args`` with stderr on a pseudo-terminal of ``size`` (columns, lines; None
    leaves it 0 x 0, as nobody sized it); (exit code, stdout, what the terminal got)."""
    master, slave = os.openpty()
    if size is not None:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    try:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                                 cwd=str(cwd), env=child_env(blocked))
    finally:
        os.close(slave)
    screen = b""
    try:
        with reaped(child):
            assert child.stdout is not None
            out = b""
            deadline = time.monotonic() + TIMEOUT
            # Read both while it runs: a terminal that is not read stops its writer.
            while child.poll() is None and time.monotonic() < deadline:
                ready = select.select([master, child.stdout], [], [], 0.5)[0]
                if master in ready:
                    screen += read_pty(master)
                if child.stdout in ready:
                    out += os.read(child.stdout.fileno(), 65536)
            code = child.wait(5)
            out += child.stdout.read()
            screen += read_pty(master)
    finally:
        os.close(master)
    return code, out.decode(), screen.decode(errors="replace")


def write_texts(folder: Path) -> Path:
    path = folder / "lines.txt"
    path.write_text("".join(text + "\n" for text in TEXTS), encoding="utf-8")
    return path


def cli(*args: str) -> List[str]:
    return [sys.executable, "-m", "ttsstream", "batch", *args]


def draws(screen: str) -> List[re.Match]:
    return list(BAR.finditer(screen.replace("\r", "\n")))


def assert_files(out_dir: Path) -> None:
    found = sorted(path.name for path in out_dir.glob("*.wav"))
    assert found == [f"{n:04d}.wav" for n in range(1, len(TEXTS) + 1)], found


# -- the command ---------------------------------------------------------------------------------


# 0 x 0: a pseudo-terminal nobody sized (script, docker run -t), where tqdm on its own drew nothing.
@pytest.mark.parametrize("size", [(100, 30), None], ids=["100x30", "unsized"])
def test_on_a_terminal_the_command_draws_a_tqdm_bar_that_reaches_100_percent(
        server, tmp_path: Path, size: Optional[Tuple[int, int]]) -> None:
    write_texts(tmp_path)
    code, out, screen = on_a_terminal(cli("lines.txt", "--out-dir", "out", "--url", server.eigenai_url), tmp_path,
                                      size=size)
    assert code == 0, screen
    assert_files(tmp_path / "out")
    bars = draws(screen)
    assert bars, screen
    last = bars[-1]
    assert (last.group(1), last.group(2), last.group(3)) == ("100", "12", "12"), last.group(0)
    seconds = sum(len(tone_pcm(text)) / 2 / 24000 for text in TEXTS)
    assert last.group(4) == f"{seconds:.1f} s audio", last.group(0)
    assert "12 done, 0 skipped" in out
    if size is not None:  # tqdm follows the terminal's width
        assert max(len(line) for line in screen.split("\r")) <= 100


def test_a_rerun_on_a_terminal_shows_every_item_skipped(server, tmp_path: Path) -> None:
    write_texts(tmp_path)
    args = cli("lines.txt", "--out-dir", "out", "--url", server.eigenai_url)
    assert on_a_terminal(args, tmp_path)[0] == 0
    code, out, screen = on_a_terminal(args, tmp_path)
    assert code == 0, screen
    last = draws(screen)[-1]
    assert (last.group(1), last.group(2), last.group(4)) == ("100", "12", "0.0 s audio, 12 skipped"), last.group(0)


def test_in_a_pipe_the_command_draws_no_bar_and_prints_its_summary(server, tmp_path: Path) -> None:
    write_texts(tmp_path)
    done = subprocess.run(cli("lines.txt", "--out-dir", "out", "--url", server.eigenai_url), cwd=str(tmp_path),
                          env=child_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert_files(tmp_path / "out")
    assert done.stderr == "" and "\r" not in done.stdout, (done.stdout, done.stderr)
    assert done.stdout.startswith("ttsstream batch: 12 done, 0 skipped (finished before), 0 failed")


def test_with_json_the_command_draws_nothing_even_on_a_terminal(server, tmp_path: Path) -> None:
    write_texts(tmp_path)
    code, out, screen = on_a_terminal(cli("lines.txt", "--out-dir", "out", "--url", server.eigenai_url, "--json"),
                                      tmp_path)
    assert code == 0, screen
    assert screen == "" and json.loads(out)["done"] == 12


def test_without_tqdm_the_command_on_a_terminal_still_works_without_a_bar(server, tmp_path: Path) -> None:
    write_texts(tmp_path)
    code, out, screen = on_a_terminal(cli("lines.txt", "--out-dir", "out", "--url", server.eigenai_url), tmp_path,
                                      blocked="tqdm")
    assert code == 0, screen
    assert_files(tmp_path / "out")
    assert screen == "" and "12 done" in out


# -- Python --------------------------------------------------------------------------------------


def test_a_callable_gets_monotone_progress_on_the_callers_thread(server, tmp_path: Path) -> None:
    seen: List[Tuple[Progress, int]] = []
    result = ttsstream.batch(TEXTS, tmp_path, jobs=4, url=server.eigenai_url,
                             progress=lambda state: seen.append((state, threading.get_ident())))
    assert result.ok and len(result.done) == len(TEXTS)
    assert {ident for _, ident in seen} == {threading.get_ident()}
    states = [state for state, _ in seen]
    assert len(states) == len(TEXTS) and {state.total for state in states} == {len(TEXTS)}
    for before, after in zip(states, states[1:]):
        assert after.done + after.failed == before.done + before.failed + 1, (before, after)
        assert after.audio_seconds >= before.audio_seconds and after.elapsed >= before.elapsed
    assert states[-1].audio_seconds == pytest.approx(result.audio_seconds)
    assert (states[-1].done, states[-1].skipped, states[-1].failed) == (len(TEXTS), 0, 0)

    again: List[Progress] = []
    ttsstream.batch(TEXTS, tmp_path, url=server.eigenai_url, progress=again.append)
    assert [state.skipped for state in again] == list(range(1, len(TEXTS) + 1))
    assert {(state.done, state.failed, state.audio_seconds) for state in again} == {(0, 0, 0.0)}


SCRIPT = """
import sys, ttsstream
result = ttsstream.batch({texts!r}, "out", url={url!r}, progress={progress})
print(result.ok, len(result.done), "tqdm" in sys.modules)
"""


def run_script(tmp_path: Path, url: str, progress: str, blocked: str = "") -> "subprocess.CompletedProcess[str]":
    script = SCRIPT.format(texts=TEXTS, url=url, progress=progress)
    return subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env=child_env(blocked),
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_by_default_python_draws_a_bar_on_a_terminal_and_imports_no_tqdm_in_a_pipe(server, tmp_path: Path) -> None:
    script = SCRIPT.format(texts=TEXTS, url=server.eigenai_url, progress="None")
    code, out, screen = on_a_terminal([sys.executable, "-c", script], tmp_path)
    assert code == 0 and out.split() == ["True", "12", "True"], (out, screen)
    assert draws(screen)[-1].group(1) == "100", screen

    (tmp_path / "second").mkdir()
    piped = run_script(tmp_path / "second", server.eigenai_url, "None")
    assert piped.returncode == 0 and piped.stdout.split() == ["True", "12", "False"], piped.stderr
    assert piped.stderr == ""


def test_progress_true_draws_in_a_pipe_too_and_false_draws_nothing_on_a_terminal(server, tmp_path: Path) -> None:
    forced = run_script(tmp_path, server.eigenai_url, "True")
    assert forced.returncode == 0, forced.stderr
    assert draws(forced.stderr)[-1].group(0).startswith("batch: 100%|"), forced.stderr
    script = SCRIPT.format(texts=TEXTS, url=server.eigenai_url, progress="False")
    (tmp_path / "second").mkdir()
    code, out, screen = on_a_terminal([sys.executable, "-c", script], tmp_path / "second")
    assert code == 0 and out.split() == ["True", "12", "False"] and screen == "", (out, screen)


def test_progress_true_without_tqdm_says_what_to_install_before_speaking(server, tmp_path: Path) -> None:
    done = run_script(tmp_path, server.eigenai_url, "True", blocked="tqdm")
    assert done.returncode == 1
    assert 'TTSError: progress=True needs tqdm: pip install "ttsstream[batch]"' in done.stderr, done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.wav"))
    assert server.transcript == []
    quiet = run_script(tmp_path, server.eigenai_url, "None", blocked="tqdm")
    assert quiet.returncode == 0 and quiet.stdout.split() == ["True", "12", "False"], quiet.stderr


# -- the display itself, fed by hand --------------------------------------------------------------


def feed(states: List[Progress]) -> str:
    screen = io.StringIO()
    with ProgressBar(screen) as bar:
        for state in states:
            bar(state)
    bar.close()  # safe twice
    return screen.getvalue()


def test_the_bar_counts_every_item_and_says_audio_skips_and_failures() -> None:
    states = [Progress(10, 0, 4, 0, 0.0, 0.0)]
    states += [Progress(10, n, 4, 1 if n > 3 else 0, 0.5 * n, 0.1 * n) for n in range(1, 6)]
    last = draws(feed(states))[-1]
    assert (last.group(1), last.group(2), last.group(3)) == ("100", "10", "10"), last.group(0)
    assert last.group(4) == "2.5 s audio, 4 skipped, 1 failed"


def test_skipped_items_count_towards_the_bar_but_not_its_rate() -> None:
    screen = io.StringIO()
    bar = ProgressBar(screen)
    bar(Progress(100, 0, 90, 0, 0.0, 0.0))
    bar(Progress(100, 5, 90, 0, 1.5, 1.0))
    state = bar._bar.format_dict
    bar.close()
    # tqdm's rate is (n - initial) / elapsed: the 90 skipped are the bar's start, not its speed.
    assert (state["n"], state["initial"], state["total"]) == (95, 90, 100)


@pytest.mark.parametrize("progress, expected", [(False, None), (None, None), (True, ProgressBar)])
def test_shown_turns_the_argument_into_a_reporter(progress: Optional[bool], expected: Any) -> None:
    screen = io.StringIO()  # not a terminal, and pytest's process is no notebook
    assert not watched(screen)
    with shown(progress, screen) as report:
        assert (report is None) if expected is None else isinstance(report, expected)


def test_shown_passes_a_callable_through_and_refuses_anything_else() -> None:
    seen: List[Progress] = []
    with shown(seen.append) as report:
        assert report == seen.append
    with pytest.raises(InvalidParameterError, match="progress must be") as caught:
        with shown("yes"):  # type: ignore[arg-type]
            pass
    assert caught.value.parameter == "progress"
    assert issubclass(InvalidParameterError, TTSError)


# -- a notebook ----------------------------------------------------------------------------------


def test_in_a_notebook_the_default_is_a_bar(server, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    code = f"import ttsstream\nresult = ttsstream.batch({TEXTS!r}, 'out', url={server.eigenai_url!r})\nresult.ok"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    client = NotebookClient(notebook, kernel_name="python3", timeout=TIMEOUT,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=child_env())
    outputs = notebook.cells[0].outputs
    assert [o["data"]["text/plain"] for o in outputs if o["output_type"] == "execute_result"] == ["True"]
    widgets = [o for o in outputs if o["output_type"] == "display_data"
               and "application/vnd.jupyter.widget-view+json" in o["data"]]
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr")
    # With ipywidgets, tqdm's widget; without, its text bar (and tqdm's hint to install them).
    assert widgets or draws(text)[-1].group(1) == "100", outputs
    assert_files(tmp_path / "out")
