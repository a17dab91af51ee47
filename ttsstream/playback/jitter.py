"""The jitter buffer: when a segment may start, and how underruns are counted.

This module owns the prebuffer decision (a segment starts, and playback resumes after an
underrun, once ``prebuffer_ms`` of audio is queued or the segment is finished) and the
underrun accounting behind ``AudioPlayer.underruns`` and ``AudioPlayer.underrun_ms``. It
has no thread, no lock, no clock and no device: every method that needs the time takes
it as ``now`` (``time.monotonic()`` seconds), so tests/test_jitter.py drives it with
made-up times. It imports nothing.

Underruns. When the queue runs dry in the middle of a segment the player writes
nothing: the device plays out what it holds, and audio that arrives meanwhile follows
seamlessly. If none arrives in time the device runs out: that is an underrun. The
device then underruns (xrun) and PortAudio restarts it transparently on the next write
(checked on ALSA and PulseAudio), so no silence is written: silence written to keep a
device busy would sit in front of the next audio, adding up to a device buffer of
latency. ``underrun_ms`` is therefore an estimate from the clock: from the moment the
device ran out (the last write plus what the device still held) to the first write of
the resumed audio, not counting time spent paused.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["JitterBuffer", "IDLE", "BUFFERING", "PLAYING"]

# What the player thread is doing with the current segment.
IDLE = "idle"            # no segment under way; the stream is stopped (or closed)
BUFFERING = "buffering"  # a segment started or underran: waiting for the prebuffer
PLAYING = "playing"      # writing blocks to the device


class JitterBuffer:
    """The prebuffer decision and the underrun accounting of one player.

    Args:
        prebuffer_ms: how much audio must be queued before a segment starts, or before
            playback resumes after an underrun (unless the segment is finished first).

    Thread: it holds no lock of its own. The player's lock (its ``FeedQueue``'s) guards
    it: the queue calls it under that lock, from the player thread (the queue's state,
    writes, segment ends) and from the callers of ``pause()``, ``resume()`` and the
    counters.
    """

    def __init__(self, prebuffer_ms: float) -> None:
        self.prebuffer_ms = prebuffer_ms
        self.state = IDLE
        self.paused = False           # between pause() and resume()
        self.underruns = 0            # times the device ran out mid-segment
        self.underrun_ms = 0.0        # silence of the underruns that have ended (or paused)
        self._dry_at: Optional[float] = None  # when the device ran out, during an underrun
        self._in_underrun = False     # ran out and not yet resumed (the clock may be paused)
        self._resumed_at = 0.0        # the last resume(): no silence is counted before it
        self._held_until = 0.0        # when the device plays out what the last write left in it

    def may_play(self, queued_frames: int, rate: int, finished: bool, now: float) -> bool:
        """Whether the audio at the head of the queue may be written now.

        A segment already playing goes on. One that is starting, or that underran,
        waits until ``prebuffer_ms`` of audio at ``rate`` is queued, or until it is
        ``finished`` (its end, or a rate change, is queued behind the audio); then it
        plays, and an underrun under way ends at ``now``.
        """
        if self.state == PLAYING:
            return True
        if queued_frames < int(rate * self.prebuffer_ms / 1000.0) and not finished:
            return False
        self._end_underrun(now)
        self.state = PLAYING
        return True

    def queue_dry(self, now: float) -> Optional[float]:
        """The queue is empty and the player is not paused: how long to wait for audio.

        Returns the seconds until the device runs out of what it holds, mid-segment
        (audio arriving before then continues seamlessly; ask again after), or None:
        wait for audio as long as it takes. Once the device has run out mid-segment,
        that is an underrun: it is counted here, and its silence from then on.
        """
        if self.state != PLAYING:
            return None
        dry_at = max(self._resumed_at, self._held_until)
        if now < dry_at:
            return dry_at - now
        self.state = BUFFERING
        self.underruns += 1
        self._in_underrun = True
        self._dry_at = dry_at
        return None

    def wrote(self, now: float, held_s: float) -> None:
        """A write to the device ended at ``now``, leaving ``held_s`` seconds of audio
        in the device's buffer."""
        self._held_until = now + held_s

    def pause(self, now: float) -> None:
        """Playback pauses (again: no change): the silence of an underrun under way
        stops counting, since silence while paused is not an underrun's."""
        if self.paused:
            return
        self.paused = True
        self._stop_clock(now)

    def resume(self, now: float) -> None:
        """Playback resumes (if paused): an underrun under way counts again from ``now``,
        and a device that ran out while paused underruns only from ``now`` on."""
        if not self.paused:
            return
        self.paused = False
        self._resumed_at = now
        if self._in_underrun:
            self._dry_at = now

    def end_segment(self, now: float) -> None:
        """The segment ended (played to its end, or stopped): idle, any underrun over."""
        self.state = IDLE
        self._end_underrun(now)

    def _end_underrun(self, now: float) -> None:
        self._stop_clock(now)
        self._in_underrun = False

    def _stop_clock(self, now: float) -> None:
        """Add the silence of an underrun that ends or stops counting (a pause)."""
        if self._dry_at is not None:
            self.underrun_ms += max(0.0, now - self._dry_at) * 1000.0
            self._dry_at = None
