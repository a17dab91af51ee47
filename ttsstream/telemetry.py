"""OpenTelemetry: a span per speech, and the metrics of speeches, fallbacks and the cache.

With ``opentelemetry-api`` installed, every speech is a span named ``ttsstream.speech``
(its attributes below) and feeds the instruments of the meter ``ttsstream``; whatever
tracer and meter providers the application set up (the OpenTelemetry SDK, an exporter)
receive them. Without it nothing of it is imported and every hook returns at once: the
check is made once, at import, with ``importlib.util.find_spec`` (which imports nothing),
and OpenTelemetry itself is imported when the first client is made, not with ``ttsstream``.

The span is made when the speech ends, with the start time and the parent context that
``begin()`` captured on the thread that called ``speak()``: a speech spoken inside a
user's span is its child, although it ends on a reader thread. Neither the text nor an
API key is recorded: a failed speech's span carries its error's type only.

This module owns the names of the span, its attributes and the instruments, and the
guard that keeps a fault of telemetry (or of an exporter) from ever failing a speech.

Imports: errors. Nothing else of the package; OpenTelemetry only lazily, when a client is made.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from typing import Any, Dict, NamedTuple, Optional

from .errors import Cancelled

__all__ = ["SpeechFacts", "SPAN_NAME", "METER_NAME", "prepare", "begin", "end", "fallback", "cache_lookup"]

logger = logging.getLogger("ttsstream")

SPAN_NAME = "ttsstream.speech"
METER_NAME = "ttsstream"

# The instruments' names and units (UCUM, as OpenTelemetry's conventions ask). First
# audio is in ms, like the span's ttsstream.first_audio_ms: the SDK's default histogram
# buckets (5 ms ... 10 s) fit a time to first audio; in seconds they would put every
# speech in the first bucket.
FIRST_AUDIO = "ttsstream.speech.time_to_first_audio"
CHARACTERS = "ttsstream.speech.characters"
AUDIO = "ttsstream.speech.audio.duration"
ERRORS = "ttsstream.speech.errors"
FALLBACKS = "ttsstream.fallbacks"
CACHE_LOOKUPS = "ttsstream.cache.lookups"


class SpeechFacts(NamedTuple):
    """What a finished speech tells its span and the metrics."""

    provider: str                      # the provider's name that spoke (or last tried)
    model: str
    chars: int
    first_audio_ms: Optional[float]    # None when no audio came
    audio_seconds: float
    cached: bool
    attempts: int                      # providers tried, the one that spoke included
    error: Optional[BaseException]


class _Token(NamedTuple):
    """What ``begin()`` captured: the span's start time and its parent context."""

    start_ns: int
    context: Any


def _installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a broken stub in sys.modules
        return False


# Decided once: False makes every hook a single global read and a return.
_enabled = _installed()

# Set once, by the first client or speech, under _loading; read without it after.
_loading = threading.Lock()
_otel: Optional["_Instruments"] = None

# Whether a fault of telemetry was logged already (it is logged once, then only counted).
_complained = False


class _Instruments:
    """OpenTelemetry's modules, the tracer and the instruments. Made once, on first use."""

    def __init__(self) -> None:
        from opentelemetry import context, metrics, trace

        version = _version()
        self.context = context
        self.trace = trace
        # The API's proxies: providers the application sets later (after a first
        # speech) still receive what is recorded from then on.
        self.tracer = trace.get_tracer(METER_NAME, version)
        meter = metrics.get_meter(METER_NAME, version)
        self.first_audio = meter.create_histogram(
            FIRST_AUDIO, unit="ms", description="Time from speak() to the first audio of a speech")
        self.characters = meter.create_counter(
            CHARACTERS, unit="{character}", description="Characters of text spoken")
        self.audio = meter.create_counter(
            AUDIO, unit="s", description="Seconds of audio received")
        self.errors = meter.create_counter(
            ERRORS, unit="{error}", description="Speeches that failed, by error type")
        self.fallbacks = meter.create_counter(
            FALLBACKS, unit="{fallback}", description="Speeches handed from a failed provider to the next")
        self.cache_lookups = meter.create_counter(
            CACHE_LOOKUPS, unit="{lookup}", description="Phrase cache lookups, hits and misses")


def _version() -> str:
    """The installed ttsstream's version ("" when it runs from a source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ttsstream")
    except PackageNotFoundError:
        return ""


def _instruments() -> Optional[_Instruments]:
    """The instruments, made on first use; None (and telemetry off) if they cannot be."""
    global _otel, _enabled
    if _otel is None:
        with _loading:
            if _otel is None and _enabled:
                try:
                    _otel = _Instruments()
                except ImportError as error:  # a partial install: no opentelemetry-api
                    _enabled = False
                    logger.warning("OpenTelemetry is installed but cannot be loaded, so ttsstream records "
                                   "no spans or metrics (pip install 'ttsstream[otel]'): %s", error)
    return _otel


def _complain() -> None:
    """Log a fault of telemetry once, with its traceback. Called from an except block."""
    global _complained
    if not _complained:
        _complained = True
        logger.warning("ttsstream's OpenTelemetry hook failed; speeches go on, and further "
                       "failures are not logged", exc_info=True)


def error_type(error: BaseException) -> str:
    """The ``error.type`` of an exception: its class's name, never its message."""
    return type(error).__qualname__


def prepare() -> None:
    """Load OpenTelemetry and make the instruments now, if it is installed (a client does
    when it is made): the first speeches of a burst would otherwise wait, each, for the
    imports one of them runs. Thread: any."""
    if _enabled:
        try:
            _instruments()
        except Exception:
            _complain()


def begin() -> Optional[object]:
    """Capture a new speech's start time and parent context; None when telemetry is off.

    Thread: the one calling ``speak()`` (its current context is the span's parent).
    """
    if not _enabled:
        return None
    try:
        otel = _instruments()
        if otel is None:
            return None
        return _Token(time.time_ns(), otel.context.get_current())
    except Exception:
        _complain()
        return None


def end(token: Optional[object], facts: SpeechFacts) -> None:
    """Record a finished speech: its span (started at ``begin()``) and its metrics.

    Args:
        token: what ``begin()`` returned for this speech (None: nothing is recorded).
        facts: how the speech went.

    Thread: whichever ended the speech (a reader thread, a canceller); never raises.
    """
    if token is None or _otel is None:
        return
    try:
        _record(_otel, token, facts)
    except Exception:
        _complain()


def _record(otel: _Instruments, token: object, facts: SpeechFacts) -> None:
    assert isinstance(token, _Token)
    attributes: Dict[str, Any] = {
        "ttsstream.provider": facts.provider,
        "ttsstream.model": facts.model,
        "ttsstream.chars": facts.chars,
        "ttsstream.audio_seconds": facts.audio_seconds,
        "ttsstream.cached": facts.cached,
        "ttsstream.attempts": facts.attempts,
    }
    if facts.first_audio_ms is not None:
        attributes["ttsstream.first_audio_ms"] = facts.first_audio_ms
    # A cancelled speech (a barge-in, stop(), close()) was meant to end: not a failure,
    # so no error.type either (its presence means one, in OpenTelemetry's conventions).
    failed = facts.error is not None and not isinstance(facts.error, Cancelled)
    if isinstance(facts.error, Cancelled):
        attributes["ttsstream.cancelled"] = True
    elif facts.error is not None:
        attributes["error.type"] = error_type(facts.error)
    span = otel.tracer.start_span(SPAN_NAME, context=token.context, kind=otel.trace.SpanKind.CLIENT,
                                  attributes=attributes, start_time=token.start_ns)
    if failed:
        span.set_status(otel.trace.Status(otel.trace.StatusCode.ERROR))
    span.end()

    labels: Dict[str, Any] = {"ttsstream.provider": facts.provider, "ttsstream.model": facts.model}
    if facts.first_audio_ms is not None:
        otel.first_audio.record(facts.first_audio_ms, {**labels, "ttsstream.cached": facts.cached})
    otel.characters.add(facts.chars, labels)
    otel.audio.add(facts.audio_seconds, labels)
    if failed:
        assert facts.error is not None
        otel.errors.add(1, {**labels, "error.type": error_type(facts.error)})


def fallback(from_provider: str, to_provider: str, reason: BaseException) -> None:
    """Count a speech handed from a failed provider to the next one. Never raises.

    Thread: any.
    """
    if not _enabled:
        return
    try:
        otel = _instruments()
        if otel is not None:
            otel.fallbacks.add(1, {"ttsstream.fallback.from": from_provider, "ttsstream.fallback.to": to_provider,
                                   "error.type": error_type(reason)})
    except Exception:
        _complain()


def cache_lookup(hit: bool) -> None:
    """Count a phrase cache lookup, a hit or a miss. Never raises. Thread: any."""
    if not _enabled:
        return
    try:
        otel = _instruments()
        if otel is not None:
            otel.cache_lookups.add(1, {"ttsstream.cache.hit": hit})
    except Exception:
        _complain()
