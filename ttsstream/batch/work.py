"""Speaking one item into a file safely, wherever it runs: a thread of the caller's or a
worker of an executor.

This module owns the file names (``final_name``, ``temp_name``), ``Outcome`` (what an
item's work reports back), ``speak_to_temp`` (speak, write a temporary file, fsync,
checksum), ``speak_chunk`` (an executor's unit of work: its own client, its items spoken
one by one, each renamed when complete), ``adopt`` (a final-named file the manifest
lacks, verified by reading it back) and ``remove_stale`` (the temporary files a killed
run left). A file appears under its final name only by ``os.replace`` of a complete,
fsynced temporary file, so no kill leaves a partial file under a final name.

Imports the public API only (``TTSClient``, ``AudioChunk``, the errors, ``formats.files``), ``items``
and ``manifest``; never connections, the pool or the wire.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Union

from ..audio import AudioChunk
from ..client import TTSClient
from ..errors import TTSError
from ..formats.files import AudioFileWriter, read_audio, write_audio
from .items import Item
from .manifest import file_checksum

__all__ = ["Outcome", "final_name", "temp_name", "speak_to_temp", "speak_chunk", "adopt", "remove_stale",
           "TEMP_SUFFIX"]

# Hidden (ids never start with ".") and unmistakably ours, so a rerun may delete them.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".ttsstream-part"

PathLike = Union[str, "os.PathLike[str]"]


class Outcome(NamedTuple):
    """What one item's work reports back to the caller (picklable, for executors).

    Attributes:
        id: the item's id.
        file: the file's name in the output directory: the final name once renamed, the
            temporary name when the caller is to record it and then rename it.
        duration: seconds of audio.
        sha256: the file's checksum.
        error: the item's error, or None if it was spoken (then the other fields hold).
    """

    id: str
    file: str = ""
    duration: float = 0.0
    sha256: str = ""
    error: Optional[TTSError] = None


def final_name(item_id: str, format: str) -> str:
    """The file an item is written to: its id and the format as extension (``0007.wav``)."""
    return f"{item_id}.{format}"


def temp_name(item_id: str, format: str) -> str:
    """Where an item's file is written before it is complete (``.0007.wav.ttsstream-part``)."""
    return f"{TEMP_PREFIX}{final_name(item_id, format)}{TEMP_SUFFIX}"


def speak_to_temp(client: TTSClient, item: Item, out_dir: str, format: str) -> Outcome:
    """Speak ``item`` into its temporary file as the audio arrives, fsynced; report its
    checksum and duration.

    A long text is one speech (the client cuts it into units, spoken in order) and one
    file. On failure the temporary file is removed and the outcome carries the error.

    Thread: any; the client is shared by the batch's threads.

    Raises:
        Exception: only a bug; every ``TTSError`` and ``OSError`` is the outcome's error.
    """
    temp = os.path.join(out_dir, temp_name(item.id, format))
    sink = _FileSink(temp, format)
    try:
        try:
            speech = client.speak(item.text, voice=item.voice, on_audio=sink.write, keep_audio=False,
                                  **dict(item.params))
        finally:
            sink.close()
        sink.finish(speech.sample_rate)
        _fsync(temp)
        return Outcome(item.id, os.path.basename(temp), speech.duration, file_checksum(temp))
    except TTSError as exc:
        _remove(temp)
        return Outcome(item.id, error=exc)
    except OSError as exc:
        _remove(temp)
        return Outcome(item.id, error=TTSError(f"could not write {temp}: {exc.strerror or exc}: check the output "
                                               "directory (space, permissions)"))
    except BaseException:
        _remove(temp)
        raise


class _FileSink:
    """Writes a speech's audio to its temporary file as it arrives: a chapter's audio is
    never all in memory, and a kill finds a partial file only under its temporary name.

    Thread: ``write`` on the speech's reader thread (the client's callback); ``close``
    and ``finish`` on the item's thread after the speech ended, so never two at once.
    """

    def __init__(self, path: str, format: str) -> None:
        self._path = path
        self._format = format
        self._writer: Optional[AudioFileWriter] = None
        self._error: Optional[BaseException] = None

    def write(self, chunk: AudioChunk) -> None:
        if self._error is not None:
            return
        try:
            if self._writer is None:
                self._writer = AudioFileWriter(self._path, self._format, chunk.sample_rate)
            self._writer.write(chunk.pcm)
        except (OSError, TTSError) as exc:  # said after the speech, as the item's error
            self._error = exc

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, TTSError) as exc:
                self._error = self._error or exc

    def finish(self, sample_rate: int) -> None:
        """Raise what writing met; write an empty file for a speech without audio."""
        if self._error is not None:
            raise self._error
        if self._writer is None:
            write_audio(self._path, b"", sample_rate, self._format)


def speak_chunk(items: Sequence[Item], out_dir: str, format: str, client_args: Dict[str, Any]) -> List[Outcome]:
    """An executor's unit of work: speak ``items`` one by one with a client of its own,
    renaming each complete file to its final name. Module-level, so it pickles.

    The caller records the outcomes in the manifest; if it is killed first, its next run
    finds the final-named files and adopts them.

    Thread: a worker's (a thread, a process, a Dask worker on this or another machine
    sharing the output directory).
    """
    try:
        client = TTSClient(**client_args)
    except TTSError as exc:
        return [Outcome(item.id, error=exc) for item in items]
    outcomes = []
    with client:
        for item in items:
            outcome = speak_to_temp(client, item, out_dir, format)
            if outcome.error is None:
                final = final_name(item.id, format)
                os.replace(os.path.join(out_dir, outcome.file), os.path.join(out_dir, final))
                outcome = outcome._replace(file=final)
            outcomes.append(outcome)
    return outcomes


def adopt(out_dir: str, item_id: str, format: str) -> Optional[Outcome]:
    """A final-named file the manifest lacks, if it reads back as audio; else None.

    Such a file was renamed by a worker whose report never reached the manifest (the
    caller was killed): it is complete, since only complete files are renamed.
    """
    path = os.path.join(out_dir, final_name(item_id, format))
    if not os.path.isfile(path):
        return None
    try:
        samples, rate = read_audio(path, format)
        checksum = file_checksum(path)
    except (TTSError, OSError, ValueError, RuntimeError):  # soundfile says a broken file with RuntimeError
        return None
    if len(samples) == 0 or rate <= 0:
        return None
    return Outcome(item_id, final_name(item_id, format), len(samples) / rate, checksum)


def remove_stale(out_dir: str) -> int:
    """Remove the temporary files a killed run left in ``out_dir``; return how many."""
    removed = 0
    with os.scandir(out_dir) as entries:
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
                _remove(entry.path)
                removed += 1
    return removed


def _fsync(path: str) -> None:
    # The data reaches the disk before the rename publishes it, so that even a power cut
    # leaves no final-named file without its audio.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
