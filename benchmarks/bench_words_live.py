"""Word timing in a running client: how soon words are ready, what ``on_word`` costs
first audio, and whether ``heard_text`` after a cancel tells the truth.

    python benchmarks/bench_words_live.py [--quick] [--runs N] [--cancels N] [--json FILE]

Three measures, each printed as a row of one table:

- **timing ready**: over real sockets against a PCM-only server (the bundled
  ``LocalServer`` with an engine that plays eSpeak NG audio of the text and reports no
  word times, so the times come from the aligner), with ``on_word`` set and no play:
  from the moment a unit's last audio chunk reached ``on_audio`` to the moment its first
  word reached ``on_word``; for plain speeches, and for the units of text streams fed one
  sentence at a time, 0.3 s apart (as an LLM writes). Median and p95, ms.
- **first audio, on_word vs without**: ``speech.first_audio_latency`` against the bundled
  local server (eSpeak NG, exact word times), ``--runs`` alternating pairs on one warm
  client; the medians and their ratio.
- **cancels**: ``--cancels`` speeches of the tone engine (exact word times) played with
  ``play=True`` to a private PulseAudio null sink, each cancelled at a random moment of
  its playback. The sink's monitor is recorded; the audio truly heard is the speech's
  audio as far as the recording matches it sample for sample (the tone engine's audio
  is known exactly, and a 24 kHz stream reaches the 24 kHz sink bit for bit), so the
  truly heard words are those that end within it. Against them: words reported heard
  (``end <= speech.played``, as ``heard_text``) that were not, and words heard but not
  reported. Runs in a child process whose ALSA configuration points at the daemon.

Imports: ttsstream (client, server), numpy, soxr, the standard library; bench_words
(the eSpeak NG source) and tests/playback_pulse.py (the daemon and the recorder).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import soxr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_words import ENGLISH, EspeakTruth  # noqa: E402
from ttsstream import TTSClient  # noqa: E402
from ttsstream.server import LocalServer, tone_pcm  # noqa: E402
from ttsstream.words import tokenize  # noqa: E402

RATE = 24000
FEED_GAP = 0.3  # seconds between a text stream's sentences


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# -- timing ready ---------------------------------------------------------------------------


class SpokenEngine:
    """A server engine that plays eSpeak NG audio of the text (another voice than the
    aligner's reference) and reports no word times: PCM and the end marker only."""

    name = "spoken"

    def __init__(self) -> None:
        self._truth = EspeakTruth()
        self._lock = threading.Lock()  # one eSpeak NG instance: one synthesis at a time
        self._cache: Dict[str, bytes] = {}

    def pcm(self, text: str) -> bytes:
        key = text.strip()
        with self._lock:
            if key not in self._cache:
                samples, rate, _ = self._truth.speak(key, "en-us+f3", 160, 60)
                out = soxr.resample(samples, rate, RATE) if rate != RATE else samples
                self._cache[key] = np.asarray(out, dtype="<i2").tobytes()
            return self._cache[key]

    def synthesize(self, text: str, *, voice: Optional[str] = None, language: Optional[str] = None,
                   speed: float = 1.0, sample_rate: int = 24000) -> Iterator[bytes]:
        pcm = self.pcm(text)
        return iter([pcm[index:index + 4800] for index in range(0, len(pcm), 4800)])


class Stamps:
    """What the callbacks saw, stamped with ``time.perf_counter()`` as they came."""

    def __init__(self) -> None:
        self.audio: List[Tuple[float, int]] = []   # (when, bytes received up to the end of the chunk)
        self.words: List[Tuple[float, int]] = []   # (when, the word's char_start)
        self._bytes = 0

    def on_audio(self, chunk: Any) -> None:
        self._bytes += len(chunk.pcm)
        self.audio.append((time.perf_counter(), self._bytes))

    def on_word(self, word: Any) -> None:
        self.words.append((time.perf_counter(), word.char_start))

    def ready_after(self, speech: Any) -> List[float]:
        """For each unit: seconds from its last audio chunk to its first word told."""
        out = []
        offset = 0
        for segment in speech.segments:
            start, end = offset, offset + len(segment.text)
            offset = end
            end_byte = int(round((segment.end or 0.0) * speech.sample_rate)) * 2
            last = [when for when, upto in self.audio if upto <= end_byte]
            first = [when for when, char in self.words if start <= char < end]
            if last and first and tokenize(segment.text):
                out.append(first[0] - last[-1])
        return out


def timing_ready(quick: bool) -> Dict[str, List[float]]:
    engine = SpokenEngine()
    texts = ENGLISH[:4] if quick else ENGLISH
    for text in texts:
        engine.pcm(text)  # synthesised before the clock runs
    results: Dict[str, List[float]] = {"plain": [], "stream": []}
    server = LocalServer(engine=engine).start()  # type: ignore[arg-type]
    try:
        with TTSClient(provider="eigenai", url=server.url) as client:
            client.speak("Warm up.").wait(timeout=30)
            for text in texts:
                stamps = Stamps()
                speech = client.speak(text, on_audio=stamps.on_audio, on_word=stamps.on_word, block=False)
                speech.wait(timeout=60)
                deadline = time.perf_counter() + 30
                while len(stamps.words) < len(tokenize(text)) and time.perf_counter() < deadline:
                    time.sleep(0.005)  # on_word comes after the end: wait for the last word
                results["plain"].extend(stamps.ready_after(speech))
            groups = [texts[index:index + 3] for index in range(0, len(texts), 3)]
            for group in groups:
                stamps = Stamps()
                stream = client.open_stream(on_audio=stamps.on_audio, on_word=stamps.on_word)
                for sentence in group:
                    stream.feed(sentence + " ")
                    time.sleep(FEED_GAP)  # the pace of a language model writing
                stream.finish()
                stream.wait(timeout=60)
                words = sum(len(tokenize(sentence)) for sentence in group)
                deadline = time.perf_counter() + 30
                while len(stamps.words) < words and time.perf_counter() < deadline:
                    time.sleep(0.005)
                results["stream"].extend(stamps.ready_after(stream))
    finally:
        server.stop()
    return results


# -- first audio ----------------------------------------------------------------------------------


def first_audio(runs: int) -> Dict[str, List[float]]:
    text = "Good morning. The first audio should come as fast with words as without them."
    results: Dict[str, List[float]] = {"without on_word": [], "with on_word": []}
    with TTSClient(provider="local") as client:
        for _ in range(3):
            client.speak(text).wait(timeout=60)  # warm: the server, the voice, the connection
        for run in range(runs):
            order = [False, True] if run % 2 == 0 else [True, False]
            for words in order:
                told: List[Any] = []
                speech = client.speak(text, on_word=told.append if words else None).wait(timeout=60)
                latency = speech.first_audio_latency
                assert latency is not None
                results["with on_word" if words else "without on_word"].append(latency * 1000)
    return results


# -- cancels ------------------------------------------------------------------------------------

CANCEL_TEXTS = [  # about 1.5 s each: a thousand takes in about 20 minutes
    "Stop me now, I will say it.",
    "Cut in: what is heard counts.",
    "A word, then a longer sentence.",
]


def heard_samples(recording: np.ndarray, pcm: np.ndarray) -> Optional[int]:
    """How much of ``pcm`` the recording holds whole, as a count of ``pcm``'s samples
    from its start; None if the recording does not hold its start.

    Compared sample for sample with the silent samples left out on both sides, as the
    playback tests do: the device may put silence anywhere (an underrun, a period not
    yet filled), never other sound. The first sample that differs is where the stop's
    fade began (a fade on silence is silence, so a stop in a pause counts the pause).
    """
    positions = np.flatnonzero(pcm)
    sound = pcm[positions]
    heard = recording[recording != 0]
    best: Optional[int] = None
    # Where the speech starts: the longest match (two letters 24 code points apart have
    # the same tone, so the start of one may be found in the audio of another).
    for at in np.flatnonzero(heard == sound[0]):
        span = heard[at:at + len(sound)]
        wrong = np.flatnonzero(span != sound[:len(span)])
        whole = int(wrong[0]) if len(wrong) else len(span)
        if whole >= 480 and (best is None or whole > best):
            best = whole
    if best is None:
        return None
    return len(pcm) if best >= len(sound) else int(positions[best])


def cancels_child(count: int, seed: int) -> Dict[str, Any]:
    """In a process whose ALSA default is the daemon's null sink: play and cancel."""
    from playback_pulse import MonitorRecorder

    rng = random.Random(seed)
    rows: List[Dict[str, Any]] = []
    recorder = MonitorRecorder(dict(os.environ))
    server = LocalServer(engine="tone").start()
    try:
        if not recorder.wait_started():
            raise RuntimeError("parec delivered nothing")
        with TTSClient(provider="eigenai", url=server.url) as client:
            client.speak("warm", play=True).wait(timeout=30)
            for take in range(count):
                text = CANCEL_TEXTS[take % len(CANCEL_TEXTS)]
                pcm = np.frombuffer(tone_pcm(text, RATE), dtype="<i2")
                length = len(pcm) / RATE
                before = recorder.recorded_bytes() // 2
                speech = client.speak(text, play=True, block=False)
                deadline = time.monotonic() + 10
                while not (speech.played or 0) > 0 and time.monotonic() < deadline:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0.0, length * 0.95))
                speech.cancel()
                try:
                    speech.wait(timeout=10)
                except Exception:
                    pass
                played = speech.played or 0.0
                reported = [word for word in speech.words if word.end <= played + 1e-9]
                heard_text = speech.heard_text
                time.sleep(0.08)  # the stop's fade and the monitor's latency reach the recording
                recording = recorder.samples()[before:]  # none of it can come before speak()
                heard = heard_samples(recording, pcm)
                if heard is None:
                    rows.append({"take": take, "found": False, "played": played})
                    continue
                truth = [word for word in speech.words if word.end * RATE <= heard + 0.5]
                words_heard = [word.index for word in truth]
                rows.append({"take": take, "found": True, "played": played, "heard_s": heard / RATE,
                             "underruns": speech.underruns, "words_heard": words_heard,
                             "reported": len(reported), "true": len(truth),
                             "heard_text_ok": heard_text == (text[reported[0].char_start:reported[-1].char_end]
                                                             if reported else "")})
    finally:
        server.stop()
        recorder.stop()
    return {"takes": rows}


def cancels(count: int) -> Dict[str, Any]:
    from playback_pulse import PulseDaemon, pulse_missing

    missing = pulse_missing()
    if missing is not None:
        raise RuntimeError(missing)
    with tempfile.TemporaryDirectory(prefix="bench-words-live-") as root, PulseDaemon(Path(root)) as daemon:
        out = Path(root) / "cancels.json"
        done = subprocess.run([sys.executable, __file__, "--child-cancels", str(count), "--json", str(out)],
                              env=daemon.env, capture_output=True, text=True, timeout=60 + 5 * count)
        if done.returncode != 0:
            raise RuntimeError(f"the cancel child failed: {done.stderr[-3000:]}")
        result: Dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    takes = result["takes"]
    found = [take for take in takes if take["found"]]
    over = [take["reported"] - take["true"] for take in found if take["reported"] > take["true"]]
    under = [take["true"] - take["reported"] for take in found if take["true"] > take["reported"]]
    gaps = [(take["played"] - take["heard_s"]) * 1000 for take in found]
    return {"rows": takes, "takes": len(takes), "found": len(found), "over_reported_words": sum(over),
            "takes_over": len(over), "missing_words_max": max(under, default=0),
            "takes_missing_one": sum(1 for n in under if n == 1),
            "heard_text_mismatch": sum(1 for take in found if not take["heard_text_ok"]),
            "played_minus_heard_ms": {"min": min(gaps, default=0.0), "median": statistics.median(gaps or [0.0]),
                                      "max": max(gaps, default=0.0)}}


# -- the table ----------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few units, 6 first-audio pairs, 10 cancels")
    parser.add_argument("--runs", type=int, help="first-audio pairs (default 40; 6 with --quick)")
    parser.add_argument("--cancels", type=int, help="cancelled speeches (default 200; 10 with --quick)")
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--child-cancels", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_cancels is not None:
        result = cancels_child(args.child_cancels, seed=18)
        Path(args.json).write_text(json.dumps(result), encoding="utf-8")
        return 0
    runs = args.runs or (6 if args.quick else 40)
    count = args.cancels if args.cancels is not None else (10 if args.quick else 200)
    ready = timing_ready(args.quick)
    first = first_audio(runs)
    cut = cancels(count) if count else None
    rows = []
    print(f"{'measure':52} {'n':>5} {'median':>8} {'p95':>8}  goal")
    for kind, values in ready.items():
        ms = [value * 1000 for value in values]
        rows.append({"measure": f"timing ready after a unit's audio, {kind}", "n": len(ms),
                     "median_ms": statistics.median(ms), "p95_ms": percentile(ms, 0.95)})
        print(f"{rows[-1]['measure']:52} {len(ms):5d} {rows[-1]['median_ms']:6.1f}ms {rows[-1]['p95_ms']:6.1f}ms"
              "  <= 150 ms")
    without = statistics.median(first["without on_word"])
    with_words = statistics.median(first["with on_word"])
    for name, values in first.items():
        print(f"{'first audio, ' + name:52} {len(values):5d} {statistics.median(values):6.1f}ms "
              f"{percentile(values, 0.95):6.1f}ms")
    ratio = with_words / without
    print(f"{'first audio, with / without':52} {'':5} {ratio:7.2f}x {'':8}  <= 1.2x or <= 5 ms "
          f"(difference {with_words - without:+.1f} ms)")
    if cut is not None:
        print(f"cancels: {cut['takes']} takes ({cut['found']} found in the recording): "
              f"{cut['over_reported_words']} unheard words reported as heard (goal 0); "
              f"at most {cut['missing_words_max']} heard word missing "
              f"({cut['takes_missing_one']} takes missed one; goal <= 1); "
              f"heard_text differs from the words played in {cut['heard_text_mismatch']}; "
              f"speech.played - heard: median {cut['played_minus_heard_ms']['median']:.1f} ms, "
              f"{cut['played_minus_heard_ms']['min']:.1f} to {cut['played_minus_heard_ms']['max']:.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"timing_ready": rows, "first_audio_ms": first, "first_audio_ratio": ratio,
                       "first_audio_difference_ms": with_words - without, "cancels": cut}, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
