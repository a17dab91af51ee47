"""How long to wait, and when to try again: ``Timeouts`` and the retry policy.

Three limits, each its own ``SynthesisTimeout`` (its ``limit`` names the one that ran
out):

- ``connect``: the budget for getting an open connection: TCP, TLS and the WebSocket
  handshake, every retry and the pauses between them included;
- ``first_audio``: from sending a request to the first byte of its audio (the server's
  thinking time);
- ``between_chunks``: the longest silence once audio flows.

Each limit is a gap, not a total, so a steady stream longer than all of them never
times out.

Retries happen before the first byte only. A connection refused, a handshake that
fails (HTTP 5xx, a dropped TCP connection, TLS), or a connection that dies before any
audio of its speech arrived is tried again, after an exponential backoff with full
jitter, as long as the connect budget lasts. A refused key (``AuthenticationError``),
a server's error message, an HTTP 4xx, and anything after audio has begun are never
retried: the same request would fail the same way, or the user would hear a part twice.

Imports: errors, checks. ``open_with_retries`` takes the socket-opening as a function,
so this module knows no socket.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from typing import Callable, Optional, Tuple, Union

from .checks import require_float, require_number
from .errors import ConnectionFailed, InvalidParameterError, SynthesisTimeout, TTSError

__all__ = ["Timeouts", "Watch", "RetryPolicy", "DEFAULT_RETRIES", "open_with_retries"]

logger = logging.getLogger("ttsstream.connection")

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
# The first pause, and the longest: 0.1, 0.2, 0.4 ... seconds, each drawn uniformly
# below its bound (full jitter), so that clients cut off together do not return together.
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 2.0


def _seconds(name: str, value: object) -> float:
    return require_float(name, value, 0, 3600, low_open=True,
                         error=lambda message: InvalidParameterError(message, parameter="timeout"))


class Timeouts:
    """The three limits of a speech, in seconds (see the module's docstring).

    Args:
        connect: seconds to get an open connection, retries included.
        first_audio: seconds from a request to its first audio.
        between_chunks: seconds of silence allowed once audio flows.

    Each defaults to 30. ``TTSClient(timeout=10)`` is ``Timeouts(10, 10, 10)``.

    Raises:
        InvalidParameterError: a limit that is not a number of seconds in (0, 3600].
    """

    __slots__ = ("connect", "first_audio", "between_chunks")

    def __init__(self, connect: float = DEFAULT_TIMEOUT, first_audio: float = DEFAULT_TIMEOUT,
                 between_chunks: float = DEFAULT_TIMEOUT) -> None:
        self.connect = _seconds("timeout connect", connect)
        self.first_audio = _seconds("timeout first_audio", first_audio)
        self.between_chunks = _seconds("timeout between_chunks", between_chunks)

    @classmethod
    def of(cls, value: Union[float, "Timeouts"]) -> "Timeouts":
        """``value`` if it is Timeouts, else all three limits set to the number ``value``."""
        if isinstance(value, Timeouts):
            return value
        seconds = _seconds("timeout", value)
        return cls(seconds, seconds, seconds)

    @property
    def longest(self) -> float:
        return max(self.connect, self.first_audio, self.between_chunks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeouts) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        return (f"Timeouts(connect={self.connect:g}, first_audio={self.first_audio:g}, "
                f"between_chunks={self.between_chunks:g})")


class Watch:
    """The deadline a connection's reader waits for: a speech's first audio, its next
    frame, or the end of an idle connection's life.

    The reader stamps the times (``sent``, ``heard``, ``idle_since``: ``time.monotonic()``
    seconds) and asks ``overdue`` when a read times out; it takes the time as an
    argument, so it is tested without a socket or a clock.

    Thread: the reader thread's, but ``sent`` is also stamped by the thread that sends a
    request on an open connection (under the connection's lock).
    """

    __slots__ = ("timeouts", "max_idle", "sent", "heard", "idle_since")

    def __init__(self, timeouts: Timeouts, max_idle: float) -> None:
        self.timeouts = timeouts
        self.max_idle = max_idle
        self.sent = 0.0        # the current request went out
        self.heard = 0.0       # the last frame arrived
        self.idle_since = 0.0  # the connection last became idle

    @property
    def tick(self) -> float:
        """The longest a read may wait before a limit needs checking."""
        return min(self.timeouts.first_audio, self.timeouts.between_chunks, self.max_idle)

    def overdue(self, now: float, busy: bool, audio_seen: bool) -> Tuple[Optional[str], float]:
        """What ran out at ``now``, if anything, and the seconds to the next deadline.

        Returns:
            ``(kind, left)``: kind is ``"idle"`` (an idle connection has lived out its
            ``max_idle``), ``"first_audio"`` or ``"between_chunks"`` (a speech's limit),
            or None with ``left`` seconds to go.
        """
        if not busy:
            kind, left = "idle", self.idle_since + self.max_idle - now
        elif not audio_seen:
            kind, left = "first_audio", self.sent + self.timeouts.first_audio - now
        else:
            kind, left = "between_chunks", self.heard + self.timeouts.between_chunks - now
        return (kind if left <= 0 else None), left

    def error(self, kind: str, service: str) -> SynthesisTimeout:
        """The error for a speech limit that ran out."""
        if kind == "first_audio":
            said = f"sent no audio within {self.timeouts.first_audio:g} s of the request"
        else:
            said = f"sent nothing for {self.timeouts.between_chunks:g} s in the middle of the speech"
        return SynthesisTimeout(f"{service} {said} (the {kind} timeout); the server may be overloaded: raise "
                                "timeout= to wait longer", limit=kind)


class RetryPolicy:
    """Which failures are tried again, how often, and how long to pause before each.

    Args:
        retries: how many times a speech (or a prewarmed connection) is tried again
            after its first attempt failed before any audio; 0 never retries.

    Thread: any; it holds no state but its settings.
    """

    __slots__ = ("retries",)

    def __init__(self, retries: int = DEFAULT_RETRIES) -> None:
        self.retries = require_number("retries", retries, 0, 100, integer=True,
                                      error=lambda message: InvalidParameterError(message, parameter="retries"))

    @staticmethod
    def retriable(error: Optional[TTSError]) -> bool:
        """Whether a failure before any audio may be tried again: a connection that could
        not be made or that dropped, or an HTTP 5xx; never a refused key, a server's
        error message, a protocol error, an HTTP 4xx or a timeout."""
        if type(error) is not ConnectionFailed:  # subclasses and other errors: never
            return False
        if isinstance(error.__cause__, ssl.SSLCertVerificationError):  # the same certificate next time
            return False
        status = error.status
        return status is None or 500 <= status < 600

    @staticmethod
    def pause(attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1, 2, ...): full jitter below
        an exponential bound."""
        bound = min(_BACKOFF_CAP, _BACKOFF_BASE * (2 ** (attempt - 1)))
        return random.uniform(0.0, bound)


def open_with_retries(open_once: Callable[[float], None], policy: RetryPolicy, attempt: int, deadline: float,
                      closing: threading.Event, where: str, limit: float) -> int:
    """Call ``open_once(seconds_left)`` until it opens, trying again as the policy allows.

    Args:
        open_once: opens a new socket within the seconds it is given; raises
            ConnectionFailed, AuthenticationError or SynthesisTimeout.
        policy: which failures are tried again, and how often.
        attempt: how many tries this speech has had already (each pauses first).
        deadline: when the connect budget runs out (``time.monotonic()``).
        closing: set when the connection is being closed: stop at once.
        where: the URL as messages show it.
        limit: the connect timeout, for the message.

    Returns:
        The number of the attempt that opened (``attempt`` or more).

    Raises:
        SynthesisTimeout: the budget ran out (``limit="connect"``).
        TTSError: a failure not worth trying again, or the last one.

    Thread: the connection's reader thread.
    """
    while True:
        pause = min(policy.pause(attempt), deadline - time.monotonic()) if attempt else 0.0
        if (pause > 0 and closing.wait(pause)) or closing.is_set():
            raise ConnectionFailed(f"the connection to {where} was closed while opening")
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise SynthesisTimeout("", limit="connect")
            open_once(left)
            return attempt
        except SynthesisTimeout:
            raise SynthesisTimeout(
                f"could not connect to {where} within {limit:g} s (the connect timeout, retries included); "
                "check the url and your network, or raise timeout=", limit="connect") from None
        except ConnectionFailed as exc:
            if closing.is_set():
                raise ConnectionFailed(f"the connection to {where} was closed while opening") from None
            if not policy.retriable(exc) or attempt >= policy.retries:
                raise
            attempt += 1
            logger.info("connecting to %s failed (%s); attempt %d of %d follows", where, exc, attempt + 1,
                        policy.retries + 1)
