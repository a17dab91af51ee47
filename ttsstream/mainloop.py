"""Main-loop integration: ``client.poll()``, and polling from a Tk main loop (``client.attach_tk``).

With ``dispatch="poll"`` a client keeps its callbacks in a queue until the application
calls ``poll()``: from ``root.after`` in Tkinter, once per frame in a game loop. Tk
widgets may be touched only from the thread running ``mainloop()``, so polling from
``root.after`` runs the callbacks on Tk's thread.

Imports: checks, errors; not tkinter: it uses only the ``after`` and ``after_cancel``
methods of the widget it is given.
"""

from __future__ import annotations

import queue
from typing import Any, Callable

from .checks import require_number
from .errors import InvalidParameterError

__all__ = ["MainLoopIntegration", "TkPump"]


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


class MainLoopIntegration:
    """``poll()`` and ``attach_tk()``: TTSClient's side for applications with a main loop.

    A base class of ``TTSClient``; it uses the client's ``dispatch``, its queue of
    waiting callbacks (``_pending``) and whether it is closed (``_closed``).
    """

    dispatch: str
    _pending: "queue.SimpleQueue[Callable[[], None]]"
    _closed: bool

    def poll(self, timeout: float = 0.0) -> int:
        """Run the callbacks waiting for this thread; return how many ran.

        With ``dispatch="poll"``, callbacks wait in a queue until the application calls
        this, e.g. from Tkinter's ``root.after`` or once per game frame. Only those
        waiting when it is called run, so a fast stream cannot starve the caller.

        Args:
            timeout: seconds to wait for the first callback when none is waiting.

        Thread: the application's (the callbacks run on it).
        """
        try:
            first = self._pending.get(timeout=timeout) if timeout > 0 else self._pending.get_nowait()
        except queue.Empty:
            return 0
        more = self._pending.qsize()
        first()
        ran = 1
        for _ in range(more):
            try:
                self._pending.get_nowait()()
            except queue.Empty:
                break
            ran += 1
        return ran

    def attach_tk(self, root: Any, interval_ms: int = 10) -> Callable[[], None]:
        """Run ``poll()`` from a Tk main loop every ``interval_ms``, so that callbacks run on
        Tk's thread and may touch widgets.

            client = ttsstream.TTSClient(provider="local", dispatch="poll")
            client.attach_tk(root)
            client.speak(text, on_audio=lambda chunk: meter.set(level(chunk)), block=False)

        It stops by itself when ``root`` is destroyed or the client is closed.

        Args:
            root: a ``tkinter.Tk`` (any widget: whatever has ``after`` and ``after_cancel``).
            interval_ms: how often to poll; 10 ms keeps a level meter smooth.

        Returns:
            A function that stops the polling.

        Raises:
            InvalidParameterError: the client was not made with ``dispatch="poll"``, or a
                bad interval.

        Thread: Tk's (the thread running ``root.mainloop()``).
        """
        if self.dispatch != "poll":
            raise InvalidParameterError(
                "attach_tk() needs a client made with dispatch='poll' (with 'thread' the callbacks "
                "run on a reader thread, where Tk widgets must not be touched)", parameter="dispatch")
        require_number("interval_ms", interval_ms, 1, 1000, integer=True,
                       error=lambda message: InvalidParameterError(message, parameter="interval_ms"))
        return TkPump(self.poll, lambda: self._closed, root, interval_ms).stop
