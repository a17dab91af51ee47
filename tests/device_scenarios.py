"""Device scenarios (rate, lost device, restarted server, fades), each run in a process
of its own by tests/test_devices.py.

    python tests/device_scenarios.py SCENARIO WORKDIR

As in tests/playback_scenarios.py: ALSA and PortAudio read their configuration once per
process, so each scenario runs in the environment the test prepared (a JACK server's
name, a PulseAudio daemon's HOME), drives real devices, saves what the test checks in
WORKDIR and prints one line ``RESULT {json}``. The test asserts; scenarios only record.
Processes a scenario starts (parec, jack_rec, a PulseAudio daemon) it ends by their id;
a JACK server it is asked to stop was started by the test, which passes its pid.
"""

from __future__ import annotations

import json
import os
import signal as os_signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playback_pulse import MonitorRecorder, PulseDaemon  # noqa: E402
from playback_scenarios import Events, error_text, other_threads, wait_played  # noqa: E402

from ttsstream import TTSClient  # noqa: E402
from ttsstream.playback import AudioPlayer  # noqa: E402
from ttsstream.server import LocalServer  # noqa: E402

SCENARIOS: Dict[str, Callable[[Path], Dict[str, Any]]] = {}
LONG_WORD = "a" * 80  # the tone engine: 4 s of sound with no pause in it


def scenario(function: Callable[[Path], Dict[str, Any]]) -> Callable[[Path], Dict[str, Any]]:
    SCENARIOS[function.__name__] = function
    return function


def sine(seconds: float, rate: int, hz: float = 1000.0, amplitude: float = 10000.0) -> bytes:
    """A steady sine with no zero sample (a phase offset keeps it off the zero crossings)."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.round(amplitude * np.sin(2 * np.pi * hz * t + 0.1)).astype("<i2").tobytes()


def steady(seconds: float, rate: int) -> bytes:
    """A level well away from zero with a slow wobble: no sample near zero, even resampled."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.round(8000 + 2000 * np.sin(2 * np.pi * 5 * t)).astype("<i2").tobytes()


def jack_record(work: Path, seconds: float) -> subprocess.Popen:
    """Record the player's JACK port (PortAudio:out_0) to WORK/jack.wav with jack_rec."""
    return subprocess.Popen(["jack_rec", "-f", str(work / "jack.wav"), "-d", f"{seconds:g}", "-b", "16",
                             "PortAudio:out_0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def sound_runs(recorded: np.ndarray, min_silence: int) -> List[Tuple[int, int]]:
    """(start, end) of the stretches of sound separated by at least ``min_silence`` zeros."""
    sound = np.flatnonzero(recorded)
    if not len(sound):
        return []
    breaks = np.flatnonzero(np.diff(sound) > min_silence)
    starts = np.concatenate(([sound[0]], sound[breaks + 1]))
    ends = np.concatenate((sound[breaks], [sound[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist()))


def end_level(heard: np.ndarray, rate: int = 24000) -> float:
    """The RMS of the last 2 ms of ``heard`` against that of the 20 ms that end 12 ms
    before its end (the level before any fade): about 1 for a cut, near 0 for a fade."""
    last, before = int(0.002 * rate), heard[-int(0.032 * rate):-int(0.012 * rate)]
    return rms(heard[-last:]) / rms(before)


# ------------------------------------------------------------------ JACK


@scenario
def jack_rate(work: Path) -> Dict[str, Any]:
    """A JACK server at 48 kHz: a 24 kHz then a 16 kHz stretch in one segment, recorded;
    then speak(play=True) at 24 kHz and at 16 kHz on the same device."""
    first, second = steady(0.6, 24000), steady(0.4, 16000)
    result: Dict[str, Any] = {}
    with AudioPlayer(sample_rate=24000, device="system") as player:
        player.start()
        recorder = jack_record(work, 2.5)
        time.sleep(0.3)  # jack_rec connects to the port
        started = time.monotonic()
        player.feed(first)
        player.set_sample_rate(16000)
        player.feed(second)
        player.finish()
        player.wait(30)
        result["elapsed"] = time.monotonic() - started
        recorder.wait(30)
    result["duration"] = 0.6 + 0.4
    with LocalServer(engine="tone", shunyalabs_metadata=True, shunyalabs_sample_rate=16000) as url:
        for provider, path, text in (("eigenai", "/api/v1/generate/ws", "Hello"), ("shunyalabs", "/ws", "Hi")):
            with TTSClient(provider, url=url + path, player=AudioPlayer(device="system")) as client:
                events = Events()
                started = time.monotonic()
                speech = client.speak(text, play=True, **events.callbacks())
                result[provider] = {"events": [name for name, _, _ in events.log], "rate": speech.sample_rate,
                                    "duration": speech.duration, "elapsed": time.monotonic() - started}
                client.player.close()
    result["threads"] = other_threads()
    return result


@scenario
def jack_lost(work: Path) -> Dict[str, Any]:
    """The JACK server (pid in JACK_PID, started by the test) stops 1.5 s into a 4 s speech."""
    jack_pid = int(os.environ["JACK_PID"])
    result: Dict[str, Any] = {}
    # The server streams in real time, as a live service does: the speech's stream is
    # still running when the device goes, so it ends with on_error.
    with LocalServer(engine="tone", realtime=1.0) as url:
        client = TTSClient(url=url + "/api/v1/generate/ws", player=AudioPlayer(device="system"))
        events = Events()
        speech = client.speak(LONG_WORD, play=True, block=False, **events.callbacks())
        wait_played(client.player, int(1.5 * 24000) * 2)
        events.stamp("jack stopped")
        os.kill(jack_pid, os_signal.SIGTERM)
        result["wait"] = error_text(lambda: speech.wait(30))
        result["events"] = [name for name, _, _ in events.log]
        result["lost_to_error"] = _between(events.log, "jack stopped", "error PlaybackError")
        result["duration"] = speech.duration
        closing = time.monotonic()
        client.close()
        client.player.close()
        result["close_s"] = time.monotonic() - closing
    result["threads"] = other_threads()
    return result


def _between(log: List[Any], first: str, second: str) -> Any:
    stamps = {name: at for name, at, _ in log}
    return stamps[second] - stamps[first] if first in stamps and second in stamps else None


# ------------------------------------------------------------------ PulseAudio


@scenario
def pulse_restart(work: Path) -> Dict[str, Any]:
    """The PulseAudio daemon dies mid-speech and comes back: the next speech plays."""
    daemon = PulseDaemon(work / "pulse").start()
    os.environ.update(daemon.env)  # before PortAudio first reads ALSA's configuration
    result: Dict[str, Any] = {}
    try:
        with LocalServer(engine="tone", realtime=1.0) as url, \
                TTSClient(url=url + "/api/v1/generate/ws") as client:
            events = Events()
            speech = client.speak(LONG_WORD, play=True, block=False, **events.callbacks())
            wait_played(client.player, int(0.5 * 24000) * 2)
            events.stamp("daemon killed")
            daemon.kill()
            result["lost"] = error_text(lambda: speech.wait(30))
            result["lost_events"] = [name for name, _, _ in events.log]
            result["lost_to_error"] = _between(events.log, "daemon killed", "error PlaybackError")
            result["while_down"] = error_text(lambda: client.speak("Nobody listens.", play=True))
            daemon.start()
            recorder = MonitorRecorder(daemon.env)
            if not recorder.wait_started():
                raise RuntimeError("parec delivered nothing from the monitor")
            back = client.speak("Back again.", play=True)
            time.sleep(0.2)
            recorder.stop()
            (work / "recorded.raw").write_bytes(recorder.samples().tobytes())
            (work / "back.raw").write_bytes(back.pcm)
            result["back"] = {"error": type(back.error).__name__ if back.error else None}
    finally:
        daemon.stop()
    result["threads"] = other_threads()
    return result


@scenario
def pulse_fades(work: Path) -> Dict[str, Any]:
    """stop(), pause()/resume() and speech.cancel() on the null sink, recorded."""
    recorder = MonitorRecorder(dict(os.environ))
    if not recorder.wait_started():
        raise RuntimeError("parec delivered nothing from the monitor")
    rate = 24000
    fade_ms = float(os.environ.get("FADE_MS", "10"))  # the benchmark compares with 0
    result: Dict[str, Any] = {}
    stamps: Dict[str, float] = {}
    stopped, paused = sine(2.0, rate), sine(1.0, rate, hz=1500.0)
    (work / "stopped.raw").write_bytes(stopped)
    (work / "paused.raw").write_bytes(paused)
    with AudioPlayer(sample_rate=rate, fade_ms=fade_ms) as player:
        player.start()
        player.feed(stopped)
        wait_played(player, int(0.5 * rate) * 2)
        stamps["stop"] = time.monotonic()
        player.stop()
        time.sleep(0.4)  # silence
        before = player.played_bytes
        player.feed(paused)
        player.finish()
        wait_played(player, before + int(0.3 * rate) * 2)
        stamps["pause"] = time.monotonic()
        player.pause()
        time.sleep(0.4)  # silence
        player.resume()
        player.wait(30)
        time.sleep(0.4)
    with LocalServer(engine="tone") as url, AudioPlayer(fade_ms=fade_ms) as own, \
            TTSClient(url=url + "/api/v1/generate/ws", player=own) as client:
        client.player.start()
        before = client.player.played_bytes
        speech = client.speak(LONG_WORD, play=True, block=False)
        wait_played(client.player, before + int(0.7 * rate) * 2)
        stamps["cancel"] = time.monotonic()
        speech.cancel()
        result["cancelled"] = error_text(lambda: speech.wait(10))
        time.sleep(0.3)
        (work / "cancelled.raw").write_bytes(speech.pcm)
    recorder.stop()
    samples = recorder.samples()
    (work / "recorded.raw").write_bytes(samples.tobytes())
    # For the benchmark: from each call to the last sound heard after it (the recorder's
    # clock is this process's monotonic clock).
    times = recorder.sample_times()[:len(samples)]
    for name, at in stamps.items():
        after = np.flatnonzero((times >= at) & (times <= at + 0.3) & (samples != 0))
        result[f"{name}_to_silence"] = float(times[after[-1]] - at) if len(after) else 0.0
    result["threads"] = other_threads()
    return result



@scenario
def pulse_words(work: Path) -> Dict[str, Any]:
    """A text stream played on the null sink with on_word and on_segment: each word notes
    how much of the speech had been played when it was told, and on which thread; the
    events keep the order in which words and segments were told."""
    text = "Each word is told as it is heard. One after another, in the order of the text."
    told: List[Any] = []
    events: List[Any] = []
    speeches: List[Any] = []
    with LocalServer(engine="tone") as url:
        with TTSClient(url=url + "/api/v1/generate/ws") as client:
            def on_word(word: Any) -> None:
                played = speeches[0].played if speeches else -1.0
                told.append([word.index, word.text, word.start, played, threading.current_thread().name])
                events.append(["word", word.index, word.start])

            def on_segment(segment: Any) -> None:
                events.append(["segment", segment.index, segment.start])

            pieces = [text[i:i + 6] for i in range(0, len(text), 6)]
            speeches.append(client.speak(iter(pieces), play=True, on_word=on_word, on_segment=on_segment,
                                         block=False, voice_settings={"speed": 0.5}))
            speech = speeches[0].wait(60)
            words = speech.words
            for _ in range(500):  # the last words may be told just after wait() returns
                if len(told) >= len(words):
                    break
                time.sleep(0.01)
            result = {"told": told, "events": events,
                      "words": [[w.index, w.text, w.start, w.end, w.source] for w in words],
                      "segments": [[g.index, g.start, g.end] for g in speech.segments],
                      "played": speech.played, "duration": speech.duration, "heard": speech.heard_text,
                      "text": text}
    result["threads"] = other_threads()
    return result


@scenario
def pulse_words_cancel(work: Path) -> Dict[str, Any]:
    """A long speech on the null sink, cancelled after about a second of playback: what
    was heard, against what the sink's monitor recorded."""
    recorder = MonitorRecorder(dict(os.environ))
    if not recorder.wait_started():
        raise RuntimeError("parec delivered nothing from the monitor")
    text = " ".join(f"item{i}" for i in range(60)) + "."
    error = None
    with LocalServer(engine="tone") as url:
        with TTSClient(url=url + "/api/v1/generate/ws") as client:
            speech = client.speak(text, play=True, block=False, voice_settings={"speed": 0.5})
            for _ in range(2000):
                if (speech.played or 0.0) >= 1.0:
                    break
                time.sleep(0.01)
            speech.cancel()
            try:
                speech.wait(30)
            except Exception as exc:  # Cancelled, reported to the test
                error = type(exc).__name__
            time.sleep(0.3)  # the sink's last sound reaches the monitor
            result = {"error": error, "played": speech.played, "duration": speech.duration,
                      "heard": speech.heard_text, "text": text,
                      "words": [[w.index, w.text, w.start, w.end, w.source] for w in speech.words]}
    recorder.stop()
    (work / "recorded.raw").write_bytes(recorder.samples().tobytes())
    result["threads"] = other_threads()
    return result


def main(argv: List[str]) -> int:
    name, work = argv[0], Path(argv[1])
    work.mkdir(parents=True, exist_ok=True)
    result = SCENARIOS[name](work)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
