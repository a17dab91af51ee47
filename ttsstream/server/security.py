"""Who may use the bundled server, and how much they may send: keys, exposure, TLS and limits.

- ``KeyCheck`` compares a client's key with the server's in constant time: every
  endpoint's check goes through it.
- ``check_exposure`` refuses to serve beyond this machine without a key, unless the
  caller says it means it (``allow_open``).
- ``tls_context`` builds the TLS context for ``wss://`` from a certificate and key file.
- The default limits: a request's text (``MAX_TEXT_CHARS``, as the client enforces) and
  a message's size (``MAX_MESSAGE_BYTES``, enough for the longest text JSON can spell).

This module owns those rules. It imports ``ttsstream.protocols`` (the text limit) and
``ttsstream.checks``; nothing with sockets or threads.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import ssl
from typing import Optional, Union

from ..checks import require_number
from ..protocols import MAX_TEXT_CHARS

__all__ = ["KeyCheck", "check_exposure", "is_loopback", "tls_context", "check_limits", "MAX_TEXT_CHARS",
           "MAX_MESSAGE_BYTES"]

log = logging.getLogger("ttsstream.server")

# The longest request a client may send: MAX_TEXT_CHARS characters, each up to 12 bytes
# as JSON escapes (a surrogate pair, "\\ud83d\\ude00"), and room for the other fields.
MAX_MESSAGE_BYTES = 12 * MAX_TEXT_CHARS + 64 * 1024

_LOCAL_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})

PathLike = Union[str, "os.PathLike[str]"]


class KeyCheck:
    """Whether a client's key is the server's, in constant time.

    Both keys are hashed first, so that the comparison takes as long for any key,
    whatever its length or how much of it matches. A key is never kept in a repr.

    Args:
        api_key: the server's key; None (or "") accepts any key, or none.

    Thread: any; it never changes.
    """

    def __init__(self, api_key: Optional[str]) -> None:
        self._digest = _digest(api_key) if api_key else None

    @property
    def required(self) -> bool:
        """Whether clients must present the key."""
        return self._digest is not None

    def ok(self, given: Optional[str]) -> bool:
        """Whether ``given`` (what a client presented; None for nothing) will do."""
        if self._digest is None:
            return True
        # A missing key is compared too, so that it takes as long as a wrong one.
        return hmac.compare_digest(_digest(given or ""), self._digest) and given is not None

    def __repr__(self) -> str:
        return f"KeyCheck(required={self.required})"


def _digest(key: str) -> bytes:
    # surrogatepass: a key from JSON may hold a lone surrogate; it must be refused, not crash.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1``, ``localhost``).

    ``""`` and ``0.0.0.0`` (every interface) are not; nor is a name other than localhost.
    """
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0]).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: Optional[str], allow_open: bool, tls: bool) -> None:
    """Refuse to serve beyond this machine without a key, unless ``allow_open``.

    Raises:
        ValueError: ``host`` is not loopback, there is no key and ``allow_open`` is false.
    """
    if is_loopback(host):
        return
    shown = host or "every interface"
    if not api_key and not allow_open:
        raise ValueError(
            f"refusing to serve on {shown} without an API key: anyone who can reach this machine could "
            "use the server. Set an API key (api_key=, ttsstream serve --api-key), or say that an open "
            "server is meant (allow_open=True, ttsstream serve --allow-open)")
    if not tls:
        log.warning("serving on %s without TLS: keys and text cross the network unencrypted "
                    "(give certfile= and keyfile= for wss://)", shown)


def tls_context(certfile: Optional[PathLike], keyfile: Optional[PathLike]) -> Optional[ssl.SSLContext]:
    """The server's TLS context for ``wss://``, or None without ``certfile``.

    Args:
        certfile: a PEM file with the certificate (and its chain; and the key, if
            ``keyfile`` is None).
        keyfile: a PEM file with the private key.

    Raises:
        ValueError: ``keyfile`` without ``certfile``.
        OSError: a file cannot be read.
        ssl.SSLError: the files hold no usable certificate or key, or they do not match.
    """
    if certfile is None:
        if keyfile is not None:
            raise ValueError("keyfile= needs certfile=: give the certificate too")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.fspath(certfile), os.fspath(keyfile) if keyfile is not None else None)
    return context


def check_limits(max_text_chars: int, max_message_bytes: int) -> None:
    """Check the limits' values. Raises ValueError."""
    require_number("max_text_chars", max_text_chars, 1, integer=True)
    require_number("max_message_bytes", max_message_bytes, 1024, integer=True)
