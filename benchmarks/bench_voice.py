"""Benchmark: time to first audio from the local voice (espeak engine), against two baselines.

    python benchmarks/bench_voice.py [--reps N] [--json FILE]

For a paragraph of about 200 characters, measured interleaved in one run:

- ttsstream: ``TTSClient(provider="local").speak(PARAGRAPH)`` through the shared in-process
  server (connect, authenticate, request, first binary frame, on loopback); the figure
  is ``speech.first_audio_latency``, from the speak() call to the first audio byte.
- hand-written client: the same server and request with websocket-client by hand
  (``create_connection``, auth message, request, ``recv`` until the first binary frame).
- batch synthesis: eSpeak NG speaking the whole paragraph in one call, resampled to
  24 kHz in one go: what a server that does not stream needs before it can send anything.
- engine, first piece: the espeak engine's first piece (its first clause, resampled),
  called directly, without a server.

Ratios are ttsstream / baseline medians: below 1, ttsstream's first audio comes sooner.
Needs: websockets, espeakng-loader, soxr (pip install -e '.[local]').
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import websocket  # noqa: E402

import ttsstream  # noqa: E402
from ttsstream.server import shared_server, stop_shared_server  # noqa: E402
from ttsstream.server.espeak import VOICES, EspeakEngine, _Espeak  # noqa: E402

PARAGRAPH = ("The quick brown fox jumps over the lazy dog, and then it runs into the forest. "
             "Meanwhile, the birds sing while the sun rises slowly over the hills; "
             "everyone in the village wakes up and starts the day.")
RATE = 24000
VOICE = "Linda"  # higgs2p5's default, what both clients get without asking


def ttsstream_first_audio(client: ttsstream.TTSClient) -> float:
    speech = client.speak(PARAGRAPH)
    latency = speech.first_audio_latency
    assert latency is not None and speech.duration > 5, speech
    return latency


def handwritten_first_audio(url: str) -> float:
    """What one writes by hand with websocket-client: connect, auth, request, first frame."""
    started = time.perf_counter()
    ws = websocket.create_connection(url, timeout=30)
    try:
        ws.send(json.dumps({"token": "", "model": "higgs2p5"}))
        ws.send(json.dumps({"text": PARAGRAPH, "voice": VOICE}))
        first: Optional[float] = None
        while True:
            message = ws.recv()
            if isinstance(message, bytes):
                if first is None:
                    first = time.perf_counter() - started
            elif json.loads(message).get("type") == "complete":
                break
        assert first is not None
        return first
    finally:
        ws.close()


def batch_synthesis() -> float:
    """The whole paragraph in one eSpeak call, then resampled: a non-streaming server's wait."""
    import soxr

    espeak = _Espeak.get()
    variant = VOICES[VOICE.lower()][1]
    voice = f"gmw/en-US+{variant.variant}".encode()
    started = time.perf_counter()
    pcm, _ = espeak.speak(PARAGRAPH, voice, 175, variant.pitch, end_pause=False)
    audio = soxr.resample(np.frombuffer(pcm, dtype=np.int16), espeak.sample_rate, RATE)
    elapsed = time.perf_counter() - started
    assert len(audio) > 5 * RATE
    return elapsed


def engine_first_piece(engine: EspeakEngine) -> float:
    started = time.perf_counter()
    pieces = engine.synthesize(PARAGRAPH, voice=VOICE, sample_rate=RATE)
    first = next(pieces)
    elapsed = time.perf_counter() - started
    assert first
    pieces.close()
    return elapsed


def summary(values: List[float]) -> Dict[str, float]:
    """Median and p90 of ``values``, in milliseconds."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"median": statistics.median(ordered) * 1000, "p90": p90 * 1000, "n": len(ordered)}


def run(reps: int) -> Dict[str, Dict[str, float]]:
    started = time.perf_counter()
    server = shared_server()  # starting it initialises eSpeak NG: paid here, once
    startup = time.perf_counter() - started
    results: Dict[str, List[float]] = {"ttsstream": [], "hand-written client": [], "batch synthesis": [],
                                       "engine, first piece": []}
    engine = EspeakEngine()
    try:
        with ttsstream.TTSClient(provider="local") as client:
            ttsstream_first_audio(client)  # warm-up: first connection, page faults, caches
            handwritten_first_audio(server.eigenai_url)
            for rep in range(reps):
                measures = [
                    ("ttsstream", lambda: ttsstream_first_audio(client)),
                    ("hand-written client", lambda: handwritten_first_audio(server.eigenai_url)),
                    ("batch synthesis", batch_synthesis),
                    ("engine, first piece", lambda: engine_first_piece(engine)),
                ]
                if rep % 2:
                    measures.reverse()
                for name, measure in measures:
                    results[name].append(measure())
    finally:
        stop_shared_server()
    table = {name: summary(values) for name, values in results.items()}
    table["shared server start (incl. eSpeak init)"] = {"median": startup * 1000, "p90": startup * 1000, "n": 1}
    return table


def print_table(table: Dict[str, Dict[str, float]]) -> None:
    ours = table["ttsstream"]
    print(f"time to first audio, {len(PARAGRAPH)}-character paragraph, voice {VOICE}, {RATE} Hz")
    header = f"{'measure':42} {'median':>10} {'p90':>10} {'n':>4} {'ttsstream / this':>17}"
    print(header)
    print("-" * len(header))
    for name, row in table.items():
        if name == "ttsstream":
            label, ratio = "ttsstream: TTSClient(provider='local')", ""
        elif name.startswith("shared server"):
            label, ratio = name, ""
        else:
            label, ratio = f"baseline: {name}", f"{ours['median'] / row['median']:.2f}" if row["median"] else "n/a"
        print(f"{label:42} {row['median']:8.2f}ms {row['p90']:8.2f}ms {row['n']:>4} {ratio:>17}")
    print("ratio = ttsstream median / baseline median (below 1: ttsstream's first audio comes sooner)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions of each measure (default 20)")
    parser.add_argument("--json", help="also write the table as JSON to this file")
    args = parser.parse_args(argv)
    table = run(args.reps)
    print_table(table)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
