"""PlayerThread: one run of AudioPlayer's player thread, from opening the device to its end.

This module owns what the player thread does with each thing the queue hands it: the
blocks on their way to the device (resampled to the rate the device was opened at,
faded, scaled by the volume), segment ends (drain), rate changes (a new resampler on
the same stream when the device rate stays, else drain and reopen), stops and pauses
(fade out on the audio that was next, then a little silence, so that the ramp reaches
the device whole) and a device failure (``fail`` the queue, then release PortAudio
through ``guard.bounded``, so a stuck call never holds up the callers). Each run has
its own ``ready`` event and generation: after a failure ``AudioPlayer.start()`` starts
a new run with a fresh PortAudio instance, and a run that was abandoned (stuck in
PortAudio) ends by itself once its call returns.

Imports: ``ttsstream.errors`` and its siblings; never the client or websocket.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, List, Optional

import numpy as np

from ..audio import SAMPLE_WIDTH
from ..errors import PlaybackError
from .devices import NO_DEVICE_HINT
from .dsp import Fader, Resampler, apply_volume
from .feed import FeedQueue
from .items import CLOSE, Cue, Mark, PauseRequest, RateChange, StopRequest
from .stream import OutputStream, block_frames

__all__ = ["PlayerThread", "report_done"]

logger = logging.getLogger("ttsstream.playback")

# Silence written after a fade-out, before the stream stops or idles: a stream stopped
# right after its last write can drop that block on its way to the device.
SILENCE_MS = 20.0


def report_done(marks: List[Mark], played: bool) -> None:
    """Call the marks' ``on_done`` callbacks, outside the player's lock."""
    for mark in marks:
        if mark.on_done is not None:
            try:
                mark.on_done(played)
            except Exception:
                logger.exception("a finish() on_done callback raised")


class PlayerThread:
    """The body of one ``ttsstream-player`` thread.

    Args:
        queue: the player's FeedQueue.
        output: a fresh OutputStream (a PortAudio instance of its own).
        fade_ms: the length of the fades.
        volume: returns the volume to apply to the next block.
        failed: called with the error once the device has failed (after the queue has
            refused everything and reported the dropped segment ends).

    Thread: ``run`` on the player thread; ``ready`` and ``start_error`` are written
    there before ``ready`` is set and read by ``AudioPlayer.start()`` after it.
    """

    def __init__(self, queue: FeedQueue, output: OutputStream, fade_ms: float,
                 volume: Callable[[], float], failed: Callable[[PlaybackError], None]) -> None:
        self.queue = queue
        self.generation = queue.generation
        self.ready = threading.Event()
        self.start_error: Optional[PlaybackError] = None
        # Only the player thread touches these.
        self._output = output
        self._fade_ms = fade_ms
        self._volume = volume
        self._failed = failed
        self._resampler: Optional[Resampler] = None   # for the open stream, at the queue's rate
        self._fader = Fader(0)
        self._unwritten = np.zeros(0, dtype="<i2")   # a block a stop cut short, to fade out on
        self._unwritten_bytes = 0  # the bytes of fed audio it holds: not counted as played yet
        self._draining: Optional[Mark] = None  # the segment end being drained now
        self._cues: List[Cue] = []  # cues whose audio has not reached the device yet

    def run(self) -> None:
        """Open the device, signal ready, then serve the queue until CLOSE or a failure."""
        output = self._output
        try:
            output.open_device()
            self._open()
        except PlaybackError as exc:
            self.start_error = exc
        except Exception as exc:  # PortAudio can fail in ways PyAudio does not wrap
            self.start_error = PlaybackError(f"could not open the audio output: {exc}; {NO_DEVICE_HINT}")
            self.start_error.__cause__ = exc
        if self.start_error is not None:
            output.release()
            self.ready.set()
            return
        self.ready.set()
        try:
            self._serve()
        except Exception as exc:
            error = exc if isinstance(exc, PlaybackError) else PlaybackError(f"the audio output failed: {exc}")
            if error is not exc:
                error.__cause__ = exc
            logger.error("playback stopped: %s", error, exc_info=exc)
            dropped = self.queue.fail(error, self._draining)
            self._draining = None
            report_done(dropped, False)
            self._failed(error)
        finally:
            output.release()

    def _open(self) -> None:
        """Open the stream for the queue's rate: at that rate if the device takes it,
        else at the device's own rate, resampling."""
        rate = self.queue.play_rate
        self._output.open(self._output.device_rate(rate))
        self._resampler = Resampler(rate, self._output.rate)
        self._fader = Fader(block_frames(self._output.rate, self._fade_ms) if self._fade_ms > 0 else 0)

    def _serve(self) -> None:
        """Carry out what the queue hands out until CLOSE."""
        queue, output = self.queue, self._output
        while True:
            item = queue.next_item(self.generation)
            if item is CLOSE:
                return
            if isinstance(item, StopRequest):
                self._cues.clear()  # their audio was dropped: never heard
                uncounted = self._fade_out(item.tail, stopping=True)
                # What the device still holds is dropped by the abort, never heard: it
                # comes off the played count (beyond the fade's own frames, never counted).
                held = max(0, int(output.held() * output.rate) - uncounted) if output.is_open else 0
                unplayed = int(round(held * queue.play_rate / output.rate)) * SAMPLE_WIDTH if held else 0
                output.close()
                self._resampler = None
                queue.stopped(item.seq, unplayed)
            elif isinstance(item, PauseRequest):
                self._fade_out(item.tail, stopping=False)
            elif isinstance(item, bytes):
                if not output.is_open:
                    self._open()
                if self._fader.silent:
                    self._fader.up()  # resumed after a pause's fade-out
                assert self._resampler is not None
                self._write(self._resampler.process(item), item)
                self._call_cues()
            elif isinstance(item, Cue):
                self._cues.append(item)
            elif isinstance(item, Mark):
                self._call_cues()  # a segment that ended with no audio after its cue
                self._draining = item  # reported as dropped if the device fails during the drain
                self._end_segment(drain=True)
                self._draining = None
                report_done([item], queue.segment_played(item))
            elif isinstance(item, RateChange):
                same = output.is_open and output.device_rate(item.rate) == output.rate
                self._end_segment(drain=not same)
                if same:  # the device stays open: only the resampler changes
                    self._resampler = Resampler(item.rate, output.rate)
                else:
                    output.close()  # reopened lazily at the new rate
                    self._resampler = None

    def _call_cues(self) -> None:
        cues, self._cues = self._cues, []
        for cue in cues:
            try:
                cue.callback()
            except Exception:
                logger.exception("a cue callback raised")

    def _write(self, samples: np.ndarray, source: bytes = b"") -> None:
        """Fade, scale and write device-rate samples; count ``source`` as played."""
        faded = self._fader.apply(samples)
        written = self._output.write(apply_volume(faded, self._volume()), self.queue.drain_pause)
        counted = len(source)
        if written < len(faded):  # a stop or close is waiting: a stop fades out on the rest
            self._unwritten = faded[written:]
            # Only what reached the device counts as played (in whole samples of the source).
            counted = len(source) // SAMPLE_WIDTH * written // max(len(faded), 1) * SAMPLE_WIDTH
            self._unwritten_bytes = len(source) - counted
        self.queue.wrote(counted, time.monotonic(), self._output.held())

    def _close_pause(self, seconds: float) -> bool:
        return self.queue.drain_pause(seconds, only_close=True)

    def _end_segment(self, drain: bool) -> None:
        """Write what the resampler still holds; with ``drain``, wait until played out."""
        if self._resampler is not None and self._output.is_open:
            tail = self._resampler.flush()
            if len(tail):
                self._write(tail)
        if drain:  # else the segment goes on at another rate, seamlessly
            self.queue.end_segment()
            self._output.drain(self.queue.drain_pause)

    def _fade_out(self, tail: bytes, stopping: bool) -> int:
        """Ramp down on ``tail`` (the audio that was next), then write a little silence.

        A stop then drains (only a close cuts it short) so that the ramp is heard, not
        dropped by the abort that follows; a pause leaves the device to play it out. The
        ramp is counted as played for a pause (playback goes on from after it), not for a
        stop: faded out, its words are not heard to their end.

        Returns:
            The device frames it wrote (ramp and silence), which a stop never counts.
        """
        output = self._output
        head, self._unwritten = self._unwritten, np.zeros(0, dtype="<i2")
        head_bytes, self._unwritten_bytes = self._unwritten_bytes, 0
        written = 0
        samples = head
        if tail and self._resampler is not None:
            samples = np.concatenate((head, self._resampler.process(tail)))
        if not output.is_open or self._fader.silent or self._fader.fade_frames == 0:
            samples = samples[:0]
        if len(samples):
            self._fader.down(over=min(len(samples), self._fader.fade_frames))
            ramp = apply_volume(self._fader.apply(samples[:self._fader.fade_frames]), self._volume())
            silence = np.zeros(block_frames(output.rate, SILENCE_MS), dtype="<i2")
            written = output.write(np.concatenate((ramp, silence)), self._close_pause)
            self.queue.wrote(0 if stopping else head_bytes + len(tail), time.monotonic(), output.held())
            if stopping:
                output.drain(self._close_pause)
        self._fader.down(over=0)
        if stopping:
            self._fader.reset()
            if self._resampler is not None:
                self._resampler.flush()
        return written
