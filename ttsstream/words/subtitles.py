"""Timed words as subtitles and as what was heard: ``phrases``, ``to_srt``, ``to_vtt``,
``save_subtitles``, ``heard`` and ``heard_text``.

A cue is a phrase of a few consecutive words: at most ``max_words`` words and
``max_seconds`` long, and it ends early after a word that punctuation closes (a
sentence end or a clause mark) or before a long pause, so a cue reads as a phrase. Its
time runs from its first word's start to its last word's end, so it always lies inside
its words' times, and every word is in exactly one cue. A cue's text is its words'
texts joined by spaces, except between two CJK words, which join with nothing.

Imports: the standard library only (os, tempfile, pathlib, typing), ``ttsstream.errors``
and ``.tokens``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import List, Sequence, Tuple, Union

from ..errors import InvalidParameterError
from .tokens import Word

__all__ = ["phrases", "to_srt", "to_vtt", "save_subtitles", "heard", "heard_text"]

Cue = Tuple[float, float, str]

_CLOSERS = frozenset(",.!?;:।॥۔،؟؛…。，、！？；：")
_LONG_PAUSE = 0.3  # seconds of silence between two words that end a cue


def _is_cjk_word(word: Word) -> bool:
    code = ord(word.text[0]) if word.text else 0
    return len(word.text) <= 2 and (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF)


def _join(words: Sequence[Word]) -> str:
    text = ""
    for i, word in enumerate(words):
        if i and not (_is_cjk_word(word) and _is_cjk_word(words[i - 1])):
            text += " "
        text += word.text
    return text


def phrases(words: Sequence[Word], max_words: int = 7, max_seconds: float = 3.5,
            text: Union[str, None] = None) -> List[Cue]:
    """The words grouped into cues: ``(start, end, text)``, in order, not overlapping.

    Args:
        words: timed words in order.
        max_words: at most this many words per cue (at least 1).
        max_seconds: a cue ends before a word that would make it longer than this.
        text: the text the words' offsets point into; a word followed there by
            punctuation (``, . ! ?`` ...) ends its cue. Optional.

    Raises:
        InvalidParameterError: ``max_words`` is below 1 or ``max_seconds`` not above 0.
    """
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise InvalidParameterError(f"max_words must be a whole number of at least 1, not {max_words!r}",
                                    parameter="max_words")
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
        raise InvalidParameterError(f"max_seconds must be a number of seconds above 0, not {max_seconds!r}",
                                    parameter="max_seconds")
    cues: List[Cue] = []
    group: List[Word] = []
    for i, word in enumerate(words):
        if group and (len(group) >= max_words or word.end - group[0].start > max_seconds):
            cues.append((group[0].start, group[-1].end, _join(group)))
            group = []
        group.append(word)
        following = words[i + 1] if i + 1 < len(words) else None
        closed = text is not None and following is not None and any(
            char in _CLOSERS for char in text[word.char_end:following.char_start])
        paused = following is not None and following.start - word.end >= _LONG_PAUSE
        if closed or paused:
            cues.append((group[0].start, group[-1].end, _join(group)))
            group = []
    if group:
        cues.append((group[0].start, group[-1].end, _join(group)))
    return cues


def _stamp(seconds: float, separator: str) -> str:
    millis = max(int(round(seconds * 1000)), 0)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    # A blank line would end the cue, and "-->" would read as a timing line.
    return " ".join(text.split()).replace("-->", "->")


def to_srt(words: Sequence[Word], text: Union[str, None] = None) -> str:
    """SubRip subtitles of ``words``: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    blocks = [f"{n}\n{_stamp(start, ',')} --> {_stamp(end, ',')}\n{_cue_text(cue)}\n"
              for n, (start, end, cue) in enumerate(phrases(words, text=text), start=1)]
    return "\n".join(blocks)


def to_vtt(words: Sequence[Word], text: Union[str, None] = None) -> str:
    """WebVTT subtitles of ``words``: the ``WEBVTT`` header, cues ``HH:MM:SS.mmm --> ...``."""
    blocks = [f"{_stamp(start, '.')} --> {_stamp(end, '.')}\n{_cue_text(cue)}\n"
              for start, end, cue in phrases(words, text=text)]
    return "\n".join(["WEBVTT\n"] + blocks)


def save_subtitles(words: Sequence[Word], path: Union[str, "os.PathLike[str]"], text: Union[str, None] = None) -> None:
    """Write ``words`` as SRT or WebVTT, by ``path``'s extension (``.srt`` or ``.vtt``).

    The file is written whole or not at all (a temporary file beside it, then renamed).

    Raises:
        InvalidParameterError: the extension is neither ``.srt`` nor ``.vtt``; nothing is written.
        OSError: the file cannot be written (no such folder, no permission).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".srt", ".vtt"):
        raise InvalidParameterError(
            f"save_subtitles writes .srt or .vtt files, not {target.name!r}: name the file x.srt or x.vtt",
            parameter="path")
    content = to_srt(words, text) if suffix == ".srt" else to_vtt(words, text)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as sink:
            sink.write(content)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def heard(words: Sequence[Word], played: float) -> List[Word]:
    """The words fully played: those (from the first, in order) that end at or before
    ``played`` seconds. A word still under way when the audio stopped is not heard."""
    result: List[Word] = []
    for word in words:
        if word.end > played + 1e-9:
            break
        result.append(word)
    return result


def heard_text(words: Sequence[Word], played: float, text: str) -> str:
    """The text the listener heard: ``text`` from the first word's start to the end of
    the last fully played word, as written (inner punctuation and spacing kept, the
    punctuation after the last heard word left out). ``""`` when no word was heard."""
    done = heard(words, played)
    if not done:
        return ""
    return text[done[0].char_start:done[-1].char_end]
