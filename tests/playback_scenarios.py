"""Playback scenarios, each run in a process of its own by tests/test_playback.py.

    python tests/playback_scenarios.py SCENARIO WORKDIR

ALSA reads its configuration once per process, so each scenario runs with the HOME (and
for PulseAudio the PULSE_SERVER) that the test prepared. A scenario drives a real
AudioPlayer on a real PortAudio device, saves what the test needs to check in WORKDIR
(what it fed, what the device recorded) and prints one line ``RESULT {json}`` with the
facts it observed. The test asserts; scenarios only record.
"""

from __future__ import annotations

import json
import os
import shutil
import signal as os_signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

if sys.argv[1:2] == ["no_pyaudio"]:
    sys.modules["pyaudio"] = None  # type: ignore[assignment]  # makes `import pyaudio` fail

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playback_pulse import MonitorRecorder  # noqa: E402

from ttsstream import TTSClient  # noqa: E402
from ttsstream.errors import PlaybackError  # noqa: E402
from ttsstream.playback import AudioPlayer, output_devices  # noqa: E402
from ttsstream.server import LocalServer  # noqa: E402

RATE = 24000
SCENARIOS: Dict[str, Callable[[Path], Dict[str, Any]]] = {}


def scenario(function: Callable[[Path], Dict[str, Any]]) -> Callable[[Path], Dict[str, Any]]:
    SCENARIOS[function.__name__] = function
    return function


def signal(seconds: float, seed: int, rate: int = RATE) -> bytes:
    """Random 16-bit PCM with no zero sample (so silence and audio never look alike)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    values = rng.integers(1, 30000, n) * rng.choice(np.array([-1, 1]), n)
    return values.astype("<i2").tobytes()


def chunks(data: bytes, seed: int, largest: int = 4000) -> List[bytes]:
    """Cut ``data`` into random even-sized pieces, as a server's frames would arrive."""
    rng = np.random.default_rng(seed)
    pieces, position = [], 0
    while position < len(data):
        size = int(rng.integers(1, largest // 2 + 1)) * 2
        pieces.append(data[position:position + size])
        position += size
    return pieces


def snapshot(source: Path, target: Path) -> None:
    if source.exists():
        shutil.copyfile(source, target)
    else:
        target.write_bytes(b"")


def other_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t is not threading.main_thread()]


def wait_played(player: AudioPlayer, nbytes: int, timeout: float = 20.0) -> None:
    """Wait until the player has written ``nbytes`` to the device (a guard, not a measure)."""
    deadline = time.monotonic() + timeout
    while player.played_bytes < nbytes:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {player.played_bytes} of {nbytes} bytes played in {timeout} s")
        time.sleep(0.005)


def error_text(call: Callable[[], Any]) -> Dict[str, Any]:
    try:
        call()
    except Exception as exc:  # recorded for the test to judge
        return {"type": type(exc).__name__, "message": str(exc), "is_playback_error": isinstance(exc, PlaybackError)}
    return {"type": None, "message": "", "is_playback_error": False}


# ------------------------------------------------------------- ALSA file device

OUT = "out.raw"  # the tests' .asoundrc writes here (relative to WORKDIR)


@scenario
def file_exact(work: Path) -> Dict[str, Any]:
    data = signal(1.37, seed=1)
    (work / "fed.raw").write_bytes(data)
    player = AudioPlayer(sample_rate=RATE)
    for piece in chunks(data, seed=2):
        player.feed(piece)
    player.finish()
    player.wait(30)
    snapshot(work / OUT, work / "at_wait.raw")
    result = {"played_bytes": player.played_bytes, "underruns": player.underruns}
    player.close()
    player.close()
    snapshot(work / OUT, work / "after_close.raw")
    result["threads"] = other_threads()
    return result


@scenario
def file_volume(work: Path) -> Dict[str, Any]:
    data = signal(0.5, seed=3)
    extremes = np.array([32767, -32768, 1, -1, 3, -3, 32766, -32767], dtype="<i2").tobytes()
    data = extremes + data
    (work / "fed.raw").write_bytes(data)
    with AudioPlayer(sample_rate=RATE, volume=0.5) as player:
        player.feed(data)
        player.finish()
        player.wait(30)
        snapshot(work / OUT, work / "at_wait.raw")
        volume = player.volume
    return {"volume": volume, "threads": other_threads()}


@scenario
def file_stop(work: Path) -> Dict[str, Any]:
    first = signal(2.0, seed=4)
    second = signal(0.6, seed=5)
    (work / "first.raw").write_bytes(first)
    (work / "second.raw").write_bytes(second)
    player = AudioPlayer(sample_rate=RATE)
    player.start()

    # A wait() pending when stop() drops the audio returns.
    player.pause()
    player.feed(first)
    player.finish()
    waited: List[str] = []

    def waiter() -> None:
        try:
            player.wait(30)
            waited.append("returned")
        except Exception as exc:
            waited.append(f"raised {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=waiter, name="scenario-waiter")
    thread.start()
    time.sleep(0.2)
    played_while_paused = player.played_bytes
    player.stop()
    thread.join(30)
    player.resume()

    # stop() in the middle of playback, then a new segment.
    pieces = chunks(first, seed=6, largest=9600)
    for index, piece in enumerate(pieces):
        player.feed(piece)
        if index == len(pieces) // 2:
            player.stop()
    player.stop()
    snapshot(work / OUT, work / "after_stop.raw")
    player.feed(second)
    player.finish()
    player.wait(30)
    snapshot(work / OUT, work / "at_wait.raw")
    player.close()
    return {"waited": waited, "played_while_paused": played_while_paused, "threads": other_threads()}


@scenario
def file_pause(work: Path) -> Dict[str, Any]:
    data = signal(1.0, seed=7)
    (work / "fed.raw").write_bytes(data)
    player = AudioPlayer(sample_rate=RATE)
    player.start()
    player.pause()
    for piece in chunks(data, seed=8):
        player.feed(piece)
    player.finish()
    timed_out = error_text(lambda: player.wait(0.3))  # cannot finish while paused
    paused = {"played_bytes": player.played_bytes, "paused": player.paused}
    snapshot(work / OUT, work / "while_paused.raw")
    player.resume()
    player.wait(30)
    snapshot(work / OUT, work / "at_wait.raw")
    result = {"while_paused": paused, "underruns": player.underruns, "paused_after": player.paused,
              "timed_out": timed_out}
    player.close()
    result["threads"] = other_threads()
    return result


@scenario
def file_rate(work: Path) -> Dict[str, Any]:
    first = signal(0.5, seed=9, rate=24000)
    second = signal(0.5, seed=10, rate=16000)
    (work / "first.raw").write_bytes(first)
    (work / "second.raw").write_bytes(second)
    player = AudioPlayer(sample_rate=24000)
    player.feed(first)
    player.set_sample_rate(16000)
    rate_after_set = player.sample_rate
    player.feed(second)
    player.finish()
    player.wait(30)
    player.close()
    return {"rate_after_set": rate_after_set, "threads": other_threads()}


@scenario
def file_slow_feed(work: Path) -> Dict[str, Any]:
    pieces = [signal(0.05, seed=20 + k) for k in range(5)]
    (work / "fed.raw").write_bytes(b"".join(pieces))
    player = AudioPlayer(sample_rate=RATE, prebuffer_ms=20)
    for piece in pieces:
        player.feed(piece)
        time.sleep(0.1)
    player.finish()
    player.wait(30)
    snapshot(work / OUT, work / "at_wait.raw")
    result = {"underruns": player.underruns, "underrun_ms": player.underrun_ms,
              "played_bytes": player.played_bytes}
    player.close()
    result["threads"] = other_threads()
    return result


@scenario
def file_devices(work: Path) -> Dict[str, Any]:
    devices = output_devices()
    default = next(d for d in devices if d["name"] == "default")
    data = signal(0.2, seed=11)
    played = {}
    for key, device in (("by_name", "DEFAULT"), ("by_index", default["index"])):
        with AudioPlayer(device=device) as player:
            player.feed(data)
            player.finish()
            player.wait(30)
            played[key] = player.played_bytes
    unknown_name = AudioPlayer(device="no such device")
    unknown_index = AudioPlayer(device=99)
    result = {
        "devices": devices,
        "played": played,
        "unknown_name": error_text(lambda: unknown_name.feed(data)),
        "unknown_index": error_text(lambda: unknown_index.start()),
    }
    unknown_name.close()
    unknown_index.close()
    result["threads"] = other_threads()
    return result


@scenario
def file_close(work: Path) -> Dict[str, Any]:
    data = signal(3.0, seed=12)
    player = AudioPlayer(sample_rate=RATE)
    player.pause()  # keeps audio queued, so close() has something to drop
    player.feed(data)
    player.finish()
    closer = threading.Thread(target=player.close, name="scenario-closer")
    closer.start()
    closer.join(30)
    player.close()
    result = {
        "closed": player.closed,
        "threads_after_close": other_threads(),
        "feed_after_close": error_text(lambda: player.feed(data)),
        "wait_after_close": error_text(lambda: player.wait(5)),
    }
    unused = AudioPlayer()
    unused.close()
    unused.close()
    result["threads"] = other_threads()
    return result


@scenario
def missing_device(work: Path) -> Dict[str, Any]:
    player = AudioPlayer()
    result = {"feed": error_text(lambda: player.feed(b"\x00\x00")),
              "start": error_text(player.start),
              "devices": error_text(output_devices)}
    player.close()
    result["threads"] = other_threads()
    return result


@scenario
def no_pyaudio(work: Path) -> Dict[str, Any]:
    player = AudioPlayer()
    result = {"feed": error_text(lambda: player.feed(b"\x00\x00")),
              "devices": error_text(output_devices),
              "pyaudio_importable": "pyaudio" in sys.modules and sys.modules["pyaudio"] is not None}
    player.close()
    result["threads"] = other_threads()
    return result


# ------------------------------------------------------- PulseAudio (paced) device

def recording(work: Path, recorder: MonitorRecorder) -> None:
    recorder.stop()
    (work / "recorded.raw").write_bytes(recorder.samples().tobytes())


def start_recorder() -> MonitorRecorder:
    recorder = MonitorRecorder(dict(os.environ))
    if not recorder.wait_started():
        recorder.stop()
        raise RuntimeError("parec delivered nothing from the monitor")
    return recorder


@scenario
def pulse_wait(work: Path) -> Dict[str, Any]:
    data = signal(1.0, seed=13)
    tiny = signal(0.005, seed=14)  # shorter than a device period
    (work / "fed.raw").write_bytes(data + tiny)
    recorder = start_recorder()
    player = AudioPlayer(sample_rate=RATE)
    player.start()
    started = time.monotonic()
    player.feed(data)
    player.finish()
    player.wait(30)
    elapsed = time.monotonic() - started
    player.feed(tiny)
    player.finish()
    player.wait(30)
    result = {"elapsed": elapsed, "duration": len(data) / 2 / RATE,
              "underruns": player.underruns}
    time.sleep(0.2)
    player.close()
    recording(work, recorder)
    result["threads"] = other_threads()
    return result


@scenario
def pulse_underrun(work: Path) -> Dict[str, Any]:
    pieces = [signal(0.1, seed=30 + k) for k in range(6)]
    (work / "fed.raw").write_bytes(b"".join(pieces))
    recorder = start_recorder()
    player = AudioPlayer(sample_rate=RATE, prebuffer_ms=50)
    player.start()
    for piece in pieces:  # 100 ms of audio every 250 ms: slower than real time
        player.feed(piece)
        time.sleep(0.25)
    player.finish()
    player.wait(30)
    result = {"underruns": player.underruns, "underrun_ms": player.underrun_ms, "pieces": len(pieces)}
    time.sleep(0.2)
    player.close()
    recording(work, recorder)
    result["threads"] = other_threads()
    return result


def feed_in_steps(player: AudioPlayer, pcm: bytes, seconds: float = 0.2) -> None:
    """Feed ``pcm`` in pieces of ``seconds``, as a stream arriving would."""
    step = int(seconds * RATE) * 2
    for position in range(0, len(pcm), step):
        player.feed(pcm[position:position + step])


@scenario
def pulse_stop(work: Path) -> Dict[str, Any]:
    first = signal(3.0, seed=15)
    second = -np.frombuffer(signal(0.3, seed=16), "<i2")
    second = second.astype("<i2").tobytes()
    (work / "first.raw").write_bytes(first)
    (work / "second.raw").write_bytes(second)
    recorder = start_recorder()
    # 40 ms blocks give the device a buffer of a few blocks (~120 ms): what it still
    # holds when stop() comes is clearly not played.
    player = AudioPlayer(sample_rate=RATE, block_ms=40, fade_ms=0)  # a cut: bit-exact up to it
    player.start()
    feed_in_steps(player, first)
    wait_played(player, int(0.3 * RATE) * 2)
    player.stop()
    written = player.played_bytes
    time.sleep(0.4)  # silence expected here
    player.feed(second)
    player.finish()
    player.wait(30)
    time.sleep(0.2)
    player.close()
    recording(work, recorder)
    return {"written_before_stop": written, "threads": other_threads()}


@scenario
def pulse_stop_faded(work: Path) -> Dict[str, Any]:
    """A stop with the default fade: what the player counts as played, against the
    recording (the fade makes the recording differ from what was fed)."""
    fed = signal(3.0, seed=18)
    (work / "fed.raw").write_bytes(fed)
    recorder = start_recorder()
    player = AudioPlayer(sample_rate=RATE)
    player.start()
    feed_in_steps(player, fed)
    wait_played(player, int(0.5 * RATE) * 2)
    player.stop()
    counted = player.played_bytes
    time.sleep(0.3)  # the fade and the monitor's latency reach the recording
    player.close()
    recording(work, recorder)
    return {"counted": counted, "threads": other_threads()}


@scenario
def pulse_pause(work: Path) -> Dict[str, Any]:
    data = signal(1.0, seed=17)
    (work / "fed.raw").write_bytes(data)
    recorder = start_recorder()
    player = AudioPlayer(sample_rate=RATE, fade_ms=0)  # no ramps: every sample bit-exact
    player.start()
    player.feed(data)
    player.finish()
    wait_played(player, int(0.3 * RATE) * 2)
    player.pause()
    time.sleep(0.4)  # silence expected here
    player.resume()
    player.wait(30)
    result = {"underruns": player.underruns, "underrun_ms": player.underrun_ms}
    time.sleep(0.2)
    player.close()
    recording(work, recorder)
    result["threads"] = other_threads()
    return result


# ------------------------------------------------ speak(play=True) on both devices

SENTENCE = "Streaming speech, played as it arrives."


class Events:
    """What a speech's callbacks saw, and when (seconds since the events were made)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.log: List[Any] = []

    def stamp(self, name: str) -> None:
        self.log.append([name, time.monotonic() - self.start, threading.current_thread().name])

    def callbacks(self) -> Dict[str, Any]:
        return {"on_complete": lambda speech: self.stamp("complete"),
                "on_error": lambda error: self.stamp(f"error {type(error).__name__}")}


def save_pcm(work: Path, name: str, pcm: bytes) -> None:
    (work / name).write_bytes(pcm)


@scenario
def speak_file_exact(work: Path) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    # Odd frame sizes split samples across frames: the device must still get whole ones.
    with LocalServer(engine="tone", frame_bytes=1001, shunyalabs_metadata=True,
                     shunyalabs_sample_rate=16000) as url:
        with TTSClient(url=url + "/api/v1/generate/ws") as client:
            events = Events()
            speech = client.speak(SENTENCE, play=True, **events.callbacks())
            events.stamp("returned")
            snapshot(work / OUT, work / "at_return.raw")
            save_pcm(work, "pcm.raw", speech.pcm)
            result["eigenai"] = {"events": events.log, "done": speech.done, "underruns": speech.underruns,
                                 "rate": speech.sample_rate, "player_rate": client.player.sample_rate}
            client.player.volume = 0.5
            quiet = client.speak("Half as loud.", play=True)
            snapshot(work / OUT, work / "at_quiet.raw")
            save_pcm(work, "quiet.raw", quiet.pcm)
        with TTSClient("shunyalabs", url=url + "/ws") as client:
            speech = client.speak("Sixteen kilohertz.", play=True)
            snapshot(work / OUT, work / "at_shunyalabs.raw")
            save_pcm(work, "shunyalabs.raw", speech.pcm)
            result["shunyalabs"] = {"rate": speech.sample_rate, "player_rate": client.player.sample_rate}
    result["threads"] = other_threads()
    return result


@scenario
def speak_file_output(work: Path) -> Dict[str, Any]:
    """Chunks in 8 kHz μ-law frames while the speech plays on the file device and is saved."""
    from ttsstream import AudioFormat

    frames: List[bytes] = []
    with LocalServer(engine="tone", frame_bytes=1001) as url:
        with TTSClient(url=url + "/api/v1/generate/ws", output=AudioFormat(8000, "mulaw", 20)) as client:
            speech = client.speak(SENTENCE, play=True, on_audio=lambda chunk: frames.append(chunk.data))
            snapshot(work / OUT, work / "at_return.raw")
            save_pcm(work, "pcm.raw", speech.pcm)
            speech.save(work / "speech.flac")
            result = {"frames": [len(frame) for frame in frames], "rate": speech.sample_rate,
                      "player_rate": client.player.sample_rate}
    result["threads"] = other_threads()
    return result


@scenario
def speak_file_stream(work: Path) -> Dict[str, Any]:
    """A text stream played on the file device; each segment's on_segment notes how much
    audio the device had been given when it ran."""
    text = "The first sentence of the stream. A second one follows it. And a third, the last."
    cues: List[Any] = []
    with LocalServer(engine="tone") as url:
        with TTSClient(url=url + "/api/v1/generate/ws") as client:
            def on_segment(segment: Any) -> None:
                cues.append([segment.index, client.player.played_bytes, threading.current_thread().name])

            pieces = [text[i:i + 5] for i in range(0, len(text), 5)]
            speech = client.speak(iter(pieces), play=True, on_segment=on_segment)
            snapshot(work / OUT, work / "at_return.raw")
            save_pcm(work, "pcm.raw", speech.pcm)
            segments = [[s.index, s.text, s.start, s.end] for s in speech.segments]
    return {"cues": cues, "segments": segments, "rate": 24000, "threads": other_threads()}


@scenario
def speak_file_queue(work: Path) -> Dict[str, Any]:
    texts = ["First of three.", "Second, a little longer than the first.", "Third."]
    with LocalServer(engine="tone") as url:
        with TTSClient(url=url + "/api/v1/generate/ws") as client:
            # Three speeches at once: their streams overlap, their playback must not.
            speeches = [client.speak(text, play=True, block=False) for text in texts]
            for speech in speeches:
                speech.wait(30)
            snapshot(work / OUT, work / "at_wait.raw")
            for index, speech in enumerate(speeches):
                save_pcm(work, f"pcm{index}.raw", speech.pcm)
            # stop() while paused: the next speech plays, not held by the old pause.
            client.player.pause()
            held = client.speak("Held by the pause.", play=True, block=False)
            client.stop()
            held_error = error_text(lambda: held.wait(10))
            after_stop = client.speak("After the stop.", play=True, block=False)
            after_stop_error = error_text(lambda: after_stop.wait(10))
            paused = client.player.paused
    return {"count": len(texts), "held": held_error, "after_stop": after_stop_error, "paused": paused,
            "threads": other_threads()}


@scenario
def speak_file_player_fails(work: Path) -> Dict[str, Any]:
    # The player fails mid-stream (its owner closes it; a device failure takes the same
    # path): the speech ends with that error, and no audio callback comes after it.
    events: List[Any] = []
    with LocalServer(engine="tone", realtime=1.0, frame_bytes=2400) as url:
        player = AudioPlayer()
        with TTSClient(url=url + "/api/v1/generate/ws", player=player) as client:
            speech = client.speak("A sentence that is still streaming.", play=True, block=False,
                                  on_audio=lambda chunk: events.append("audio"),
                                  on_complete=lambda s: events.append("complete"),
                                  on_error=lambda e: events.append(f"error {type(e).__name__}"))
            while speech.duration < 0.3:
                time.sleep(0.01)
            player.close()
            waited = error_text(lambda: speech.wait(10))
            # An observation window, not synchronisation: the server keeps sending for
            # another second, so any audio callback after on_error would show up here.
            time.sleep(0.5)
            result = {"wait": waited, "events": events, "error": type(speech.error).__name__}
        # Cancelling one speech keeps a pause; client.stop() lifts it.
        with TTSClient(url=url + "/api/v1/generate/ws") as client:
            client.player.pause()
            first = client.speak("Paused.", play=True, block=False)
            first.cancel()
            result["paused_after_cancel"] = client.player.paused
            client.stop()
            result["paused_after_stop"] = client.player.paused
    result["threads"] = other_threads()
    return result


@scenario
def speak_no_device(work: Path) -> Dict[str, Any]:
    server = LocalServer(engine="tone").start()
    try:
        with TTSClient(url=server.eigenai_url) as client:
            error = error_text(lambda: client.speak(SENTENCE, play=True))
            connections_after_error = server.connections
            after = client.speak("Still works without playback.")
            result = {"error": error, "connections_after_error": connections_after_error,
                      "after_bytes": len(after.pcm)}
    finally:
        server.stop()
    result["threads"] = other_threads()
    return result


@scenario
def speak_pulse(work: Path) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    recorder = start_recorder()
    with LocalServer(engine="tone") as url, AudioPlayer(fade_ms=0) as player:
        # No fades: what was heard is compared bit for bit with what was received.
        with TTSClient(url=url + "/api/v1/generate/ws", player=player) as client:
            client.player.start()
            # 1. A blocking speak returns when the last sample has played, after on_complete.
            events = Events()
            speech = client.speak("One blocking sentence, played to the end.", play=True, **events.callbacks())
            events.stamp("returned")
            save_pcm(work, "blocking.raw", speech.pcm)
            result["blocking"] = {"events": events.log, "duration": speech.duration,
                                  "underruns": speech.underruns}
            time.sleep(0.3)
            # 2. cancel() during playback silences it; the next speech plays intact.
            events = Events()
            before = client.player.played_bytes
            long = client.speak("A long sentence that will be cut off well before its end, " * 2,
                                play=True, block=False, **events.callbacks())
            wait_played(client.player, before + int(0.5 * RATE) * 2)
            events.stamp("cancel")
            long.cancel()
            result["cancelled"] = {"wait": error_text(lambda: long.wait(10)), "events": events.log,
                                   "done": long.done}
            save_pcm(work, "cancelled.raw", long.pcm)
            time.sleep(0.4)  # silence expected here
            after = client.speak("After the cancel.", play=True)
            save_pcm(work, "after_cancel.raw", after.pcm)
            time.sleep(0.3)
            # 3. client.stop() silences a speech whose stream has already ended.
            before = client.player.played_bytes
            tail = client.speak("The stream ends long before this sentence has been played.",
                                play=True, block=False)
            queued = client.speak("Queued behind it, never heard.", play=True, block=False)
            wait_played(client.player, before + int(0.5 * RATE) * 2)
            stream_done = tail.error is None and tail._final
            client.stop()
            result["stopped"] = {"stream_done_before_stop": stream_done,
                                 "tail": error_text(lambda: tail.wait(10)),
                                 "queued": error_text(lambda: queued.wait(10))}
            save_pcm(work, "stopped.raw", tail.pcm)
            time.sleep(0.4)
            # 4. Ctrl-C during a blocking speak cancels it and silences playback.
            # A process started in the background inherits SIGINT ignored: restore Ctrl-C.
            os_signal.signal(os_signal.SIGINT, os_signal.default_int_handler)
            timer = threading.Timer(0.5, _interrupt_main)
            timer.start()
            try:
                client.speak("Interrupted by control C in the middle of this sentence.", play=True)
                result["interrupt"] = "not interrupted"
            except KeyboardInterrupt:
                result["interrupt"] = "KeyboardInterrupt"
            timer.join()
            time.sleep(0.4)
            last = client.speak("The end.", play=True)
            save_pcm(work, "last.raw", last.pcm)
            time.sleep(0.2)
    recording(work, recorder)
    result["threads"] = other_threads()
    return result


def _interrupt_main() -> None:
    os.kill(os.getpid(), os_signal.SIGINT)  # a real SIGINT, as Ctrl-C sends


@scenario
def speak_pulse_underrun(work: Path) -> Dict[str, Any]:
    # The server sends audio at half real time: playback must run dry and say so.
    with LocalServer(engine="tone", realtime=0.5) as url:
        with TTSClient(url=url + "/api/v1/generate/ws", player=AudioPlayer(prebuffer_ms=50)) as client:
            speech = client.speak("Slower than real time.", play=True)
            result = {"underruns": speech.underruns, "underrun_ms": speech.underrun_ms,
                      "duration": speech.duration}
            client.player.close()
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
