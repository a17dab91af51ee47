"""What the bundled server served: one ``Utterance`` per utterance, in order.

This module owns the record of an utterance while it is served (``Take``), the frozen
record tests read (``Utterance``), the server's ``Transcript`` (utterances and the
count of accepted connections), and the header of a streamed WAV. It imports only the
standard library: no sockets, no engines, no dialects.
"""

from __future__ import annotations

import collections
import struct
import threading
from typing import Any, Deque, Dict, List, Optional

__all__ = ["Utterance", "Take", "Transcript", "wav_header"]


class Utterance:
    """One utterance the server served, as recorded in ``LocalServer.transcript``.

    Attributes:
        dialect: ``"eigenai"``, ``"shunyalabs"`` or ``"gateway"``.
        text: the text that was spoken.
        voice: the voice asked for (or the model's default).
        model: the model asked for.
        language: the language asked for, or None.
        speed: the speaking rate used.
        request: the JSON object the client sent for this utterance (for ``/ws``, the
            ``{"input": …}`` frame; its config message is in ``config``).
        config: the ``/ws`` config message, else None.
        request_id: the id in Shunyalabs chunk/completion messages, else None.
        response_format: ``"pcm"`` or ``"wav"``.
        sample_rate: the audio's sample rate in Hz.
        pcm: every binary byte sent for it, exactly, in order (for ``"wav"`` this
            starts with the 44-byte streaming header).
        frame_sizes: the length of each binary frame sent.
        fault: the fault injected into it, or None.
        connection: the number of the connection that served it, in the order the
            server accepted them (1 for the first, as ``LocalServer.connections``
            counts): utterances with the same number shared one connection.
        completed: True when all its audio went out and its end message was due. The
            record is made just before that message is sent, so a client that has
            read the end message can already find the record.
    """

    __slots__ = ("dialect", "text", "voice", "model", "language", "speed", "request", "config",
                 "request_id", "response_format", "sample_rate", "pcm", "frame_sizes", "fault", "connection",
                 "completed")
    dialect: str
    text: str
    voice: Optional[str]
    model: Optional[str]
    language: Optional[str]
    speed: float
    request: Dict[str, Any]
    config: Optional[Dict[str, Any]]
    request_id: Optional[str]
    response_format: str
    sample_rate: int
    pcm: bytes
    frame_sizes: List[int]
    fault: Optional[str]
    connection: int
    completed: bool

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields[name])

    def __repr__(self) -> str:
        return (f"Utterance({self.dialect}, {self.text[:30]!r}, {len(self.pcm)} bytes in "
                f"{len(self.frame_sizes)} frames, fault={self.fault}, completed={self.completed})")


class Take:
    """An utterance while it is being served: what was asked, and what went out so far.

    Thread: the server's event loop only.
    """

    def __init__(self, dialect: str, text: str, *, voice: Optional[str], model: Optional[str],
                 language: Optional[str], speed: float, request: Dict[str, Any],
                 config: Optional[Dict[str, Any]], response_format: str, sample_rate: int,
                 request_id: Optional[str] = None) -> None:
        self.dialect = dialect
        self.text = text
        self.voice = voice
        self.model = model
        self.language = language
        self.speed = speed
        self.request = request
        self.config = config
        self.request_id = request_id
        self.response_format = response_format
        self.sample_rate = sample_rate
        self.header = wav_header(sample_rate) if response_format == "wav" else b""
        self.sent = bytearray()
        self.frame_sizes: List[int] = []
        self.fault: Optional[str] = None
        self.fault_done = False
        self.short_by = 0  # a fault may have the next frame cut this many bytes short
        self.recorded = False
        self.connection = 0  # the number of the connection serving it (Transcript.serial)
        self.outcome = "stopped"  # how it ended, in words, for the request's log line

    @property
    def frames(self) -> int:
        return len(self.frame_sizes)

    @property
    def audio_seconds(self) -> float:
        return max(0, len(self.sent) - len(self.header)) / (2 * self.sample_rate)

    def freeze(self, completed: bool) -> Utterance:
        return Utterance(dialect=self.dialect, text=self.text, voice=self.voice, model=self.model,
                         language=self.language, speed=self.speed, request=self.request,
                         config=self.config, request_id=self.request_id,
                         response_format=self.response_format, sample_rate=self.sample_rate,
                         pcm=bytes(self.sent), frame_sizes=list(self.frame_sizes), fault=self.fault,
                         connection=self.connection, completed=completed)


def wav_header(sample_rate: int) -> bytes:
    """A 44-byte WAV header for a stream of unknown length (sizes 0xFFFFFFFF)."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1,
                       sample_rate, sample_rate * 2, 2, 16, b"data", 0xFFFFFFFF)


class Transcript:
    """A server's record: the utterances it served and the connections it accepted.

    It outlives a stop(): a restarted server adds to it.

    Thread: any. ``record`` and ``count_connection`` are called on the event loop;
    the readers on any thread.
    """

    def __init__(self, limit: Optional[int] = None) -> None:
        # Guarded by the lock: the event loop writes, tests read from their own thread.
        self._lock = threading.Lock()
        # The latest ``limit`` utterances (all of them with None): a long-running server
        # (provider="local", ttsstream serve) must not keep every utterance's audio.
        self._utterances: Deque[Utterance] = collections.deque(maxlen=limit)
        self._connections = 0
        self._serials: Dict[Any, int] = {}  # accepted connection (its id) -> its number

    def record(self, take: Take, completed: bool) -> None:
        """Freeze ``take`` into an Utterance and append it; only its first record counts.

        Thread: the event loop (which owns ``take``).
        """
        if take.recorded:
            return
        take.recorded = True
        utterance = take.freeze(completed)
        with self._lock:
            self._utterances.append(utterance)

    def count_connection(self, connection_id: Any) -> None:
        """Count an accepted connection (an HTTP 101) and give it the next number."""
        with self._lock:
            self._connections += 1
            self._serials[connection_id] = self._connections

    def forget(self, connection_id: Any) -> None:
        """A connection has closed: its number is no longer needed."""
        with self._lock:
            self._serials.pop(connection_id, None)

    def serial(self, connection_id: Any) -> int:
        """The number of an accepted connection: 1 for the first a server accepted."""
        with self._lock:
            return self._serials.get(connection_id, 0)

    def utterances(self) -> List[Utterance]:
        """A snapshot of the utterances, in order of completion."""
        with self._lock:
            return list(self._utterances)

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return self._connections
