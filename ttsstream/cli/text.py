"""Where ``ttsstream speak`` gets its text: ``TEXT``, ``--file``, or standard input as it arrives.

``read_text`` returns a ``str`` for ``TEXT`` and ``--file``, and for ``-`` an iterator
over standard input that yields text as it arrives (``llm-cli ... | ttsstream speak -``
starts speaking before the pipe closes): the library cuts either into units
(``Segmenter``). Without ``TEXT`` or ``--file``, standard input is read as for ``-``
when it is not a terminal (``echo hi | ttsstream speak``); on a terminal that is a
usage error rather than a wait for typing. This is the one place that reads standard input.

Imports: the standard library and the CLI's ``problems``.
"""

from __future__ import annotations

import codecs
import itertools
import sys
from typing import Iterator, Optional, TextIO, Union

from .problems import UsageError

__all__ = ["read_text", "stdin_fragments", "PIECE_CHARS"]

# A text longer than this is spoken as a stream of units (first audio after its first
# sentence, and progress unit by unit); a shorter one is one request.
PIECE_CHARS = 400

# How much of standard input one read takes at most: whatever has arrived, up to this.
_READ_BYTES = 65536


def stdin_fragments(stdin: Optional[TextIO] = None) -> Iterator[str]:
    """Standard input as text, piece by piece as it arrives (not waiting for the end).

    Raises:
        UsageError: it is not UTF-8 text.
    """
    stream = stdin or sys.stdin
    source = getattr(stream, "buffer", None)
    if source is None:  # a text stream already (an embedding program's, a test's)
        yield from iter(lambda: stream.read(_READ_BYTES), "")
        return
    read = getattr(source, "read1", source.read)  # read1: what has arrived, without waiting for more
    decoder = codecs.getincrementaldecoder("utf-8")()
    while True:
        data = read(_READ_BYTES)
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"standard input is not UTF-8 text ({exc.reason} at a byte {exc.object[exc.start]:#04x})") from None
        if text:
            yield text
        if not data:
            return


def read_text(text: Optional[str], file: Optional[str],
              stdin: Optional[TextIO] = None) -> Union[str, Iterator[str]]:
    """The text to speak: ``TEXT`` itself, ``--file``'s contents (not empty), or for ``-``
    (or neither, when standard input is not a terminal) standard input as it arrives
    (once its first words have come: empty input is an error before anything starts).

    Args:
        text, file: ``TEXT`` and ``--file``, or None.
        stdin: standard input (``sys.stdin`` when None).

    Raises:
        UsageError: both given, neither given on a terminal, the file cannot be read
            as UTF-8 text, or there is nothing to say.
    """
    stream = stdin if stdin is not None else sys.stdin
    implicit = text is None and file is None
    if implicit:
        if stream is None or _is_terminal(stream):
            raise UsageError("give the text to say as TEXT, or --file FILE, or pipe it in "
                             "(echo Hello | ttsstream speak)")
        text = "-"
    if "-" in (text, file) and (text is None) != (file is None):
        fragments = stdin_fragments(stream)
        start = ""
        for fragment in fragments:
            start += fragment
            if start.strip():
                return itertools.chain([start], fragments)
        if implicit:
            raise UsageError("no TEXT given, and standard input is empty: nothing to say (give the text as TEXT)")
        raise UsageError("standard input is empty: nothing to say")
    found = _read(text, file)
    if not found.strip():
        raise UsageError(f"{'--file ' + str(file) if file is not None else 'TEXT'} is empty: nothing to say")
    return found


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or an object without a terminal
        return False


def _read(text: Optional[str], file: Optional[str]) -> str:
    if (text is None) == (file is None):
        raise UsageError("give the text to say as TEXT, or --file FILE ('-' reads standard input)")
    if text is not None:
        return text
    assert file is not None
    try:
        with open(file, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"--file {file}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"--file {file}: cannot read it: {exc.strerror or exc}") from None
