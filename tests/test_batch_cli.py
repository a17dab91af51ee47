"""``ttsstream batch``: exit codes, the summary, ``--json``, and resuming after kill -9.

The command runs in-process through ``main`` where that suffices, and as a real process
(``python -m ttsstream batch``) where it is killed: SIGKILL at seeded random moments,
against a server paced at real time, then a rerun to completion.
"""

from __future__ import annotations

import io
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List, Tuple

import pytest

from ttsstream.batch.manifest import MANIFEST_NAME, Manifest, file_checksum
from ttsstream.batch.work import TEMP_SUFFIX
from ttsstream.cli import main
from ttsstream.cli.args import BATCH_FORMATS
from ttsstream.formats.files import FILE_FORMATS, read_audio
from ttsstream.server import LocalServer
from ttsstream.server.tone import tone_pcm


def run_main(argv: List[str]) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _service(server: LocalServer) -> List[str]:
    return ["--provider", "eigenai", "--url", server.url, "--api-key", "secret-key-123"]


def _pcm(path: Path) -> bytes:
    samples, _ = read_audio(path)
    return samples.astype("<i2").tobytes()


def test_the_formats_offered_are_the_files_written() -> None:
    assert sorted(BATCH_FORMATS) == sorted(FILE_FORMATS)


def test_a_txt_batch_then_a_rerun_that_skips_it_all(server: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "lines.txt"
    source.write_text("One.\nTwo.\n\nFour.\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    code, out, err = run_main(["batch", str(source), "--out-dir", str(out_dir), "--jobs", "2", *_service(server)])
    assert (code, err) == (0, "")
    assert out.startswith("ttsstream batch: 3 done, 0 skipped (finished before), 0 failed")
    assert _pcm(out_dir / "0004.wav") == tone_pcm("Four.")
    code, out, _ = run_main(["batch", str(source), "--out-dir", str(out_dir), *_service(server)])
    assert code == 0 and "0 done, 3 skipped" in out


def test_json_and_a_failed_item_exit_1_then_the_rerun_retries_it(make_server: Any, tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_text('{"id": "short", "text": "Short."}\n'
                      '{"id": "long", "text": "This one is far longer than twenty."}\n', encoding="utf-8")
    strict = make_server(max_text_chars=20)
    argv = ["batch", str(source), "--out-dir", str(tmp_path / "out"), "--format", "raw", "--json"]
    code, out, err = run_main(argv + _service(strict))
    assert code == 1
    summary = json.loads(out)
    assert (summary["ok"], summary["done"], summary["skipped"], summary["failed"]) == (False, 1, 0, 1)
    assert [(f["id"], f["error"]["type"]) for f in summary["failures"]] == [("long", "ServerError")]
    assert "long failed: ServerError" in err and "secret-key-123" not in out + err
    code, out, _ = run_main(argv + _service(make_server()))
    assert code == 0 and json.loads(out)["done"] == 1 and json.loads(out)["skipped"] == 1
    assert (tmp_path / "out" / "long.raw").read_bytes() == tone_pcm("This one is far longer than twenty.")


@pytest.mark.parametrize("argv_tail, words", [
    (["--jobs", "0"], "--jobs"),
    (["--format", "aiff"], "--format"),
    (["--executor", "spark://x:1"], "dask://HOST:PORT"),
])
def test_a_bad_flag_is_exit_2(server: LocalServer, tmp_path: Path, argv_tail: List[str], words: str) -> None:
    source = tmp_path / "a.txt"
    source.write_text("One.\n", encoding="utf-8")
    code, _, err = run_main(["batch", str(source), "--out-dir", str(tmp_path / "o"), *_service(server), *argv_tail])
    assert code == 2 and words in err and not (tmp_path / "o" / "0001.wav").exists()


def test_a_bad_input_file_is_exit_2_naming_the_line(server: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text('{"text": "fine"}\n{"id": "a/b", "text": "x"}\n', encoding="utf-8")
    code, _, err = run_main(["batch", str(source), "--out-dir", str(tmp_path / "o"), *_service(server)])
    assert code == 2 and "a.jsonl line 2" in err and "separator" in err
    code, _, err = run_main(["batch", str(tmp_path / "missing.txt"), "--out-dir", str(tmp_path / "o")])
    assert code == 2 and "no such file" in err
    assert server.transcript == []


def test_the_executor_flag_runs_on_a_dask_scheduler(server: LocalServer, tmp_path: Path) -> None:
    import distributed  # in the [test] extra: missing, it fails rather than skips

    source = tmp_path / "a.txt"
    source.write_text("One.\nTwo.\nThree.\n", encoding="utf-8")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        code, out, err = run_main(["batch", str(source), "--out-dir", str(tmp_path / "o"), "--executor", address,
                                   *_service(server)])
    assert (code, err) == (0, ""), err
    assert "3 done" in out and _pcm(tmp_path / "o" / "0002.wav") == tone_pcm("Two.")


# -- kill -9 at random moments ------------------------------------------------------------


def _check_folder(folder: Path, texts: List[str], final: bool) -> int:
    """Every final-named file is complete (== tone_pcm); with ``final``, all are there,
    no temporary file is left and the manifest agrees. Returns the final files' count."""
    names = {f"{n:04d}.wav": text for n, text in enumerate(texts, start=1)}
    found = [path for path in folder.iterdir() if not path.name.startswith(".")] if folder.exists() else []
    for path in found:
        assert path.name in names, path
        assert _pcm(path) == tone_pcm(names[path.name]), f"{path.name} is not complete"
    if final:
        assert sorted(path.name for path in found) == sorted(names)
        assert [p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []
        manifest = Manifest(folder)
        for name in names:
            entry = manifest.get(name[:-4])
            assert entry is not None and entry.file == name and entry.sha256 == file_checksum(folder / name)
    return len(found)


def test_resume_after_sigkill_at_random_moments(make_server: Any, tmp_path: Path) -> None:
    paced = make_server(realtime=1.0)  # audio no faster than it plays: a kill lands mid-speech
    texts = [f"word {n}" for n in range(60)]  # 0.3 s of audio each: 6 s of work on 3 jobs
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    folder = tmp_path / "out"
    command = [sys.executable, "-m", "ttsstream", "batch", str(source), "--out-dir", str(folder), "--jobs", "3",
               *_service(paced)]
    chance = random.Random(21)
    killed = 0
    for _ in range(6):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            process.wait(timeout=chance.uniform(0.3, 2.0))  # the random moment of the kill
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
        _check_folder(folder, texts, final=False)
    assert killed >= 4, "the process finished before most kills: the kills tested nothing"
    # What the kills left: the rerun finishes it, skipping what was finished.
    result = subprocess.run(command + ["--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["done"] + summary["skipped"] == len(texts) and summary["failed"] == 0
    assert _check_folder(folder, texts, final=True) == len(texts)
    lines = (folder / MANIFEST_NAME).read_bytes().split(b"\n")
    assert all(line == b"" or line.startswith(b"{") for line in lines)
    again = subprocess.run(command + ["--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["skipped"] == len(texts)


def test_sigterm_ends_a_batch_cleanly_and_the_rerun_finishes_it(make_server: Any, tmp_path: Path) -> None:
    paced = make_server(realtime=1.0)
    texts = [f"word {n}" for n in range(60)]
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    folder = tmp_path / "out"
    command = [sys.executable, "-m", "ttsstream", "batch", str(source), "--out-dir", str(folder), "--jobs", "3",
               *_service(paced)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:  # the signal: once the batch is under way
        if folder.is_dir() and any(p.name.endswith(TEMP_SUFFIX) for p in folder.iterdir()):
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err  # the handler ran, mid-batch
    assert "terminated (SIGTERM)" in err
    # The cancelled speeches' temporary files went with them.
    assert [p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []
    done_before = _check_folder(folder, texts, final=False)
    assert done_before < len(texts)
    result = subprocess.run(command + ["--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and json.loads(result.stdout)["skipped"] == done_before
    _check_folder(folder, texts, final=True)
