"""CallbackRing: the audio a callback-mode PortAudio stream pulls, and its progress.

On JACK the player runs PortAudio in callback mode (blocking writes corrupt the heap
there; see ``stream``): PortAudio's own thread calls ``CallbackRing.callback`` once per
period for exactly that many frames. The player thread pushes device-ready samples in
with ``push``; the callback copies them out, pads with silence when the ring runs dry,
and counts what it did, which is how the player sees that the device is alive
(``calls``) and when what it pushed has gone to the device (``silence_since_dry``).

The callback does as little as it can under its lock: no numpy, no logging, no user
code. This module imports nothing of the package.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Deque, Tuple

__all__ = ["CallbackRing"]

SAMPLE_BYTES = 2  # 16-bit mono


class CallbackRing:
    """A FIFO of 16-bit mono PCM bytes between the player thread and PortAudio's thread.

    Args:
        continue_flag: PyAudio's ``paContinue``, returned with every period.

    Thread: ``push``, ``clear`` and the counters from the player thread; ``callback``
    from PortAudio's thread. The lock guards every field.
    """

    def __init__(self, continue_flag: Any) -> None:
        self._continue = continue_flag
        self._lock = threading.Lock()
        # Guarded by the lock.
        self._chunks: Deque[bytes] = collections.deque()
        self._bytes = 0                # bytes in _chunks
        self._calls = 0                # callbacks so far: the device's heartbeat
        self._silence = 0              # frames of padding handed out since the ring ran dry

    @property
    def pending(self) -> int:
        """Frames pushed and not yet handed to PortAudio."""
        with self._lock:
            return self._bytes // SAMPLE_BYTES

    @property
    def calls(self) -> int:
        """How many periods PortAudio has asked for so far."""
        with self._lock:
            return self._calls

    @property
    def silence_since_dry(self) -> int:
        """Frames of silence handed out since the last pushed sample left the ring."""
        with self._lock:
            return self._silence

    def push(self, pcm: bytes) -> None:
        """Queue device-ready PCM for the callback."""
        if not pcm:
            return
        with self._lock:
            self._chunks.append(pcm)
            self._bytes += len(pcm)
            self._silence = 0

    def clear(self) -> None:
        """Forget what is queued (the stream is being closed)."""
        with self._lock:
            self._chunks.clear()
            self._bytes = 0

    def callback(self, in_data: Any, frame_count: int, time_info: Any, status: Any) -> Tuple[bytes, Any]:
        """PyAudio's stream callback. Thread: PortAudio's; returns at once."""
        want = frame_count * SAMPLE_BYTES
        parts = []
        size = 0
        with self._lock:
            self._calls += 1
            while self._chunks and size < want:
                chunk = self._chunks[0]
                take = want - size
                if len(chunk) <= take:
                    self._chunks.popleft()
                    parts.append(chunk)
                    size += len(chunk)
                else:
                    parts.append(chunk[:take])
                    self._chunks[0] = chunk[take:]
                    size += take
            self._bytes -= size
            if size < want:
                self._silence += (want - size) // SAMPLE_BYTES
        if size < want:
            parts.append(bytes(want - size))
        return b"".join(parts), self._continue
