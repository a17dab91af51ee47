"""Child processes in tests: reaped on every path, and a pty read without blocking."""

from __future__ import annotations

import os
import select
import subprocess
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def reaped(child: "subprocess.Popen[Any]") -> Iterator["subprocess.Popen[Any]"]:
    """``child``, killed and waited for on the way out (after a failed assertion too),
    with the pipes the test opened closed."""
    try:
        yield child
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def read_pty(master: int) -> bytes:
    """Everything waiting on a pty's master side, without blocking."""
    screen = b""
    while select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child's end is closed and everything was read
            break
        if not chunk:
            break
        screen += chunk
    return screen
