"""The playback line: a client's ``play=True`` speeches, played one after another.

Each ``play=True`` speech joins its client's ``PlayLine`` and holds a ``Turn`` in it. The
speech at the head of the line feeds the ``AudioPlayer`` as its audio arrives; those
behind it hold theirs until the head has played out, so speeches never interleave and
stopping one never drops another's audio. The turn also keeps the playback's
bookkeeping for its speech: how it ended and the underruns it suffered.

Imports: errors, and the speech and player types for annotations only. It calls the
player's public API and the speech's ``_playback_ended``; it never imports websocket
or the connection.
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import threading
from typing import TYPE_CHECKING, Callable, Deque, List, Optional, Union

from .errors import Cancelled, PlaybackError, TTSError

if TYPE_CHECKING:
    from .playback import AudioPlayer
    from .speech import Speech

__all__ = ["PlayLine", "Turn"]


class Turn:
    """One ``play=True`` speech's place in its client's playback line.

    The first group is guarded by the line's lock. The outcome group is written once, by
    the thread that retires the turn, in this order, before ``over`` turns True; the
    speech reads it only after seeing ``over``.
    """

    __slots__ = ("line", "speech", "held", "ended", "fed", "error", "retired", "underruns_at",
                 "underrun_ms_at", "played_at", "outcome", "underruns", "underrun_ms", "played", "over")

    def __init__(self, line: "PlayLine", speech: "Speech") -> None:
        self.line = line
        self.speech = speech
        # Guarded by line._lock.
        self.held: List[Union[bytes, Callable[[], None]]] = []  # audio (and cues) while another played
        self.ended = False             # its stream ended normally
        self.fed = False               # some of its audio has gone to the player
        self.error: Optional[TTSError] = None  # why its playback is being stopped
        self.retired = False           # out of the line; its outcome is being recorded
        self.underruns_at = 0          # the player's counters when its audio started
        self.underrun_ms_at = 0.0
        self.played_at = 0             # the player's played bytes when its audio started
        # The outcome, written once when the turn is retired.
        self.outcome: Optional[TTSError] = None  # None: played out
        self.underruns = 0
        self.underrun_ms = 0.0
        self.played = 0                # bytes of its audio written to the device
        self.over = False              # the outcome above is final


class PlayLine:
    """Plays a client's play=True speeches one after another through one AudioPlayer.

    The speech at the head of the line feeds the player as its audio arrives; those
    behind it hold theirs until the head has played out, so the speeches never
    interleave and stopping one never drops another's audio. A speech leaves the line
    (and is done) when the player reports its last sample played, or when it is
    stopped.

    Thread: any. audio() runs on reader threads, the player's callback on the player
    thread; the player's blocking stop() is never called under this line's lock.
    """

    def __init__(self, player: "AudioPlayer") -> None:
        self.player = player
        self._lock = threading.Lock()  # guards _line and the first group of every Turn's fields
        self._line: Deque[Turn] = collections.deque()
        self._cues = _CueRunner()
        player.on_failure(self._device_failed)

    def join(self, speech: "Speech") -> Turn:
        """Put ``speech`` at the back of the line. Thread: the caller of speak()."""
        turn = Turn(self, speech)
        with self._lock:
            self._line.append(turn)
        return turn

    def audio(self, turn: Turn, pcm: bytes) -> None:
        """New audio of ``turn``. Thread: its reader thread."""
        self._add(turn, pcm)

    def cue(self, turn: Turn, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the line's cue thread) when the audio of ``turn`` that
        comes after now begins to play. Thread: the speech's delivering thread."""
        self._add(turn, callback)

    def _add(self, turn: Turn, piece: Union[bytes, Callable[[], None]]) -> None:
        """To the player if ``turn`` is playing, else held until it is."""
        with self._lock:
            if turn.retired or turn.error is not None:
                return
            if self._line[0] is not turn:
                turn.held.append(piece)
                return
            failed = self._feed(turn, [piece])
        if failed is not None:
            self.stop(turn, failed)

    def close(self) -> None:
        """End the cue thread (cues not yet due are dropped). Thread: any."""
        self._cues.close()

    def ended(self, turn: Turn, error: Optional[TTSError]) -> None:
        """The stream of ``turn`` ended, normally (None) or with ``error``.

        Thread: whoever carried out the speech's end (its reader thread, or a canceller).
        """
        if error is not None:
            self.stop(turn, error)
            return
        with self._lock:
            turn.ended = True
            failed = self._finish(turn) if self._line and self._line[0] is turn else None
        if failed is not None:
            self.stop(turn, failed)

    def stop(self, turn: Turn, error: TTSError) -> None:
        """End the playback of ``turn`` now with ``error``, silencing it if it is playing.

        Thread: any but the player's; waits for the player to silence the device.
        """
        with self._lock:
            if turn.retired or turn.error is not None:
                return
            turn.error = error
            playing = turn.fed
        if playing:
            self.player.stop()  # drops only this speech's audio: nothing else was fed
        self._retire(turn, error)

    def stop_all(self, error: TTSError) -> None:
        """End every speech's playback with ``error`` and silence the player.

        Thread: any but the player's (``client.stop()`` and ``close()``).
        """
        with self._lock:
            turns = [turn for turn in self._line if turn.error is None]
            for turn in turns:
                turn.error = error
        self.player.stop()
        self.player.resume()  # the next speech starts afresh, not held by an old pause
        for turn in turns:
            self._retire(turn, error)

    def played_seconds(self, turn: Turn) -> float:
        """Seconds of ``turn``'s audio written to the device so far (final once it is over).

        Only the head of the line plays, so the player's count since the turn's audio
        started is the turn's own. Thread: any.
        """
        if turn.over:
            played = turn.played
        else:
            with self._lock:
                playing = turn.fed and bool(self._line) and self._line[0] is turn
                played = self.player.played_bytes - turn.played_at if playing else 0
        return max(0, played) / (2 * turn.speech.sample_rate)

    def _device_failed(self, error: PlaybackError) -> None:
        """The player's device failed: the speech playing ends with ``error`` now, not at
        its next chunk (those queued behind it fail as they start). Thread: the player's,
        which has stopped serving: its stop() does not wait for itself."""
        with self._lock:
            playing = [turn for turn in self._line if turn.fed and turn.error is None]
        for turn in playing:
            self.stop(turn, error)

    def _played(self, turn: Turn, played: bool) -> None:
        """The player's on_done for ``turn``'s audio. Thread: the player thread, or a stopper."""
        if turn.error is not None:
            return  # being stopped: the stopper retires it once the device is silent
        if played:
            self._retire(turn, None)
        else:  # dropped by the player itself: its close, its failure, its user
            self._retire(turn, self.player.error or Cancelled("the playback was stopped"))

    def _retire(self, turn: Turn, error: Optional[TTSError]) -> None:
        """Take ``turn`` out of the line, start the next speech's audio, and end the speech."""
        failures = []
        with self._lock:
            if turn.retired:
                return
            turn.retired = True
            head = bool(self._line) and self._line[0] is turn
            if turn in self._line:
                self._line.remove(turn)
            underruns = self.player.underruns - turn.underruns_at if turn.fed else 0
            underrun_ms = self.player.underrun_ms - turn.underrun_ms_at if turn.fed else 0.0
            played = self.player.played_bytes - turn.played_at if turn.fed and head else 0
            # The next speech's held audio goes to the player, and its end mark if its
            # stream has ended too (a speech the player refuses is passed over).
            while head and self._line and self._line[0].error is None:
                nxt = self._line[0]
                failed = self._feed(nxt, nxt.held) if nxt.held else None
                nxt.held = []
                if failed is None and nxt.ended:
                    failed = self._finish(nxt)
                if failed is not None:
                    nxt.error = failed
                    failures.append((nxt, failed))
                    self._line.popleft()
                    continue
                break
        turn.outcome, turn.underruns, turn.underrun_ms, turn.played = error, underruns, underrun_ms, played
        turn.over = True
        turn.speech._playback_ended()
        for nxt, failed in failures:
            self._retire(nxt, failed)

    def _feed(self, turn: Turn, pieces: List[Union[bytes, Callable[[], None]]]) -> Optional[PlaybackError]:
        """Under the lock: send ``turn``'s audio to the player; return its failure, if any."""
        try:
            if not turn.fed:
                self.player.set_sample_rate(turn.speech.sample_rate)
                turn.underruns_at = self.player.underruns
                turn.underrun_ms_at = self.player.underrun_ms
                turn.played_at = self.player.played_bytes
                turn.fed = True
            for piece in pieces:
                if isinstance(piece, bytes):
                    self.player.feed(piece)
                else:  # a cue: the player calls back on its own thread; the cue thread runs it
                    self.player.cue(functools.partial(self._cues.post, piece))
        except PlaybackError as exc:
            return exc
        return None

    def _finish(self, turn: Turn) -> Optional[PlaybackError]:
        """Under the lock: ``turn``'s audio is all fed; have the player report when played."""
        try:
            self.player.finish(on_done=lambda played: self._played(turn, played))
        except PlaybackError as exc:
            return exc
        return None


class _CueRunner:
    """Runs the line's cues, one after another, on a thread of its own
    (``ttsstream-cues``), so that neither user code nor a slow callback ever runs on the
    player thread. Started with the first cue; ``close()`` ends it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Guarded by _lock.
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self._queue: "queue.SimpleQueue[Optional[Callable[[], None]]]" = queue.SimpleQueue()

    def post(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` soon. Thread: any (the player's)."""
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ttsstream-cues", daemon=True)
                self._thread.start()
        self._queue.put(callback)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            if thread is not threading.current_thread():
                thread.join(5.0)

    def _run(self) -> None:
        while True:
            callback = self._queue.get()
            if callback is None:
                return
            try:
                callback()
            except Exception:  # callbacks report their own errors; this keeps the thread alive
                logging.getLogger("ttsstream").exception("a playback cue raised")
