"""Tk integration: run a client's ``poll()`` from a Tk main loop (``client.attach_tk``).

Tk widgets may be touched only from the thread running ``mainloop()``; a client made
with ``dispatch="poll"`` keeps its callbacks until ``poll()`` is called, so polling from
``root.after`` runs them on Tk's thread.

Imports nothing of the package, and not tkinter either: it uses only the ``after`` and
``after_cancel`` methods of the widget it is given.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["TkPump"]


class TkPump:
    """Calls ``poll()`` every ``interval_ms`` from a Tk main loop until stopped, until the
    widget is destroyed, or once ``closed()`` is true (then it polls one last time, for
    the terminal callbacks that closing posted).

    Thread: Tk's (every method runs on the thread running ``root.mainloop()``).
    """

    def __init__(self, poll: Callable[[], int], closed: Callable[[], bool], root: Any, interval_ms: int) -> None:
        self._poll = poll
        self._closed = closed
        self._root = root
        self._interval = interval_ms
        self._running = True
        self._after_id = root.after(interval_ms, self._tick)

    def _tick(self) -> None:
        if not self._running:
            return
        if self._closed():
            self._running = False
            self._poll()  # the terminal callbacks close() posted
            return
        try:
            self._poll()
        finally:
            try:
                self._after_id = self._root.after(self._interval, self._tick)
            except Exception:  # tkinter.TclError: the root was destroyed
                self._running = False

    def stop(self) -> None:
        """Stop polling."""
        self._running = False
        try:
            self._root.after_cancel(self._after_id)
        except Exception:  # tkinter.TclError: already destroyed
            pass
