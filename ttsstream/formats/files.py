"""Audio files: which formats ttsstream writes, and writing them as the audio arrives.

This module owns the file formats (``FILE_FORMATS``, ``check_format``) and their
writing and reading: ``AudioFileWriter`` (chunks in, a file or a binary stream out),
``write_audio`` and ``read_audio``. WAV and raw PCM are written with the standard
library; FLAC, OGG Vorbis, OGG Opus and MP3 through ``soundfile`` (libsndfile 1.1 or
newer, which ``pip install "ttsstream[formats]"`` brings bundled in its wheel), never
with a hand-written codec. Imports numpy, ``ttsstream.errors``, ``ttsstream.audio`` and
``resample.py``; soundfile lazily, only for the formats that need it.
"""

from __future__ import annotations

import os
import struct
from types import TracebackType
from typing import Any, BinaryIO, Dict, Optional, Tuple, Type, Union

import numpy as np

from ..audio import SAMPLE_WIDTH, pcm_to_array
from ..errors import InvalidParameterError, TTSError
from .resample import StreamResampler

__all__ = ["FILE_FORMATS", "EXTENSIONS", "SOUNDFILE_HINT", "check_format", "AudioFileWriter", "write_audio",
           "read_audio", "file_rate"]

PathLike = Union[str, "os.PathLike[str]"]
SOUNDFILE_HINT = 'pip install "ttsstream[formats]" (it brings soundfile, with libsndfile 1.1 or newer)'

# format -> what libsndfile calls it: (its format, its subtype). All 16-bit mono.
FILE_FORMATS: Dict[str, Tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "raw": ("RAW", "PCM_16"),
}
# a file name's extension (lower case) -> its format
EXTENSIONS: Dict[str, str] = {".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".opus": "opus", ".mp3": "mp3",
                              ".raw": "raw", ".pcm": "raw"}
# Written here without soundfile: a WAV header and the samples, or the samples alone.
_OWN = ("wav", "raw")
# The rates each codec takes (None: any). Audio at another rate is resampled to the
# lowest of them at or above its own (or the highest), so no detail is lost on the way.
_RATES: Dict[str, Tuple[int, ...]] = {
    "opus": (8000, 12000, 16000, 24000, 48000),
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
}
_UNKNOWN = 0xFFFFFFFF  # the sizes of a WAV whose length is not known yet (streaming writers' convention)
_CHOICES = ", ".join(sorted(EXTENSIONS))


def check_format(path: Optional[PathLike] = None, format: Optional[str] = None) -> str:
    """The format to write: ``format`` if given, else the one ``path``'s extension names.

    A name without an extension (and ``"-"``, standard output) is a WAV. Call it before
    anything is written: a name or format that will not work raises here.

    Args:
        path: the file's name (or None, for a stream).
        format: ``"wav"``, ``"flac"``, ``"ogg"`` (Vorbis), ``"opus"``, ``"mp3"`` or ``"raw"``
            (16-bit little-endian PCM, no header); any case.

    Returns:
        The format's name, a key of ``FILE_FORMATS``.

    Raises:
        InvalidParameterError: an unknown format or extension; the message names the choices.
        TTSError: the format needs soundfile (or a newer libsndfile) and it is missing;
            the message gives the pip command.
    """
    if format is not None:
        if not isinstance(format, str) or format.lower() not in FILE_FORMATS:
            raise InvalidParameterError(
                f"format must be one of {', '.join(FILE_FORMATS)}, got {format!r}", parameter="format")
        chosen = format.lower()
    else:
        suffix = "" if path is None else os.path.splitext(os.fspath(path))[1]
        if not suffix:
            chosen = "wav"
        elif suffix.lower() in EXTENSIONS:
            chosen = EXTENSIONS[suffix.lower()]
        else:
            name = os.path.basename(os.fspath(path)) if path is not None else suffix
            raise InvalidParameterError(
                f"{name}: ttsstream writes {_CHOICES} files, not {suffix}: name the file with one of "
                "those, or pass format=", parameter="path")
    if chosen not in _OWN:
        _soundfile(chosen)
    return chosen


def file_rate(format: str, sample_rate: int) -> int:
    """The rate a file of ``format`` is written at, for audio at ``sample_rate``."""
    rates = _RATES.get(format)
    if rates is None or sample_rate in rates:
        return sample_rate
    return next((rate for rate in rates if rate >= sample_rate), rates[-1])


def _soundfile(format: str) -> Any:
    """soundfile, once it is known to write ``format``."""
    try:
        import soundfile  # noqa: PLC0415 -- only the formats that need it pay for the import
    except (ImportError, OSError) as exc:  # OSError: the module is there, libsndfile is not
        raise TTSError(f"writing {format} files needs soundfile: {SOUNDFILE_HINT}") from exc
    major, subtype = FILE_FORMATS[format]
    if major not in soundfile.available_formats() or subtype not in soundfile.available_subtypes(major):
        raise TTSError(
            f"writing {format} files needs libsndfile 1.1 or newer (this one is "
            f"{getattr(soundfile, '__libsndfile_version__', 'older')}): {SOUNDFILE_HINT}")
    return soundfile


def _wav_header(sample_rate: int, data_bytes: Optional[int]) -> bytes:
    data = _UNKNOWN if data_bytes is None else data_bytes
    riff = _UNKNOWN if data_bytes is None else min(_UNKNOWN, 36 + data_bytes)
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1, sample_rate,
                       sample_rate * SAMPLE_WIDTH, SAMPLE_WIDTH, 8 * SAMPLE_WIDTH, b"data", data)


class AudioFileWriter:
    """Writes 16-bit mono PCM to an audio file chunk by chunk, as the audio arrives.

    Opus takes 8, 12, 16, 24 and 48 kHz, and MP3 8 to 48 kHz in nine rates: audio at
    another rate is resampled (``StreamResampler``, soxr) to the next rate up that the
    codec takes (``file_rate``). A WAV starts with the sizes unknown (0xFFFFFFFF, as
    streaming writers do) and gets them right at ``close()`` where the target can seek.

    Args:
        target: a path, or a binary file object (standard output's ``buffer``, say),
            which is left open.
        format: a key of ``FILE_FORMATS`` (``check_format`` gives one).
        sample_rate: the rate of the PCM given to ``write``.
        bitrate: for ``"opus"`` and ``"mp3"``, the bits per second to aim at (MP3: constant,
            one of the codec's rates; Opus: its variable-rate target); None: libsndfile's default.

    Raises:
        InvalidParameterError: an unknown format, a rate that is not positive, or a
            bitrate that is not a positive int or is given for another format.
        TTSError: soundfile (or soxr, to resample) is missing; the message gives the pip command.
        OSError: the file cannot be written.

    Thread: one thread at a time.
    """

    def __init__(self, target: Union[PathLike, BinaryIO], format: str, sample_rate: int,
                 bitrate: Optional[int] = None) -> None:
        format = check_format(None, format)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise InvalidParameterError(f"sample_rate must be a positive int, got {sample_rate!r}",
                                        parameter="sample_rate")
        self.format = format
        self.sample_rate = sample_rate
        self.file_rate = file_rate(format, sample_rate)
        options = _bitrate_options(format, self.file_rate, bitrate)
        self._resampler = StreamResampler(sample_rate, self.file_rate)
        self._own = isinstance(target, (str, os.PathLike))
        self._sound: Any = None
        self._stream: Optional[BinaryIO] = None
        self._data_bytes = 0
        self._closed = False
        if format in _OWN:
            self._stream = open(os.fspath(target), "wb") if isinstance(target, (str, os.PathLike)) else target
            if format == "wav":
                self._stream.write(_wav_header(self.file_rate, None))
        else:
            major, subtype = FILE_FORMATS[format]
            soundfile = _soundfile(format)
            where: Any = target
            if isinstance(target, (str, os.PathLike)):
                where = os.fspath(target)
            elif not _seekable(target):
                where = _ForwardOnly(target)
            try:
                self._sound = soundfile.SoundFile(where, "w", samplerate=self.file_rate, channels=1,
                                                  format=major, subtype=subtype, **options)
            except soundfile.LibsndfileError as exc:
                raise OSError(f"cannot write {format} to {target!r}: {exc}") from exc

    def write(self, pcm: bytes) -> None:
        """Add 16-bit little-endian PCM at ``sample_rate`` (any length; a split sample waits)."""
        if self._closed:
            raise ValueError("write() on a closed AudioFileWriter")
        self._put(self._resampler.push(pcm))

    def _put(self, pcm: bytes) -> None:
        if not pcm:
            return
        if self._sound is not None:
            self._sound.write(pcm_to_array(pcm))
        else:
            assert self._stream is not None
            self._stream.write(pcm)
            self._data_bytes += len(pcm)

    def close(self) -> None:
        """Write what the resampler holds, finish the file and close it (a path only).
        Safe to call twice."""
        if self._closed:
            return
        self._put(self._resampler.flush())
        self._closed = True
        if self._sound is not None:
            self._sound.close()
            return
        assert self._stream is not None
        if self.format == "wav" and _seekable(self._stream):
            end = self._stream.tell()
            self._stream.seek(end - self._data_bytes - 44)
            self._stream.write(_wav_header(self.file_rate, self._data_bytes))
            self._stream.seek(end)
        if self._own:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self) -> "AudioFileWriter":
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self.close()


def _bitrate_options(format: str, rate: int, bitrate: Optional[int]) -> Dict[str, Any]:
    """soundfile's settings for ``bitrate``: libsndfile takes a "compression level" from 0
    (best) to 1 (smallest) and maps it linearly onto each codec's range of bitrates."""
    if bitrate is None:
        return {}
    if isinstance(bitrate, bool) or not isinstance(bitrate, int) or bitrate <= 0:
        raise InvalidParameterError(f"bitrate must be a positive int (bits per second), got {bitrate!r}",
                                    parameter="bitrate")
    if format == "opus":
        # ogg_opus.c: bitrate = 6 kbit/s + (1 - level) * 250 kbit/s, per channel.
        level = (256000 - bitrate) / 250000
        return {"compression_level": min(1.0, max(0.0, level))}
    if format == "mp3":
        # mpeg_l3_encode.c, constant bitrate: high - level * (high - low) kbit/s, where the
        # range is MPEG-1's (32-320) from 32 kHz up, MPEG-2's (8-160) from 16 kHz, else 8-64.
        low, high = (32, 320) if rate >= 32000 else (8, 160) if rate >= 16000 else (8, 64)
        level = (high - bitrate / 1000) / (high - low)
        return {"compression_level": min(1.0, max(0.0, level)), "bitrate_mode": "CONSTANT"}
    raise InvalidParameterError(f"bitrate applies to opus and mp3 files, not {format}: leave it out",
                                parameter="bitrate")


class _ForwardOnly:
    """A stream that cannot seek (a pipe), shown to libsndfile as one that can.

    libsndfile asks where it is and, at the end, goes back to fill in a header (FLAC's
    length, MP3's Info tag). Here the position is counted, and bytes written over what
    was already sent are dropped: the stream keeps the header as first written (length
    unknown; an empty first MP3 frame), as any streamed file has it.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._position = 0
        self._end = 0  # bytes sent so far

    def write(self, data: bytes) -> int:
        size = len(data)
        sent = max(0, min(size, self._end - self._position))  # already out: cannot be changed
        if sent < size:
            self._stream.write(bytes(data)[sent:])
            self._stream.flush()
            self._end = self._position + size
        self._position += size
        return size

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._end}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        return b""  # nothing written can be read back from a pipe


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def write_audio(path: PathLike, pcm: bytes, sample_rate: int, format: Optional[str] = None) -> str:
    """Write 16-bit mono PCM at ``sample_rate`` to ``path`` as ``format`` (or as its extension says).

    Returns:
        The format written.

    Raises:
        InvalidParameterError: an unknown format or extension (nothing is written).
        TTSError: the format needs soundfile and it is missing (nothing is written).
        OSError: the file cannot be written.
    """
    chosen = check_format(path, format)
    with AudioFileWriter(path, chosen, sample_rate) as writer:
        writer.write(pcm)
    return chosen


def read_audio(path: PathLike, format: Optional[str] = None, sample_rate: int = 24000) -> Tuple[np.ndarray, int]:
    """Read a mono audio file written by ttsstream (or any mono file libsndfile reads).

    Args:
        path: the file.
        format: its format, if the extension does not say.
        sample_rate: the rate of a raw file (raw PCM does not say its own).

    Returns:
        ``(samples, rate)``: int16 samples and their rate.

    Raises:
        InvalidParameterError: an unknown format or extension.
        TTSError: soundfile is missing (for anything but WAV and raw).
        ValueError: the file has more than one channel.
    """
    chosen = check_format(path, format)
    if chosen == "raw":
        with open(os.fspath(path), "rb") as file:
            data = file.read()
        return np.frombuffer(data[:len(data) - len(data) % SAMPLE_WIDTH], dtype="<i2").copy(), sample_rate
    if chosen == "wav":
        try:
            soundfile = _soundfile("wav")
        except TTSError:
            from ..audio import read_wav  # noqa: PLC0415 -- the standard library's reader, without soundfile
            pcm, rate = read_wav(path)
            return np.frombuffer(pcm, dtype="<i2").copy(), rate
    else:
        soundfile = _soundfile(chosen)
    samples, rate = soundfile.read(os.fspath(path), dtype="int16", always_2d=True)
    if samples.shape[1] != 1:
        raise ValueError(f"{os.fspath(path)} has {samples.shape[1]} channels; ttsstream reads mono files")
    return np.ascontiguousarray(samples[:, 0]), int(rate)
