"""Endpoint URLs: which are acceptable, which are this machine, and how messages show them.

Imports: errors, redaction.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidParameterError
from .redaction import redact

__all__ = ["check_url", "is_loopback", "display_url"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure: bool = False) -> str:
    """Validate an endpoint URL; return it unchanged.

    Raises:
        InvalidParameterError: not ws:// or wss://, no host, or ws:// to a remote host
            without ``allow_insecure``.
    """
    if not isinstance(url, str):
        raise InvalidParameterError(f"url must be a str, got {type(url).__name__}", parameter="url")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise InvalidParameterError(
            f"url must look like wss://host/path (or ws:// for this machine), got {redact(url)!r}",
            parameter="url",
        )
    if parts.scheme == "ws" and not is_loopback(parts.hostname) and not allow_insecure:
        raise InvalidParameterError(
            f"ws:// sends audio and your API key unencrypted; use wss:// for {parts.hostname}, "
            "or pass allow_insecure=True if you really mean it",
            parameter="url",
        )
    return url


def display_url(url: str) -> str:
    """The URL without its query (where keys live), for messages."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))
