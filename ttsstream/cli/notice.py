"""Notices said once per machine: a marker file under the user's cache folder remembers them.

``first_time(name)`` is True the first time it is asked about ``name`` on this machine
(for this user), and False after: the marker is ``$XDG_CACHE_HOME/ttsstream/NAME`` or
``~/.cache/ttsstream/NAME``. Where the marker cannot be written (a read-only home), it
is True every time: a notice said too often beats one never said.

Imports: the standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LOCAL_NOTICE", "first_time", "cache_dir"]

# The notice that ``speak`` chose the local voice because nothing else was named.
LOCAL_NOTICE = "local-voice-notice"


def cache_dir() -> Path:
    """The user's cache folder for ttsstream (``$XDG_CACHE_HOME/ttsstream``, else ``~/.cache/ttsstream``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ttsstream"


def first_time(name: str) -> bool:
    """Whether ``name`` is asked about for the first time on this machine; marks it asked."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    except OSError:
        return True
    return True
