"""Audio values: AudioChunk, 16-bit sample alignment, numpy views, WAV writing and reading.

This module owns what ttsstream knows about PCM (other file formats are ``formats/``'s).
It starts no thread and opens no socket; it imports only numpy, ``ttsstream.errors`` and
the standard library.
"""

from __future__ import annotations

import os
import wave
from typing import BinaryIO, Optional, Tuple, Union

import numpy as np

from .errors import InvalidParameterError

__all__ = ["AudioChunk", "SampleAligner", "pcm_to_array", "read_wav", "write_wav", "check_wav_name",
           "SAMPLE_WIDTH"]

SAMPLE_WIDTH = 2  # bytes per sample: every dialect speaks signed 16-bit little-endian mono
_INT16_LE = np.dtype("<i2")

def pcm_to_array(pcm: bytes) -> np.ndarray:
    """Return a read-only numpy int16 view of little-endian 16-bit PCM bytes.

    Raises:
        ValueError: if ``pcm`` is not a whole number of samples.
    """
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"PCM must be whole 16-bit samples, got {len(pcm)} bytes")
    return np.frombuffer(pcm, dtype=_INT16_LE)


class AudioChunk:
    """One piece of a speech's audio, as ``on_audio`` receives it.

    Attributes:
        pcm: 16-bit signed little-endian mono PCM, always whole samples.
        sample_rate: samples per second.
        index: 0, 1, 2, … within its speech.
        data: the chunk in its speech's output encoding (``AudioFormat``): the same
            bytes as ``pcm`` for ``"pcm16"``, one byte a sample for ``"mulaw"`` and
            ``"alaw"``. Send this to a phone line; ``pcm`` is the same audio, decoded.
        encoding: ``"pcm16"``, ``"mulaw"`` or ``"alaw"``.
    """

    __slots__ = ("pcm", "sample_rate", "index", "data", "encoding")

    def __init__(self, pcm: bytes, sample_rate: int, index: int, data: Optional[bytes] = None,
                 encoding: str = "pcm16") -> None:
        self.pcm = pcm
        self.sample_rate = sample_rate
        self.index = index
        self.data = pcm if data is None else data
        self.encoding = encoding

    @property
    def samples(self) -> np.ndarray:
        """A read-only numpy int16 view of ``pcm`` (no copy)."""
        return pcm_to_array(self.pcm)

    @property
    def duration(self) -> float:
        """Seconds of audio in this chunk."""
        return len(self.pcm) / (SAMPLE_WIDTH * self.sample_rate)

    def __len__(self) -> int:
        """Bytes of ``data``."""
        return len(self.data)

    def __repr__(self) -> str:
        encoding = "" if self.encoding == "pcm16" else f", encoding={self.encoding!r}"
        return f"AudioChunk(index={self.index}, bytes={len(self.data)}, sample_rate={self.sample_rate}{encoding})"


class SampleAligner:
    """Cuts a byte stream into whole 16-bit samples, carrying a split sample over.

    A server may end a frame in the middle of a sample; the odd byte waits here for
    the next frame so that every chunk handed on is whole samples.
    """

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    def push(self, data: bytes) -> bytes:
        """Return the whole samples available after adding ``data`` (maybe ``b""``)."""
        if not self._carry and not len(data) % SAMPLE_WIDTH:  # the usual frame: as it is
            return data
        if self._carry:
            data = self._carry + data
        cut = len(data) - (len(data) % SAMPLE_WIDTH)
        self._carry = data[cut:]
        return data[:cut]

    @property
    def pending(self) -> int:
        """How many bytes wait for the rest of their sample (0 or 1)."""
        return len(self._carry)


def check_wav_name(path: Union[str, "os.PathLike[str]"]) -> None:
    """Refuse a file name that promises another format than WAV (no extension is WAV too).

    Raises:
        InvalidParameterError: the extension is not ``.wav``.
    """
    suffix = os.path.splitext(os.fspath(path))[1]
    if suffix and suffix.lower() != ".wav":
        raise InvalidParameterError(
            f"{os.path.basename(os.fspath(path))}: this writes WAV, not {suffix}: name the file .wav, or write "
            "other formats with speech.save(path) or ttsstream.formats.write_audio", parameter="path")


def write_wav(path: Union[str, "os.PathLike[str]", BinaryIO], pcm: bytes, sample_rate: int) -> None:
    """Write 16-bit mono PCM as a WAV file to ``path`` (or to a binary file object).

    Raises:
        InvalidParameterError: ``path``'s extension is not ``.wav`` (nothing is written).
        ValueError: if ``pcm`` is not whole samples or the rate is not positive.
        OSError: if the file cannot be written.
    """
    target: Union[str, BinaryIO]
    if isinstance(path, (str, os.PathLike)):
        target = os.fspath(path)
        check_wav_name(target)
    else:
        target = path
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"PCM must be whole 16-bit samples, got {len(pcm)} bytes")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    with wave.open(target, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)


def read_wav(path: Union[str, "os.PathLike[str]"]) -> Tuple[bytes, int]:
    """Read a 16-bit mono WAV file; return ``(pcm, sample_rate)``.

    Raises:
        ValueError: if the file is not 16-bit mono.
    """
    with wave.open(os.fspath(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"{os.fspath(path)} is not a 16-bit mono WAV file")
        return wav.readframes(wav.getnframes()), wav.getframerate()

