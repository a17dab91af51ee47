"""The TTSError tree.

Every error ttsstream raises or hands to ``on_error`` is one of these. Errors carry
fields (``code``, ``message``, ``status``) as well as text, and their text says what to
do. This module imports nothing else of the package.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "TTSError",
    "AuthenticationError",
    "ConnectionFailed",
    "ProtocolError",
    "ServerError",
    "RateLimited",
    "SynthesisTimeout",
    "InvalidParameterError",
    "PlaybackError",
    "Cancelled",
]


class TTSError(Exception):
    """Base class of every ttsstream error.

    Attributes:
        message: the human-readable explanation (also ``str(error)``).
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class AuthenticationError(TTSError):
    """The API key is missing or the server refused it.

    Attributes:
        code: the close code or error code the server gave, if any.
        status: the HTTP status of a refused handshake, if any.
    """

    def __init__(self, message: str, code: Optional[int] = None, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ConnectionFailed(TTSError, ConnectionError):
    """Could not connect, or the connection dropped.

    Attributes:
        status: the HTTP status of a refused handshake, if any.
        code: the WebSocket close code, if the server sent one.
        retry_after: the seconds an HTTP 503 asked the client to wait (its
            ``Retry-After``), or None.
    """

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[int] = None,
                 retry_after: Optional[float] = None) -> None:
        TTSError.__init__(self, message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class ProtocolError(TTSError):
    """The server sent something its protocol does not allow."""


class ServerError(TTSError):
    """The server reported an error.

    Attributes:
        code: the error code the server gave (int or str), or None.
        message: the server's message, or a summary when it gave none.
    """

    def __init__(self, message: str, code: object = None) -> None:
        super().__init__(message)
        self.code = code


class RateLimited(ServerError):
    """The service refused for load: HTTP 429, a concurrency limit, or close code 1013.

    Not retried by the connection's own retry policy: waiting is the caller's choice
    (or a ``fallback=`` provider's turn).

    Attributes:
        code: the HTTP status, close code or error code the service gave (int or str), or None.
        retry_after: the seconds the service asked the client to wait, or None if it
            did not say.
    """

    def __init__(self, message: str, code: object = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after

    @staticmethod
    def advice(retry_after: Optional[float]) -> str:
        """What to do about a refusal for load, for the end of a message."""
        wait = f"wait {retry_after:g} s before trying again" if retry_after is not None else "wait before trying again"
        return f"{wait}, lower the concurrency with max_concurrent=, or configure fallback= providers"


class SynthesisTimeout(TTSError, TimeoutError):
    """A limit ran out: no connection, no audio or no frame in time, or ``wait(timeout)``.

    Attributes:
        limit: which limit: ``"connect"``, ``"first_audio"`` or ``"between_chunks"``
            (see ``ttsstream.Timeouts``), or None for a ``wait(timeout)``.
    """

    def __init__(self, message: str, limit: Optional[str] = None) -> None:
        super().__init__(message)
        self.limit = limit


class InvalidParameterError(TTSError, ValueError):
    """A bad provider, model, parameter or text, caught before any network I/O.

    Attributes:
        parameter: the name of the offending argument, when there is one.
    """

    def __init__(self, message: str, parameter: Optional[str] = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class PlaybackError(TTSError):
    """No PyAudio, no output device, or the device failed."""


class Cancelled(TTSError):
    """The speech was cancelled (``Speech.cancel()``, ``client.stop()`` or ``close()``)."""
