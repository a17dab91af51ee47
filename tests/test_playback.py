"""ttsstream.playback: AudioPlayer on real PortAudio devices, with no sound card.

Two real devices stand in for a sound card (see tests/playback_pulse.py):

- ALSA's file plugin, which writes every byte PortAudio hands it to a file: exact
  content checks (volume, stop, pause, drain, sample-rate changes).
- A private PulseAudio daemon with a null sink, paced in real time and recorded from its
  monitor: wait() returns only after the audio has played, underruns are counted,
  stop() and pause() silence the device.

ALSA reads its configuration once per process, so each device scenario runs in a
subprocess (tests/playback_scenarios.py) that saves what it fed and what the device
received; the assertions are made here. No test has a wall-clock upper bound: timing
belongs in benchmarks/bench_playback.py.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest

from playback_pulse import PulseDaemon, alsa_file_home, missing_card_home, pulse_missing
from ttsstream.errors import PlaybackError, SynthesisTimeout
from ttsstream.playback import AudioPlayer
from ttsstream.playback.stream import _apply_volume

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).with_name("playback_scenarios.py")
RATE = 24000
SCENARIO_TIMEOUT = 120  # a hang guard for the subprocess, not a performance bound

# A developer without the playback extra may skip these; CI installs everything, so
# there (CI is set) a missing part fails instead of hiding behind a skip.
IN_CI = bool(os.environ.get("CI"))
needs_pyaudio = pytest.mark.skipif(
    importlib.util.find_spec("pyaudio") is None and not IN_CI,
    reason='PyAudio is not installed (pip install "ttsstream[playback]")')


def period_bytes(rate: int = RATE, block_ms: float = 10) -> int:
    """One device period (the player's block) in bytes."""
    return int(round(rate * block_ms / 1000)) * 2


def run_scenario(name: str, work: Path, env: Dict[str, str]) -> Dict[str, Any]:
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    process = subprocess.run(
        [sys.executable, str(SCENARIOS), name, str(work)], env=env, cwd=str(REPO),
        capture_output=True, text=True, timeout=SCENARIO_TIMEOUT)
    results = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and results, (
        f"scenario {name} failed (exit {process.returncode})\n"
        f"stdout:\n{process.stdout[-3000:]}\nstderr:\n{process.stderr[-5000:]}")
    return json.loads(results[-1][len("RESULT "):])


def assert_played_exactly(received: bytes, fed: bytes, rate: int = RATE) -> None:
    """``received`` is ``fed`` byte for byte, plus at most a partial period of zeros."""
    assert len(received) >= len(fed), f"the device got {len(received)} of {len(fed)} bytes"
    head = np.frombuffer(received[:len(fed)], "<i2")
    want = np.frombuffer(fed, "<i2")
    if not np.array_equal(head, want):
        first = int(np.flatnonzero(head != want)[0])
        pytest.fail(f"sample {first} of {len(want)} differs: got {head[first]}, fed {want[first]}")
    padding = received[len(fed):]
    assert len(padding) < period_bytes(rate), f"{len(padding)} bytes after the audio"
    assert not any(padding), "bytes after the audio are not silence"


def zero_runs(samples: np.ndarray) -> List[Tuple[int, int]]:
    """(start, length) of every run of zero samples strictly between the first and last sound."""
    sound = np.flatnonzero(samples)
    if len(sound) < 2:
        return []
    inner = samples[sound[0]:sound[-1] + 1] == 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inner.astype(np.int8), [0]))))
    return [(int(sound[0] + start), int(end - start)) for start, end in zip(edges[::2], edges[1::2])]


def load(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), "<i2")


# ------------------------------------------------------------------ without a device

def test_import_and_construction_start_nothing() -> None:
    code = ("import sys, threading; import ttsstream.playback as p; "
            "player = p.AudioPlayer(); player.volume = 0.5; player.close(); "
            "print('pyaudio' in sys.modules, threading.active_count())")
    process = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True,
                             text=True, timeout=SCENARIO_TIMEOUT)
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ["False", "1"]


@pytest.mark.parametrize("kwargs, error", [
    ({"sample_rate": 0}, ValueError),
    ({"sample_rate": -8000}, ValueError),
    ({"sample_rate": 24000.0}, ValueError),
    ({"sample_rate": True}, ValueError),
    ({"volume": 1.01}, ValueError),
    ({"volume": -0.1}, ValueError),
    ({"volume": math.nan}, ValueError),
    ({"volume": "loud"}, ValueError),
    ({"prebuffer_ms": -1}, ValueError),
    ({"block_ms": 0}, ValueError),
    ({"device": 1.5}, TypeError),
    ({"device": b"default"}, TypeError),
])
def test_bad_arguments_are_refused(kwargs: Dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        AudioPlayer(**kwargs)


def test_volume_property_checks_its_range() -> None:
    player = AudioPlayer(volume=0.25)
    assert player.volume == 0.25
    player.volume = 1
    assert player.volume == 1.0
    player.volume = 0.0
    assert player.volume == 0.0
    for bad in (1.5, -0.01, math.inf, math.nan):
        with pytest.raises(ValueError):
            player.volume = bad
    assert player.volume == 0.0
    player.close()


def test_bad_pcm_is_refused_before_any_device_is_opened() -> None:
    player = AudioPlayer()
    before = threading.active_count()
    with pytest.raises(ValueError, match="whole 16-bit samples"):
        player.feed(b"\x01\x02\x03")
    with pytest.raises(TypeError):
        player.feed("text")  # type: ignore[arg-type]
    assert threading.active_count() == before
    player.close()


def test_finish_and_wait_without_audio_return_at_once() -> None:
    player = AudioPlayer()
    player.wait(0)          # nothing finished yet: nothing to wait for
    player.finish()
    player.wait(0)          # nothing was fed
    player.stop()
    player.pause()
    assert player.paused
    player.resume()
    player.set_sample_rate(16000)
    assert player.sample_rate == 16000
    player.close()
    player.close()
    assert player.closed


def test_a_closed_player_refuses_audio() -> None:
    player = AudioPlayer()
    player.close()
    with pytest.raises(PlaybackError, match="closed"):
        player.feed(b"\x00\x00")
    with pytest.raises(PlaybackError, match="closed"):
        player.finish()
    player.wait(0)
    with AudioPlayer() as other:
        pass
    assert other.closed


def test_wait_refuses_to_run_on_the_player_thread() -> None:
    # White-box: nothing public runs user code on the player thread, so pretend this
    # thread is it.
    player = AudioPlayer()
    player._thread = threading.current_thread()
    try:
        with pytest.raises(RuntimeError, match="player thread"):
            player.wait(1)
    finally:
        player._thread = None
        player.close()


def test_timeout_is_a_synthesis_timeout() -> None:
    assert issubclass(SynthesisTimeout, TimeoutError)


def test_volume_scaling_is_numpy_rounding_and_clipping() -> None:
    samples = np.array([0, 1, -1, 3, -3, 5, 32767, -32768, 12345, -12345], dtype="<i2")
    pcm = samples.tobytes()
    assert _apply_volume(pcm, 1.0) is pcm
    for volume in (0.0, 0.1, 0.5, 0.999):
        expected = np.clip(np.rint(samples.astype(np.float32) * np.float32(volume)), -32768, 32767)
        assert _apply_volume(pcm, volume) == expected.astype("<i2").tobytes()
    assert _apply_volume(pcm, 0.5) == np.array(
        [0, 0, 0, 2, -2, 2, 16384, -16384, 6172, -6172], dtype="<i2").tobytes()


# ------------------------------------------------------------ the ALSA file device

@pytest.fixture
def alsa_file(tmp_path: Path) -> Tuple[Dict[str, str], Path]:
    """A HOME whose ALSA default device writes what it plays to WORK/out.raw."""
    work = tmp_path / "work"
    work.mkdir()
    env = alsa_file_home(tmp_path / "home", str(work / "out.raw"))
    return env, work


@needs_pyaudio
def test_the_device_receives_exactly_what_was_fed(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("file_exact", work, env)
    fed = (work / "fed.raw").read_bytes()
    # wait() returned only once the tail had reached the device...
    assert_played_exactly((work / "at_wait.raw").read_bytes(), fed)
    # ...and closing added nothing.
    assert_played_exactly((work / "after_close.raw").read_bytes(), fed)
    assert result["played_bytes"] == len(fed)
    assert result["underruns"] == 0
    assert result["threads"] == []


@needs_pyaudio
def test_volume_is_applied_with_numpy(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("file_volume", work, env)
    fed = load(work / "fed.raw")
    scaled = np.clip(np.rint(fed.astype(np.float32) * np.float32(0.5)), -32768, 32767).astype("<i2")
    assert_played_exactly((work / "at_wait.raw").read_bytes(), scaled.tobytes())
    assert result["volume"] == 0.5
    assert result["threads"] == []


@needs_pyaudio
def test_stop_drops_the_queue_and_the_next_segment_plays_intact(
        alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("file_stop", work, env)
    assert result["waited"] == ["returned"], "a wait() pending at stop() must return"
    assert result["played_while_paused"] == 0
    first = (work / "first.raw").read_bytes()
    second = (work / "second.raw").read_bytes()
    received = (work / "at_wait.raw").read_bytes()
    # The stream was aborted and reopened: whatever reached the device before stop()
    # is a prefix of the first segment; the second segment follows, intact.
    start = received.rfind(second[:4800])
    assert start >= 0 and start % 2 == 0, "the second segment never reached the device"
    assert first.startswith(received[:start])
    assert_played_exactly(received[start:], second)
    assert first.startswith((work / "after_stop.raw").read_bytes())
    assert result["threads"] == []


@needs_pyaudio
def test_pause_holds_output_and_resume_loses_nothing(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("file_pause", work, env)
    fed = (work / "fed.raw").read_bytes()
    assert result["while_paused"] == {"played_bytes": 0, "paused": True}
    assert result["timed_out"]["type"] == "SynthesisTimeout", result["timed_out"]
    assert (work / "while_paused.raw").read_bytes() == b""
    assert_played_exactly((work / "at_wait.raw").read_bytes(), fed)
    assert result["underruns"] == 0
    assert result["paused_after"] is False
    assert result["threads"] == []


@needs_pyaudio
def test_set_sample_rate_reopens_the_device(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # ALSA's file plugin puts the rate it was opened at (%r) in the file name.
    env = alsa_file_home(tmp_path / "home", str(work / "out-%r.raw"))
    result = run_scenario("file_rate", work, env)
    assert result["rate_after_set"] == 16000
    assert_played_exactly((work / "out-24000.raw").read_bytes(), (work / "first.raw").read_bytes(), 24000)
    assert_played_exactly((work / "out-16000.raw").read_bytes(), (work / "second.raw").read_bytes(), 16000)
    assert result["threads"] == []


@needs_pyaudio
def test_audio_fed_in_pieces_arrives_whole(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("file_slow_feed", work, env)
    fed = (work / "fed.raw").read_bytes()
    assert_played_exactly((work / "at_wait.raw").read_bytes(), fed)
    assert result["played_bytes"] == len(fed)
    # The queue ran dry between pieces (before finish()): underruns.
    assert 1 <= result["underruns"] <= 5
    assert result["underrun_ms"] > 0
    assert result["threads"] == []


@needs_pyaudio
def test_devices_are_chosen_by_name_or_index(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("file_devices", work, env)
    names = [device["name"] for device in result["devices"]]
    assert "default" in names
    for device in result["devices"]:
        assert set(device) == {"index", "name", "channels", "default_sample_rate", "default"}
        assert device["channels"] > 0
    assert [device["name"] for device in result["devices"] if device["default"]] == ["default"]
    assert result["played"] == {"by_name": int(0.2 * RATE) * 2, "by_index": int(0.2 * RATE) * 2}
    unknown = result["unknown_name"]
    assert unknown["is_playback_error"], unknown
    assert "no such device" in unknown["message"] and '"default"' in unknown["message"]
    assert result["unknown_index"]["is_playback_error"]
    assert "99" in result["unknown_index"]["message"] and '"default"' in result["unknown_index"]["message"]
    assert result["threads"] == []


@needs_pyaudio
def test_close_from_another_thread_leaves_no_thread(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("file_close", work, env)
    assert result["closed"] is True
    assert result["threads_after_close"] == []
    assert result["feed_after_close"]["is_playback_error"]
    assert result["wait_after_close"]["type"] is None  # dropped audio: wait() returns
    assert result["threads"] == []


@needs_pyaudio
def test_missing_device_is_a_playback_error_with_the_fix(tmp_path: Path) -> None:
    env = missing_card_home(tmp_path / "home")
    result = run_scenario("missing_device", tmp_path / "work", env)
    for call in ("feed", "start"):
        error = result[call]
        assert error["is_playback_error"], error
        assert "output device" in error["message"]
        assert "WAV" in error["message"]
    assert result["devices"]["type"] is None  # listing works, and finds nothing
    assert result["threads"] == []


def test_missing_pyaudio_is_a_playback_error_with_the_fix(tmp_path: Path) -> None:
    result = run_scenario("no_pyaudio", tmp_path / "work", dict(os.environ))
    assert result["pyaudio_importable"] is False
    for call in ("feed", "devices"):
        error = result[call]
        assert error["is_playback_error"], error
        assert 'pip install "ttsstream[playback]"' in error["message"]
        assert "apt-get install portaudio19-dev" in error["message"]
    assert result["threads"] == []


# ------------------------------------------------------- the paced PulseAudio device

@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    """A private PulseAudio daemon with a null sink, for this module's paced tests."""
    unavailable = pytest.fail if IN_CI else pytest.skip
    if importlib.util.find_spec("pyaudio") is None:
        unavailable('PyAudio is not installed (pip install "ttsstream[playback]")')
    missing = pulse_missing()
    if missing:
        unavailable(f"no paced device: {missing}")
    daemon = PulseDaemon(tmp_path_factory.mktemp("pulse")).start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_wait_returns_only_after_the_audio_has_played(pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("pulse_wait", tmp_path, pulse.env)
    # The device is paced: a second of audio cannot have played in less than a second.
    assert result["elapsed"] >= result["duration"]
    recorded = load(tmp_path / "recorded.raw")
    fed = load(tmp_path / "fed.raw")
    # Everything played, bit for bit, including a segment shorter than a device period.
    assert np.array_equal(recorded[recorded != 0], fed)
    assert result["underruns"] == 0
    assert result["threads"] == []


def test_underruns_are_counted_when_audio_comes_slower_than_real_time(
        pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("pulse_underrun", tmp_path, pulse.env)
    assert 1 <= result["underruns"] <= result["pieces"]
    assert result["underrun_ms"] > 0
    recorded = load(tmp_path / "recorded.raw")
    fed = load(tmp_path / "fed.raw")
    assert np.array_equal(recorded[recorded != 0], fed)
    gaps = [length for _, length in zero_runs(recorded) if length >= int(0.05 * RATE)]
    assert len(gaps) >= 1, "the device never fell silent between pieces"
    assert result["threads"] == []


def test_stop_silences_the_device(pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("pulse_stop", tmp_path, pulse.env)
    recorded = load(tmp_path / "recorded.raw")
    first = load(tmp_path / "first.raw")
    second = load(tmp_path / "second.raw")
    sound = np.flatnonzero(recorded)
    heard = recorded[sound]
    # What played: the start of the first segment, cut off, then all of the second.
    assert np.array_equal(heard[len(heard) - len(second):], second)
    cut = len(heard) - len(second)
    assert 0 < cut < len(first) - RATE, f"{cut} samples of the first segment played"
    assert np.array_equal(heard[:cut], first[:cut])
    # The device was aborted, not drained: what it still held when stop() came (written
    # to it, never heard) was dropped, and is not counted as played (speech.played and
    # heard_text read this count): the count is what was heard, within a 40 ms block.
    written = result["written_before_stop"] // 2
    assert written <= cut + int(0.04 * RATE), f"{written} samples counted as played, {cut} heard"
    assert written >= cut - int(0.04 * RATE), f"{written} samples counted as played, {cut} heard"
    # Between them the device was silent for most of the 0.4 s the scenario waited.
    silence = sound[cut] - sound[cut - 1] - 1
    assert silence >= int(0.2 * RATE), f"only {silence} silent samples after stop()"
    assert result["threads"] == []


def test_a_faded_stop_counts_as_played_only_what_was_heard_whole(pulse: PulseDaemon, tmp_path: Path) -> None:
    # speech.played and heard_text read this count after a cancel: audio the stop faded
    # out on (its words not heard to their end) must not be in it.
    result = run_scenario("pulse_stop_faded", tmp_path, pulse.env)
    recorded = load(tmp_path / "recorded.raw")
    fed = load(tmp_path / "fed.raw")
    start = int(np.flatnonzero(recorded)[0])
    heard = recorded[start:start + len(fed)]
    whole = int(np.flatnonzero(heard != fed[:len(heard)])[0])  # where the fade begins
    counted = result["counted"] // 2
    assert int(0.5 * RATE) <= counted <= whole, f"{counted} samples counted as played, {whole} heard unfaded"
    assert counted >= whole - int(0.03 * RATE), f"{counted} samples counted as played, {whole} heard unfaded"
    assert result["threads"] == []


def test_pause_silences_the_device_and_loses_nothing(pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("pulse_pause", tmp_path, pulse.env)
    recorded = load(tmp_path / "recorded.raw")
    fed = load(tmp_path / "fed.raw")
    assert np.array_equal(recorded[recorded != 0], fed)
    longest = max((length for _, length in zero_runs(recorded)), default=0)
    assert longest >= int(0.2 * RATE), f"the longest silence was {longest} samples"
    assert result["underruns"] == 0
    assert result["underrun_ms"] == 0
    assert result["threads"] == []


# ------------------------------------------------------------- speak(play=True)

def scaled(pcm: bytes, volume: float) -> bytes:
    samples = np.frombuffer(pcm, "<i2").astype(np.float32) * np.float32(volume)
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()


def heard(samples: np.ndarray) -> np.ndarray:
    return samples[samples != 0]


@needs_pyaudio
def test_speak_play_sends_every_received_byte_to_the_device(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("speak_file_exact", work, env)
    pcm = (work / "pcm.raw").read_bytes()
    # speak(play=True) returned with every received byte played, frames of 1001 bytes
    # notwithstanding, after on_complete had run on the reader thread.
    assert_played_exactly((work / "at_return.raw").read_bytes(), pcm)
    events = result["eigenai"]["events"]
    assert [name for name, _, _ in events] == ["complete", "returned"]
    assert events[0][2].startswith("ttsstream-reader-")
    assert result["eigenai"]["done"] is True
    assert result["eigenai"]["player_rate"] == 24000
    # The client's player: a volume change applies to the next speech.
    quiet = (work / "quiet.raw").read_bytes()
    assert_played_exactly((work / "at_quiet.raw").read_bytes()[len(pcm):], scaled(quiet, 0.5))
    # Shunyalabs metadata said 16 kHz: the device was opened at that rate.
    assert result["shunyalabs"] == {"rate": 16000, "player_rate": 16000}
    assert_played_exactly((work / "at_shunyalabs.raw").read_bytes(), (work / "shunyalabs.raw").read_bytes(),
                          rate=16000)
    assert result["threads"] == []


@needs_pyaudio
def test_phone_frames_leave_playback_and_saving_as_they_were(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    from ttsstream.formats import read_audio

    env, work = alsa_file
    result = run_scenario("speak_file_output", work, env)
    pcm = (work / "pcm.raw").read_bytes()
    # The device played the server's 24 kHz audio, every byte, while on_audio got 8 kHz
    # μ-law frames, and the saved file holds the same 24 kHz audio.
    assert_played_exactly((work / "at_return.raw").read_bytes(), pcm)
    assert result["rate"] == result["player_rate"] == 24000
    assert set(result["frames"][:-1]) == {160} and 0 < result["frames"][-1] <= 160
    samples, rate = read_audio(work / "speech.flac")
    assert rate == 24000 and samples.astype("<i2").tobytes() == pcm
    assert result["threads"] == []


@needs_pyaudio
def test_a_text_stream_plays_whole_and_each_segment_is_told_as_it_begins_playing(
        alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("speak_file_stream", work, env)
    pcm = (work / "pcm.raw").read_bytes()
    assert_played_exactly((work / "at_return.raw").read_bytes(), pcm)
    segments, cues = result["segments"], result["cues"]
    assert len(segments) >= 2 and [c[0] for c in cues] == [s[0] for s in segments]
    for (index, _, start, _), (_, played, thread) in zip(segments, cues):
        # Told once its audio had begun to reach the device, not when it arrived, and
        # never on the player thread.
        assert played > start * result["rate"] * 2, (index, played, start)
        assert thread == "ttsstream-cues"
    assert result["threads"] == []


@needs_pyaudio
def test_speeches_started_together_play_one_after_another(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("speak_file_queue", work, env)
    received = (work / "at_wait.raw").read_bytes()
    position = 0
    for index in range(result["count"]):
        pcm = (work / f"pcm{index}.raw").read_bytes()
        # Each speech is whole and in order; between two, at most a period of padding.
        start = received.find(pcm, position, position + len(pcm) + period_bytes())
        assert start >= 0, f"speech {index} is not intact after byte {position}"
        assert not any(received[position:start])
        position = start + len(pcm)
    assert not any(received[position:])
    assert result["held"]["type"] == "Cancelled"
    assert result["after_stop"]["type"] is None and result["paused"] is False
    assert result["threads"] == []


@needs_pyaudio
def test_a_player_failing_mid_stream_ends_the_speech_with_its_error(alsa_file: Tuple[Dict[str, str], Path]) -> None:
    env, work = alsa_file
    result = run_scenario("speak_file_player_fails", work, env)
    assert result["wait"]["type"] == "PlaybackError" and result["error"] == "PlaybackError"
    events = result["events"]
    assert events[-1] == "error PlaybackError" and events.count("error PlaybackError") == 1
    assert "complete" not in events
    assert result["paused_after_cancel"] is True and result["paused_after_stop"] is False
    assert result["threads"] == []


@needs_pyaudio
def test_speak_play_without_a_device_fails_before_connecting(tmp_path: Path) -> None:
    env = missing_card_home(tmp_path / "home")
    result = run_scenario("speak_no_device", tmp_path, env)
    assert result["error"]["type"] == "PlaybackError"
    assert "output" in result["error"]["message"] and "--no-play" in result["error"]["message"]
    assert result["connections_after_error"] == 0, "the server was contacted before the device check"
    assert result["after_bytes"] > 0
    assert result["threads"] == []


def test_speak_play_without_pyaudio_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['pyaudio'] = None\n"
        "import ttsstream\n"
        "from ttsstream.server import LocalServer\n"
        "with LocalServer(engine='tone') as url, ttsstream.TTSClient(url=url) as client:\n"
        "    try:\n"
        "        client.speak('hello', play=True)\n"
        "    except ttsstream.PlaybackError as exc:\n"
        "        print('PlaybackError:', exc)\n"
    )
    process = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True,
                             timeout=SCENARIO_TIMEOUT, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert process.returncode == 0, process.stderr
    assert 'pip install "ttsstream[playback]"' in process.stdout
    assert "apt-get install portaudio19-dev" in process.stdout


def test_speak_pulse_blocking_cancel_stop_and_interrupt(pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("speak_pulse", tmp_path, pulse.env)
    recorded = load(tmp_path / "recorded.raw")
    pcm = {name: load(tmp_path / f"{name}.raw")
           for name in ("blocking", "cancelled", "after_cancel", "stopped", "last")}

    # 1. speak(play=True) returned after the audio played (the device is paced), and
    #    on_complete came first, when the stream ended.
    blocking = result["blocking"]
    (complete, complete_at, _), (returned, returned_at, _) = blocking["events"]
    assert (complete, returned) == ("complete", "returned")
    assert returned_at >= blocking["duration"] > complete_at
    assert blocking["underruns"] == 0

    # 2. cancel() mid-playback: Cancelled from wait() and on_error; the sound stopped.
    cancelled = result["cancelled"]
    assert cancelled["wait"]["type"] == "Cancelled"
    # Exactly one terminal callback: on_complete if the stream had ended by then (the
    # playback was cut, not the stream), else on_error with Cancelled.
    terminal = [name for name, _, _ in cancelled["events"] if name != "cancel"]
    assert terminal in (["complete"], ["error Cancelled"])
    assert cancelled["done"] is True
    # 3. client.stop() ended a speech whose stream was over and one queued behind it.
    stopped = result["stopped"]
    assert stopped["stream_done_before_stop"] is True
    assert stopped["tail"]["type"] == stopped["queued"]["type"] == "Cancelled"
    # 4. Ctrl-C during a blocking speak raised KeyboardInterrupt.
    assert result["interrupt"] == "KeyboardInterrupt"

    # What the device played, in order: the whole first speech; a cut-off prefix of
    # the cancelled one; the whole next one; a prefix of the stopped one (nothing of
    # the queued one); a prefix of the interrupted one (not checked); the whole last.
    sound = heard(recorded)
    position = 0

    def expect_whole(samples: np.ndarray) -> None:
        nonlocal position
        want = heard(samples)
        assert np.array_equal(sound[position:position + len(want)], want)
        position += len(want)

    def expect_prefix(samples: np.ndarray) -> None:
        nonlocal position
        want = heard(samples)
        length = 0
        while length < len(want) and position + length < len(sound) and sound[position + length] == want[length]:
            length += 1
        assert 0 < length < len(want) - int(0.5 * RATE), f"{length} of {len(want)} samples played"
        position += length

    expect_whole(pcm["blocking"])
    expect_prefix(pcm["cancelled"])
    expect_whole(pcm["after_cancel"])
    expect_prefix(pcm["stopped"])
    want_last = heard(pcm["last"])
    assert np.array_equal(sound[len(sound) - len(want_last):], want_last)
    assert result["threads"] == []


def test_speech_reports_underruns_when_the_network_is_slower_than_real_time(
        pulse: PulseDaemon, tmp_path: Path) -> None:
    result = run_scenario("speak_pulse_underrun", tmp_path, pulse.env)
    assert result["underruns"] >= 1
    assert result["underrun_ms"] > 0
    assert result["threads"] == []

