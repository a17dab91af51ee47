"""What the command line says when something is wrong: exit codes, usage errors, shell words.

Owns the exit codes, ``UsageError`` (a bad command line: exit 2), and ``shell_words``,
which rewrites the library's messages, written for Python callers (``pass api_key=``,
``extra={...}``), in the flags and environment variables a shell user changes
instead. Every error reaches the user as one line.

Imports: the standard library only.
"""

from __future__ import annotations

import re
from typing import Callable, List, Tuple, Union

__all__ = ["OK", "FAILED", "USAGE", "INTERRUPTED", "BROKEN_PIPE", "UsageError", "shell_words", "one_line"]

OK = 0            # the work was done
FAILED = 1        # the work failed: connecting, the server's answer (a refused key too), playback, writing
USAGE = 2         # the command line is wrong (a flag, a value, a file it names, a missing key); nothing was sent
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
BROKEN_PIPE = 141  # standard output's reader went away (128 + SIGPIPE, as a process killed by it)


class UsageError(Exception):
    """A bad command line; the message names the flag (or variable) to change. Exit code 2."""


_Replacement = Union[str, Callable[["re.Match[str]"], str]]

# Python spellings in library messages -> the shell's, most specific first.
_WORDS: List[Tuple["re.Pattern[str]", _Replacement]] = [
    (re.compile(r"extra=\{'([^']+)': \.\.\.\}"), r"--extra \1=VALUE"),
    (re.compile(r"\bextra=\{\.\.\.\}|\bextra="), "--extra NAME=VALUE"),
    (re.compile(r"\b(\w+)=\{'(\w+)': \.\.\.\}"), lambda m: f"--param {m.group(1)}='{{\"{m.group(2)}\": VALUE}}'"),
    (re.compile(r"\bttsstream\.voices\(provider='(\w+)'\)"), r"ttsstream voices --provider \1"),
    (re.compile(r"\bapi_key="), "--api-key"),
    (re.compile(r"\ballow_open=True"), "--allow-open"),
    (re.compile(r"\ballow_insecure=True"), "--allow-insecure"),
    (re.compile(r"\bprovider='(\w+)'"), r"--provider \1"),
    (re.compile(r"\btimeout="), "--timeout"),
    (re.compile(r"\bvoice_id="), "--voice-id"),
    (re.compile(r"\b(\w+)=\.\.\."), r"--param \1=VALUE"),
    (re.compile(r"several speak\(\) calls"), "several commands"),
    (re.compile(r"\bspeak\(\)"), "ttsstream speak"),
]


def shell_words(message: str) -> str:
    """``message`` with Python keywords replaced by the flags that do the same."""
    for pattern, replacement in _WORDS:
        message = pattern.sub(replacement, message)
    return message


def one_line(message: str) -> str:
    """``message`` on one line (a server's message may hold line breaks)."""
    return " ".join(message.split())
