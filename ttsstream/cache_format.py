"""The phrase cache's file format, and ``CachedAudio``, what an entry holds.

One file per phrase::

    header  magic "TTSCACHE", version, flags, sample rate, chunk count, words length,
            PCM length, the key (32 bytes)
    digest  blake2b-256 of the header and everything after the digest
    body    the chunk lengths (u32 each), the word times (JSON), the PCM

``decode`` raises ``Corrupt`` for anything that is not a whole entry of this version
(short, long, another magic or version, a failed digest, another key), so a reader
never returns bad audio. Pure: bytes in, bytes out, no I/O.

Imports: ``ttsstream.errors``, ``ttsstream.checks``, ``ttsstream.protocols`` (``WordTime``
only) and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import List, NamedTuple, Optional, Tuple

from .checks import is_int
from .errors import InvalidParameterError
from .protocols import WordTime

__all__ = ["CachedAudio", "Corrupt", "encode", "decode", "check_audio", "MAGIC", "VERSION"]

MAGIC = b"TTSCACHE"
VERSION = 1
_WORDS = 1  # flag: the entry holds word times
_HEADER = struct.Struct("<8sHHIIIQ32s")  # magic, version, flags, rate, chunks, words, pcm, key
_DIGEST_SIZE = 32


class CachedAudio(NamedTuple):
    """One phrase's audio as the service sent it.

    Attributes:
        sample_rate: samples per second of the PCM.
        chunks: the audio (16-bit PCM), with the chunk boundaries as received.
        words: the server's word times, if it sent any.
    """

    sample_rate: int
    chunks: Tuple[bytes, ...]
    words: Optional[Tuple[WordTime, ...]] = None

    @property
    def nbytes(self) -> int:
        """Total audio bytes."""
        return sum(len(chunk) for chunk in self.chunks)


class Corrupt(Exception):
    """A file that is not a whole entry of this version (internal)."""


def encode(key: str, audio: CachedAudio) -> List[bytes]:
    """The file's bytes, in pieces, for ``key`` and ``audio``."""
    words = b""
    if audio.words is not None:
        words = json.dumps([list(word) for word in audio.words], ensure_ascii=True,
                           allow_nan=False).encode("ascii")
    header = _HEADER.pack(MAGIC, VERSION, _WORDS if audio.words is not None else 0, audio.sample_rate,
                          len(audio.chunks), len(words), audio.nbytes, bytes.fromhex(key))
    lengths = struct.pack(f"<{len(audio.chunks)}I", *(len(chunk) for chunk in audio.chunks))
    digest = hashlib.blake2b(header, digest_size=_DIGEST_SIZE)
    for piece in (lengths, words, *audio.chunks):
        digest.update(piece)
    return [header, digest.digest(), lengths, words, *audio.chunks]


def decode(key: str, data: bytes) -> CachedAudio:
    """The entry in ``data``, or ``Corrupt``."""
    if len(data) < _HEADER.size + _DIGEST_SIZE:
        raise Corrupt("short")
    magic, version, flags, rate, count, words_len, pcm_len, raw_key = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise Corrupt("magic or version")
    body = _HEADER.size + _DIGEST_SIZE
    if len(data) != body + 4 * count + words_len + pcm_len:
        raise Corrupt("length")
    view = memoryview(data)
    digest = hashlib.blake2b(view[:_HEADER.size], digest_size=_DIGEST_SIZE)
    digest.update(view[body:])
    if digest.digest() != data[_HEADER.size:body] or raw_key != bytes.fromhex(key) or rate <= 0:
        raise Corrupt("digest")
    lengths = struct.unpack_from(f"<{count}I", data, body)
    if sum(lengths) != pcm_len:
        raise Corrupt("chunk lengths")
    at = body + 4 * count
    words: Optional[Tuple[WordTime, ...]] = None
    if flags & _WORDS:
        try:
            words = tuple(WordTime(*word) for word in json.loads(data[at:at + words_len]))
        except (ValueError, TypeError) as error:
            raise Corrupt("words") from error
    at += words_len
    chunks = []
    for length in lengths:
        chunks.append(data[at:at + length])
        at += length
    return CachedAudio(rate, tuple(chunks), words)


def check_audio(audio: object) -> CachedAudio:
    """``audio`` if it is a ``CachedAudio`` of bytes, else InvalidParameterError."""
    if not isinstance(audio, CachedAudio):
        raise InvalidParameterError(f"audio must be a ttsstream.cache.CachedAudio, got {type(audio).__name__}",
                                    parameter="audio")
    if not is_int(audio.sample_rate) or not 0 < audio.sample_rate < 2**32:
        raise InvalidParameterError(f"audio.sample_rate must be a positive int, got {audio.sample_rate!r}",
                                    parameter="audio")
    if not isinstance(audio.chunks, tuple) or not all(isinstance(chunk, bytes) for chunk in audio.chunks):
        raise InvalidParameterError("audio.chunks must be a tuple of bytes; convert with tuple(map(bytes, ...))",
                                    parameter="audio")
    if audio.words is not None and not all(isinstance(word, WordTime) for word in audio.words):
        raise InvalidParameterError("audio.words must be None or a tuple of ttsstream.protocols.WordTime",
                                    parameter="audio")
    return audio
