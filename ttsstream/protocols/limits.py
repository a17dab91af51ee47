"""Refusals for load: which close codes, error codes and words mean ``RateLimited``.

Both dialects ask this module before they call a server's error or close ordinary, so
that one table says what "too busy" looks like: HTTP 429 as a code, close code 1013
("try again later") and the 4029 / 4429 that some services use, the codes services put
in their error messages, and messages that plainly say "rate limit", "too many
requests" or "concurrency limit". It is strict on purpose: an engine's ordinary error
must stay a ``ServerError``. How long the service asked to wait is read from a
``retry_after`` (seconds) or ``retry_after_ms`` field, else from words such as
"retry after 2 s" or "try again in 2 seconds". Pure: no I/O.

Imports: ``ttsstream.errors``, ``ttsstream.checks`` and the standard library.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from ..checks import is_int, is_number
from ..errors import RateLimited

__all__ = ["RATE_LIMIT_CLOSE_CODES", "RATE_LIMIT_CODES", "rate_limited", "rate_limited_close", "wait_in_words"]

# 1013 is RFC 6455's "Try Again Later"; Azure closes with 4429, others with 4029.
RATE_LIMIT_CLOSE_CODES = frozenset({1013, 4029, 4429})
# Error codes in a server's error message, compared as lower-case strings.
RATE_LIMIT_CODES = frozenset({"429", "4029", "4429", "1013", "rate_limit_exceeded", "rate_limited",
                              "too_many_requests", "too_many_concurrent_requests", "concurrency_limit_exceeded"})
_SAYS_RATE_LIMIT = re.compile(
    r"(?<!sample )\brate[ _-]?limit|\btoo many (?:concurrent )?(?:requests|connections)\b|\bconcurrency limit\b",
    re.IGNORECASE)
_WAIT_WORDS = re.compile(
    r"\b(?:retry|try again)(?:\s+(?:after|in))?\s+(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds?|s|secs?|seconds?)\b",
    re.IGNORECASE)


def rate_limited(service: str, said: str, code: object, fields: Mapping[str, Any]) -> Optional[RateLimited]:
    """A ``RateLimited`` if a server's error message refuses for load, else None.

    Args:
        service: how messages name the server ("EigenAI").
        said: the message's text (already chosen from its fields).
        code: the message's code, if any.
        fields: the message's fields (and a nested error object's), for ``retry_after``.
    """
    by_code = (is_int(code) or isinstance(code, str)) and str(code).strip().lower() in RATE_LIMIT_CODES
    if not (by_code or _SAYS_RATE_LIMIT.search(said)):
        return None
    wait = _wait_in_fields(fields)
    if wait is None:
        wait = wait_in_words(said)
    suffix = f" (code {code})" if code is not None else ""
    return RateLimited(f"{service} refused the request for load: {said}{suffix}; {RateLimited.advice(wait)}",
                       code=code, retry_after=wait)


def rate_limited_close(service: str, code: Optional[int], reason: str) -> Optional[RateLimited]:
    """A ``RateLimited`` if close ``code`` refuses for load, else None. ``reason`` is
    quoted as given (the connection has already blanked keys out of it)."""
    if code not in RATE_LIMIT_CLOSE_CODES:
        return None
    wait = wait_in_words(reason)
    said = f": {reason}" if reason else ""
    return RateLimited(f"{service} closed the connection for load (code {code}{said}); {RateLimited.advice(wait)}",
                       code=code, retry_after=wait)


def wait_in_words(text: str) -> Optional[float]:
    """The wait a text asks for ("retry after 2 s", "try again in 500 ms"), in seconds, or None."""
    match = _WAIT_WORDS.search(text)
    if match is None:
        return None
    amount = float(match.group(1))
    return amount / 1000 if match.group(2).lower().startswith("m") else amount


def _wait_in_fields(fields: Mapping[str, Any]) -> Optional[float]:
    seconds, millis = fields.get("retry_after"), fields.get("retry_after_ms")
    if is_number(seconds) and seconds >= 0:
        return float(seconds)
    if is_number(millis) and millis >= 0:
        return float(millis) / 1000
    if isinstance(seconds, str):  # "2", as some services quote their numbers
        try:
            value = float(seconds)
        except ValueError:
            return None
        return value if 0 <= value < float("inf") else None
    return None
