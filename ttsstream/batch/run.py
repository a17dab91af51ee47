"""The batch runner: ``batch()`` speaks many texts to files, resumably, on threads of
one client or on any ``concurrent.futures.Executor``.

This module owns ``batch`` and the plan of a run: which items are finished (skipped),
which final-named files are adopted, which are spoken, and the order of the steps that
makes a kill -9 harmless (temporary file, fsync, manifest line, rename). The manifest is
written here only, on the caller's thread; ``progress`` is called there too.

Imports the public API only (``TTSClient``, the errors, ``formats.files``) and the
batch's own modules; never connections, the pool or the wire.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ..client import TTSClient
from ..errors import InvalidParameterError, TTSError
from ..formats.files import check_format
from .items import Item, as_items, read_items
from .manifest import Entry, Manifest, file_checksum, settings_hash, text_hash
from .progress import shown
from .result import BatchResult, Progress
from .work import Outcome, adopt, final_name, remove_stale, speak_chunk, speak_to_temp

__all__ = ["batch", "ProgressCallback"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], Any]
ItemsSource = Union[str, "os.PathLike[str]", Iterable[Union[str, Item, Mapping[str, Any]]]]

MAX_JOBS = 256
# Waits are cut into slices so that Ctrl-C reaches the caller's thread promptly.
_SLICE = 0.25
# Chunks per worker of an executor: enough that a slow chunk does not leave the others idle.
_CHUNKS_PER_WORKER = 4
# The client arguments that shape the audio, beside the item's own voice and parameters.
_SHAPING = ("provider", "model", "voice", "output")


def batch(items: ItemsSource, out_dir: Union[str, "os.PathLike[str]"], *, jobs: int = 4, format: str = "wav",
          executor: Optional[concurrent.futures.Executor] = None,
          progress: Union[None, bool, ProgressCallback] = None,
          **client_args: Any) -> BatchResult:
    """Speak many texts to files in ``out_dir``, one file per item, named by its id.

    A rerun skips the items finished before (same text, same settings, file intact),
    redoes what changed, retries what failed, and removes the temporary files a killed
    run left. No partial file is ever left under a final name. The manifest
    (``.ttsstream-batch.jsonl`` in ``out_dir``) says what is finished.

    Args:
        items: strings, dicts (``text``, optional ``id``, ``voice`` and model
            parameters) or ``Item``s; or the path of a ``.txt``, ``.jsonl`` or ``.csv``
            file (see ``read_items``). Items without an id are numbered from 1 (``0001``).
        out_dir: where the files go (made if missing).
        jobs: speeches at once, on one client (sharing its pool and ``max_concurrent``).
            Ignored with ``executor``.
        format: the files' format: ``"wav"``, ``"flac"``, ``"ogg"``, ``"opus"``, ``"mp3"``
            or ``"raw"``; it is also the files' extension.
        executor: any ``concurrent.futures.Executor`` (a process pool, a Dask client's
            ``get_executor()``): the items go to it in chunks, each worker with its own
            client made from ``client_args``; workers must see ``out_dir`` (one machine,
            or a shared file system).
        progress: None (the default): a progress bar when someone is watching (standard
            error is a terminal, or this is a notebook) and tqdm is installed
            (``pip install "ttsstream[batch]"``), else nothing; True: a bar always;
            False: nothing; a callable: called with a ``Progress`` after each item, on
            the caller's thread (it must return quickly).
        **client_args: passed to ``TTSClient`` (``provider``, ``model``, ``voice``,
            ``url``, ``api_key``, ``fallback``, ``max_concurrent``, ``cache``, ...).

    Returns:
        A ``BatchResult``: ``done``, ``skipped``, ``failed`` (``(id, error)``), ``ok``.

    Raises:
        InvalidParameterError: bad items (the message names the line), ``jobs``,
            ``format`` or client arguments; nothing is spoken.
        TTSError: the format needs a missing package, or ``progress=True`` needs tqdm.
        OSError: ``out_dir`` or its manifest cannot be made or written.

    Thread: the caller's; it waits until every item is finished or failed.
    """
    chosen = check_format(None, format)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise InvalidParameterError(f"jobs must be a whole number from 1 to {MAX_JOBS}, got {jobs!r}",
                                    parameter="jobs")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise InvalidParameterError(f"progress must be a callable, None or False, got {type(progress).__name__}",
                                    parameter="progress")
    listed = read_items(items) if isinstance(items, (str, os.PathLike)) else as_items(items)
    folder = os.fspath(out_dir)
    os.makedirs(folder, exist_ok=True)
    with shown(progress) as report:  # a bar is drawn here, and closed however the batch ends
        run = _Run(listed, folder, chosen, client_args, report)
        client = TTSClient(**client_args)  # checks the arguments before anything is spoken
        try:
            todo = run.plan()
            if executor is None:
                run.on_threads(client, todo, jobs)
            else:
                client.close()
                run.on_executor(executor, todo)
        finally:
            client.close()
    return run.result()


class _Run:
    """One run of a batch. Thread: the caller's only (the manifest and the counts)."""

    def __init__(self, items: List[Item], out_dir: str, format: str, client_args: Dict[str, Any],
                 progress: Optional[ProgressCallback]) -> None:
        self._items = items
        self._out_dir = out_dir
        self._format = format
        self._client_args = client_args
        self._progress = progress
        self._manifest = Manifest(out_dir)
        self._hashes: Dict[str, Tuple[str, str]] = {item.id: self._hashes_of(item) for item in items}
        self._result = BatchResult(out_dir=out_dir)
        self._started = time.monotonic()

    def plan(self) -> List[Item]:
        """Skip the finished items, adopt what a killed run renamed; return what is left to speak."""
        removed = remove_stale(self._out_dir)
        if removed:
            log.info("removed %d temporary files a stopped run left in %s", removed, self._out_dir)
        todo = []
        for item in self._items:
            if self._finished(item):
                self._result.skipped.append(item.id)
                self._tell()
            else:
                todo.append(item)
        return todo

    def on_threads(self, client: TTSClient, todo: Sequence[Item], jobs: int) -> None:
        """Speak ``todo`` on ``jobs`` threads sharing ``client``; record and rename here."""
        if not todo:
            return
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(jobs, len(todo)),
                                                     thread_name_prefix="ttsstream-batch")
        waiting: Iterator[Item] = iter(todo)
        pending: Dict["concurrent.futures.Future[Outcome]", Item] = {}
        try:
            while True:
                # A window of work, not all of it: a million items stay a million small objects.
                while len(pending) < 2 * jobs:
                    item = next(waiting, None)
                    if item is None:
                        break
                    pending[pool.submit(speak_to_temp, client, item, self._out_dir, self._format)] = item
                if not pending:
                    break
                finished, _ = concurrent.futures.wait(pending, timeout=_SLICE,
                                                      return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    item = pending.pop(future)
                    self._finish(item, future.result(), renamed=False)
        finally:
            for future in pending:
                future.cancel()
            client.close()  # ends running speeches at once (Cancelled), so the threads finish
            pool.shutdown(wait=True)

    def on_executor(self, executor: concurrent.futures.Executor, todo: Sequence[Item]) -> None:
        """Ship ``todo`` to ``executor`` in chunks; record the outcomes as they come back."""
        if not todo:
            return
        size = max(1, math.ceil(len(todo) / (_workers(executor) * _CHUNKS_PER_WORKER)))
        chunks = [list(todo[start:start + size]) for start in range(0, len(todo), size)]
        pending: Dict["concurrent.futures.Future[List[Outcome]]", List[Item]] = {}
        try:
            for chunk in chunks:
                pending[executor.submit(speak_chunk, chunk, self._out_dir, self._format, self._client_args)] = chunk
            by_id = {item.id: item for item in todo}
            while pending:
                finished, _ = concurrent.futures.wait(pending, timeout=_SLICE,
                                                      return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    chunk = pending.pop(future)
                    for outcome in _outcomes(future, chunk, self._client_args.get("api_key")):
                        self._finish(by_id[outcome.id], outcome, renamed=True)
        finally:
            for future in pending:
                future.cancel()

    def result(self) -> BatchResult:
        """The outcome, each list in the items' order (not the order they finished in)."""
        order = {item.id: index for index, item in enumerate(self._items)}
        self._result.done.sort(key=order.__getitem__)
        self._result.skipped.sort(key=order.__getitem__)
        self._result.failed.sort(key=lambda failure: order[failure[0]])
        self._result.elapsed = time.monotonic() - self._started
        return self._result

    def _finished(self, item: Item) -> bool:
        """Whether ``item`` is done: in the manifest, unchanged, its file intact; or adopted."""
        hashes = self._hashes[item.id]
        entry = self._manifest.get(item.id)
        name = final_name(item.id, self._format)
        path = os.path.join(self._out_dir, name)
        if entry is not None:
            if (entry.text_hash, entry.settings_hash) != hashes or entry.file != name:
                return False
            try:
                return file_checksum(path) == entry.sha256
            except OSError:
                return False
        adopted = adopt(self._out_dir, item.id, self._format)
        if adopted is None:
            return False
        log.info("adopted %s: complete, but missing from the manifest (a stopped run renamed it)", name)
        self._manifest.record(Entry(item.id, *hashes, adopted.file, adopted.duration, adopted.sha256))
        return True

    def _finish(self, item: Item, outcome: Outcome, renamed: bool) -> None:
        if outcome.error is not None:
            self._result.failed.append((item.id, outcome.error))
            log.warning("item %s failed: %s: %s", item.id, type(outcome.error).__name__, outcome.error)
        else:
            name = final_name(item.id, self._format)
            # Recorded before the rename: a kill between the two leaves a manifest line
            # whose file is missing, which the next run redoes; never a file it would redo.
            self._manifest.record(Entry(item.id, *self._hashes[item.id], name, outcome.duration, outcome.sha256))
            if not renamed:
                os.replace(os.path.join(self._out_dir, outcome.file), os.path.join(self._out_dir, name))
            self._result.done.append(item.id)
            self._result.audio_seconds += outcome.duration
        self._tell()

    def _tell(self) -> None:
        if self._progress is None:
            return
        result = self._result
        state = Progress(len(self._items), len(result.done), len(result.skipped), len(result.failed),
                         result.audio_seconds, time.monotonic() - self._started)
        try:
            self._progress(state)
        except Exception:  # a display's bug must not stop the batch
            log.exception("the progress callback raised; the batch goes on")

    def _hashes_of(self, item: Item) -> Tuple[str, str]:
        settings = {key: self._client_args.get(key) for key in _SHAPING}
        settings["voice"] = item.voice if item.voice is not None else settings["voice"]
        settings["output"] = repr(settings["output"]) if settings["output"] is not None else None
        settings.update(params=dict(item.params), format=self._format)
        return text_hash(item.text), settings_hash(settings)


def _outcomes(future: "concurrent.futures.Future[List[Outcome]]", chunk: List[Item],
              api_key: Optional[str]) -> List[Outcome]:
    """A chunk's outcomes; if the chunk itself failed (a worker died, a bug), each item fails."""
    try:
        return future.result(timeout=0)
    except Exception as exc:  # noqa: BLE001 -- the executor's failure, reported per item
        said = f"{type(exc).__name__}: {exc}"
        if api_key:  # the chunk carried the key: an executor's message may quote its arguments
            said = said.replace(api_key, "***")
        error = TTSError(f"the executor failed this item's chunk ({said}); rerun to retry it")
    return [Outcome(item.id, error=error) for item in chunk]


def _workers(executor: concurrent.futures.Executor) -> int:
    """How many items the executor runs at once, as far as it says; else the CPU count."""
    count = getattr(executor, "_max_workers", None)  # ThreadPoolExecutor, ProcessPoolExecutor
    if isinstance(count, int) and count > 0:
        return count
    client = getattr(executor, "_client", None)  # Dask's ClientExecutor
    if client is not None and hasattr(client, "nthreads"):
        try:
            threads: Dict[str, int] = client.nthreads()
            return max(1, sum(threads.values()))
        except Exception:  # noqa: BLE001 -- a scheduler that does not answer: guess
            log.debug("could not ask the Dask scheduler for its workers", exc_info=True)
    return os.cpu_count() or 1
