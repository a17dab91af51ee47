"""Whether a provider may be tried now: its circuit breaker, its rate limit, its key; and its slots.

A client that falls back from one provider to another must not keep knocking on the one
that is down. ``Health`` remembers what one provider's recent attempts said and answers
``admit()`` for the next:

- **A refused key** is final: the provider is not tried again by this client (the same
  key will be refused again), and every later speech gets the refusal at once.
- **A rate limit** (``RateLimited``: HTTP 429, a concurrency limit) closes the provider
  until its ``retry_after`` has passed (``DEFAULT_RATE_PAUSE`` when it named none); so
  does an HTTP 503 that says ``Retry-After``.
- **Failures in a row** (a connection refused or dropped, an HTTP 5xx, a close or an
  error before the audio, a first audio that never came) open the breaker after
  ``FAILURES_TO_OPEN``: the provider is skipped for a cool-down, then probed by one
  speech at a time; a probe that fails doubles the cool-down (up to ``MAX_COOL_DOWN``),
  one that brings audio closes the breaker at once. So a dead service costs one attempt
  per cool-down, not one (or four, with retries) per speech.

``Slots`` caps how many speeches talk to one provider at once (``max_concurrent``); the
rest wait in line, first come first served, without a thread each.

Logic that depends on time takes the time as an argument, so that it is tested without a
clock. Imports: errors only.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Deque, Optional, Tuple

from .errors import AuthenticationError, Cancelled, ConnectionFailed, InvalidParameterError, PlaybackError, \
    RateLimited, TTSError

__all__ = ["Health", "Slots", "FAILURES_TO_OPEN", "COOL_DOWN", "MAX_COOL_DOWN", "DEFAULT_RATE_PAUSE",
           "counts_against"]

# Three in a row: one failure is noise on a real network, three is a pattern, and a
# speech that meets the open breaker moves on at once instead of waiting out a timeout.
FAILURES_TO_OPEN = 3
# The first cool-down, doubled after each failed probe, up to the last: a service that
# is back is found within seconds, one that stays down is asked once a minute.
COOL_DOWN = 2.0
MAX_COOL_DOWN = 60.0
# Seconds a rate-limited provider is left alone when the service did not say how long.
DEFAULT_RATE_PAUSE = 1.0


def counts_against(error: TTSError) -> bool:
    """Whether ``error`` says something about the provider (not the caller, not us)."""
    return not isinstance(error, (InvalidParameterError, Cancelled, PlaybackError))


class Health:
    """What one provider's recent attempts say about trying it now.

    Args:
        title: the provider as messages name it (``"EigenAI"``, ``"the local server"``).

    Thread: any; one lock guards everything below it.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._rejected: Optional[AuthenticationError] = None
        self._limited_until = 0.0
        self._failures = 0             # failures in a row, since the last audio
        self._open_until = 0.0         # the breaker stays open until then
        self._cool_down = COOL_DOWN
        self._probing = False          # a probe is out: nobody else goes
        self._last: Optional[TTSError] = None

    def __repr__(self) -> str:
        with self._lock:
            state = ("key refused" if self._rejected else "open" if self._failures >= FAILURES_TO_OPEN
                     else f"{self._failures} failures")
        return f"<Health {self.title}: {state}>"

    def admit(self, now: Optional[float] = None) -> Tuple[Optional[TTSError], bool]:
        """May an attempt go to this provider now?

        Returns:
            ``(refusal, probe)``: refusal is None to go ahead, else the error that says why
            not (the speech records it, or ends with it). ``probe`` is True when the
            attempt is the one probe of an open breaker: its outcome must be reported
            (``succeeded``, ``failed`` or ``abandoned``) with ``probe=True``.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._rejected is not None:
                return AuthenticationError(f"{self._rejected.message} (not tried again by this client: "
                                           "make a new one with the right key)",
                                           code=self._rejected.code, status=self._rejected.status), False
            if now < self._limited_until:
                left = self._limited_until - now
                return RateLimited(f"{self.title} asked to be left alone for a while ({left:.1f} s more): "
                                   "not tried before then; lower max_concurrent= or configure fallback=",
                                   retry_after=left), False
            if self._failures < FAILURES_TO_OPEN:
                return None, False
            if now < self._open_until or self._probing:
                left = max(0.0, self._open_until - now)
                return ConnectionFailed(
                    f"{self.title} failed {self._failures} times in a row (last: {self._last}); not tried for "
                    f"{left:.1f} s more while it recovers (circuit breaker): configure fallback= to speak "
                    "meanwhile"), False
            self._probing = True
            return None, True

    def succeeded(self, probe: bool) -> None:
        """An attempt brought audio (or completed): the provider works."""
        with self._lock:
            self._failures = 0
            self._cool_down = COOL_DOWN
            if probe:
                self._probing = False

    def failed(self, error: TTSError, probe: bool, now: Optional[float] = None) -> None:
        """An attempt failed before its audio with ``error``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if probe:
                self._probing = False
            if isinstance(error, AuthenticationError):
                self._rejected = error
            elif isinstance(error, RateLimited):
                pause = error.retry_after if error.retry_after is not None else DEFAULT_RATE_PAUSE
                self._limited_until = max(self._limited_until, now + pause)
            elif counts_against(error):
                self._failures += 1
                self._last = error
                if isinstance(error, ConnectionFailed) and error.retry_after is not None:  # a 503's Retry-After
                    self._limited_until = max(self._limited_until, now + error.retry_after)
                if probe:  # still down: wait longer before the next probe
                    self._cool_down = min(self._cool_down * 2, MAX_COOL_DOWN)
                    self._open_until = now + self._cool_down
                elif self._failures == FAILURES_TO_OPEN:
                    self._open_until = now + self._cool_down

    def abandoned(self, probe: bool) -> None:
        """An admitted attempt ended without a verdict (cancelled, or the client closed)."""
        if probe:
            with self._lock:
                self._probing = False


class Slots:
    """At most ``limit`` speeches at once; the rest wait in line, first come first served.

    A waiting speech holds no thread: ``take(go)`` calls ``go`` at once when a slot is
    free, or later on the thread that gives one back. ``go`` returns whether it used the
    slot (a speech cancelled while it waited does not, and the slot passes on).

    Args:
        limit: the most at once; None for no limit (``take`` always calls ``go`` at once).

    Thread: any; one lock guards the count and the line.
    """

    def __init__(self, limit: Optional[int]) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._busy = 0
        self._line: Deque[Callable[[], bool]] = collections.deque()

    @property
    def busy(self) -> int:
        """Slots in use now."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Speeches in line now."""
        return len(self._line)

    def take(self, go: Callable[[], bool]) -> None:
        """Run ``go`` in a slot: now if one is free (on this thread), else when one is given back."""
        if self.limit is None:
            go()
            return
        with self._lock:
            if self._busy >= self.limit or self._line:
                self._line.append(go)
                return
            self._busy += 1
        if not go():
            self.give_back()

    def give_back(self) -> None:
        """A slot's speech is over: the next in line gets it (on this thread)."""
        if self.limit is None:
            return
        while True:
            with self._lock:
                if not self._line:
                    self._busy -= 1
                    return
                go = self._line.popleft()  # the slot passes straight on: _busy stays
            if go():
                return
