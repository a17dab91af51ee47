"""Writing audio as it arrives: a WAV (or raw PCM) stream to a file or to standard output.

``AudioSink.write`` is an ``on_audio`` callback: it runs on a reader thread and writes
each chunk the moment it arrives, flushed, so that ``ttsstream speak ... --out - |
aplay`` plays while the speech streams. A WAV begins with a header whose sizes are
unknown (0xFFFFFFFF, as streaming WAV writers do); where the output can seek (a file,
or standard output redirected to one) the sizes are put right at the end, also when the
speech was interrupted or failed. A pipe keeps the unknown sizes, as streaming readers
expect.

A file is written beside its final name (``.NAME.XXXX.part``) and given its name when
the sink closes: the whole speech, or, when it was interrupted or failed, the audio
received so far (an audiobook keeps what it has). A speech that ended before any audio
came leaves no file (and an older file under that name intact). ``free_name`` picks a
name that no file has yet, created at once (``O_EXCL``), for output the user did not
name: a file the user did not name is never replaced.

When standard output's reader goes away (``BrokenPipeError``), the sink stops writing,
calls ``on_broken`` (the command cancels the speech) and points the descriptor at
/dev/null, so that the interpreter's last flush stays quiet.

Imports: ``ttsstream.audio`` and the standard library.
"""

from __future__ import annotations

import os
import secrets
import struct
import threading
from typing import BinaryIO, Callable, Optional

from ..audio import SAMPLE_WIDTH, AudioChunk

__all__ = ["AudioSink", "wav_header", "free_name", "FORMATS"]

FORMATS = ("wav", "raw")
UNKNOWN = 0xFFFFFFFF
_HEADER_BYTES = 44
_MAX_NUMBERED = 10000  # speech-1.wav ... speech-9999.wav, then give up (a folder full of them)


def wav_header(sample_rate: int, data_bytes: Optional[int] = None) -> bytes:
    """A 16-bit mono PCM WAV header; ``data_bytes=None`` writes the unknown-length sizes."""
    data = UNKNOWN if data_bytes is None else data_bytes
    riff = UNKNOWN if data_bytes is None else min(UNKNOWN, 36 + data_bytes)
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1, sample_rate,
                       sample_rate * SAMPLE_WIDTH, SAMPLE_WIDTH, 8 * SAMPLE_WIDTH, b"data", data)


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


class AudioSink:
    """Streams a speech's audio (every piece of it, in order) to a file or a binary stream.

    Args:
        stream: where to write: an open binary stream (standard output), or None to
            write ``path``.
        path: the file to write (with ``stream`` None).
        fmt: ``"wav"`` or ``"raw"`` (16-bit little-endian mono PCM, no header).
        on_broken: called once, on the writing thread, when the stream's reader went away
            (settable later as ``on_broken``).
        reserved: ``path`` is an empty file made by ``free_name`` for this sink: it is
            removed if no audio comes.

    Raises:
        OSError: ``path`` cannot be written (its folder is missing or read-only).
    """

    def __init__(self, stream: Optional[BinaryIO], path: Optional[str], fmt: str = "wav",
                 on_broken: Optional[Callable[[], None]] = None, *, reserved: bool = False) -> None:
        self.path = path
        self.format = fmt
        self.on_broken = on_broken
        self._reserved = reserved
        self._temp: Optional[str] = None
        if stream is None:
            assert path is not None
            folder, name = os.path.split(os.path.abspath(path))
            self._temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part")
            # 0o666 as open() would, so the umask gives the file its usual mode
            stream = os.fdopen(os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
        self._stream: BinaryIO = stream

        # Guarded by the lock: on_audio (a reader thread) writes, the main thread closes.
        self._lock = threading.Lock()
        self._started = False       # the header is out
        self._sample_rate = 24000
        self._bytes = 0
        self._closed = False        # close() ran: a late chunk is dropped
        self.broken = False         # the reader went away; nothing more is written
        self.kept = False           # close() left audio under ``path`` (or on the stream)

    def write(self, chunk: AudioChunk) -> None:
        """``on_audio``: write the chunk now. Thread: a reader thread; returns quickly."""
        with self._lock:
            if self.broken or self._closed:
                return
            try:
                if not self._started:
                    self._start(chunk.sample_rate)
                self._stream.write(chunk.pcm)
                self._stream.flush()
                self._bytes += len(chunk.pcm)
            except BrokenPipeError:
                self._broke()
        if self.broken and self.on_broken is not None:
            self.on_broken()

    def close(self, complete: bool, sample_rate: Optional[int] = None) -> bool:
        """Finish: put the WAV sizes right where the output can seek, and give a file its
        name. Safe to call twice (the second call does nothing).

        Args:
            complete: the speech ended well: the output is written even without audio
                (a valid, empty WAV). Otherwise (interrupted, failed) what was received
                is kept, and nothing is left if nothing was.
            sample_rate: the rate for an empty WAV's header.

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
                    if not self._started:
                        self._start(sample_rate or self._sample_rate)  # no audio: a valid, empty WAV
                    self._settle_sizes()
                    self._stream.flush()
            except BrokenPipeError:
                self._broke()
                keep = False
            finally:
                if self._temp is not None:
                    self._stream.close()
                    self._finish_file(keep)
            self.kept = keep
            return keep

    @property
    def written(self) -> int:
        """Bytes of PCM written so far."""
        return self._bytes

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self._bytes / (SAMPLE_WIDTH * self._sample_rate)

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

    def _start(self, sample_rate: int) -> None:
        self._sample_rate = sample_rate
        self._started = True
        if self.format == "wav":
            self._stream.write(wav_header(sample_rate))

    def _settle_sizes(self) -> None:
        """Rewrite the header with the real sizes where the stream can seek to it."""
        if self.format != "wav":
            return
        try:
            if not self._stream.seekable():
                return
            end = self._stream.tell()
            if end != _HEADER_BYTES + self._bytes:
                return  # appended to something else: leave it
            self._stream.seek(0)
            self._stream.write(wav_header(self._sample_rate, self._bytes))
            self._stream.seek(end)
        except (OSError, ValueError):
            return  # a pipe after all: the unknown sizes stand, as streaming readers expect

    def _broke(self) -> None:
        self.broken = True
        try:  # the interpreter flushes stdout at exit: make that flush go nowhere, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
