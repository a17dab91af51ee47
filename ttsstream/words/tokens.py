"""The words of a text: ``Word`` (one timed word of a speech), ``Token`` (one word of the
text, untimed) and ``tokenize``, which finds them.

A word is a whitespace-separated token of the text that holds a letter or a digit
(``"1,250"``, ``"3.14"``, ``"o'clock"`` and ``"well-known"`` are one word each; a lone
``"।"`` or ``"—"`` is none). Its text is the token without the punctuation around it:
leading and trailing characters of a Unicode punctuation category (quotes, brackets,
commas, full stops, dandas, dashes, CJK punctuation) are stripped; symbols (``$``), the
marks read aloud (``% ‰ # @ &``) and combining marks are kept. Inner punctuation stays (``"hello—world"`` is one word).

Chinese and Japanese are written without spaces, so inside a token every Han or kana
character is a word of its own (what subtitle tools do); a kana length mark, an iteration
mark (``ー``, ``々``), a small kana or a combining mark joins the character before it, and a
run of other letters or digits between them (``"iPhone15"``) is one word. Korean is
spaced and follows the general rule; so do Thai, Lao and Khmer, whose unspaced runs are
one word each (splitting them needs a dictionary). Every letter and digit of the text lies in exactly
one word.

Imports: the standard library only (typing, dataclasses, re, unicodedata).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import List, NamedTuple

__all__ = ["Word", "Token", "tokenize", "SOURCES"]

SOURCES = ("exact", "aligned", "estimated")


@dataclass(frozen=True)
class Word:
    """One word of a speech, timed on its audio.

    Attributes:
        index: 0, 1, 2 ... within the speech.
        text: the token without the punctuation around it.
        start: seconds on the speech's audio timeline, from its first sample.
        end: seconds, ``>= start``.
        char_start: offset into the speech's text; ``text[char_start:char_end]`` is the word.
        char_end: offset just past the word.
        source: ``"exact"`` (the server said when), ``"aligned"`` (measured from the
            audio) or ``"estimated"`` (from the text and the pauses in the audio).
    """

    index: int
    text: str
    start: float
    end: float
    char_start: int
    char_end: int
    source: str


class Token(NamedTuple):
    """One word of a text, not yet timed: its text and where it lies in the text."""

    text: str
    char_start: int
    char_end: int


_SPACED = re.compile(r"\S+")
_SMALL_KANA = frozenset("ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿｧｨｩｪｫｬｭｮｯ")


_SPOKEN = frozenset("%‰‱#@&")  # punctuation by category, but read aloud ("50%", "#1")


def _is_punct(char: str) -> bool:
    return unicodedata.category(char)[0] == "P" and char not in _SPOKEN


def _is_alnum(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


def _is_cjk(char: str) -> bool:
    """A Han or kana letter: a word of its own in text written without spaces."""
    code = ord(char)
    return unicodedata.category(char)[0] == "L" and (
        0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF66 <= code <= 0xFF9F
        or 0x20000 <= code <= 0x3FFFF)


def _joins_previous(char: str) -> bool:
    """A character that belongs to the CJK character before it, not a word of its own."""
    return char in _SMALL_KANA or unicodedata.category(char) in ("Lm", "Mn", "Mc", "Me")


def _strip(text: str, start: int, end: int) -> List[Token]:
    """The token ``text[start:end]`` without the punctuation around it, if it holds a word."""
    while start < end and _is_punct(text[start]):
        start += 1
    while end > start and _is_punct(text[end - 1]):
        end -= 1
    core = text[start:end]
    if not any(_is_alnum(char) for char in core):
        return []
    return [Token(core, start, end)]


def _split_cjk(text: str, start: int, end: int) -> List[Token]:
    """A token with Han or kana in it: one word per such character, one per run of others."""
    pieces: List[List[int]] = []   # [start, end, is_cjk]
    for position in range(start, end):
        char = text[position]
        cjk = _is_cjk(char)
        last = pieces[-1] if pieces else None
        if last is not None and last[2] and not cjk and _joins_previous(char) and last[1] == position:
            last[1] = position + 1
        elif cjk and not _joins_previous(char) or last is None or last[2] != cjk or last[1] != position:
            pieces.append([position, position + 1, int(cjk)])
        else:
            last[1] = position + 1
    tokens: List[Token] = []
    for begin, stop, _ in pieces:
        tokens.extend(_strip(text, begin, stop))
    return tokens


def tokenize(text: str, offset: int = 0) -> List[Token]:
    """The words of ``text``, in order.

    Args:
        text: any text.
        offset: added to every offset (the position of ``text`` in a longer text).

    Returns:
        One ``Token`` per word; ``text[t.char_start - offset:t.char_end - offset] == t.text``.
    """
    tokens: List[Token] = []
    for match in _SPACED.finditer(text):
        start, end = match.span()
        if any(_is_cjk(char) for char in match.group()):
            found = _split_cjk(text, start, end)
        else:
            found = _strip(text, start, end)
        tokens.extend(Token(token.text, token.char_start + offset, token.char_end + offset) for token in found)
    return tokens
