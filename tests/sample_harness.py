"""Helpers for tests/test_samples.py: run the samples as a user would, on real devices.

- ``sample_env``: the environment a sample runs in (the repository on PYTHONPATH, no API
  keys, so every sample uses the bundled offline server).
- ``Xvfb``: a private X server on a free display (``-displayfd``), for the Tk sample.
- ``EventStream``: reads a running sample's JSON lines (``--selftest``) without threads.
- ``click``, ``close_window``, ``screenshot``: a user's hands on that display: xdotool
  clicks (XTEST, as a mouse would), the window manager's WM_DELETE_WINDOW message (what
  a title bar's close button sends; Xvfb has no window manager), ImageMagick ``import``.
- ``python tests/sample_harness.py notebook IN.ipynb OUT.ipynb``: executes a notebook
  headless with nbclient in a process of its own (the kernel and its threads stay out of
  pytest's process) and writes the executed copy.

Needs (Debian/Ubuntu): xvfb, xdotool, imagemagick; pip: nbclient, nbformat, ipykernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
KEY_VARIABLES = ("EIGENAI_API_KEY", "SHUNYALABS_API_KEY")


def sample_env(base: Optional[Dict[str, str]] = None, **extra: str) -> Dict[str, str]:
    """``base`` (default os.environ) with the repository on PYTHONPATH and no API keys."""
    env = dict(os.environ if base is None else base)
    for name in KEY_VARIABLES:
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    env.update(extra)
    return env


class Xvfb:
    """A private Xvfb on a display number it picks itself; stopped by its owner."""

    def __init__(self, size: str = "1024x768x24") -> None:
        self.size = size
        self.display: Optional[str] = None
        self._process: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 20.0) -> "Xvfb":
        read_fd, write_fd = os.pipe()
        try:
            self._process = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", self.size, "-nolisten", "tcp"],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        finally:
            os.close(write_fd)
        try:
            number = b""
            deadline = time.monotonic() + timeout
            while not number.endswith(b"\n"):
                ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
                piece = os.read(read_fd, 64) if ready else b""
                if not piece:
                    self.stop()
                    raise RuntimeError(f"Xvfb did not report a display within {timeout:g} s")
                number += piece
        finally:
            os.close(read_fd)
        self.display = f":{int(number)}"
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class EventStream:
    """The stdout of a running sample: every line kept, JSON lines parsed as events.

    Reads with select() on the pipe, so no thread is left behind.
    """

    def __init__(self, process: subprocess.Popen, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.lines: List[str] = []
        self.events: List[Dict[str, Any]] = []
        self._buffer = b""
        self._consumed = 0  # events before this index have been returned by wait_for
        self._eof = False

    def _read(self, timeout: float) -> None:
        if self._eof:
            time.sleep(min(timeout, 0.05))
            return
        fd = self.process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return
        data = os.read(fd, 65536)
        if not data:
            self._eof = True
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if line.startswith("{"):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass

    def wait_for(self, predicate: Callable[[Dict[str, Any]], bool], timeout: float = 30.0) -> Dict[str, Any]:
        """The first event not yet returned that satisfies ``predicate`` (events before it are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._consumed, len(self.events)):
                if predicate(self.events[index]):
                    self._consumed = index + 1
                    return self.events[index]
            if self._eof and self.process.poll() is not None:
                raise AssertionError(f"the sample exited ({self.process.returncode}) first\n{self.describe()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such event within {timeout:g} s\n{self.describe()}")
            self._read(min(remaining, 0.2))

    def finish(self, timeout: float = 30.0) -> int:
        """Read to the end and wait for the exit; kill the process if it hangs. Returns the exit code."""
        deadline = time.monotonic() + timeout
        while not (self._eof and self.process.poll() is not None):
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(f"the sample did not exit within {timeout:g} s\n{self.describe()}")
            self._read(0.2)
        return self.process.returncode

    def close(self) -> None:
        """Kill the process if it still runs, and close the pipe."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process.stdout.close()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def describe(self) -> str:
        return "stdout:\n" + "\n".join(self.lines[-40:]) + "\nstderr:\n" + self.stderr()[-4000:]


def click(display: str, x: int, y: int) -> None:
    """Move the pointer to (x, y) on ``display`` and click button 1, as a mouse would (XTEST).

    No ``--sync``: it waits for the pointer to move, which never happens (xdotool gives up
    after 15 s) when the pointer is already there; the X server keeps the two in order.
    """
    subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "1"],
                   env=dict(os.environ, DISPLAY=display), check=True, timeout=20,
                   capture_output=True)


def click_button(display: str, geometry: List[int]) -> None:
    """Click the middle of a widget given as [root_x, root_y, width, height]."""
    x, y, width, height = geometry
    click(display, x + width // 2, y + height // 2)


def screenshot(display: str, window: int, path: Path) -> None:
    """Save ``window`` (an X id) as a PNG with ImageMagick's ``import``."""
    subprocess.run(["import", "-window", str(window), str(path)], env=dict(os.environ, DISPLAY=display),
                   check=True, timeout=30, capture_output=True)


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


class _XErrorEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("display", ctypes.c_void_p), ("resourceid", ctypes.c_ulong),
                ("serial", ctypes.c_ulong), ("error_code", ctypes.c_ubyte), ("request_code", ctypes.c_ubyte),
                ("minor_code", ctypes.c_ubyte)]


_X_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_XErrorEvent))


def close_window(display: str, window: int) -> None:
    """Ask ``window`` to close the way a window manager does: a WM_DELETE_WINDOW message."""
    xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                                ctypes.POINTER(_XEvent)]
    xlib.XFlush.argtypes = [ctypes.c_void_p]
    xlib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    # Xlib's default error handler exits the process: record the error instead.
    errors: List[int] = []
    handler = _X_ERROR_HANDLER(lambda _display, event: errors.append(event.contents.error_code) or 0)
    xlib.XSetErrorHandler.argtypes = [_X_ERROR_HANDLER]
    xlib.XSetErrorHandler.restype = ctypes.c_void_p
    previous = xlib.XSetErrorHandler(handler)
    connection = xlib.XOpenDisplay(display.encode())
    if not connection:
        raise RuntimeError(f"cannot open X display {display}")
    try:
        event = _XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = window
        event.xclient.message_type = xlib.XInternAtom(connection, b"WM_PROTOCOLS", False)
        event.xclient.format = 32
        event.xclient.data[0] = xlib.XInternAtom(connection, b"WM_DELETE_WINDOW", False)
        event.xclient.data[1] = 0  # CurrentTime
        xlib.XSendEvent(connection, window, False, 0, ctypes.byref(event))
        xlib.XSync(connection, False)
    finally:
        xlib.XCloseDisplay(connection)
        xlib.XSetErrorHandler(ctypes.cast(previous, _X_ERROR_HANDLER) if previous else _X_ERROR_HANDLER())
    if errors:
        raise RuntimeError(f"sending WM_DELETE_WINDOW to window {window:#x} failed: X error {errors[0]}")


def png_size(path: Path) -> tuple:
    """(width, height) from a PNG's header."""
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def execute_notebook(source: str, target: str, timeout: int = 60) -> None:
    """Execute the notebook ``source`` with the python3 kernel in its folder's stead (the
    current directory) and write the executed copy to ``target``; raises on a cell error."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": os.getcwd()}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, target)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "notebook":
        execute_notebook(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python tests/sample_harness.py notebook IN.ipynb OUT.ipynb")
