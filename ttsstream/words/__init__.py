"""Word timing: which word of a speech lies where on its audio.

The pure core, knowing nothing of sockets, threads or the client: ``Word`` and
``tokenize`` (``tokens``), ``estimate`` and ``naive_times`` (``timing``), and
subtitles and the heard text (``subtitles``). The speech that uses it lies above.

Imports: numpy and the standard library, ``ttsstream.errors`` and its own modules.
"""

from __future__ import annotations

from .timing import estimate, naive_times, pauses, weight
from .subtitles import heard, heard_text, phrases, save_subtitles, to_srt, to_vtt
from .tokens import SOURCES, Token, Word, tokenize

__all__ = ["Word", "Token", "SOURCES", "tokenize", "estimate", "naive_times", "weight", "pauses", "phrases",
           "to_srt", "to_vtt", "save_subtitles", "heard", "heard_text"]
