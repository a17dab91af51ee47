"""The player's sample processing and callback ring, without a device: the resampler
(soxr's stream API), the fades, and what a callback-mode stream pulls."""

from __future__ import annotations

import numpy as np

from ttsstream.playback.dsp import Fader, Resampler
from ttsstream.playback.ring import CallbackRing


def test_the_fader_ramps_down_linearly_to_silence_and_back_up() -> None:
    fader = Fader(4)
    ones = np.full(6, 1000, dtype="<i2")
    assert fader.apply(ones) is ones  # steady: untouched
    fader.down()
    assert fader.apply(ones[:2]).tolist() == [750, 500]  # a ramp may span blocks
    assert fader.apply(ones).tolist() == [250, 0, 0, 0, 0, 0]
    assert fader.silent
    fader.up()
    assert fader.apply(ones).tolist() == [250, 500, 750, 1000, 1000, 1000]
    assert fader.steady


def test_a_short_fade_out_ends_on_the_audio_it_has_and_zero_jumps() -> None:
    fader = Fader(100)
    fader.down(over=2)
    assert fader.apply(np.full(3, 800, dtype="<i2")).tolist() == [400, 0, 0]
    cut = Fader(0)
    cut.down()
    assert cut.silent and cut.apply(np.full(2, 5, dtype="<i2")).tolist() == [0, 0]
    cut.up()
    assert cut.steady


def test_the_resampler_passes_the_device_rate_through_unchanged() -> None:
    pcm = np.arange(-50, 50, dtype="<i2").tobytes()
    same = Resampler(24000, 24000)
    assert not same.active
    assert same.process(pcm).tobytes() == pcm and len(same.flush()) == 0


def test_the_resampler_streams_blocks_without_seams() -> None:
    t = np.arange(24000) / 24000
    audio = np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    whole = Resampler(24000, 48000)
    once = np.concatenate((whole.process(audio.tobytes()), whole.flush()))
    pieces = Resampler(24000, 48000)
    blocks = [pieces.process(audio[i:i + 240].tobytes()) for i in range(0, len(audio), 240)]
    chunked = np.concatenate(blocks + [pieces.flush()])
    assert len(once) == len(chunked) == 48000
    assert np.max(np.abs(once.astype(int) - chunked.astype(int))) <= 4  # rounding, not seams
    # Ready for the next segment after a flush: the same input gives the same output.
    again = np.concatenate((pieces.process(audio.tobytes()), pieces.flush()))
    assert len(again) == len(once) and np.max(np.abs(again.astype(int) - once.astype(int))) <= 4


def test_the_callback_ring_pads_with_silence_and_counts_it() -> None:
    ring = CallbackRing(continue_flag="go")
    ring.push(b"\x01\x00" * 3)
    data, flag = ring.callback(None, 5, None, 0)
    assert flag == "go" and data == b"\x01\x00" * 3 + b"\x00\x00" * 2
    assert ring.pending == 0 and ring.silence_since_dry == 2 and ring.calls == 1
    ring.push(b"\x02\x00" * 4)
    assert ring.silence_since_dry == 0 and ring.pending == 4
    assert ring.callback(None, 2, None, 0)[0] == b"\x02\x00" * 2
    ring.clear()
    assert ring.pending == 0
