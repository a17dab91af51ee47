"""Keeping API keys out of text: messages, exception arguments and log records.

One process-wide set of known keys: the client registers every key it is given, the
bundled server the key it requires. ``redact`` blanks those keys and every field that
carries a key by its shape (Shunyalabs' ``api_key=`` query parameter, a Bearer header,
EigenAI's ``"token"``), so a key never reaches a message, a log line or a repr even when
a library or a server echoes it. ``protect_logger`` installs the same scrubbing as a
filter on a third-party logger (websocket-client's, websockets').

Imports only the standard library.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Iterable, Optional, Set, TypeVar

__all__ = ["redact", "redact_keys", "remember_secret", "protect_logger", "scrub_exception"]

# Where keys travel: Shunyalabs' ``api_key`` query parameter (after ``?`` or ``&``: the
# library's own hint "pass api_key=" is no query and keeps its words), a Bearer header,
# EigenAI's auth message (possibly cut short in a log's frame summary, hence no closing quote).
_KEY_FIELDS = re.compile(r'([?&]api_key=)[^&\s\'"]+|(bearer\s+)[^\s\'"]+|("token"\s*:\s*")[^"]*', re.IGNORECASE)

# A key shorter than this is blanked only where it stands as a token of its own: a short
# key ("KEY", "abc") must not blank parts of other words ("EIGENAI_API_KEY"). A longer one
# cannot occur in the library's words by chance, so it is blanked wherever it occurs, glued
# to other text or not.
_SHORT_KEY = 16
_TOKEN_CHAR = r"[\w\-]"

# The keys this process has been given. Guarded by _lock; read by every thread that logs.
_secrets: Set[str] = set()
_lock = threading.Lock()


def redact_keys(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with key-carrying fields and each of ``secrets`` replaced by ``***``."""
    text = _KEY_FIELDS.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "***", text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= _SHORT_KEY:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<!{_TOKEN_CHAR}){re.escape(secret)}(?!{_TOKEN_CHAR})", "***", text)
    return text


def redact(text: str) -> str:
    """Return ``text`` with every key this process knows, and every key-shaped field, as ``***``.

    Thread: any.
    """
    with _lock:
        secrets = list(_secrets)
    return redact_keys(text, secrets)


def remember_secret(secret: Optional[str]) -> None:
    """Add a key to the ones ``redact`` blanks out. Thread: any."""
    if secret:
        with _lock:
            _secrets.add(secret)


class _RedactingFilter(logging.Filter):
    """Rewrites a log record whose text holds a key (libraries log URLs, headers, frames)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it for logging to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_filter = _RedactingFilter()


def protect_logger(logger: logging.Logger) -> logging.Logger:
    """Scrub keys from every record logged on ``logger`` itself; return it. Idempotent."""
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    return logger


E = TypeVar("E", bound=BaseException)


def scrub_exception(exc: E) -> E:
    """Blank keys out of an exception in place, and return it: its args and every str
    attribute (``message``, a server's ``code``), so that neither ``str()``, ``repr()``,
    ``args``, a field nor a chained traceback shows one. Thread: any."""
    try:
        exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
        for name, value in vars(exc).items():
            if isinstance(value, str):
                setattr(exc, name, redact(value))
    except (AttributeError, TypeError):  # an exception type that refuses new attributes
        pass
    return exc
