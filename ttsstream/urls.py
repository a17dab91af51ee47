"""Endpoints: which URLs are acceptable, which are this machine, how messages show them,
and the certificate authorities a ``wss://`` endpoint is checked against.

Imports: errors, redaction.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Optional, Union
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidParameterError
from .redaction import redact

__all__ = ["check_url", "is_loopback", "display_url", "with_default_path", "check_ca_bundle"]


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


def with_default_path(url: str, path: str) -> str:
    """Give a bare ``ws://host:port`` URL ``path`` (a dialect's usual one)."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return parts._replace(path=path).geturl()
    return url


def check_ca_bundle(path: Union[None, str, "os.PathLike[str]"]) -> Optional[str]:
    """Return ``path`` as a str if it names a file (a PEM bundle), None for None.

    Raises:
        InvalidParameterError: it is not an existing file.
    """
    if path is None:
        return None
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidParameterError(f"ca_bundle {path!r} is not a file: give the path of a PEM file",
                                    parameter="ca_bundle")
    return path
