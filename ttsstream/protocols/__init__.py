"""Server dialects: pure translators between ttsstream's calls and each server's frames.

A dialect builds the frames a client sends (``open_frames``, ``request_frames``) and
turns the frames it receives into small events (``Audio``, ``Metadata``, ``Done``,
``Failed``; ``WordTimes`` from ttsstream's own opt-in ``extensions``). No I/O and no
threads live here, so each dialect is tested with the exact byte strings a server
would send.

This module is the registry: adding a provider is one new module in this package
(a ``Dialect`` subclass from ``base``) and one line in ``DIALECTS``. The package imports
only ``ttsstream.errors``, ``ttsstream.checks`` and the standard library.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Type
from urllib.parse import urlsplit

from ..errors import InvalidParameterError
from .base import MAX_TEXT_CHARS, Audio, Dialect, Done, Event, Failed, Metadata, Request, WordTime, WordTimes
from .eigenai import EigenAI
from .shunyalabs import Shunyalabs

__all__ = [
    "Audio",
    "Metadata",
    "Done",
    "Failed",
    "WordTime",
    "WordTimes",
    "Event",
    "Request",
    "Dialect",
    "DIALECTS",
    "MAX_TEXT_CHARS",
    "LOCAL",
    "PROVIDERS",
    "get_dialect",
    "dialect_for_url",
]

DIALECTS: Dict[str, Type[Dialect]] = {
    "eigenai": EigenAI,
    "shunyalabs": Shunyalabs,
}

# The bundled offline server: not a dialect of its own, it speaks both of the above.
LOCAL = "local"

# Every provider a user may name, in the order messages and --help list them.
PROVIDERS: Tuple[str, ...] = (*DIALECTS, LOCAL)


def get_dialect(provider: str) -> Dialect:
    """Return the dialect for ``provider``. Raises InvalidParameterError if unknown."""
    try:
        return DIALECTS[provider]()
    except (KeyError, TypeError):
        raise InvalidParameterError(
            f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}",
            parameter="provider",
        ) from None


def dialect_for_url(url: str) -> Optional[str]:
    """Return the provider whose endpoint path ``url`` has, or None."""
    path = urlsplit(url).path.rstrip("/")
    for name, dialect in DIALECTS.items():
        if path == dialect.default_path().rstrip("/"):
            return name
    return None
