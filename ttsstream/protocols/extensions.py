"""ttsstream's own extensions to the dialects, both sides of them: opt-in, never seen by
real clients.

A client asks for an extension in its WebSocket handshake with the request header
``X-TTSStream-Extensions: words`` (a comma-separated list of names). Real servers ignore
an HTTP header they do not know; the bundled server answers only a client that asked,
so the traffic of every other client (the EigenAI example client, Shunyalabs' SDK)
stays byte for byte what it was.

``words``: per utterance, after its audio and just before the dialect's end message
(``{"type": "complete"}``, ``{"type": "completion", …}``), one text frame::

    {"type": "ttsstream.words", "words": [
        {"text": "Hello", "char_start": 0, "char_end": 5, "start": 0.0, "end": 0.25}, …]}

with each word of the request's text (its character offsets in that text) and its
times in seconds from the utterance's first audio sample. Both dialects parse it into a
``WordTimes`` event; a malformed one is a hint lost, never an error: it is ignored with
a debug log.

This module owns the header, the message's type, its building and its parsing. Pure:
no I/O. Imports: ``protocols.base``, ``ttsstream.checks`` and the standard library.
"""

from __future__ import annotations

import logging
import math
from typing import Any, FrozenSet, Iterable, List, Mapping, Optional, Sequence

from ..checks import is_int, is_number
from .base import WordTime, WordTimes, dumps

__all__ = ["HEADER", "WORDS", "WORDS_TYPE", "header_line", "requested", "words_frame", "parse_words"]

logger = logging.getLogger("ttsstream.protocols")

HEADER = "X-TTSStream-Extensions"
WORDS = "words"
WORDS_TYPE = "ttsstream.words"


def header_line(*names: str) -> str:
    """The handshake header that asks for ``names``, as websocket-client takes it."""
    return f"{HEADER}: {', '.join(names)}"


def requested(values: Iterable[str]) -> FrozenSet[str]:
    """The extensions a client asked for, from every value of its ``HEADER`` header."""
    return frozenset(name.strip().lower() for value in values for name in value.split(",") if name.strip())


def words_frame(words: Sequence[WordTime]) -> str:
    """The ``ttsstream.words`` message for one utterance (times rounded to the microsecond)."""
    return dumps({"type": WORDS_TYPE, "words": [
        {"text": word.text, "char_start": word.char_start, "char_end": word.char_end,
         "start": round(word.start, 6), "end": round(word.end, 6)} for word in words]})


def parse_words(message: Mapping[str, Any]) -> Optional[WordTimes]:
    """The ``WordTimes`` of a ``ttsstream.words`` message, or None (logged) if it is malformed."""
    words = message.get("words")
    parsed: List[WordTime] = []
    if isinstance(words, list):
        for item in words:
            word = _word(item)
            if word is None:
                break
            parsed.append(word)
        else:
            return WordTimes(tuple(parsed))
    logger.debug("ignored a malformed %s message (word %d of it)", WORDS_TYPE, len(parsed))
    return None


def _word(item: object) -> Optional[WordTime]:
    if not isinstance(item, dict):
        return None
    text, char_start, char_end = item.get("text"), item.get("char_start"), item.get("char_end")
    start, end = item.get("start"), item.get("end")
    if not (isinstance(text, str) and is_int(char_start) and is_int(char_end) and is_number(start)
            and is_number(end) and 0 <= char_start <= char_end):
        return None
    try:
        begin, finish = float(start), float(end)
    except OverflowError:  # an int too big for a float
        return None
    if not (math.isfinite(begin) and math.isfinite(finish) and 0.0 <= begin <= finish):
        return None
    return WordTime(text, char_start, char_end, begin, finish)
