"""The phrase cache (interim: memory only, replaced by the full store on its branch).

Imports: protocols (WordTime), errors.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
from typing import Any, Mapping, NamedTuple, Optional, Tuple

from .errors import InvalidParameterError
from .protocols import WordTime

__all__ = ["PhraseCache", "CachedAudio"]

DEFAULT_MAX_BYTES = 64 * 2**20


class CachedAudio(NamedTuple):
    """One phrase's audio as the service sent it."""

    sample_rate: int
    chunks: Tuple[bytes, ...]
    words: Optional[Tuple[WordTime, ...]] = None

    @property
    def nbytes(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


class PhraseCache:
    """Phrases by key, least recently used out first."""

    def __init__(self, path: Optional[str] = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: "collections.OrderedDict[str, CachedAudio]" = collections.OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(parts: Mapping[str, Any]) -> str:
        try:
            text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"cannot key {exc}") from None
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Optional[CachedAudio]:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: str, audio: CachedAudio) -> None:
        with self._lock:
            if audio.nbytes > self.max_bytes // 4 or key in self._entries:
                return
            self._entries[key] = audio
            self._bytes += audio.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.nbytes
