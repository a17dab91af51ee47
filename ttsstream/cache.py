"""The phrase cache: a phrase's audio stored by key, in memory and optionally on disk.

A leaf that stores bytes by key and knows nothing of connections or speeches: the
client builds the key (``PhraseCache.key``) from everything that shapes the audio, asks
``get`` before it connects and calls ``put`` when a speech ends. A memory hit is a dict
lookup; a disk hit is one file read.

On disk each phrase is one file, ``<key>.phrase``, in the cache's directory, in the
format of ``cache_format`` (a header with magic and version, a blake2b digest, the
chunk lengths, the word times, the PCM). A file that is short, long, of another version, fails its digest, or vanishes while it
is read is a miss (and is deleted when it is corrupt), never an exception and never
bad audio. A write goes to a temporary file in the same directory and is renamed over
the final name (``os.replace``), so readers in any process see a whole entry or none.
Writes are not fsynced: after a crash a torn file fails its digest and is a miss.

Least recently used goes first: in memory by order of use; on disk by modification
time, which a disk hit refreshes (``os.utime``), so the processes sharing a directory
share one order. A process does not scan the directory on every put: it scans (and
evicts, down to 90% of the bound) when the last scan's total plus what it wrote since
passes the bound, or when it has written 10% of the bound since its last scan. So
the directory stays within ``max_bytes`` plus, for each of the P processes writing to
it, up to 10% of the bound and one entry (the slack between scans).

Imports: ``ttsstream.cache_format``, ``ttsstream.checks``, ``ttsstream.errors`` and the standard
library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from typing import Any, List, Mapping, Optional, Tuple, Union

from .cache_format import CachedAudio, Corrupt, check_audio, decode, encode
from .checks import is_int
from .errors import InvalidParameterError

__all__ = ["CachedAudio", "PhraseCache", "DEFAULT_MAX_BYTES", "DEFAULT_DISK_MAX_BYTES"]

logger = logging.getLogger("ttsstream.cache")

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 64 * MiB        # in memory: about 20 minutes of 24 kHz speech
DEFAULT_DISK_MAX_BYTES = 256 * MiB  # on disk: about 90 minutes of 24 kHz speech
_LARGEST_SHARE = 4                  # an entry over a quarter of its layer's bound is not kept
_LOW_WATER = 0.9                    # eviction frees down to this share of the bound
_RESCAN_SHARE = 0.1                 # a process rescans after writing this share of the bound
_STALE_TEMP_SECONDS = 600.0         # a temporary file this old was left by a killed writer

_SUFFIX = ".phrase"
_TEMP_PREFIX, _TEMP_SUFFIX = ".tmp-", ".part"
_KEY = re.compile(r"[0-9a-f]{64}")

PathArg = Union[str, "os.PathLike[str]"]


def _canonical(value: Any, where: str) -> Any:
    """``value`` as plain JSON types, or InvalidParameterError naming ``where``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidParameterError(f"cache key part {where} must be finite, got {number!r}", parameter="parts")
        return number
    if isinstance(value, Mapping):
        plain = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise InvalidParameterError(
                    f"cache key part {where} has the key {name!r}; use str keys only", parameter="parts")
            plain[name] = _canonical(item, f"{where}[{name!r}]")
        return plain
    if isinstance(value, (list, tuple)):
        return [_canonical(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise InvalidParameterError(
        f"cache key part {where} is a {type(value).__name__}, which has no canonical form; "
        "pass None, bool, int, float, str, lists and dicts with str keys only", parameter="parts")


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidParameterError("a cache key must be what PhraseCache.key(parts) returns "
                                    "(64 lowercase hex digits)", parameter="key")
    return key


class PhraseCache:
    """Spoken phrases kept by key, in memory and, with ``path``, on disk as well.

    Args:
        path: a directory (created if missing) to keep phrases in as well as memory,
            shared safely by every process that names it; None keeps them in memory only.
        max_bytes: the bound, in bytes: of memory without ``path`` (None: 64 MiB,
            ``DEFAULT_MAX_BYTES``); of the directory with it (None: 256 MiB,
            ``DEFAULT_DISK_MAX_BYTES``), with a memory layer in front bounded by
            ``min(max_bytes, 64 MiB)``. An entry over a quarter of a layer's bound is
            not kept in that layer. Least recently used entries go first.

    Raises:
        InvalidParameterError: ``path`` is not a str or path, or ``max_bytes`` not a
            positive int.

    A directory that cannot be created or written is logged as a warning, never
    raised: the cache then keeps phrases in memory only, and never fails a speech.

    Thread: every method may be called from any thread.
    """

    def __init__(self, path: Optional[PathArg] = None, max_bytes: Optional[int] = None) -> None:
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise InvalidParameterError(f"path must be a directory's path (str or os.PathLike) or None, "
                                        f"got {type(path).__name__}", parameter="path")
        directory = os.fspath(path) if path is not None else None
        if directory is not None and (not isinstance(directory, str) or not directory):
            raise InvalidParameterError("path must be a non-empty str path of a directory, or None",
                                        parameter="path")
        if max_bytes is not None and (not is_int(max_bytes) or max_bytes <= 0):
            raise InvalidParameterError(f"max_bytes must be a positive int (bytes), got {max_bytes!r}; "
                                        "for example 64 * 1024 * 1024", parameter="max_bytes")
        default = DEFAULT_MAX_BYTES if directory is None else DEFAULT_DISK_MAX_BYTES
        self._path = os.path.abspath(directory) if directory is not None else None
        self._disk_max = max_bytes if max_bytes is not None else default
        self._memory_max = min(self._disk_max, DEFAULT_MAX_BYTES) if directory is not None else self._disk_max
        # guarded by the lock
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, CachedAudio] = OrderedDict()
        self._memory_bytes = 0
        self._hits = 0
        self._misses = 0
        self._disk_bytes: Optional[int] = None  # the last scan's total plus what this process wrote since
        self._unscanned = 0  # what this process wrote since its last scan
        self._scanning = False
        self._failing = False  # the last write failed: say the next failures at DEBUG only
        if self._path is not None:
            try:
                os.makedirs(self._path, exist_ok=True)
            except OSError as error:
                logger.warning("phrase cache: cannot create the directory %s (%s); phrases are kept in memory",
                               self._path, error)

    @staticmethod
    def key(parts: Mapping[str, Any]) -> str:
        """The key of a phrase: sha256 (hex) of a canonical JSON of ``parts``.

        Any difference in any part changes the key (nested values, ``1`` against
        ``1.0`` against ``True``, the text exactly: no Unicode normalisation); the
        order of a dict's keys does not. Lists and tuples are the same, as on the wire.

        Args:
            parts: everything that shapes the audio: provider, endpoint, model, voice,
                every parameter and the exact text. Values: None, bool, int, float
                (finite), str, lists, tuples and mappings with str keys.

        Raises:
            InvalidParameterError: a part has no canonical form (another type, a
                non-str dict key, nan or infinity).
        """
        if not isinstance(parts, Mapping):
            raise InvalidParameterError(f"parts must be a mapping of str to values, got {type(parts).__name__}",
                                        parameter="parts")
        text = json.dumps(_canonical(parts, "parts"), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    @property
    def path(self) -> Optional[str]:
        """The directory on disk (absolute), or None for memory only."""
        return self._path

    @property
    def hits(self) -> int:
        """How many ``get`` calls of this object found their phrase."""
        return self._hits

    @property
    def misses(self) -> int:
        """How many ``get`` calls of this object found nothing."""
        return self._misses

    def get(self, key: str) -> Optional[CachedAudio]:
        """The phrase stored under ``key``, or None.

        A memory hit is a dict lookup. With ``path``, a memory miss reads the
        phrase's file (which another process may have written) and refreshes its
        modification time; a file that is missing, corrupt or unreadable is a miss.

        Raises:
            InvalidParameterError: ``key`` is not one ``key()`` returns.

        Thread: any; a disk read runs outside the lock.
        """
        if not isinstance(key, str):  # before the lookup: a list is unhashable
            _check_key(key)
        with self._lock:
            audio = self._memory.get(key)
            if audio is not None:
                self._memory.move_to_end(key)
                self._hits += 1
                return audio
        _check_key(key)
        audio = self._read(key) if self._path is not None else None
        with self._lock:
            if audio is None:
                self._misses += 1
                return None
            self._hits += 1
            self._remember(key, audio)
        return audio

    def put(self, key: str, audio: CachedAudio) -> None:
        """Keep ``audio`` under ``key`` (in memory, and with ``path`` on disk).

        A failure to write (disk full, a read-only directory) is logged as a
        warning and leaves no temporary file; it is never raised.

        Raises:
            InvalidParameterError: ``key`` is not one ``key()`` returns, or ``audio``
                not a ``CachedAudio`` of bytes.

        Thread: any; the file is written outside the lock.
        """
        _check_key(key)
        check_audio(audio)
        with self._lock:
            self._remember(key, audio)
        if self._path is not None and audio.nbytes <= self._disk_max // _LARGEST_SHARE:
            written = self._write(key, audio)
            if written:
                self._account(written)

    def clear(self) -> None:
        """Forget every phrase (in memory, and the directory's entries), and reset ``hits``/``misses``."""
        with self._lock:
            self._memory.clear()
            self._memory_bytes = 0
            self._hits = self._misses = 0
            self._disk_bytes = None
        for name, _size, _mtime in self._entries():
            self._unlink(name)

    def __len__(self) -> int:
        """How many phrases are kept: on disk with ``path`` (a directory scan), else in memory."""
        if self._path is not None:
            return len(self._entries())
        with self._lock:
            return len(self._memory)

    def __repr__(self) -> str:
        if self._path is not None:
            entries = self._entries()
            return (f"PhraseCache(path={self._path!r}, entries={len(entries)}, "
                    f"bytes={sum(size for _name, size, _mtime in entries)}, max_bytes={self._disk_max})")
        with self._lock:
            return f"PhraseCache(path=None, entries={len(self._memory)}, bytes={self._memory_bytes}, " \
                   f"max_bytes={self._memory_max})"

    # -- memory (the caller holds the lock) ----------------------------------------

    def _remember(self, key: str, audio: CachedAudio) -> None:
        size = audio.nbytes
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_bytes -= old.nbytes
        if size > self._memory_max // _LARGEST_SHARE:
            return
        self._memory[key] = audio
        self._memory_bytes += size
        while self._memory_bytes > self._memory_max:
            _key, dropped = self._memory.popitem(last=False)
            self._memory_bytes -= dropped.nbytes

    # -- disk (no lock held) ------------------------------------------------------

    def _file(self, key: str) -> str:
        assert self._path is not None
        return os.path.join(self._path, key + _SUFFIX)

    def _read(self, key: str) -> Optional[CachedAudio]:
        name = self._file(key)
        try:
            with open(name, "rb") as file:
                opened = os.fstat(file.fileno())
                data = file.read()
        except FileNotFoundError:
            return None
        except OSError as error:  # a directory where the file should be, no permission
            logger.debug("phrase cache: cannot read entry %s… (%s)", key[:12], error)
            return None
        try:
            audio = decode(key, data)
        except Corrupt as reason:
            logger.warning("phrase cache: entry %s… is corrupt (%s); deleted", key[:12], reason)
            try:  # only the file that was read: a writer may have replaced it with a good one since
                now = os.stat(name)
                if (now.st_ino, now.st_dev, now.st_mtime_ns) == (opened.st_ino, opened.st_dev, opened.st_mtime_ns):
                    os.unlink(name)
            except OSError:
                pass
            return None
        try:
            os.utime(name)
        except OSError:  # evicted by another process since: the audio read is still whole
            pass
        return audio

    def _write(self, key: str, audio: CachedAudio) -> int:
        """Write the entry; its size, or 0 when it could not be written."""
        assert self._path is not None
        pieces = encode(key, audio)
        temp: Optional[str] = None
        try:
            try:
                descriptor, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self._path)
            except FileNotFoundError:  # the directory was removed under us: make it again, once
                os.makedirs(self._path, exist_ok=True)
                descriptor, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self._path)
            with open(descriptor, "wb") as file:
                file.writelines(pieces)
            os.replace(temp, self._file(key))
            temp = None
        except OSError as error:
            level = logging.DEBUG if self._failing else logging.WARNING
            logger.log(level, "phrase cache: cannot write entry %s… in %s (%s); the phrase is kept in memory only",
                       key[:12], self._path, error)
            self._failing = True
            return 0
        finally:
            if temp is not None:
                self._unlink(os.path.basename(temp))
        self._failing = False
        return sum(len(piece) for piece in pieces)

    def _account(self, written: int) -> None:
        """Count a write; scan (and evict) when the total passes the bound, or when this
        process wrote 10% of the bound since its last scan (other processes write too)."""
        with self._lock:
            self._unscanned += written
            if self._disk_bytes is not None:
                self._disk_bytes += written
                if self._disk_bytes <= self._disk_max and self._unscanned <= self._disk_max * _RESCAN_SHARE:
                    return
            if self._scanning:
                return
            self._scanning = True
            self._unscanned = 0
        remaining: Optional[int] = None
        try:
            remaining = self._evict()
        finally:
            with self._lock:
                self._scanning = False
                self._disk_bytes = remaining

    def _evict(self, now: Optional[float] = None) -> int:
        """Delete the least recently used entries down to 90% of the bound; the bytes left."""
        entries = self._entries(sweep=time.time() if now is None else now)
        total = sum(size for _name, size, _mtime in entries)
        if total <= self._disk_max:
            return total
        for name, size, _mtime in sorted(entries, key=lambda entry: entry[2]):
            if total <= self._disk_max * _LOW_WATER:
                break
            if self._unlink(name):
                total -= size
        return total

    def _entries(self, sweep: Optional[float] = None) -> List[Tuple[str, int, int]]:
        """``(name, size, mtime_ns)`` of every entry; with ``sweep`` (the time now), delete stale temporaries."""
        found: List[Tuple[str, int, int]] = []
        if self._path is None:
            return found
        try:
            with os.scandir(self._path) as scan:
                for item in scan:
                    name = item.name
                    try:
                        if name.endswith(_SUFFIX) and _KEY.fullmatch(name[:-len(_SUFFIX)]) and item.is_file():
                            stat = item.stat()
                            found.append((name, stat.st_size, stat.st_mtime_ns))
                        elif (sweep is not None and name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)
                              and item.stat().st_mtime < sweep - _STALE_TEMP_SECONDS):
                            self._unlink(name)
                    except OSError:  # gone since the listing
                        continue
        except OSError as error:
            logger.debug("phrase cache: cannot list %s (%s)", self._path, error)
        return found

    def _unlink(self, name: str) -> bool:
        assert self._path is not None
        try:
            os.unlink(os.path.join(self._path, name))
        except OSError:
            return False
        return True
