"""A batch's memory: which items are finished, from what text and settings, in which file.

This module owns ``Manifest`` (the file ``.ttsstream-batch.jsonl`` in the output
directory, one JSON line per finished item), ``Entry`` (one line), and the hashes and
checksums it compares: ``text_hash``, ``settings_hash`` and ``file_checksum``.

A line is appended with one ``write`` of the whole line, then flushed and fsynced, so a
kill -9 (or a power cut) leaves at worst a torn last line, which loading ignores. Only
the process that runs the batch writes it: workers elsewhere report back instead, so
they never race on it. Imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Mapping, NamedTuple, Optional, Union

__all__ = ["Manifest", "Entry", "MANIFEST_NAME", "text_hash", "settings_hash", "file_checksum"]

MANIFEST_NAME = ".ttsstream-batch.jsonl"
_BLOCK = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]


class Entry(NamedTuple):
    """One finished item, as the manifest records it.

    Attributes:
        id: the item's id.
        text_hash: ``text_hash`` of the text it was spoken from.
        settings_hash: ``settings_hash`` of what shaped the audio.
        file: the file's name in the output directory.
        duration: seconds of audio.
        sha256: the file's checksum (``file_checksum``).
    """

    id: str
    text_hash: str
    settings_hash: str
    file: str
    duration: float
    sha256: str


def text_hash(text: str) -> str:
    """The sha256 of ``text`` (UTF-8), in hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def settings_hash(settings: Mapping[str, Any]) -> str:
    """The sha256, in hex, of what shapes an item's audio besides its text (provider,
    model, voice, parameters, format): canonical JSON, so key order does not matter."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=repr, ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def file_checksum(path: PathLike) -> str:
    """The sha256 of a file's bytes, in hex.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(os.fspath(path), "rb") as file:
        for block in iter(lambda: file.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """The finished items of a batch in ``out_dir``: loaded at once, appended line by line.

    Thread: one. The runner touches it from the caller's thread only.

    Args:
        out_dir: the batch's output directory (it must exist).

    Raises:
        OSError: the manifest exists but cannot be read.
    """

    def __init__(self, out_dir: PathLike) -> None:
        self.path = os.path.join(os.fspath(out_dir), MANIFEST_NAME)
        self._entries: Dict[str, Entry] = {}
        self._torn = False
        self._load()

    def get(self, item_id: str) -> Optional[Entry]:
        """The latest entry for ``item_id``, or None."""
        return self._entries.get(item_id)

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, entry: Entry) -> None:
        """Append ``entry`` durably: one write of the line, flush, fsync.

        Raises:
            OSError: the manifest cannot be written.
        """
        line = json.dumps(entry._asdict(), ensure_ascii=True, separators=(",", ":")) + "\n"
        if self._torn:  # end a torn last line first, so this one stands on a line of its own
            line = "\n" + line
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = line.encode("ascii")
            written = os.write(descriptor, data)
            if written != len(data):  # a full disk: what did go in is a torn line, ended next time
                self._torn = True
                raise OSError(f"{self.path}: wrote {written} of {len(data)} bytes (is the disk full?)")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self._torn = False
        self._entries[entry.id] = entry

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return
        self._torn = bool(data) and not data.endswith(b"\n")
        for raw in data.split(b"\n"):
            entry = _parse(raw)
            if entry is not None:
                self._entries[entry.id] = entry


def _parse(raw: bytes) -> Optional[Entry]:
    """One line as an entry; None for a blank, torn or foreign line."""
    try:
        value = json.loads(raw)
        entry = Entry(str(value["id"]), str(value["text_hash"]), str(value["settings_hash"]), str(value["file"]),
                      float(value["duration"]), str(value["sha256"]))
    except (ValueError, TypeError, KeyError):
        return None
    return entry
