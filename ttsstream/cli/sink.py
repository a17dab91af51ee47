"""Writing audio as it arrives: any output format, to a file or to standard output.

``AudioSink.write`` is an ``on_audio`` callback: it runs on a reader thread and writes
each chunk the moment it arrives, flushed, so that ``ttsstream speak ... --out - |
aplay`` plays while the speech streams. The chunks are resampled to ``--rate`` (soxr,
one stream with its state kept across chunks) and then written as WAV, raw PCM, FLAC,
OGG Vorbis, Opus or MP3 by ``formats.AudioFileWriter``, or encoded as raw G.711
(μ-law, A-law; 8 kHz unless ``--rate`` says otherwise) by ``formats.g711``. A WAV
begins with a header whose sizes are unknown (0xFFFFFFFF, as streaming WAV writers do);
where the output can seek (a file, or standard output redirected to one) the sizes are
put right at the end, also when the speech was interrupted or failed, and so is the
header of a FLAC, OGG or MP3. A pipe keeps what streamed first, as streaming readers
expect.

A file is written beside its final name (``.NAME.XXXX.part``) and given its name when
the sink closes: the whole speech, or, when it was interrupted or failed, the audio
received so far, finished so that it reads (an audiobook keeps what it has). A speech
that ended before any audio came leaves no file (and an older file under that name
intact). ``free_name`` picks a name that no file has yet, created at once
(``O_EXCL``), for output the user did not name: a file the user did not name is never
replaced.

``output_format`` decides what is written from ``--out``'s name, ``--format`` and
``--rate``, and says what to change when they disagree, before anything is sent.

When standard output's reader goes away (``BrokenPipeError``), the sink stops writing,
calls ``on_broken`` (the command cancels the speech) and points the descriptor at
/dev/null, so that the interpreter's last flush stays quiet.

Imports: ``ttsstream.audio``, ``ttsstream.formats``, the CLI's ``problems`` and the
standard library.
"""

from __future__ import annotations

import os
import secrets
import struct
import threading
from typing import BinaryIO, Callable, Dict, List, Optional, Tuple, cast

from ..audio import SAMPLE_WIDTH, AudioChunk, pcm_to_array
from ..formats.files import EXTENSIONS as FILE_EXTENSIONS
from ..formats.files import AudioFileWriter, check_format, file_rate
from ..formats.g711 import alaw_encode, mulaw_encode
from ..formats.resample import StreamResampler
from .problems import UsageError

__all__ = ["AudioSink", "wav_header", "free_name", "output_format", "FORMATS", "G711", "PHONE_RATE", "LABELS",
           "default_name"]

# What --format takes: the file formats, and raw G.711 for telephone lines.
FORMATS = ("wav", "raw", "flac", "ogg", "opus", "mp3", "mulaw", "alaw")
G711 = {"mulaw": mulaw_encode, "alaw": alaw_encode}
PHONE_RATE = 8000  # G.711's rate: what a telephone line plays
# How the last line names each format (ASCII: a terminal may not take "μ").
LABELS = {"wav": "WAV", "raw": "raw PCM", "flac": "FLAC", "ogg": "OGG Vorbis", "opus": "Opus", "mp3": "MP3",
          "mulaw": "mu-law", "alaw": "A-law"}
# A file name's extension (lower case) -> its format: save()'s, and sox's names for raw G.711.
EXTENSIONS: Dict[str, str] = dict(FILE_EXTENSIONS, **{".ul": "mulaw", ".ulaw": "mulaw", ".mulaw": "mulaw",
                                                      ".al": "alaw", ".alaw": "alaw"})
_DEFAULT_EXTENSION = {"wav": ".wav", "raw": ".raw", "flac": ".flac", "ogg": ".ogg", "opus": ".opus",
                      "mp3": ".mp3", "mulaw": ".ul", "alaw": ".al"}
# The rates --rate is checked against for the codecs that take only some (Opus, MP3).
_COMMON_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
UNKNOWN = 0xFFFFFFFF
_MAX_NUMBERED = 10000  # speech-1.wav ... speech-9999.wav, then give up (a folder full of them)


def wav_header(sample_rate: int, data_bytes: Optional[int] = None) -> bytes:
    """A 16-bit mono PCM WAV header; ``data_bytes=None`` writes the unknown-length sizes."""
    data = UNKNOWN if data_bytes is None else data_bytes
    riff = UNKNOWN if data_bytes is None else min(UNKNOWN, 36 + data_bytes)
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1, sample_rate,
                       sample_rate * SAMPLE_WIDTH, SAMPLE_WIDTH, 8 * SAMPLE_WIDTH, b"data", data)


def default_name(fmt: str) -> str:
    """The name of output the user did not name: ``speech.wav``, ``speech.mp3``, ..."""
    return "speech" + _DEFAULT_EXTENSION[fmt]


def output_format(path: Optional[str], fmt: Optional[str], rate: Optional[int]) -> Tuple[str, Optional[int]]:
    """What to write: the format (``--format``, else the extension of ``path``, else WAV)
    and the rate (``--rate``; G.711's 8000 by default; None: the speech's own).

    Raises:
        UsageError: the extension is not one written, it names another format than
            ``--format``, or the format does not take ``--rate``; the message says what to do.
        TTSError: the format needs soundfile, which is missing (the message has the pip command).
    """
    suffix = "" if path is None or path == "-" else os.path.splitext(path)[1]
    named = EXTENSIONS.get(suffix.lower()) if suffix else None
    where = f"--out {path}: " if path else ""
    if suffix and named is None:
        choices = ", ".join(sorted(EXTENSIONS))
        raise UsageError(f"{where}ttsstream writes {choices} files, not {suffix}: name the file with one of "
                         "those")
    if fmt is not None and named is not None and named != fmt:
        raise UsageError(f"{where}a {suffix} file holds {LABELS[named]}, not {LABELS[fmt]}: leave out "
                         f"--format {fmt}, or name the file {_DEFAULT_EXTENSION[fmt]}")
    chosen = fmt or named or "wav"
    takes: List[int] = [each for each in _COMMON_RATES if file_rate(chosen, each) == each]
    if rate is not None and file_rate(chosen, rate) != rate:
        raise UsageError(f"--rate {rate}: {LABELS[chosen]} takes {', '.join(map(str, takes))} Hz: choose one "
                         "of those")
    if chosen not in G711:
        check_format(None, chosen)  # soundfile is there, for the formats that need it
    return chosen, rate if rate is not None or chosen not in G711 else PHONE_RATE


def free_name(path: str) -> str:
    """``path``, or ``NAME-1.EXT``, ``NAME-2.EXT``, ...: the first that no file has, created
    empty at once (``O_EXCL``), so that two runs at the same time never pick the same one.

    Raises:
        OSError: the folder cannot be written, or every numbered name is taken.
    """
    stem, ext = os.path.splitext(path)
    for number in range(_MAX_NUMBERED):
        candidate = path if number == 0 else f"{stem}-{number}{ext}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{stem}-1{ext} to {stem}-{_MAX_NUMBERED - 1}{ext} all exist")


class _Output:
    """The sink's stream, as the encoders see it: a reader that went away (a broken pipe)
    is noted in ``broken`` and what follows is dropped, since libsndfile's callbacks
    cannot carry an exception out. Thread: under the sink's lock."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.broken = False

    def write(self, data: bytes) -> int:
        if not self.broken:
            try:
                self.stream.write(data)
            except BrokenPipeError:
                self.broken = True
        return len(data)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.broken = True

    def seekable(self) -> bool:
        try:
            return bool(self.stream.seekable())
        except (AttributeError, OSError, ValueError):
            return False

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def fileno(self) -> int:
        return self.stream.fileno()


class AudioSink:
    """Streams a speech's audio (every piece of it, in order) to a file or a binary stream.

    Args:
        stream: where to write: an open binary stream (standard output), or None to
            write ``path``.
        path: the file to write (with ``stream`` None).
        fmt: a name in ``FORMATS`` (``output_format`` gives one).
        on_broken: called once, on the writing thread, when the stream's reader went away
            (settable later as ``on_broken``).
        rate: the rate to write (None: the speech's own; G.711: ``PHONE_RATE``).
        reserved: ``path`` is an empty file made by ``free_name`` for this sink: it is
            removed if no audio comes.

    Raises:
        OSError: ``path`` cannot be written (its folder is missing or read-only).
    """

    def __init__(self, stream: Optional[BinaryIO], path: Optional[str], fmt: str = "wav",
                 on_broken: Optional[Callable[[], None]] = None, *, rate: Optional[int] = None,
                 reserved: bool = False) -> None:
        self.path = path
        self.format = fmt
        self.on_broken = on_broken
        self.rate = PHONE_RATE if rate is None and fmt in G711 else rate
        self._reserved = reserved
        self._temp: Optional[str] = None
        if stream is None:
            assert path is not None
            folder, name = os.path.split(os.path.abspath(path))
            self._temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part")
            # 0o666 as open() would, so the umask gives the file its usual mode; readable
            # too, for libsndfile, which reads back what it wrote while finishing a file
            stream = os.fdopen(os.open(self._temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), "w+b")
        self._output = _Output(stream)

        # Guarded by the lock: on_audio (a reader thread) writes, the main thread closes.
        self._lock = threading.Lock()
        self._resampler: Optional[StreamResampler] = None  # set with the first chunk: the speech's rate -> rate
        self._writer: Optional[AudioFileWriter] = None      # the file formats' encoder (None: G.711)
        self._sample_rate = 24000   # the speech's rate
        self._bytes = 0             # bytes of the speech's PCM written
        self._closed = False        # close() ran: a late chunk is dropped
        self.out_rate: Optional[int] = self.rate  # the rate in the output, once known
        self.broken = False         # the reader went away; nothing more is written
        self.kept = False           # close() left audio under ``path`` (or on the stream)

    def write(self, chunk: AudioChunk) -> None:
        """``on_audio``: write the chunk now. Thread: a reader thread; returns quickly."""
        with self._lock:
            if self.broken or self._closed:
                return
            if self._resampler is None:
                self._start(chunk.sample_rate)
            assert self._resampler is not None
            self._put(self._resampler.push(chunk.pcm))
            self._output.flush()
            self._bytes += len(chunk.pcm)
            if self._output.broken:
                self._broke()
        if self.broken and self.on_broken is not None:
            self.on_broken()

    def close(self, complete: bool, sample_rate: Optional[int] = None) -> bool:
        """Finish: write what the encoders hold, finish the file's header where the
        output can seek, and give a file its name. Safe to call twice (the second call
        does nothing).

        Args:
            complete: the speech ended well: the output is written even without audio
                (a valid, empty file). Otherwise (interrupted, failed) what was received
                is kept, and nothing is left if nothing was.
            sample_rate: the speech's rate, for an empty file's header.

        Returns:
            True if audio (or the complete speech) was left under ``path`` or on the stream.

        Thread: the main thread. Raises OSError.
        """
        with self._lock:
            if self._closed:
                return self.kept
            self._closed = True
            keep = (complete or self._bytes > 0) and not self.broken
            try:
                if keep:
                    if self._resampler is None:
                        self._start(sample_rate or self._sample_rate)  # no audio: a valid, empty file
                    self._finish()
                    if self._output.broken:
                        self._broke()
                        keep = False
            finally:
                if self._writer is not None:
                    _quietly_close(self._writer)  # libsndfile's handle is let go, whatever came of the file
                if self._temp is not None:
                    self._output.stream.close()
                    self._finish_file(keep)
            self.kept = keep
            return keep

    @property
    def written(self) -> int:
        """Bytes of the speech's PCM written so far."""
        return self._bytes

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self._bytes / (SAMPLE_WIDTH * self._sample_rate)

    def _start(self, sample_rate: int) -> None:
        """The speech's rate is known: set up the resampler and the encoder."""
        self._sample_rate = sample_rate
        rate = self.rate or sample_rate
        self._resampler = StreamResampler(sample_rate, rate)
        if self.format in G711:
            self.out_rate = rate
            return
        # _Output has all of a binary stream that the writer (and libsndfile) use
        self._writer = AudioFileWriter(cast(BinaryIO, self._output), self.format, rate)
        self.out_rate = self._writer.file_rate

    def _put(self, pcm: bytes) -> None:
        if self._writer is not None:
            self._writer.write(pcm)
        elif pcm:
            self._output.write(G711[self.format](pcm_to_array(pcm)))

    def _finish(self) -> None:
        assert self._resampler is not None
        self._put(self._resampler.flush())
        if self._writer is not None:
            self._writer.close()  # the stream stays open: it is not the writer's
        self._output.flush()

    def _finish_file(self, keep: bool) -> None:
        """Give the part file its name, or remove it (and a name reserved for it)."""
        temp, self._temp = self._temp, None
        assert temp is not None and self.path is not None
        if keep:
            os.replace(temp, self.path)
            return
        os.unlink(temp)
        if self._reserved:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def _broke(self) -> None:
        self.broken = True
        try:  # the interpreter flushes stdout at exit: make that flush go nowhere, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._output.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass


def _quietly_close(writer: AudioFileWriter) -> None:
    try:
        writer.close()
    except (OSError, RuntimeError, ValueError):
        pass  # the file is being dropped: its end does not matter
