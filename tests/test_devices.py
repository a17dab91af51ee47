"""Playback on devices that are not the ideal one: a JACK server that takes 48 kHz only,
a JACK server that stops under a playing speech, a PulseAudio daemon that dies and comes
back, and the fades of stop(), pause()/resume() and cancel() as recorded on a null sink.

Each scenario runs in a process of its own (tests/device_scenarios.py); the servers are
started here (or, for the daemon that is killed and restarted, by the scenario) and
ended by their pid. Assertions are on recorded audio and event order, never on elapsed
time: the timings are benchmarks/bench_playback.py's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest

from device_scenarios import end_level, rms, sound_runs
from playback_pulse import JackDaemon, PulseDaemon, jack_missing, pulse_missing

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).with_name("device_scenarios.py")
SCENARIO_TIMEOUT = 120  # a hang guard for the subprocess, not a performance bound
IN_CI = bool(os.environ.get("CI"))
RATE = 24000
FADE = int(0.010 * RATE)   # the default fade, in samples at 24 kHz
WINDOW = int(0.002 * RATE)  # the last (or first) 2 ms of sound
ABANDONED = "ttsstream-portaudio"  # a helper stuck in PortAudio on a dead JACK (see guard.py)


def unavailable(reason: str) -> None:
    (pytest.fail if IN_CI else pytest.skip)(reason)


def needs(*missing: Any) -> None:
    if importlib.util.find_spec("pyaudio") is None:
        unavailable('PyAudio is not installed (pip install "ttsstream[playback]")')
    for why in missing:
        if why:
            unavailable(why)


def run_scenario(name: str, work: Path, env: Dict[str, str]) -> Dict[str, Any]:
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")])))
    process = subprocess.run([sys.executable, str(SCENARIOS), name, str(work)], env=env, cwd=str(REPO),
                             capture_output=True, text=True, timeout=SCENARIO_TIMEOUT)
    results = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and results, (
        f"scenario {name} failed (exit {process.returncode})\n"
        f"stdout:\n{process.stdout[-3000:]}\nstderr:\n{process.stderr[-5000:]}")
    return json.loads(results[-1][len("RESULT "):])


def load(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), "<i2")


def faded_end(heard: np.ndarray, fed: np.ndarray) -> Tuple[int, float]:
    """``heard`` is a prefix of ``fed`` that ends in a fade: return where it first
    differs from ``fed`` counted back from its end, and its level over the last 2 ms
    against ``fed``'s at the same place."""
    n = len(heard)
    differs = np.flatnonzero(heard != fed[:n])
    first = int(differs[0]) if len(differs) else n
    return n - first, rms(heard[n - WINDOW:]) / rms(fed[n - WINDOW:n])


# ------------------------------------------------------------------ JACK


@pytest.fixture
def jack48() -> Any:
    needs(jack_missing())
    with JackDaemon(48000) as daemon:
        yield daemon


def test_a_device_that_refuses_the_rate_plays_at_its_own(jack48: JackDaemon, tmp_path: Path) -> None:
    result = run_scenario("jack_rate", tmp_path, jack48.env)
    with wave.open(str(tmp_path / "jack.wav")) as recording:
        assert recording.getframerate() == 48000
        recorded = np.frombuffer(recording.readframes(recording.getnframes()), "<i2")
    sound = np.flatnonzero(recorded)
    # As much sound as the audio's 1.0 s, at the device's 48 kHz: resampled, not sped up
    # (a loaded machine may underrun: silence between, never sound lost or added).
    heard = recorded[sound[0]:sound[-1] + 1]
    assert abs(np.count_nonzero(heard) - 48000) <= 48000 * 0.01, f"{np.count_nonzero(heard)} samples heard"
    # The 24 kHz audio and the 16 kHz audio after it joined on the open stream with no
    # gap: no silence around the seam, 0.6 s into the sound.
    sounding = heard[heard != 0]
    seam = np.flatnonzero(heard)[int(0.6 * 48000)]
    assert np.all(heard[seam - 240:seam + 240] != 0), "a gap where the rate changed"
    assert sounding[2400:26000].min() > 4000  # the level came through the resampler
    for provider, rate in (("eigenai", 24000), ("shunyalabs", 16000)):
        assert result[provider]["events"] == ["complete"], result[provider]
        assert result[provider]["rate"] == rate
    assert result["threads"] == []


@pytest.fixture
def jack24() -> Any:
    needs(jack_missing())
    with JackDaemon(24000) as daemon:
        yield daemon


def test_a_device_that_goes_away_ends_the_speech_with_an_error(jack24: JackDaemon, tmp_path: Path) -> None:
    result = run_scenario("jack_lost", tmp_path, dict(jack24.env, JACK_PID=str(jack24.pid)))
    assert result["wait"]["type"] == "PlaybackError", result["wait"]
    assert result["events"] == ["jack stopped", "error PlaybackError"], result["events"]
    assert result["duration"] < 4.0  # it ended with the device, before its 4 s had all arrived
    # close() returned (the scenario ended); only a helper stuck in PortAudio may remain.
    assert set(result["threads"]) <= {ABANDONED}, result["threads"]


# ------------------------------------------------------------------ PulseAudio


def test_a_restarted_sound_server_is_used_again(tmp_path: Path) -> None:
    needs(pulse_missing())
    result = run_scenario("pulse_restart", tmp_path, dict(os.environ))
    assert result["lost"]["type"] == "PlaybackError", result["lost"]
    assert result["lost_events"] == ["daemon killed", "error PlaybackError"]
    assert result["while_down"]["type"] == "PlaybackError"
    assert result["back"]["error"] is None
    recorded, back = load(tmp_path / "recorded.raw"), load(tmp_path / "back.raw")
    assert np.array_equal(recorded[recorded != 0], back[back != 0]), "the speech after the restart was not heard whole"
    assert result["threads"] == []


@pytest.fixture
def pulse(tmp_path: Path) -> Any:
    needs(pulse_missing())
    with PulseDaemon(tmp_path / "pulse") as daemon:
        yield daemon


def test_stop_pause_resume_and_cancel_fade_instead_of_clicking(pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("pulse_fades", tmp_path, pulse.env)
    recorded = load(tmp_path / "recorded.raw")
    stopped, paused = load(tmp_path / "stopped.raw"), load(tmp_path / "paused.raw")
    runs = sound_runs(recorded, min_silence=int(0.1 * RATE))
    assert len(runs) == 4, f"sound stretches: {runs}"  # stop | pause | resume | cancel

    # stop(): a prefix of the audio, its last 10 ms ramped down to silence.
    heard = recorded[runs[0][0]:runs[0][1]]
    ramp, level = faded_end(heard, stopped)
    assert 0 < ramp <= FADE + 1 and level < 0.35, (ramp, level)
    assert end_level(heard) < 0.35  # the measure: 1.0-1.07 for a cut

    # pause(): ramped down; resume(): ramped up; nothing lost in between.
    before, after = recorded[runs[1][0]:runs[1][1]], recorded[runs[2][0]:runs[2][1]]
    ramp, level = faded_end(before, paused)
    assert 0 < ramp <= FADE + 1 and level < 0.35, (ramp, level)
    assert end_level(before) < 0.35
    rest = paused[len(paused) - len(after):]
    assert abs(len(before) + len(after) - len(paused)) <= 4, "audio was lost or repeated around the pause"
    assert rms(after[:WINDOW]) / rms(rest[:WINDOW]) < 0.35
    assert np.array_equal(after[FADE + 2:], rest[FADE + 2:])

    # speech.cancel(): the same ramp on the speech's audio.
    assert result["cancelled"]["type"] == "Cancelled"
    pcm = load(tmp_path / "cancelled.raw")
    heard = recorded[runs[3][0]:runs[3][1]]
    offset = int(np.flatnonzero(pcm)[0])
    ramp, level = faded_end(heard, pcm[offset:])
    assert 0 < ramp <= FADE + 1 and level < 0.35, (ramp, level)
    assert result["threads"] == []


# ------------------------------------------------------------------ words as they are heard


def test_on_word_tells_each_word_once_its_playback_has_reached_it(pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("pulse_words", tmp_path, pulse.env)
    words, told = result["words"], result["told"]
    assert [w[1] for w in words] == [t.strip(",.") for t in result["text"].split()]
    assert {w[4] for w in words} == {"exact"}  # the tone engine's own times
    assert [t[0] for t in told] == [w[0] for w in words]  # once each, in order
    for index, text, start, played, thread in told:
        assert played >= start, (index, text, start, played)  # told when heard, not when received
        assert thread == "ttsstream-words"
    assert told[-1][3] < result["duration"]  # paced by the sink: not all played at once
    # A unit's on_segment comes before its first word's on_word.
    segments = result["segments"]
    assert len(segments) >= 2
    order = [(kind, index) for kind, index, _ in result["events"]]
    for segment_index, start, _ in segments:
        first = next(w[0] for w in words if w[2] >= start - 1e-6)
        assert order.index(("segment", segment_index)) < order.index(("word", first)), order
    assert result["played"] == pytest.approx(result["duration"])
    assert result["heard"] == result["text"].rstrip(".")  # every word, as written
    assert result["threads"] == []


def test_heard_text_after_a_cancel_during_playback(pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("pulse_words_cancel", tmp_path, pulse.env)
    assert result["error"] == "Cancelled"
    played, heard, text = result["played"], result["heard"], result["text"]
    recorded = load(tmp_path / "recorded.raw")
    sounded = np.flatnonzero(recorded)
    heard_on_sink = (sounded[-1] - sounded[0] + 1) / RATE if len(sounded) else 0.0
    assert 1.0 <= played < result["duration"] - 1.0
    assert heard and text.startswith(heard) and len(heard) < len(text)
    heard_words = [w for w in result["words"] if w[3] <= played]
    assert heard.split()[-1] == heard_words[-1][1]
    # Nothing unheard is reported as heard: the last word reported ended within what the
    # sink sounded (a period of slack for the fade and the recorder's start).
    assert heard_words[-1][3] <= heard_on_sink + 0.05, (heard_words[-1], heard_on_sink)
    following = [w for w in result["words"] if w[0] == heard_words[-1][0] + 1]
    assert not following or following[0][3] > played
    assert result["threads"] == []

