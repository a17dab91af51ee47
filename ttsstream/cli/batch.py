"""``ttsstream batch``: many texts to files through ``ttsstream.batch``, with a summary.

Prints one summary line on stdout (``--json``: one JSON object instead) and each failed
item on stderr; on a terminal, a progress bar on stderr as well (``batch.progress``,
with tqdm; never with ``--json``). The exit code is 0 when every item is done or
skipped, 1 when any failed (the next run retries it), 2 for a bad command line or input
file. With ``--executor dask://HOST:PORT`` the items go to that Dask cluster.

Imports ``ttsstream.batch`` (and its ``progress``), ``ttsstream.api``
(``choose_provider``), the errors and the CLI's ``problems``; Dask's ``distributed``
only for ``--executor``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import os
from contextlib import contextmanager, nullcontext
from typing import Any, Dict, Iterator, Optional, TextIO

from ..errors import InvalidParameterError
from .problems import FAILED, OK, UsageError, one_line, shell_words

__all__ = ["run_batch", "DASK_HINT"]

DASK_HINT = "pip install 'dask[distributed]'"
_SCHEME = "dask://"


def run_batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``ttsstream batch``; return the exit code.

    Raises:
        UsageError: a bad input file, item or executor address (exit code 2).
        TTSError: the client cannot be made (a missing key, ...).
    """
    from ..api import choose_provider
    from ..batch import batch
    from ..batch.items import read_items
    from ..batch.progress import ProgressBar, tqdm_available

    if not os.path.isfile(args.input):
        raise UsageError(f"INPUT: no such file: {args.input}")
    try:
        items = read_items(args.input)
    except InvalidParameterError as exc:
        raise UsageError(f"INPUT: {exc.message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"INPUT: cannot read {args.input}: {exc}") from None
    provider = choose_provider(args.provider, args.url)
    client_args: Dict[str, Any] = {"provider": provider}
    for name in ("model", "voice", "url", "api_key"):
        if getattr(args, name) is not None:
            client_args[name] = getattr(args, name)
    # A bar on a terminal (never with --json); elsewhere the summary line says it all.
    bar = ProgressBar(err) if not args.json and _is_terminal(err) and tqdm_available() else None
    with _executor(args.executor) as executor, bar or nullcontext():
        result = batch(items, args.out_dir, jobs=args.jobs, format=args.format, executor=executor,
                       progress=bar or False, **client_args)
    for item_id, error in result.failed:
        print(one_line(f"ttsstream batch: {item_id} failed: {type(error).__name__}: {shell_words(error.message)}"),
              file=err)
    if args.json:
        summary = {"ok": result.ok, "out_dir": result.out_dir, "done": len(result.done),
                   "skipped": len(result.skipped), "failed": len(result.failed),
                   "audio_seconds": round(result.audio_seconds, 3), "elapsed": round(result.elapsed, 3),
                   "failures": [{"id": item_id, "error": {"type": type(error).__name__,
                                                          "message": one_line(error.message)}}
                                for item_id, error in result.failed]}
        print(json.dumps(summary), file=out, flush=True)
    else:
        retry = "; rerun the same command to retry the failed ones" if result.failed else ""
        print(f"ttsstream batch: {len(result.done)} done, {len(result.skipped)} skipped (finished before), "
              f"{len(result.failed)} failed, {result.audio_seconds:.1f} s of audio in {result.elapsed:.1f} s "
              f"-> {result.out_dir}{retry}", file=out, flush=True)
    return OK if result.ok else FAILED


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # not a file, or a closed one
        return False


@contextmanager
def _executor(address: Optional[str]) -> Iterator[Optional[concurrent.futures.Executor]]:
    """The Dask cluster's executor for ``dask://HOST:PORT`` (closed after), or None."""
    if address is None:
        yield None
        return
    if not address.startswith(_SCHEME) or ":" not in address[len(_SCHEME):]:
        raise UsageError(f"--executor: {address!r} is not dask://HOST:PORT (the Dask scheduler's address)")
    try:
        # Untyped, and not always installed: reached through importlib so it stays Any.
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise UsageError(f"--executor needs Dask's distributed client: {DASK_HINT}") from None
    try:
        client = distributed.Client("tcp://" + address[len(_SCHEME):], timeout=30)
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--executor: cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        executor: concurrent.futures.Executor = client.get_executor()
        yield executor
    finally:
        client.close()
