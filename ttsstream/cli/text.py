"""Where ``ttsstream speak`` gets its text, and how a long text is cut into pieces.

``read_text`` is the one place that reads standard input (all of it, today; reading it
as it arrives changes only this function and ``pieces``' caller). ``pieces`` cuts a
text into consecutive pieces at sentence ends, so that a long text is spoken piece by
piece, shows its progress, and may exceed one request's limit. The pieces put
together are the text exactly: nothing is dropped, so the audio is the same audio.

Imports: ``ttsstream.protocols`` (the request limit) and the standard library.
"""

from __future__ import annotations

import re
import sys
from typing import List, Optional, TextIO

from ..protocols import MAX_TEXT_CHARS
from .problems import UsageError

__all__ = ["read_text", "read_stdin", "pieces", "PIECE_CHARS"]

# A piece ends at the first sentence end past this many characters (about half a minute of
# speech): short texts are one request, as before; long ones show progress piece by piece.
PIECE_CHARS = 400

# A sentence ends at . ! ? … or a danda, with closing quotes or brackets, then spaces; or
# at a blank line. The spaces stay with the sentence they follow.
_SENTENCE_END = re.compile(r"[.!?\u2026\u0964\u0965]+[\"'\u201d\u2019)\]]*\s+|\n\s*\n\s*")
_SPACE = re.compile(r"\s+")


def read_stdin(stdin: Optional[TextIO] = None) -> str:
    """All of standard input, as text."""
    return (stdin or sys.stdin).read()


def read_text(text: Optional[str], file: Optional[str]) -> str:
    """The text to speak, not empty: ``TEXT`` itself, standard input for ``-``, or ``--file``'s contents.

    Raises:
        UsageError: neither or both given, the file cannot be read as UTF-8 text, or
            there is nothing to say.
    """
    found = _read(text, file)
    if not found.strip():
        where = "--file " + file if file not in (None, "-") else "standard input" if "-" in (text, file) else "TEXT"
        raise UsageError(f"{where} is empty: nothing to say")
    return found


def _read(text: Optional[str], file: Optional[str]) -> str:
    if (text is None) == (file is None):
        raise UsageError("give the text to say as TEXT, or --file FILE ('-' reads standard input)")
    if text is not None:
        return read_stdin() if text == "-" else text
    assert file is not None
    if file == "-":
        return read_stdin()
    try:
        with open(file, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"--file {file}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at {exc.start})")
    except OSError as exc:
        raise UsageError(f"--file {file}: cannot read it: {exc.strerror or exc}")


def pieces(text: str, size: int = PIECE_CHARS) -> List[str]:
    """Cut ``text`` into pieces of at least ``size`` characters, each ending at a sentence end.

    A sentence longer than one request allows is cut at a space (or, lacking one, anywhere).
    Joined, the pieces are ``text``. A text with nothing to say is one piece, for the
    request's own check to refuse.
    """
    found: List[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() - start >= size:
            found.append(text[start:match.end()])
            start = match.end()
    if start < len(text):
        rest = text[start:]
        if found and not rest.strip():
            found[-1] += rest  # trailing spaces belong to the last sentence
        else:
            found.append(rest)
    return [cut for piece in found for cut in _within_limit(piece)] or [text]


def _within_limit(piece: str) -> List[str]:
    cuts = []
    while len(piece) > MAX_TEXT_CHARS:
        spaces = [m.end() for m in _SPACE.finditer(piece, 0, MAX_TEXT_CHARS)]
        end = spaces[-1] if spaces and spaces[-1] > 0 else MAX_TEXT_CHARS
        cuts.append(piece[:end])
        piece = piece[end:]
    return cuts + [piece]
