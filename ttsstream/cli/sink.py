"""Writing audio as it arrives: a WAV (or raw PCM) stream to a file or to standard output.

``AudioSink.write`` is an ``on_audio`` callback: it runs on a reader thread and writes
each chunk the moment it arrives, flushed, so that ``ttsstream speak ... --out - |
aplay`` plays while the speech streams. A WAV begins with a header whose sizes are
unknown (0xFFFFFFFF, as streaming WAV writers do); where the output can seek (a file,
or standard output redirected to one) the sizes are put right at the end. A file is
written beside its final name and renamed there only once the speech succeeded, so a
failure leaves no half file (and an older file intact).

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

__all__ = ["AudioSink", "wav_header", "FORMATS"]

FORMATS = ("wav", "raw")
UNKNOWN = 0xFFFFFFFF
_HEADER_BYTES = 44


def wav_header(sample_rate: int, data_bytes: Optional[int] = None) -> bytes:
    """A 16-bit mono PCM WAV header; ``data_bytes=None`` writes the unknown-length sizes."""
    data = UNKNOWN if data_bytes is None else data_bytes
    riff = UNKNOWN if data_bytes is None else min(UNKNOWN, 36 + data_bytes)
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1, sample_rate,
                       sample_rate * SAMPLE_WIDTH, SAMPLE_WIDTH, 8 * SAMPLE_WIDTH, b"data", data)


class AudioSink:
    """Streams a speech's audio (every piece of it, in order) to a file or a binary stream.

    Args:
        stream: where to write: an open binary stream (standard output), or None to
            write ``path``.
        path: the file to write (with ``stream`` None).
        fmt: ``"wav"`` or ``"raw"`` (16-bit little-endian mono PCM, no header).
        on_broken: called once, on the writing thread, when the stream's reader went away
            (settable later as ``on_broken``).

    Raises:
        OSError: ``path`` cannot be written (its folder is missing or read-only).
    """

    def __init__(self, stream: Optional[BinaryIO], path: Optional[str], fmt: str = "wav",
                 on_broken: Optional[Callable[[], None]] = None) -> None:
        self.path = path
        self.format = fmt
        self.on_broken = on_broken
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
        self.broken = False         # the reader went away; nothing more is written

    def write(self, chunk: AudioChunk) -> None:
        """``on_audio``: write the chunk now. Thread: a reader thread; returns quickly."""
        with self._lock:
            if self.broken:
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

    def close(self, ok: bool, sample_rate: Optional[int] = None) -> None:
        """Finish: put the WAV sizes right where the output can seek, and for a file, give
        it its name (``ok``) or remove it. Thread: the main thread. Raises OSError."""
        with self._lock:
            try:
                if ok and not self.broken:
                    if not self._started:
                        self._start(sample_rate or self._sample_rate)  # no audio: a valid, empty WAV
                    self._settle_sizes()
                    self._stream.flush()
            except BrokenPipeError:
                self._broke()
            finally:
                if self._temp is not None:
                    self._stream.close()
                    if ok:
                        assert self.path is not None  # a temporary file stands in only for a path
                        os.replace(self._temp, self.path)
                    else:
                        os.unlink(self._temp)
                    self._temp = None

    @property
    def written(self) -> int:
        """Bytes of PCM written so far."""
        return self._bytes

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
