"""ttsstream.batch: items from every input, exact files, resuming, failures, long texts and executors.

Every test runs a real bundled server (tone engine: exact audio) on a loopback port;
files are read back and compared with ``tone_pcm`` to the byte.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

import ttsstream
from ttsstream.batch import Item, Progress, as_items, read_items
from ttsstream.batch.items import MAX_ID_CHARS, check_id
from ttsstream.batch.manifest import MANIFEST_NAME, Manifest, file_checksum
from ttsstream.batch.run import _workers
from ttsstream.batch.work import TEMP_SUFFIX, temp_name
from ttsstream.formats.files import read_audio
from ttsstream.server import LocalServer
from ttsstream.server.tone import tone_pcm

TEXTS = ["Hello there.", "A second line", "Third, and last!"]


def _args(server: LocalServer) -> Dict[str, Any]:
    return {"provider": "eigenai", "url": server.url, "api_key": "test-key"}


def _pcm(path: Path, format: str = "wav") -> bytes:
    samples, rate = read_audio(path, format)
    assert rate == 24000
    return samples.astype("<i2").tobytes()


def _spoken(server: LocalServer) -> List[str]:
    return [utterance.text for utterance in server.transcript]


def _audio_files(folder: Path) -> List[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


# -- inputs ---------------------------------------------------------------------------------


def test_a_txt_file_one_text_per_line_blank_lines_skipped(server: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "book.txt"
    source.write_text("Hello there.\n\n  A second line  \n", encoding="utf-8")
    result = ttsstream.batch(source, tmp_path / "out", **_args(server))
    assert result.ok and sorted(result.done) == ["0001", "0003"]
    assert _audio_files(tmp_path / "out") == ["0001.wav", "0003.wav"]
    assert _pcm(tmp_path / "out" / "0001.wav") == tone_pcm("Hello there.")
    assert _pcm(tmp_path / "out" / "0003.wav") == tone_pcm("A second line")


def test_a_jsonl_file_with_ids_voices_and_parameters(server: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "data.jsonl"
    lines = [{"id": "greeting", "text": "Hello there.", "voice": "Linda"},
             {"text": "No id here"},
             {"id": 7, "text": "Numbered", "sampling": {"temperature": 0.5}}]
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    assert read_items(source) == [Item("greeting", "Hello there.", "Linda"), Item("0002", "No id here"),
                                  Item("7", "Numbered", None, {"sampling": {"temperature": 0.5}})]
    result = ttsstream.batch(str(source), tmp_path / "out", **_args(server))
    assert result.ok and sorted(result.done) == ["0002", "7", "greeting"]
    for name, text in (("greeting", "Hello there."), ("0002", "No id here"), ("7", "Numbered")):
        assert _pcm(tmp_path / "out" / f"{name}.wav") == tone_pcm(text)


def test_a_csv_file_with_a_header_row(server: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "deck.csv"
    source.write_text('id,text,voice\ncat,"Cat, the animal",\ndog,Dog,Linda\n', encoding="utf-8")
    assert read_items(source) == [Item("cat", "Cat, the animal"), Item("dog", "Dog", "Linda")]
    result = ttsstream.batch(source, tmp_path / "out", format="raw", **_args(server))
    assert result.ok and sorted(result.done) == ["cat", "dog"]
    assert (tmp_path / "out" / "cat.raw").read_bytes() == tone_pcm("Cat, the animal")
    assert (tmp_path / "out" / "dog.raw").read_bytes() == tone_pcm("Dog")


def test_a_csv_without_a_text_column_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "deck.csv"
    source.write_text("id,words\na,b\n", encoding="utf-8")
    with pytest.raises(ttsstream.InvalidParameterError, match=r"deck\.csv line 1: .*'text' column"):
        read_items(source)


def test_python_strings_and_dicts(server: LocalServer, tmp_path: Path) -> None:
    result = ttsstream.batch(["Hello there.", {"id": "b", "text": "A second line"}], tmp_path, jobs=2,
                             **_args(server))
    assert result.ok and sorted(result.done) == ["0001", "b"] and result.skipped == [] and result.failed == []
    assert _pcm(tmp_path / "0001.wav") == tone_pcm("Hello there.")
    assert _pcm(tmp_path / "b.wav") == tone_pcm("A second line")
    assert "done=2" in repr(result) and "test-key" not in repr(result)


@pytest.mark.parametrize("bad, reason", [
    ("a/b", "path separator"), ("..", "starts with '.'"), (".hidden", "starts with '.'"), ("a\\b", "separator"),
    ("nul\x00here", "control character"), ("tab\there", "control character"), ("", "empty"),
    ("x" * (MAX_ID_CHARS + 1), "characters long"), (" padded", "space"), (True, "string or a whole number"),
])
def test_an_unsafe_id_is_refused_naming_the_line(bad: Any, reason: str) -> None:
    with pytest.raises(ttsstream.InvalidParameterError, match=r"^items\.jsonl line 4: ") as caught:
        check_id(bad, "items.jsonl line 4")
    assert reason in caught.value.message


def test_an_unsafe_id_in_a_file_stops_the_batch_before_anything_is_spoken(server: LocalServer,
                                                                         tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_text('{"id": "ok", "text": "fine"}\n{"id": "../escape", "text": "bad"}\n', encoding="utf-8")
    with pytest.raises(ttsstream.InvalidParameterError, match=r"items\.jsonl line 2: .*separator"):
        ttsstream.batch(source, tmp_path / "out", **_args(server))
    assert _spoken(server) == []


def test_a_repeated_id_is_refused() -> None:
    with pytest.raises(ttsstream.InvalidParameterError, match=r"'a' is used twice \(items 1 and 3\)"):
        as_items([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}])


# -- resuming -------------------------------------------------------------------------------


def test_a_rerun_skips_everything(server: LocalServer, tmp_path: Path) -> None:
    first = ttsstream.batch(TEXTS, tmp_path, **_args(server))
    spoken = len(_spoken(server))
    second = ttsstream.batch(TEXTS, tmp_path, **_args(server))
    assert len(first.done) == 3 and second.done == [] and sorted(second.skipped) == ["0001", "0002", "0003"]
    assert len(_spoken(server)) == spoken


def test_a_changed_text_or_voice_redoes_only_what_changed(server: LocalServer, tmp_path: Path) -> None:
    ttsstream.batch(TEXTS, tmp_path, **_args(server))
    changed = [TEXTS[0], "A changed line", TEXTS[2]]
    again = ttsstream.batch(changed, tmp_path, **_args(server))
    assert again.done == ["0002"] and sorted(again.skipped) == ["0001", "0003"]
    assert _pcm(tmp_path / "0002.wav") == tone_pcm("A changed line")
    one_voice = [TEXTS[0], {"text": "A changed line", "voice": "Vivian"}, TEXTS[2]]
    assert ttsstream.batch(one_voice, tmp_path, **_args(server)).done == ["0002"]
    everyone = ttsstream.batch(one_voice, tmp_path, voice="Linda", **_args(server))
    assert sorted(everyone.done) == ["0001", "0003"]  # item 2 names its own voice


def test_a_file_changed_on_disk_is_redone(server: LocalServer, tmp_path: Path) -> None:
    ttsstream.batch(TEXTS, tmp_path, **_args(server))
    (tmp_path / "0003.wav").write_bytes(b"RIFF broken")
    (tmp_path / "0001.wav").unlink()
    again = ttsstream.batch(TEXTS, tmp_path, **_args(server))
    assert sorted(again.done) == ["0001", "0003"] and again.skipped == ["0002"]
    assert _pcm(tmp_path / "0003.wav") == tone_pcm(TEXTS[2])


def test_a_final_file_the_manifest_lacks_is_adopted_not_redone(server: LocalServer, tmp_path: Path) -> None:
    # What a killed caller leaves when a worker renamed a file whose report never came back.
    ttsstream.batch(TEXTS, tmp_path, **_args(server))
    lines = (tmp_path / MANIFEST_NAME).read_text(encoding="ascii").splitlines()
    (tmp_path / MANIFEST_NAME).write_text("\n".join(line for line in lines if '"0002"' not in line) + "\n",
                                          encoding="ascii")
    (tmp_path / "0003.wav").write_bytes(b"")  # not audio: redone, not adopted
    spoken = len(_spoken(server))
    again = ttsstream.batch(TEXTS, tmp_path, **_args(server))
    assert again.done == ["0003"] and sorted(again.skipped) == ["0001", "0002"]
    assert _spoken(server)[spoken:] == [TEXTS[2]]
    entry = Manifest(tmp_path).get("0002")
    assert entry is not None and entry.sha256 == file_checksum(tmp_path / "0002.wav") and entry.duration > 0


def test_stale_temporary_files_are_removed(server: LocalServer, tmp_path: Path) -> None:
    ttsstream.batch(TEXTS, tmp_path, **_args(server))
    stale = tmp_path / temp_name("0001", "wav")  # an item a killed run was changing; now finished
    stale.write_bytes(b"half a file")
    mine = tmp_path / ".notes.ttsstream-parts"  # not ours: left alone
    mine.write_text("keep", encoding="utf-8")
    ttsstream.batch(TEXTS, tmp_path, **_args(server))
    assert not stale.exists() and mine.exists()
    assert [name for name in os.listdir(tmp_path) if name.endswith(TEMP_SUFFIX)] == []


def test_a_torn_manifest_line_is_ignored_and_the_next_line_stands_alone(server: LocalServer,
                                                                       tmp_path: Path) -> None:
    ttsstream.batch(TEXTS[:2], tmp_path, **_args(server))
    with open(tmp_path / MANIFEST_NAME, "ab") as file:
        file.write(b'{"id":"0003","text_hash":"ab')  # a kill -9 in the middle of a line
    again = ttsstream.batch(TEXTS, tmp_path, **_args(server))
    assert again.done == ["0003"]
    manifest = Manifest(tmp_path)
    assert [manifest.get(name) is not None for name in ("0001", "0002", "0003")] == [True, True, True]
    assert ttsstream.batch(TEXTS, tmp_path, **_args(server)).done == []


# -- failures -------------------------------------------------------------------------------


def test_a_refused_item_is_listed_and_retried_by_the_next_run(make_server: Any, tmp_path: Path) -> None:
    strict = make_server(max_text_chars=20)
    texts = ["Short one.", "This text is longer than twenty characters.", "Short two."]
    first = ttsstream.batch(texts, tmp_path, **_args(strict))
    assert not first.ok and sorted(first.done) == ["0001", "0003"]
    assert [(item_id, type(error)) for item_id, error in first.failed] == [("0002", ttsstream.ServerError)]
    assert "20" in first.failed[0][1].message and "failed=1" in repr(first)
    assert _audio_files(tmp_path) == ["0001.wav", "0003.wav"]
    lenient = make_server()
    second = ttsstream.batch(texts, tmp_path, **_args(lenient))
    assert second.ok and second.done == ["0002"] and sorted(second.skipped) == ["0001", "0003"]
    assert _pcm(tmp_path / "0002.wav") == tone_pcm(texts[1])


def test_a_bad_parameter_fails_its_item_only(server: LocalServer, tmp_path: Path) -> None:
    result = ttsstream.batch(["fine", {"text": "bad", "no_such_parameter": 1}], tmp_path, **_args(server))
    assert result.done == ["0001"] and [type(e) for _, e in result.failed] == [ttsstream.InvalidParameterError]


def test_bad_arguments_raise_before_anything_is_spoken(server: LocalServer, tmp_path: Path) -> None:
    with pytest.raises(ttsstream.InvalidParameterError, match="format"):
        ttsstream.batch(TEXTS, tmp_path, format="aiff", **_args(server))
    with pytest.raises(ttsstream.InvalidParameterError, match="jobs"):
        ttsstream.batch(TEXTS, tmp_path, jobs=0, **_args(server))
    with pytest.raises(ttsstream.InvalidParameterError, match=r"\.docx"):
        ttsstream.batch(str(tmp_path / "book.docx"), tmp_path, **_args(server))
    assert _spoken(server) == []


# -- progress -------------------------------------------------------------------------------


def test_progress_after_each_item_on_the_callers_thread(server: LocalServer, tmp_path: Path) -> None:
    import threading

    seen: List[Any] = []
    ttsstream.batch(TEXTS[:2], tmp_path, **_args(server))
    result = ttsstream.batch(TEXTS, tmp_path, progress=lambda p: seen.append((p, threading.get_ident())),
                             **_args(server))
    assert [tuple(p)[:4] for p, _ in seen] == [(3, 0, 1, 0), (3, 0, 2, 0), (3, 1, 2, 0)]
    assert {ident for _, ident in seen} == {threading.get_ident()}
    last: Progress = seen[-1][0]
    assert last.audio_seconds == pytest.approx(result.audio_seconds) and last.audio_seconds > 0


def test_a_progress_callback_that_raises_does_not_stop_the_batch(server: LocalServer, tmp_path: Path) -> None:
    def broken(progress: Progress) -> None:
        raise RuntimeError("a display's bug")

    assert ttsstream.batch(TEXTS, tmp_path, progress=broken, **_args(server)).ok


# -- long texts -----------------------------------------------------------------------------


def test_a_long_item_is_one_file_of_its_units_in_order(server: LocalServer, tmp_path: Path) -> None:
    sentences = [f"Sentence number {n} of the chapter goes on a little." for n in range(450)]
    chapter = " ".join(sentences)
    assert len(chapter) > 20000
    result = ttsstream.batch([{"id": "chapter", "text": chapter}], tmp_path, **_args(server))
    assert result.ok and result.done == ["chapter"] and _audio_files(tmp_path) == ["chapter.wav"]
    sent = _spoken(server)
    with ttsstream.TTSClient(**_args(server)) as client:  # the units, in order, as the client cuts them
        units = [segment.text.strip() for segment in client.speak(chapter).segments]
    assert len(units) > 1 and " ".join(units).split() == chapter.split()
    assert sorted(sent) == sorted(units)
    assert _pcm(tmp_path / "chapter.wav") == b"".join(tone_pcm(unit) for unit in units)


# -- executors ------------------------------------------------------------------------------


def _check_batch_of_ten(result: Any, folder: Path, texts: List[str]) -> None:
    assert result.ok, result.failed
    assert sorted(result.done) == [f"{n:04d}" for n in range(1, len(texts) + 1)]
    for number, text in enumerate(texts, start=1):
        assert _pcm(folder / f"{number:04d}.wav") == tone_pcm(text)
    manifest = Manifest(folder)
    assert len(manifest) == len(texts)


def test_a_thread_pool_executor(server: LocalServer, tmp_path: Path) -> None:
    texts = [f"item {n}" for n in range(10)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as executor:
        result = ttsstream.batch(texts, tmp_path, executor=executor, **_args(server))
    _check_batch_of_ten(result, tmp_path, texts)
    assert ttsstream.batch(texts, tmp_path, **_args(server)).done == []


def test_a_process_pool_executor_spawned(server: LocalServer, tmp_path: Path) -> None:
    texts = [f"item {n}" for n in range(10)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as executor:
        result = ttsstream.batch(texts, tmp_path, executor=executor, **_args(server))
        # An item's error in a worker process comes back typed, with its message.
        failed = ttsstream.batch([{"text": "bad", "no_such_parameter": 1}], tmp_path / "other", executor=executor,
                                 **_args(server))
    _check_batch_of_ten(result, tmp_path, texts)
    assert [(item_id, type(error)) for item_id, error in failed.failed] == [("0001", ttsstream.InvalidParameterError)]
    assert "no_such_parameter" in failed.failed[0][1].message


def test_a_dask_cluster_with_two_worker_processes(server: LocalServer, tmp_path: Path) -> None:
    import distributed  # in the [test] extra: missing, it fails rather than skips
    texts = [f"item {n}" for n in range(10)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        executor = client.get_executor()
        assert _workers(executor) == 2  # asked of the scheduler: chunks of ceil(10 / 8) = 2 items
        result = ttsstream.batch(texts, tmp_path, executor=executor, **_args(server))
    _check_batch_of_ten(result, tmp_path, texts)


def _lost(*args: Any) -> None:
    raise RuntimeError(f"worker lost while holding {args[-1]['api_key']}")


class _LosingExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor whose every task dies, as a lost worker's would."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[Any]":
        return super().submit(_lost, *args)


def test_a_chunk_the_executor_loses_fails_its_items_and_the_rerun_retries(server: LocalServer,
                                                                          tmp_path: Path) -> None:
    with _LosingExecutor(max_workers=2) as executor:
        assert _workers(executor) == 2
        lost = ttsstream.batch(TEXTS, tmp_path, executor=executor, **_args(server))
    assert sorted(item_id for item_id, _ in lost.failed) == ["0001", "0002", "0003"] and lost.done == []
    message = lost.failed[0][1].message
    assert "worker lost" in message and "rerun" in message and "test-key" not in message
    again = ttsstream.batch(TEXTS, tmp_path, **_args(server))
    assert sorted(again.done) == ["0001", "0002", "0003"]
