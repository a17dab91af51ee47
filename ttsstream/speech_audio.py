"""The audio half of a speech's API: its PCM, duration, first-audio time, underruns, and saving it.

``Speech`` has it (a mixin): the state it reads is the speech's own, kept by its reader
thread under the speech's delivery lock. Imports: audio, formats (files).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, ContextManager, List, Optional

import numpy as np

from .audio import SAMPLE_WIDTH, pcm_to_array
from .formats.files import write_audio

if TYPE_CHECKING:
    from .playline import Turn

__all__ = ["SpeechAudio"]


class SpeechAudio:
    """What a speech says of its audio (``Speech`` has it)."""

    _keep_audio: bool
    _delivering: Callable[[], ContextManager[None]]  # Speech's: its lock, then an end asked meanwhile
    _joined: Optional[bytes]
    _pieces: List[bytes]
    _bytes: int
    _sample_rate: int
    _first_audio: Optional[float]
    _started: float
    _turn: Optional["Turn"]

    @property
    def pcm(self) -> bytes:
        """All audio received so far: 16-bit mono little-endian PCM, in order.

        Raises:
            RuntimeError: if the speech was made with ``keep_audio=False``.
        """
        if not self._keep_audio:
            raise RuntimeError("this speech was made with keep_audio=False, so it kept no audio")
        with self._delivering():
            if self._joined is None or len(self._joined) != self._bytes:
                self._joined = b"".join(self._pieces)
                self._pieces = [self._joined]
            return self._joined

    @property
    def audio(self) -> np.ndarray:
        """All audio received so far as a numpy int16 array (a copy you may modify)."""
        audio: np.ndarray = pcm_to_array(self.pcm).copy()
        return audio

    @property
    def duration(self) -> float:
        """Seconds of audio received so far."""
        return self._bytes / (SAMPLE_WIDTH * self._sample_rate)

    @property
    def first_audio_latency(self) -> Optional[float]:
        """Seconds from the speak() call to the first audio byte, or None before it."""
        return None if self._first_audio is None else self._first_audio - self._started

    @property
    def underruns(self) -> int:
        """With ``play=True``: how many times playback ran out of audio mid-speech
        (the network was slower than real time). Final once the speech is done."""
        return 0 if self._turn is None else self._turn.underruns

    @property
    def underrun_ms(self) -> float:
        """With ``play=True``: estimated milliseconds of silence those underruns made."""
        return 0.0 if self._turn is None else self._turn.underrun_ms

    def save(self, path: "str | os.PathLike[str]", format: Optional[str] = None) -> None:
        """Write the audio so far as ``format`` or by extension: wav (or none), flac, ogg, opus, mp3, raw/pcm.

        Raises:
            InvalidParameterError: an unknown format or extension (nothing is written).
            TTSError: flac, ogg, opus and mp3 need ``pip install "ttsstream[formats]"`` (nothing is written).
            RuntimeError: ``keep_audio=False``. OSError: the file cannot be written.
        """
        write_audio(path, self.pcm, self._sample_rate, format)
