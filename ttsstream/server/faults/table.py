"""The fault table: every fault the bundled server can inject, where it acts, and what it means.

Each ``Fault`` names its action (from ``actions``), the point where it acts, what its
``after`` counts, and two lines of documentation: what happens, and what a client
should do about it. The docs (``docs/guide/faults.md``), ``--help`` and ``FaultSpec`` all read this table;
adding a fault is one action and one entry here.

The points, in the order a connection meets them:

- ``handshake``: when the HTTP upgrade request arrives; the action answers it (or lets
  it through, returning None).
- ``key``: wherever a dialect checks an API key; the action overrules the verdict.
- ``connection``: from the 101 until the connection ends, beside its handler.
- ``frame``: in every utterance, once ``after`` of its binary frames are out (or
  before its end message, if it has exactly ``after``); a frame fault whose ``after``
  counts something else (or nothing) acts before the first frame.
- ``end``: in every utterance, when all its audio is out, instead of its end message.

This module owns ``TABLE`` and ``FAULTS``. It imports only ``actions`` from the package.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from .actions import (GARBAGE, HUGE_FRAME_BYTES, IDLE_CLOSE_CODE, IDLE_CLOSE_REASON, SLOW_PACE, TOO_MANY,
                       close, close_before_end, concurrency_limit, drop, empty_frame, error, garbage,
                       http_401, http_429, http_500, http_503, huge_frame, idle_close, no_handshake,
                       realtime, refuse_every_key, reset, reset_reused, slow, slow_first_audio,
                       split_samples, stall, unknown_json)

__all__ = ["Fault", "TABLE", "FAULTS", "POINTS", "UNITS", "BY_POINT"]

POINTS = ("handshake", "key", "connection", "frame", "end")
# What a fault's ``after`` counts, by point; None: it takes no ``after``.
UNITS: Dict[str, Optional[str]] = {"handshake": None, "key": None, "connection": "seconds", "frame": "frames",
                                   "end": None}
BY_POINT = "by point"  # a fault's ``counts`` when its ``after`` counts what its point's do


class Fault(NamedTuple):
    """One row of the fault table.

    Attributes:
        name: what ``LocalServer(fault=...)`` and ``--fault`` call it.
        point: where it acts (one of ``POINTS``).
        action: what it does there (see ``actions``).
        happens: one line: what a client meets.
        advice: one line: what a client should do about it.
        after: its default ``after`` (frames or seconds, by point); None if it takes none.
        holds_handshake: it keeps a handshake open as long as the client waits, so the
            server must not time the handshake out.
        counts: what its ``after`` counts when that is not what its point's faults
            count (``UNITS``): ``"seconds"``, ``"connections"``, or None for nothing.
    """

    name: str
    point: str
    action: Callable[..., Any]
    happens: str
    advice: str
    after: Optional[float] = None
    holds_handshake: bool = False
    counts: Optional[str] = BY_POINT

    @property
    def unit(self) -> Optional[str]:
        """What ``after`` counts: ``"frames"``, ``"seconds"``, ``"connections"``, or None."""
        return UNITS[self.point] if self.counts == BY_POINT else self.counts


_FAULTS: Tuple[Fault, ...] = (
    # -- in an utterance, after `after` of its binary frames -----------------------------
    Fault("drop", "frame", drop, after=1,
          happens="the server aborts TCP (FIN, no close frame)",
          advice="fail the speech with a connection error, keep the audio already received; "
                 "never resend text whose audio has started"),
    Fault("reset", "frame", reset, after=1,
          happens="the server resets TCP (RST, no close frame)",
          advice="as for drop: a connection error, not a hang or a crash of the reader"),
    Fault("stall", "frame", stall, after=1,
          happens="the server sends nothing more and keeps the connection open",
          advice="give up after your own read timeout, close the connection and report a timeout"),
    Fault("error", "frame", error, after=1,
          happens="the dialect's error message (code 500, 'engine failed') ends the utterance; "
                  "the connection serves on",
          advice="fail that speech with the server's code and message; the connection may be reused"),
    Fault("garbage", "frame", garbage, after=1,
          happens=f"a text frame that is not JSON ({GARBAGE!r}), then the utterance carries on",
          advice="report a protocol error (or log and skip it); never crash the reader thread"),
    Fault("unknown_json", "frame", unknown_json, after=1,
          happens="a JSON text frame of a type no dialect defines, then the utterance carries on",
          advice="ignore messages you do not know and keep the speech going"),
    Fault("empty_frame", "frame", empty_frame, after=1,
          happens="a binary frame of zero bytes (after its chunk message, where the dialect has "
                  "them), then the utterance carries on",
          advice="skip it: no zero-length chunk to callbacks, no error"),
    Fault("split_samples", "frame", split_samples, after=1,
          happens="the next frame is one byte short, so every later frame boundary (with an even "
                  "frame size) falls inside a 16-bit sample",
          advice="carry the odd byte over to the next frame: hand on whole samples only, lose none"),
    Fault("huge_frame", "frame", huge_frame, after=1,
          happens=f"one {HUGE_FRAME_BYTES // 2**20} MiB binary frame of silence, then the utterance "
                  "carries on",
          advice="take it (or refuse it with a clear size error), without hanging or stalling other speeches"),
    Fault("close", "frame", close, after=1,
          happens="a close frame 1011 ('internal error')",
          advice="fail the speech with a connection error that carries the code; open a new connection "
                 "for the next speech"),
    Fault("reset_reused", "frame", reset_reused, after=0,
          happens="a connection's first utterance is served; on its later ones the server aborts TCP "
                  "before any audio, as a NAT that forgot an idle connection would",
          advice="a reused connection that fails before any audio may be replaced and the request "
                 "sent again, once"),
    Fault("realtime", "frame", realtime, after=0,
          happens="audio leaves at the speed it plays (1x real time)",
          advice="play as it arrives with a small jitter buffer; time out on silence, not on "
                 "total duration"),
    Fault("slow", "frame", slow, after=0,
          happens=f"audio leaves at {SLOW_PACE:g}x the speed it plays: playback must underrun",
          advice="keep playing what arrives and count the underruns; do not time out while audio "
                 "keeps coming"),
    Fault("silent", "frame", stall, counts=None,
          happens="the connection opens and the request is accepted, then nothing is ever sent: "
                  "no audio, no end message, no close",
          advice="give up after your own first-audio timeout, close the connection and report a timeout; "
                 "an open connection is no proof of a working server"),
    Fault("slow_first_audio", "frame", slow_first_audio, after=2.0, counts="seconds",
          happens="each utterance's first audio goes out `after` seconds late, the rest at the normal pace",
          advice="wait for first audio as long as your first-audio timeout allows; measure the latency"),
    # -- in an utterance, when its audio is out ------------------------------------------
    Fault("close_before_end", "end", close_before_end,
          happens="all the audio, then a clean close (1000) instead of the end message",
          advice="the speech did not complete: fail it with a connection error, keep its audio"),
    # -- a connection --------------------------------------------------------------------
    Fault("idle_close", "connection", idle_close, after=5.0,
          happens=f"a connection with no utterance under way for `after` seconds is closed "
                  f"({IDLE_CLOSE_CODE}, {IDLE_CLOSE_REASON!r})",
          advice="expect it between speeches: drop the connection and open a new one for the next "
                 "speech, without an error"),
    # -- the key -------------------------------------------------------------------------
    Fault("auth_reject", "key", refuse_every_key,
          happens="every key is refused as the dialect refuses a wrong one: EigenAI an error "
                  "message (401) and close 1008, /ws close 4001, /ws/tts HTTP 401",
          advice="raise an authentication error naming the key's variable; do not retry"),
    # -- the handshake -------------------------------------------------------------------
    Fault("http_401", "handshake", http_401,
          happens="the handshake is answered HTTP 401 on every endpoint",
          advice="raise an authentication error; do not retry"),
    Fault("http_500", "handshake", http_500,
          happens="the handshake is answered HTTP 500 on every endpoint",
          advice="raise a connection error carrying the status; retry later, with backoff"),
    Fault("http_429", "handshake", http_429, after=1.0, counts="seconds",
          happens="the handshake is answered HTTP 429 with `Retry-After: after` and a small JSON body",
          advice="raise a rate-limit error carrying the Retry-After; do not retry at once: wait, "
                 "lower the concurrency or fall back to another provider"),
    Fault("http_503", "handshake", http_503,
          happens="the handshake is answered HTTP 503 (Service Unavailable) on every endpoint",
          advice="raise a connection error carrying the status; retry later with backoff, or fall back"),
    Fault("concurrency_limit", "handshake", concurrency_limit, after=2, counts="connections",
          happens=f"at most `after` WebSocket connections are open at once; a handshake beyond that is "
                  f"answered HTTP 429 with `Retry-After: 1` and a JSON body ({TOO_MANY!r}); a connection "
                  "that closes frees its place",
          advice="raise a rate-limit error; hold fewer connections at once (max_concurrent=) or fall back"),
    Fault("no_handshake", "handshake", no_handshake, holds_handshake=True,
          happens="the server accepts TCP (and TLS) and never answers the HTTP upgrade",
          advice="give up after your own connect timeout and close the socket"),
)

TABLE: Dict[str, Fault] = {fault.name: fault for fault in _FAULTS}

# The names LocalServer(fault=...) accepts; None injects nothing.
FAULTS = (None, *TABLE)
