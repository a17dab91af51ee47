"""ttsstream.playback.jitter: the prebuffer decision and the underrun accounting.

No device, no thread, no clock: JitterBuffer takes the time as an argument, so each
test plays the player's part with made-up times (seconds) at 1000 frames a second,
where a 100 ms prebuffer is 100 frames.
"""

from __future__ import annotations

import pytest

from ttsstream.playback.jitter import BUFFERING, IDLE, PLAYING, JitterBuffer

RATE = 1000


def playing(start: float = 0.0, prebuffer_ms: float = 100) -> JitterBuffer:
    """A jitter buffer whose segment started at ``start``."""
    jitter = JitterBuffer(prebuffer_ms)
    assert jitter.may_play(RATE, RATE, finished=False, now=start)
    return jitter


def underran(ran_out_at: float, seen_at: float) -> JitterBuffer:
    """A playing segment whose device ran out at ``ran_out_at``, the player noticing at ``seen_at``."""
    jitter = playing()
    jitter.wrote(ran_out_at - 0.05, 0.05)  # the last write left 50 ms in the device
    assert jitter.queue_dry(seen_at) is None
    assert (jitter.underruns, jitter.state) == (1, BUFFERING)
    return jitter


def test_prebuffer_holds_a_segment_until_enough_is_queued() -> None:
    jitter = JitterBuffer(100)
    assert jitter.state == IDLE
    assert not jitter.may_play(0, RATE, finished=False, now=0.0)
    assert not jitter.may_play(99, RATE, finished=False, now=0.1)
    assert jitter.state == IDLE
    assert jitter.may_play(100, RATE, finished=False, now=0.2)
    assert jitter.state == PLAYING
    # Playing, the segment goes on whatever is queued.
    assert jitter.may_play(1, RATE, finished=False, now=0.3)
    # The prebuffer is time, not frames: at 2000 Hz it takes 200 frames.
    other = JitterBuffer(100)
    assert not other.may_play(199, 2 * RATE, finished=False, now=0.0)
    assert other.may_play(200, 2 * RATE, finished=False, now=0.0)
    assert (jitter.underruns, jitter.underrun_ms) == (0, 0.0)


def test_prebuffer_lets_a_finished_segment_start_short() -> None:
    jitter = JitterBuffer(100)
    assert jitter.may_play(10, RATE, finished=True, now=0.0)
    assert jitter.state == PLAYING


def test_no_prebuffer_starts_at_once() -> None:
    assert JitterBuffer(0).may_play(1, RATE, finished=False, now=0.0)


def test_a_dry_queue_is_an_underrun_only_once_the_device_has_played_out() -> None:
    jitter = playing()
    jitter.wrote(1.0, 0.05)  # the device holds 50 ms after this write
    wait = jitter.queue_dry(1.02)
    assert wait == pytest.approx(0.03)  # audio arriving before 1.05 follows seamlessly
    assert (jitter.underruns, jitter.state) == (0, PLAYING)
    # Audio arrived in time: it plays on, nothing counted.
    assert jitter.may_play(1, RATE, finished=False, now=1.04)
    jitter.wrote(1.05, 0.05)
    assert jitter.queue_dry(1.2) is None
    assert (jitter.underruns, jitter.state) == (1, BUFFERING)
    # Asking again while buffering counts nothing more.
    assert jitter.queue_dry(1.5) is None
    assert jitter.underruns == 1


def test_a_dry_queue_between_segments_is_no_underrun() -> None:
    jitter = playing()
    jitter.wrote(1.0, 0.05)
    jitter.end_segment(1.05)
    assert jitter.queue_dry(5.0) is None
    assert (jitter.underruns, jitter.underrun_ms, jitter.state) == (0, 0.0, IDLE)


def test_underrun_ms_runs_from_when_the_device_ran_out_to_the_resumed_write() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.2)
    # Until playback resumes the silence is still under way, not yet counted.
    assert not jitter.may_play(50, RATE, finished=False, now=1.25)
    assert jitter.underrun_ms == 0.0
    # The prebuffer holds the restart as it held the start.
    assert jitter.may_play(100, RATE, finished=False, now=1.3)
    assert jitter.state == PLAYING
    assert jitter.underrun_ms == pytest.approx(250.0)  # from 1.05, not from 1.2 when it was seen
    assert jitter.underruns == 1


def test_pause_time_is_not_counted() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.1)
    jitter.pause(1.15)
    assert jitter.paused
    assert jitter.underrun_ms == pytest.approx(100.0)  # counted up to the pause
    jitter.pause(3.0)  # a second pause changes nothing
    jitter.end_segment(4.0)  # stopped while paused: the pause counts for nothing
    assert jitter.underrun_ms == pytest.approx(100.0)


def test_a_device_that_runs_out_while_paused_is_no_underrun() -> None:
    jitter = playing()
    jitter.wrote(1.0, 0.05)
    jitter.pause(1.01)  # the device plays out its 50 ms while paused
    jitter.resume(3.0)
    assert not jitter.paused
    assert jitter.may_play(1, RATE, finished=False, now=3.0)  # audio was waiting
    assert (jitter.underruns, jitter.underrun_ms) == (0, 0.0)
    # With nothing queued on resume, the silence counts from the resume, not from 1.05.
    assert jitter.queue_dry(3.01) is None
    assert jitter.underruns == 1
    assert jitter.may_play(100, RATE, finished=False, now=3.2)
    assert jitter.underrun_ms == pytest.approx(200.0)


def test_resume_during_an_underrun_restarts_the_clock() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.1)
    jitter.pause(1.1)                 # 50 ms so far
    jitter.resume(5.0)                # still dry: the clock runs again from 5.0
    assert jitter.may_play(100, RATE, finished=False, now=5.02)
    assert jitter.underrun_ms == pytest.approx(70.0)
    assert jitter.underruns == 1


def test_a_pause_after_an_underrun_ended_counts_nothing() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.1)
    assert jitter.may_play(100, RATE, finished=False, now=1.15)  # 100 ms, over
    jitter.pause(2.0)
    jitter.resume(3.0)
    jitter.end_segment(4.0)
    assert (jitter.underruns, jitter.underrun_ms) == (1, pytest.approx(100.0))


def test_resume_without_pause_changes_nothing() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.1)
    jitter.resume(1.2)
    assert jitter.may_play(100, RATE, finished=False, now=1.3)
    assert jitter.underrun_ms == pytest.approx(250.0)


def test_finish_ends_an_underrun() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.1)
    jitter.end_segment(1.25)
    assert jitter.state == IDLE
    assert jitter.underrun_ms == pytest.approx(200.0)
    # The next segment starts without adding to it.
    assert jitter.may_play(100, RATE, finished=False, now=9.0)
    assert (jitter.underruns, jitter.underrun_ms) == (1, pytest.approx(200.0))


def test_a_finished_tail_ends_an_underrun_without_the_prebuffer() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.1)
    assert jitter.may_play(10, RATE, finished=True, now=1.15)
    assert jitter.underrun_ms == pytest.approx(100.0)


def test_several_underruns_add_up() -> None:
    jitter = underran(ran_out_at=1.05, seen_at=1.2)
    assert jitter.may_play(100, RATE, finished=False, now=1.3)   # 250 ms
    jitter.wrote(2.0, 0.1)
    assert jitter.queue_dry(2.05) == pytest.approx(0.05)
    assert jitter.queue_dry(2.2) is None                        # ran out at 2.1
    assert jitter.may_play(100, RATE, finished=False, now=2.5)   # 400 ms
    jitter.wrote(3.0, 0.0)
    assert jitter.queue_dry(3.0) is None                        # ran out at once
    jitter.end_segment(3.1)                                      # 100 ms
    assert jitter.underruns == 3
    assert jitter.underrun_ms == pytest.approx(750.0)
