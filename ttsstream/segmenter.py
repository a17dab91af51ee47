"""Where to cut text into units to synthesize: ``Segmenter`` for text still being written
(an LLM's tokens), ``split_text`` for a whole string longer than one request allows.

Owns the cutting rules only: no threads, no clock, no I/O; times are arguments (seconds on
any monotonic clock). Imports: the standard library (re, unicodedata) and sentence_rules
(where sentences end, and its tables of abbreviations per script).

Units concatenate to the input exactly, whitespace included (a unit keeps the whitespace
after its last word: strip it to send), except trailing whitespace that arrives after all
else was released: it is never a unit of its own.

Breaks. A sentence end: ``. ! ? …`` (or runs like ``?!`` ``...``), Urdu ``۔ ؟``, with any
closing quotes, brackets or citations (``."`` ``?)`` ``.[1]``), then whitespace; CJK ``。！？``
(not inside a ``《title》``) and the danda ``। ॥`` without space; a newline; a blank line.
A clause end: ``, ; :`` (Urdu ``، ؛``) then whitespace, ``，；：、``, an em dash, a spaced
``-``/``–``. A word end: other whitespace (for a forced cut in text with
no spaces: between CJK characters). Never a break: inside a word or number (``3.14 112,000
$29.99 1.5x 10:30``, URLs, emails); a ``.`` or ellipsis before a lowercase word; a spaced
ellipsis ``. . .`` (a fourth dot ends the sentence), ``[...]``; a ``.`` after an abbreviation
(``Dr. Mr. St. vs. e.g. i.e. a.m. डॉ. प्रो. ഡോ.``, glued too: ``Tuesday.Mr.``), an initial
(``J. R. R. U.S. ए. पी. जे. കെ.പി.``), a list marker at a line start, after a sentence end
or a bullet (``item. 2. The``) or as ``2.)``, a lone ``b.``; ``No. Rs. N°. p.`` before a
digit; a unit between numbers (``5 ft. 3 in.``). Judgment: ``etc.``, ``Inc.``, ``Jr.`` end a
sentence before a capital ("pears, etc. Then"), not before a lowercase word nor ``(``.

The release rule. ``push`` releases a unit the moment its break is confirmed, that is when
the first non-space character after it (after a CJK mark: the next character) has arrived,
if the unit is long enough for the mode below; a sentence end that all the text so far ends
with, then whitespace, is confirmed too ("Sure! ": the writer paused), for a first unit at
any length, unless it may go on (an abbreviation, initial, list marker, ``No.``, ellipsis).
``poll`` (and ``push``) force out text that has waited ``flush_after`` seconds (since it
arrived or the last cut) while at most ``HURRY_AHEAD`` seconds of audio are queued.
Lengths are spoken (``spoken_len``: CJK counts 3); the audio queued is what ``set_ahead``
said, run down since, else an estimate from the text released at ``SPEECH_CHARS_PER_SECOND``.

    mode     when                                    sentence end     clause end
    first    no unit released yet                    >= first_min     >= first_min
    normal   later                                   >= min_chars     >= max_chars // 2
    relaxed  ahead >= RELAXED_AHEAD (6 s)            >= 2 * min_chars >= max_chars // 2
    hurry    at the text's rate, a normal unit       >= first_min     >= first_min
             would come after ahead fell to HURRY_AHEAD (1 s)

A paragraph break always releases. Past ``max_chars``: the last sentence end, else clause
end, else word end leaving a third of the limit; else the last break; else between CJK
characters; else (an unbroken run) the limit. Forced while text flows (and ``first_min``
waits): the strongest break leaving ``first_min // 2``, else the last word end (the word
being typed stays). After a stall (no text for ``flush_after``): all of it if it ends like a
sentence or clause (not ``29.``; ``etc. No. ft.`` may end one) or is one word, else up to
its last word end; but text ending in an abbreviation a word always follows, an initial or
a list marker (``Please ask Dr. ``) goes only up to its last sentence or clause end, or as
a forced cut while text flows: the abbreviation never goes without the word after it. That
wait has no time bound (the name comes next in an LLM's answer; "Dr." alone is never
right): more text, ``flush`` or ``finish`` end it.

Defaults: ``python benchmarks/bench_segmenter.py`` streams six ~600-character answers
(numbers, a list, abbreviations, no punctuation, Chinese, Hindi) as 4-character tokens at
30 tokens/s; 0.25 s to first audio, speech at 14 characters/s; simulated time, so CPU load
elsewhere changes nothing. Medians over the answers ("bad": in a number, after ``Dr.``...):

    rule                   first unit (worst)  units  shortest  median  gaps  forced  bad
    defaults               0.33 (0.50) s       7      24        96      0     2       0
    first_min_chars 10     0.23 (0.50) s       7      21        89      0     2       0
    first_min_chars 40     0.45 (0.50) s       6      45        95      0     3       0
    flush_after 0.3 / 1.0  0.28 (0.30) / 0.33 (1.00) s  7 / 6  21 / 33  90 / 92  0  4 / 2  0
    RealtimeTTS-like       0.20 (1.23) s       10     20        62      0     1       8
    LiveKit-like           1.35 (5.37) s       5      258       286     0     0       6
    Pipecat-like           0.33 (5.37) s       10     17        59      0     0       21

(LiveKit-like keeps Chinese, Hindi, unpunctuated text whole.) At 5 tokens/s the defaults
leave no gap; RealtimeTTS-like 1.8 s of silence, Pipecat-like 0.5 s. first_min_chars 20
(1.4 s of speech) outlasts a request's time to first audio; 10 gains 0.1 s but makes
4-character units at 5 tokens/s; 40 costs 0.1 s (1 s at 5 tokens/s). flush_after 0.5 bounds
the wait for a first clause: 0.3 doubles forced cuts, 1.0 the worst case. min_chars 40 (3 s;
20: 8 units, 80: 5) joins short sentences; max_chars 300 (21 s) binds only unpunctuated text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, List, Optional, Sequence, Tuple

from .sentence_rules import ALL_PUNCT, CLOSERS, NOSPACE_ENDS, OPENERS, SPACED_ENDS
from .sentence_rules import CLAUSE as _CLAUSE
from .sentence_rules import NONE as _NONE
from .sentence_rules import PARAGRAPH as _PARAGRAPH
from .sentence_rules import SENTENCE as _SENTENCE
from .sentence_rules import WORD as _WORD
from .sentence_rules import breaks as _breaks

__all__ = ["Segmenter", "split_text", "spoken_len", "SPEECH_CHARS_PER_SECOND"]

# About 150 words a minute: 14 characters a second of English, spaces included; a CJK
# character takes about as long as three Latin letters (4-5 a second).
SPEECH_CHARS_PER_SECOND = 14.0
_WIDE_WEIGHT = 3
# At or below this much queued audio the next unit must go: a request's time to first
# audio (0.2-0.8 s) and a timer's slack. Above RELAXED_AHEAD, units may be twice as long.
HURRY_AHEAD = 1.0
RELAXED_AHEAD = 6.0

_EPSILON = 1e-9  # so that poll(deadline) releases despite float rounding
_CLOSERS, _OPENERS, _LATIN_ENDS, _NOSPACE_ENDS, _ALL_PUNCT = CLOSERS, OPENERS, SPACED_ENDS, NOSPACE_ENDS, ALL_PUNCT
_SPACE_RE = re.compile(r"\s+")


def spoken_len(text: str) -> int:
    """The length of ``text`` as speaking time counts it: a wide (CJK) character is 3."""
    if text.isascii():
        return len(text)
    return sum(_WIDE_WEIGHT if _wide(c) else 1 for c in text)


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in "WF"  # CJK ideographs, kana, hangul


def _fit(text: str, limit: int) -> int:
    """The longest prefix length of ``text`` whose spoken length is at most ``limit``."""
    if text.isascii():
        return min(len(text), limit)
    total = 0
    for i, char in enumerate(text):
        total += _WIDE_WEIGHT if _wide(char) else 1
        if total > limit:
            return i
    return len(text)


def _char_break(text: str, limit: int) -> Optional[int]:
    """The last position <= limit between two non-space characters, one CJK, that starts
    no unit with punctuation or a combining mark."""
    for pos in range(min(limit, len(text) - 1), 0, -1):
        before, after = text[pos - 1], text[pos]
        if (not before.isspace() and not after.isspace() and (_wide(before) or _wide(after))
                and after not in _ALL_PUNCT + _CLOSERS and before not in _OPENERS
                and not unicodedata.combining(after)):
            return pos
    return None


def _best_cut(text: str, breaks: Sequence[Tuple[int, int]], limit: int, min_len: int,
              measure: Callable[[str], int], hard: bool) -> Optional[int]:
    """Where to cut ``text`` at or before ``limit``: the last break of the strongest kind
    leaving ``min_len``; else the last break; else between CJK characters; else, if
    ``hard``, at the limit (not before a combining mark)."""
    usable = [(pos, kind) for pos, kind in breaks if pos <= limit and text[:pos].strip()]
    for least in (_SENTENCE, _CLAUSE, _WORD):
        positions = [pos for pos, kind in usable if kind >= least]
        if positions and measure(text[:positions[-1]].strip()) >= min_len:
            return positions[-1]
    if usable:
        return usable[-1][0]
    pos = _char_break(text, limit)
    if pos is not None or not hard:
        return pos
    pos = max(limit, 1)
    while pos > 1 and unicodedata.combining(text[pos]):
        pos -= 1
    return pos


def _check_length(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def split_text(text: str, max_chars: int) -> List[str]:
    """Cut a whole string into pieces of at most ``max_chars`` characters each (``len``).

    Each cut goes at the last sentence end within the limit, else clause end, else space
    (each only if it leaves a third of the limit), else between CJK characters; a run of
    more than ``max_chars`` characters with no break at all is cut at the limit.

    Returns the pieces in order; joined, they give back ``text``, except whitespace that
    would make a piece of its own (``[]`` for blank text). Raises ValueError if
    ``max_chars`` is not a positive int.
    """
    _check_length("max_chars", max_chars)
    pieces, line_start = [], True
    while len(text) > max_chars:
        window = text[:max_chars + 1]
        pos = _best_cut(window, _breaks(window, line_start), max_chars, max_chars // 3, len, True)
        piece, text = text[:pos], text[pos:]
        if piece.strip():
            pieces.append(piece)
            line_start = "\n" in piece[len(piece.rstrip()):]
    if text.strip():
        pieces.append(text)
    return pieces


class Segmenter:
    """Cuts text that arrives in fragments into units to synthesize (rules: the module's docstring).

    Args:
        first_min_chars: the shortest first unit (spoken length) a clause or sentence end
            releases; later units too while audio runs low.
        min_chars: the shortest later unit a sentence end releases.
        max_chars: the longest unit (spoken length, so also a bound on ``len``).
        flush_after: seconds text may wait, while little audio is queued, before a cut is forced.

    ``push`` and ``poll`` release units by the rules above; ``flush`` releases all that is
    pending now (the caller knows of a pause); ``finish`` ends the text.

    Thread: none of its own and no lock; call it from one thread (or under the caller's lock).
    Raises ValueError for a length that is not a positive int, a minimum above
    ``max_chars``, or a ``flush_after`` that is not a positive number of seconds.
    """

    def __init__(self, first_min_chars: int = 20, min_chars: int = 40, max_chars: int = 300,
                 flush_after: float = 0.5) -> None:
        for name, value in (("first_min_chars", first_min_chars), ("min_chars", min_chars),
                            ("max_chars", max_chars)):
            _check_length(name, value)
        if max(first_min_chars, min_chars) > max_chars:
            raise ValueError("first_min_chars and min_chars must not exceed max_chars")
        if (isinstance(flush_after, bool) or not isinstance(flush_after, (int, float))
                or not 0 < flush_after < float("inf")):
            raise ValueError(f"flush_after must be a positive number of seconds, got {flush_after!r}")
        self.first_min_chars = first_min_chars
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.flush_after = float(flush_after)
        self._ahead_set: Optional[Tuple[float, float]] = None  # (seconds, told at)
        self._now = 0.0                       # the latest time given to push or poll
        self._reset()

    def _reset(self) -> None:
        self._buf = ""
        self._base = 0                        # offset of _buf[0] in the whole text
        self._arrivals: List[Tuple[int, float]] = []  # (offset, time) of pending fragments
        self._decided = 0                     # breaks at positions <= this were judged
        self._line_start = True               # _buf begins a line
        self._after_end = False               # _buf follows a released sentence end
        self._last_breaks: Tuple[object, List[Tuple[int, int]]] = (None, [])
        self._units = 0
        self._first_release: Optional[float] = None
        self._released_speech = 0.0           # seconds of speech in the units released
        self._last_arrival: Optional[float] = None
        self._first_arrival: Optional[float] = None
        self._received = 0                    # spoken length of all text pushed
        self._last_cut: Optional[float] = None

    @property
    def pending(self) -> str:
        """The text received and not yet released."""
        return self._buf

    def push(self, text: str, now: float) -> List[str]:
        """Add a fragment that arrived at time ``now``; returns the units ready now (maybe none)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        self._now = now
        if text:
            self._arrivals.append((self._base + len(self._buf), now))
            self._buf += text
            self._last_arrival = now
            self._received += spoken_len(text)
            if self._first_arrival is None:
                self._first_arrival = now
        return self._by_text(now) + self._by_time(now)

    def flush(self, now: float) -> List[str]:
        """Everything pending as one unit now, whatever its end (none if it is blank): the
        caller knows no more text is coming for a while. The text goes on afterwards."""
        self._now = now
        return [self._release(len(self._buf), now)] if self._buf.strip() else []

    def poll(self, now: float) -> List[str]:
        """The unit forced out by the time limit at ``now``, if any (call it from a timer;
        ``deadline`` says when it next could release)."""
        self._now = now
        return self._by_time(now)

    def finish(self) -> List[str]:
        """The rest of the text (never an empty or blank unit); the segmenter then starts
        afresh for a new text (``set_ahead`` is kept)."""
        rest = [self._buf] if self._buf.strip() else []
        self._reset()
        return rest

    def set_ahead(self, seconds: Optional[float], now: Optional[float] = None) -> None:
        """Tell how many seconds of audio are queued ahead of the listener at ``now`` (default:
        the latest time given to push or poll); it runs down as time passes. ``None``
        returns to estimating it from the text released."""
        self._ahead_set = None if seconds is None else (
            max(0.0, float(seconds)), self._now if now is None else now)

    def ahead(self, now: float) -> float:
        """Seconds of audio queued ahead of the listener at ``now``, as told or estimated."""
        if self._ahead_set is not None:
            seconds, at = self._ahead_set
            return max(0.0, seconds - (now - at))
        if self._first_release is None:
            return 0.0
        return max(0.0, self._released_speech - (now - self._first_release))

    @property
    def deadline(self) -> Optional[float]:
        """The earliest time at which ``poll`` will release something unless more text comes
        first (None: nothing pending); a timer may sleep until it."""
        since = self._since()
        if since is None or self._last_arrival is None:
            return None
        told, first = self._ahead_set, self._first_release
        if told:
            runs_low = told[1] + told[0] - HURRY_AHEAD
        else:
            runs_low = since if first is None else first + self._released_speech - HURRY_AHEAD
        if self._flowing_cut() is not None:
            waits = since
        elif self._stall_cut() is not None:
            waits = self._last_arrival
        else:
            return None  # "Please ask Dr. ": held until more text, flush() or finish()
        return max(since + self.flush_after, waits + self.flush_after, runs_low)

    # -- the rules ---------------------------------------------------------------------

    def _accepts(self, kind: int, length: int, now: float, at_end: bool = False) -> bool:
        """Whether a break of ``kind`` ending a unit of spoken ``length`` releases it now
        (``at_end``: a sentence end that all the text so far ends with, then a space)."""
        if kind == _PARAGRAPH or (at_end and kind >= _SENTENCE and self._units == 0):
            return length > 0
        if kind < _CLAUSE or length < self.first_min_chars:
            return False
        if self._units == 0:
            return True
        ahead = self.ahead(now)
        need = self.min_chars * (2 if ahead >= RELAXED_AHEAD else 1)
        if length >= (need if kind >= _SENTENCE else self.max_chars // 2):
            return True
        # Hurry: waiting for a unit of normal length, at the rate text arrives, would let
        # the queued audio run low.
        return ahead < HURRY_AHEAD + max(0, need - length) / self._rate(now)

    def _rate(self, now: float) -> float:
        """Spoken characters a second that text has been arriving at (inf: unknown)."""
        span = now - (now if self._first_arrival is None else self._first_arrival)
        return max(self._received / span, 1e-9) if span > 0 else float("inf")

    def _by_text(self, now: float) -> List[str]:
        units: List[str] = []
        while True:  # each break is judged once, when confirmed, so fragmentation cannot matter
            lead = len(self._buf) - len(self._buf.lstrip())  # leading blanks are free
            limit = lead + max(1, _fit(self._buf[lead:], self.max_chars))
            cut = None
            for pos, kind in self._breaks(self._buf[:limit + 1]):
                if pos <= self._decided:
                    continue
                self._decided = pos
                if self._accepts(kind, spoken_len(self._buf[:pos].strip()), now):
                    cut = pos
                    break
            if cut is None and limit < len(self._buf):
                window = self._buf[:limit + 1]
                cut = _best_cut(window, self._breaks(window), limit,
                                self.max_chars // 3, spoken_len, True)
            if (cut is None and self._buf[-1:].isspace() and self._buf.strip()
                    and self._accepts(self._tail_kind(), spoken_len(self._buf.strip()), now, True)):
                cut = len(self._buf)  # "The first sentence arrives now. ": no need to wait for more
            if cut is None:
                return units
            units.append(self._release(cut, now))

    def _by_time(self, now: float) -> List[str]:
        since = self._since()
        if (since is None or now - since < self.flush_after - _EPSILON
                or self.ahead(now) > HURRY_AHEAD + _EPSILON):
            return []
        assert self._last_arrival is not None
        if now - self._last_arrival >= self.flush_after - _EPSILON:  # stalled: the last word is whole
            cut = self._stall_cut()
            cut = self._flowing_cut() if cut is None else cut  # words before a held "Dr. ", if enough
        else:
            cut = self._flowing_cut()
        return [self._release(cut, now)] if cut else []

    def _flowing_cut(self) -> Optional[int]:
        """Where the time limit cuts text that still flows (None: a few words are no unit
        yet, or there is no break)."""
        if spoken_len(self._buf.strip()) < self.first_min_chars:
            return None
        return _best_cut(self._buf, self._breaks(self._buf), len(self._buf),
                         max(1, self.first_min_chars // 2), spoken_len, False)

    def _stall_cut(self) -> Optional[int]:
        """Where a stall cuts: all if the text ends like a sentence or clause, or is one word;
        before a held end (``Dr.``, ``J.``, ``2.``) only at a sentence or clause end (None:
        nothing goes); else at the last word end."""
        breaks = [(p, k) for p, k in self._breaks(self._buf)
                  if self._buf[:p].strip()]
        core = self._buf.rstrip().rstrip(_CLOSERS)
        tail = self._tail_kind()
        if tail == _NONE:
            strong = [p for p, k in breaks if k >= _CLAUSE]
            return strong[-1] if strong else None
        typing_number = core[-1:] in ".,:" and core[-2:-1].isdigit() and not self._buf[-1:].isspace()
        if (core[-1:] in _ALL_PUNCT and not typing_number) or not breaks:  # not "$29." (of "$29.99")
            return len(self._buf)
        return breaks[-1][0]

    def _tail_kind(self) -> int:
        """The break after the pending text's last word, its next word unknown."""
        text = self._buf.rstrip()
        found = self._breaks(text + " ", ended=True)
        return found[-1][1] if found and found[-1][0] == len(text) + 1 else _NONE

    def _breaks(self, text: str, ended: bool = False) -> List[Tuple[int, int]]:
        """The breaks in ``text``, a prefix of the pending text (the last answer is kept:
        push, poll and deadline ask about the same text in turn)."""
        key = (text, self._line_start, self._after_end, ended)
        if self._last_breaks[0] != key:
            self._last_breaks = (key, _breaks(text, self._line_start, self._after_end, ended))
        return self._last_breaks[1]

    def _since(self) -> Optional[float]:
        """When the oldest pending word arrived (or the last cut, if later); None: none."""
        stripped = self._buf.lstrip()
        if not stripped:
            return None
        offset = self._base + len(self._buf) - len(stripped)
        arrived = next(t for start, t in reversed(self._arrivals) if start <= offset)
        return arrived if self._last_cut is None else max(arrived, self._last_cut)

    def _release(self, cut: int, now: float) -> str:
        unit, self._buf = self._buf[:cut], self._buf[cut:]
        self._base += cut
        self._decided = 0
        self._line_start = "\n" in unit[len(unit.rstrip()):] or (not unit.strip() and self._line_start)
        self._after_end = unit.rstrip().rstrip(_CLOSERS)[-1:] in _LATIN_ENDS + _NOSPACE_ENDS
        keep = [a for a in self._arrivals if a[0] <= self._base]
        self._arrivals = keep[-1:] + [a for a in self._arrivals if a[0] > self._base]
        self._units += 1
        self._last_cut = now
        if self._first_release is None:
            self._first_release = now
        self._released_speech += spoken_len(unit.strip()) / SPEECH_CHARS_PER_SECOND
        return unit
