"""Child processes of the suite: a helper script started with ``python``, that prints
``PORT n`` once it listens, answers one-line commands on stdin, and exits when its stdin
closes. The benchmark server and the delay proxy are such children.

Imports: the standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))


class Child:
    """One helper process (``benchmarks/<script>``), started now, ended by ``close()``.

    Raises:
        RuntimeError: it did not print its port.
    """

    def __init__(self, script: str, args: List[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, script)] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"{script} did not start (said {line!r})")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, command: str) -> str:
        """Send one command line; return the one line it answers."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def close(self) -> None:
        """Close its stdin (it exits on that), wait, kill it if it does not. Idempotent."""
        proc = self.proc
        if proc.stdin and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout and not proc.stdout.closed:
            proc.stdout.close()
