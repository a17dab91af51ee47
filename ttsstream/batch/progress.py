"""How a batch shows its progress: a tqdm bar on a terminal or in a notebook, or nothing.

``ProgressBar`` is a ``progress=`` callable that draws a bar (items done of total,
audio seconds, items a second, time left) with ``tqdm.auto``, which picks the
notebook's widget (with ipywidgets) or the text bar. ``shown(progress)`` turns the
``progress=`` argument of ``ttsstream.batch`` into the callable the runner calls and
closes it when the batch ends: None is a bar when someone is watching (standard error
is a terminal, or this is a notebook's kernel), True always a bar, False nothing, a
callable itself.

tqdm is imported when a bar is first drawn, never on import, so a batch without a bar
costs nothing and needs no tqdm (``pip install "ttsstream[batch]"`` brings it).

Imports: ``result`` (``Progress``), ``errors``, the standard library; tqdm when drawing.
Never the client, the pool or the wire.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, TextIO, Tuple, Union

from ..errors import InvalidParameterError, TTSError
from .result import Progress

__all__ = ["ProgressBar", "ProgressArg", "shown", "watched", "TQDM_HINT"]

ProgressArg = Union[None, bool, Callable[[Progress], Any]]

TQDM_HINT = 'pip install "ttsstream[batch]" (it brings tqdm)'


def watched(stream: Optional[TextIO] = None) -> bool:
    """Whether someone is watching: ``stream`` (standard error by default) is a terminal,
    or this process is a notebook's kernel (an IPython shell with a kernel)."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        pass
    # Only when IPython is already loaded: looking must not import it.
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def tqdm_available() -> bool:
    """Whether tqdm can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("tqdm") is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a broken install
        return False


class ProgressBar:
    """A ``progress=`` callable that draws a tqdm bar: items done of total, audio seconds,
    items a second and time left.

    Items finished by an earlier run count towards the bar at once, not towards the rate,
    so a resumed batch's time left is that of the items still to speak. Use it as a
    context manager (or call ``close()``) to end the bar's line; ``shown`` does that for
    ``progress=True``.

    Thread: the batch calls it on the caller's thread, after each item.

    Args:
        file: where the text bar goes (standard error by default); a notebook's widget
            ignores it.
        desc: the label before the bar.

    Raises:
        TTSError: tqdm is not installed (said when the first progress arrives; check
            with ``tqdm_available()`` first to do without).
    """

    def __init__(self, file: Optional[TextIO] = None, *, desc: str = "batch") -> None:
        self._file = file
        self._desc = desc
        self._bar: Any = None  # the tqdm bar, made on the first call
        self._skipped = 0

    def __call__(self, progress: Progress) -> None:
        bar = self._bar if self._bar is not None else self._open(progress.total)
        if bar.total != progress.total:
            bar.total = progress.total
        skipped = progress.skipped - self._skipped
        if skipped > 0:
            # Counted but not timed: moved past together with tqdm's mark of the last
            # print, so neither the smoothed rate nor the average sees them.
            self._skipped = progress.skipped
            bar.n += skipped
            bar.last_print_n += skipped
            bar.initial += skipped
        postfix = f"{progress.audio_seconds:.1f} s audio"
        if progress.skipped:
            postfix += f", {progress.skipped} skipped"
        if progress.failed:
            postfix += f", {progress.failed} failed"
        bar.set_postfix_str(postfix, refresh=False)
        finished = progress.done + progress.skipped + progress.failed
        bar.update(max(0, finished - bar.n))

    def close(self) -> None:
        """End the bar (its last state stays on screen). Safe twice."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self, total: int) -> Any:
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise TTSError(f"a progress bar needs tqdm: {TQDM_HINT}; or pass progress=False") from exc

        # tqdm's monitor is a thread per bar class that outlives the bar; the batch
        # updates on every item, so it has nothing to watch.
        quiet = type("BatchBar", (tqdm,), {"monitor_interval": 0, "monitor": None})
        size = _fixed_size(sys.stderr if self._file is None else self._file)
        self._bar = quiet(total=total, desc=self._desc, unit="item", file=self._file, smoothing=0.1,
                          mininterval=0.2, dynamic_ncols=size is None, ncols=size and size[0],
                          nrows=size and size[1])
        return self._bar


def _fixed_size(stream: TextIO) -> Optional[Tuple[int, int]]:
    """None to let tqdm follow the terminal's size as it changes; else (columns, lines).

    A terminal that reports 0 x 0 (a pseudo-terminal nobody sized, as ``script`` or
    ``docker run -t`` make) gets no bar at all from tqdm, so it gets ``$COLUMNS`` x
    ``$LINES`` instead, or 80 x 24.
    """
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):  # not a terminal: tqdm's own defaults
        return None
    if size.columns > 0 and size.lines > 0:
        return None
    return _env_number("COLUMNS", 80), _env_number("LINES", 24)


def _env_number(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "")))
    except ValueError:
        return default


@contextmanager
def shown(progress: ProgressArg, file: Optional[TextIO] = None) -> Iterator[Optional[Callable[[Progress], Any]]]:
    """The callable a batch reports to, for its ``progress=`` argument, closed at the end.

    None: a ``ProgressBar`` when someone is watching (``watched(file)``) and tqdm is
    installed, else nothing; True: a ``ProgressBar`` always (``TTSError`` without tqdm,
    before any item is spoken); False: nothing; a callable: itself.

    Raises:
        TTSError: ``progress=True`` and tqdm is not installed.
        InvalidParameterError: ``progress`` is none of these.
    """
    if progress is None:
        progress = watched(file) and tqdm_available()
    if progress is False:
        yield None
        return
    if progress is True:
        if not tqdm_available():
            raise TTSError(f"progress=True needs tqdm: {TQDM_HINT}; or pass progress=False")
        with ProgressBar(file) as bar:
            yield bar
        return
    if not callable(progress):
        raise InvalidParameterError(f"progress must be None, True, False or a callable taking a Progress, "
                                    f"got {type(progress).__name__}", "progress")
    yield progress
