"""Benchmark: ttsstream's AudioPlayer against a minimal hand-written PyAudio loop.

    python benchmarks/bench_playback.py [--reps N] [--json FILE]

Both play to the same paced device, a private PulseAudio daemon with a null sink that
this script starts and stops (see tests/playback_pulse.py), and the sink's monitor is
recorded with parec, every read stamped with time.monotonic(), so that one clock times
both the calls and the sound. Measured, interleaved in one run:

- stop -> silence: from the stop call to the last non-silent sample recorded. The
  audio was fed as 200 ms chunks, as a TTS server sends them.
- feed -> device, after stop / after finish: from handing a 100 ms chunk to the player
  to its first sample in the recording, the player being idle since a stop() (ours
  reopens the stream) or since a finished segment played out (ours restarts it).
- feed -> device, streaming: 50 ms chunks handed over at real-time pace, each up to
  40 ms late (network jitter); per chunk, from the hand-over to its first sample in
  the recording; and the silent gaps heard inside the stream (the jitter buffer's
  purpose), also for ours with prebuffer_ms=0.

Then the whole path, speak(play=True) against the bundled server (tone engine, on
loopback), against a hand-written client (websocket-client: connect, authenticate,
request, and each binary frame passed to a blocking ``stream.write`` on a PyAudio stream
opened once with its defaults):

- speak -> first sound: from the call to the first non-silent sample recorded.
- speech.cancel -> silence: cancel 0.5 s into playback; from the call to the last
  non-silent sample recorded (the baseline sets a flag and closes its socket; its thread
  calls ``stop_stream()`` once its current write returns).

The baseline player is what one writes by hand: a thread taking chunks from a queue.Queue and
passing each whole chunk to a blocking ``stream.write`` on a stream opened with PyAudio's
defaults (kept open and running); stop empties the queue and, once the current write
returns, calls ``stop_stream()`` (which drops the device buffer on ALSA) and
``start_stream()``.

Both latencies include the recorder's own delay (parec, a few ms), the same for both.

With ``--devices N``: N runs of each device scenario of tests/device_scenarios.py (a
process each, as the tests run them), ttsstream with its default 10 ms fade against
itself with ``fade_ms=0`` (a cut, as before the fades):

- level at stop / pause / speech.cancel: the RMS of the last 2 ms of sound before the
  silence, over that of the 20 ms that end 12 ms earlier (about 1 for a cut).
- stop / pause / speech.cancel -> last sound: from the call to the last non-silent
  sample recorded (barge-in latency).
- JACK 48 kHz: the time from the first feed of 1.0 s of audio (0.6 s at 24 kHz, 0.4 s
  at 16 kHz) to wait() returning, over the audio's duration.
- lost device -> PlaybackError: from stopping the JACK server (or killing the PulseAudio
  daemon) under a playing speech to its on_error.

Needs: pulseaudio, pulseaudio-utils, libasound2-plugins, portaudio19-dev and PyAudio;
jackd2 for --devices.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from playback_pulse import MonitorRecorder, PulseDaemon, pulse_missing  # noqa: E402

RATE = 24000


def chunk(value: int, seconds: float) -> bytes:
    """A chunk of constant value, so that the recording tells which chunk played when."""
    return np.full(int(round(seconds * RATE)), value, dtype="<i2").tobytes()


class Baseline:
    """The minimal hand-written player: a queue, a thread, one blocking write per chunk."""

    def __init__(self) -> None:
        import pyaudio

        self._pa = pyaudio.PyAudio()
        self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=RATE, output=True)
        self._queue: "queue.Queue[Optional[bytes]]" = queue.Queue()
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="baseline-player", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if not self._stopping.is_set():
                self._stream.write(item)
            if self._stopping.is_set() and self._queue.empty():
                self._stream.stop_stream()
                self._stream.start_stream()
                self._stopping.clear()

    def feed(self, pcm: bytes) -> None:
        self._queue.put(pcm)

    def finish(self) -> None:
        pass

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._queue.put(b"")  # wakes the loop so that it stops the stream

    def written_enough(self) -> bool:
        return self._queue.qsize() < 5

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)
        self._stream.close()
        self._pa.terminate()


# The tone engine is silent for spaces and punctuation: one long word sounds without a
# break, so the last sound heard is when playback stopped, not a pause between words.
SENTENCE = "a" * 150


class HandWrittenClient:
    """What one writes by hand with websocket-client and PyAudio, for the whole path."""

    def __init__(self, url: str) -> None:
        import pyaudio

        self._url = url
        self._pa = pyaudio.PyAudio()
        self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=RATE, output=True)
        self._thread: Optional[threading.Thread] = None
        self._cancelled = threading.Event()
        self._ws: Any = None

    def speak(self, text: str) -> None:
        """Start speaking ``text`` in the background (like speak(play=True, block=False))."""
        self.join()
        self._cancelled.clear()
        self._thread = threading.Thread(target=self._run, args=(text,), name="baseline-client")
        self._thread.start()

    def _run(self, text: str) -> None:
        import websocket

        ws = websocket.create_connection(self._url, timeout=10)
        self._ws = ws
        try:
            # As the protocol document's example: auth, then the request at once.
            ws.send(json.dumps({"token": "none", "model": "higgs2p5"}))
            ws.send(json.dumps({"text": text, "voice": "Linda"}))
            while not self._cancelled.is_set():
                frame = ws.recv()
                if isinstance(frame, bytes):
                    self._stream.write(frame)
                elif '"complete"' in frame:
                    break
        except Exception:  # the socket closed by cancel()
            pass
        finally:
            ws.close()
        if self._cancelled.is_set():
            # PortAudio calls on one stream from two threads corrupt memory: the
            # cancelling thread only sets the flag; this one drops the device buffer.
            self._stream.stop_stream()
            self._stream.start_stream()

    def cancel(self) -> None:
        self._cancelled.set()
        if self._ws is not None:
            self._ws.close()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(30)

    def close(self) -> None:
        self.join()
        self._stream.close()
        self._pa.terminate()


class OursClient:
    def __init__(self, url: str) -> None:
        from ttsstream import TTSClient

        self.client = TTSClient(url=url)
        self.client.player.start()
        self.speech: Any = None

    def speak(self, text: str) -> None:
        self.speech = self.client.speak(text, play=True, block=False)

    def cancel(self) -> None:
        self.speech.cancel()

    def join(self) -> None:
        with contextlib.suppress(Exception):
            self.speech.wait(30)

    def close(self) -> None:
        self.client.close()


def first_sound_time(recorder: MonitorRecorder, after: float) -> Optional[float]:
    samples = recorder.samples()
    times = recorder.sample_times()[: len(samples)]
    hits = np.flatnonzero((samples != 0) & (times >= after))
    return float(times[hits[0]]) if len(hits) else None


def measure_first_sound(client: Any, recorder: MonitorRecorder) -> float:
    time.sleep(0.3)
    t_speak = time.monotonic()
    client.speak("Hello.")
    client.join()
    time.sleep(0.2)
    first = first_sound_time(recorder, t_speak)
    if first is None:
        raise RuntimeError("the speech was never heard")
    return first - t_speak


def measure_cancel(client: Any, recorder: MonitorRecorder) -> float:
    time.sleep(0.3)
    client.speak(SENTENCE)

    def cancel() -> None:
        client.cancel()
        client.join()

    return time_to_silence(cancel, recorder)


class Ours:
    def __init__(self, **options: Any) -> None:
        from ttsstream.playback import AudioPlayer

        self.player = AudioPlayer(sample_rate=RATE, **options)
        self.player.start()
        self.feed = self.player.feed
        self.finish = self.player.finish
        self.stop = self.player.stop

    def close(self) -> None:
        self.player.close()


def first_time(recorder: MonitorRecorder, value: int, after: float) -> Optional[float]:
    samples = recorder.samples()
    times = recorder.sample_times()[: len(samples)]
    hits = np.flatnonzero((samples == value) & (times >= after - 0.5))
    return float(times[hits[0]]) if len(hits) else None


def last_sound_time(recorder: MonitorRecorder, after: float, before: float) -> Optional[float]:
    samples = recorder.samples()
    times = recorder.sample_times()[: len(samples)]
    window = (times >= after) & (times <= before) & (samples != 0)
    hits = np.flatnonzero(window)
    return float(times[hits[-1]]) if len(hits) else None


def measure_stop(player: Any, recorder: MonitorRecorder, value: int) -> float:
    for _ in range(10):
        player.feed(chunk(value, 0.2))
    player.finish()
    return time_to_silence(player.stop, recorder)


def time_to_silence(stop: Any, recorder: MonitorRecorder) -> float:
    """Half a second into playback, call ``stop()``; return the time from the call to
    the last sound recorded."""
    time.sleep(0.5 + np.random.uniform(0, 0.05))
    t_stop = time.monotonic()
    stop()
    time.sleep(0.4)
    last = last_sound_time(recorder, t_stop - 1.0, t_stop + 0.35)
    if last is None:
        raise RuntimeError("nothing was heard before the stop")
    return last - t_stop


def measure_idle_feed(player: Any, recorder: MonitorRecorder, value: int) -> float:
    time.sleep(0.3 + np.random.uniform(0, 0.02))
    t_feed = time.monotonic()
    player.feed(chunk(value, 0.1))
    player.finish()
    time.sleep(0.3)
    first = first_time(recorder, value, t_feed)
    if first is None:
        raise RuntimeError("the chunk was never heard")
    return first - t_feed


def measure_streaming(player: Any, recorder: MonitorRecorder, base_value: int,
                      count: int = 20) -> Dict[str, Any]:
    """Hand over ``count`` 50 ms chunks at real-time pace, each up to 40 ms late (network
    jitter, arrival order kept); return per-chunk latency and the silent gaps heard."""
    time.sleep(0.3)
    feeds = []
    jitter = np.random.uniform(0.0, 0.04, count)
    start = time.monotonic()
    for k in range(count):
        target = start + k * 0.05 + jitter[k]
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        feeds.append(time.monotonic())
        player.feed(chunk(base_value + k, 0.05))
    player.finish()
    time.sleep(0.6)
    samples = recorder.samples()
    times = recorder.sample_times()[: len(samples)]
    latencies = []
    for k, t_feed in enumerate(feeds):
        hits = np.flatnonzero((samples == base_value + k) & (times >= t_feed - 0.5))
        if len(hits):
            latencies.append(float(times[hits[0]]) - t_feed)
    ours = np.flatnonzero((samples >= base_value) & (samples < base_value + count))
    gaps = 0
    if len(ours):
        inner = samples[ours[0]:ours[-1] + 1]
        silent = np.concatenate(([0], (inner == 0).astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(silent))
        gaps = int(np.sum((edges[1::2] - edges[::2]) >= int(0.002 * RATE)))
    return {"latencies": latencies, "gaps": gaps}


def summary(values: List[float], scale: float = 1000.0) -> Dict[str, float]:
    """Median and p90 of ``values`` times ``scale`` (1000: seconds to milliseconds)."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"median": statistics.median(ordered) * scale, "p90": p90 * scale, "n": len(ordered),
            "unit": "ms" if scale == 1000.0 else "count"}


@contextlib.contextmanager
def quiet_stderr(enabled: bool) -> Iterator[None]:
    """Hide ALSA's and JACK's probing messages (PortAudio prints them on fd 2)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


STREAMING = "feed -> device, streaming"
STREAMING_0 = "  streaming, ours prebuffer_ms=0"
GAPS = "gaps >= 2 ms per 1 s streamed"  # silent runs inside the streamed audio
GAPS_0 = "  gaps, ours prebuffer_ms=0"
FIRST_SOUND = "speak -> first sound (whole path)"
CANCEL = "speech.cancel -> silence"


def run(reps: int, quiet: bool) -> Dict[str, Dict[str, Dict[str, float]]]:
    rows = ["stop -> silence", "feed -> device, after stop", "feed -> device, after finish",
            STREAMING, STREAMING_0, GAPS, GAPS_0, FIRST_SOUND, CANCEL]
    results: Dict[str, Dict[str, List[float]]] = {
        row: {"ttsstream": [], "baseline": []} for row in rows}
    with tempfile.TemporaryDirectory(prefix="bench-playback-") as root, PulseDaemon(Path(root)) as daemon:
        os.environ.update(daemon.env)  # before PortAudio first reads ALSA's configuration
        recorder = MonitorRecorder(daemon.env)
        try:
            if not recorder.wait_started():
                raise RuntimeError("parec delivered nothing")
            with quiet_stderr(quiet):
                players: Dict[str, Any] = {"ttsstream": Ours(), "baseline": Baseline(),
                                           "ttsstream0": Ours(prebuffer_ms=0)}
                try:
                    value = 1000
                    for rep in range(reps):
                        order = ["ttsstream", "baseline"] if rep % 2 == 0 else ["baseline", "ttsstream"]
                        for name in order:
                            player = players[name]
                            value += 1
                            results["stop -> silence"][name].append(measure_stop(player, recorder, value))
                            value += 1
                            results["feed -> device, after stop"][name].append(
                                measure_idle_feed(player, recorder, value))
                            value += 1
                            results["feed -> device, after finish"][name].append(
                                measure_idle_feed(player, recorder, value))
                        if rep % 3 == 0:  # fewer runs: each yields 20 chunks
                            for name, row, gap_row in (("ttsstream", STREAMING, GAPS),
                                                       ("baseline", STREAMING, GAPS),
                                                       ("ttsstream0", STREAMING_0, GAPS_0)):
                                value += 100
                                streamed = measure_streaming(players[name], recorder, value)
                                column = "baseline" if name == "baseline" else "ttsstream"
                                results[row][column].extend(streamed["latencies"])
                                results[gap_row][column].append(streamed["gaps"])
                    results[STREAMING_0]["baseline"] = results[STREAMING]["baseline"]
                    results[GAPS_0]["baseline"] = results[GAPS]["baseline"]
                finally:
                    for player in players.values():
                        player.close()
                run_whole_path(reps, recorder, results)
        finally:
            recorder.stop()
    table = {}
    for row, columns in results.items():
        scale = 1.0 if row in (GAPS, GAPS_0) else 1000.0
        table[row] = {name: summary(values, scale) for name, values in columns.items()}
    return table


def run_whole_path(reps: int, recorder: MonitorRecorder, results: Dict[str, Dict[str, List[float]]]) -> None:
    from ttsstream.server import LocalServer

    with LocalServer(engine="tone") as url:
        clients = {"ttsstream": OursClient(url + "/api/v1/generate/ws"),
                   "baseline": HandWrittenClient(url + "/api/v1/generate/ws")}
        try:
            for rep in range(reps):
                order = ["ttsstream", "baseline"] if rep % 2 == 0 else ["baseline", "ttsstream"]
                for name in order:
                    results[FIRST_SOUND][name].append(measure_first_sound(clients[name], recorder))
                    results[CANCEL][name].append(measure_cancel(clients[name], recorder))
        finally:
            for client in clients.values():
                client.close()


RESOLUTION_MS = 5.0  # the recorder reads 5 ms at a time


def print_table(table: Dict[str, Dict[str, Dict[str, float]]]) -> None:
    header = (f"{'measure':34} {'ttsstream median':>16} {'p90':>9} {'baseline median':>16} "
              f"{'p90':>9} {'ratio':>7} {'n (ours/base)':>14}")
    print(header)
    print("-" * len(header))
    for row, columns in table.items():
        ours, base = columns["ttsstream"], columns["baseline"]
        unit = "ms" if ours["unit"] == "ms" else "  "
        if ours["unit"] == "ms" and max(abs(ours["median"]), abs(base["median"])) < RESOLUTION_MS:
            ratio = "~"  # both below the recorder's resolution
        elif base["median"] > 0:
            ratio = f"{ours['median'] / base['median']:.2f}"
        else:
            ratio = "n/a"
        print(f"{row:34} {ours['median']:14.1f}{unit} {ours['p90']:7.1f}{unit} "
              f"{base['median']:14.1f}{unit} {base['p90']:7.1f}{unit} {ratio:>7} "
              f"{ours['n']:>7}/{base['n']:<6}")
    print("ratio = ttsstream median / baseline median (below 1: ttsstream is faster); "
          f"~ = both medians within the recorder's {RESOLUTION_MS:g} ms resolution")


def device_scenario(name: str, work: Path, env: Dict[str, str]) -> Dict[str, Any]:
    """Run one scenario of tests/device_scenarios.py in a process of its own."""
    import subprocess

    env = dict(env, PYTHONPATH=str(HERE.parent))
    process = subprocess.run([sys.executable, str(HERE.parent / "tests" / "device_scenarios.py"), name, str(work)],
                             env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"scenario {name} failed: {process.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run_devices(reps: int) -> Dict[str, Dict[str, Dict[str, float]]]:
    """The device measures (see the module docstring), ours against fade_ms=0."""
    from device_scenarios import end_level, sound_runs
    from playback_pulse import JackDaemon, jack_missing

    missing = jack_missing()
    if missing:
        raise RuntimeError(f"cannot measure devices: {missing}")
    rows: Dict[str, Dict[str, List[float]]] = {}

    def add(row: str, column: str, value: Any) -> None:
        if value is not None:
            rows.setdefault(row, {"ttsstream": [], "baseline": []})[column].append(float(value))

    with tempfile.TemporaryDirectory(prefix="bench-devices-") as root:
        for rep in range(reps):
            with PulseDaemon(Path(root) / f"pulse{rep}") as daemon:
                for column, fade in (("ttsstream", "10"), ("baseline", "0")):
                    work = Path(root) / f"fades{rep}{column}"
                    result = device_scenario("pulse_fades", work, dict(daemon.env, FADE_MS=fade))
                    recorded = np.frombuffer((work / "recorded.raw").read_bytes(), "<i2")
                    runs = sound_runs(recorded, int(0.1 * RATE))
                    for name, index in (("stop", 0), ("pause", 1), ("speech.cancel", 3)):
                        if len(runs) == 4:
                            add(f"level at {name} (last 2 ms)", column,
                                end_level(recorded[runs[index][0]:runs[index][1]]))
                        add(f"{name} -> last sound", column, result[f"{name.split('.')[-1]}_to_silence"])
            with JackDaemon(48000) as jack:
                result = device_scenario("jack_rate", Path(root) / f"rate{rep}", jack.env)
                add("JACK 48 kHz: playing time / duration", "ttsstream", result["elapsed"] / result["duration"])
            with JackDaemon(24000) as jack:
                result = device_scenario("jack_lost", Path(root) / f"lost{rep}",
                                         dict(jack.env, JACK_PID=str(jack.pid)))
                add("lost JACK -> PlaybackError", "ttsstream", result["lost_to_error"])
            result = device_scenario("pulse_restart", Path(root) / f"restart{rep}", dict(os.environ))
            add("killed PulseAudio -> PlaybackError", "ttsstream", result["lost_to_error"])
    table = {}
    for row, columns in rows.items():
        scale = 1.0 if row.startswith(("level", "JACK")) else 1000.0
        table[row] = {name: summary(values or [float("nan")], scale) for name, values in columns.items()}
    return table


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=12, help="repetitions of each measure (default 12)")
    parser.add_argument("--json", help="also write the table as JSON to this file")
    parser.add_argument("--verbose", action="store_true", help="show PortAudio's ALSA/JACK messages")
    parser.add_argument("--devices", type=int, metavar="N", default=0,
                        help="instead: N runs of the device measures (fades, barge-in, JACK, lost devices); "
                             "the baseline column is ttsstream with fade_ms=0")
    args = parser.parse_args(argv)
    missing = pulse_missing()
    if missing:
        print(f"cannot benchmark playback: {missing}", file=sys.stderr)
        return 2
    table = run_devices(args.devices) if args.devices else run(args.reps, quiet=not args.verbose)
    print_table(table)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
