"""One trial: one implementation, one metric, in a process of its own.

    python benchmarks/trials.py '{"metric": "throughput", "impl": "ttsstream", "url": "ws://...", ...}'

The suite starts a fresh process per trial, so that its CPU time and its RSS are this
implementation's alone (the server and the proxy are other processes), and nothing one
implementation left behind (threads, memory) weighs on the next. The process prints
one JSON line: the metric's values, and what it received (bytes and frames, to be
checked against what the server sent).

Metrics (each function's docstring says what it times):
throughput, latency, first_audio, long_speech, concurrency.

Imports: impls, procinfo.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # ttsstream from this checkout

from impls import IMPLS, Recorder, Window  # noqa: E402
from procinfo import peak_rss_kb, raise_open_files, reset_peak_rss, rss_kb  # noqa: E402

FRAME = 4800           # bytes: 100 ms of 24 kHz 16-bit mono audio
FRAME_PERIOD_MS = 100  # real time


class Ledger:
    """Every recorder a trial made, and the audio bytes its requests asked for."""

    def __init__(self) -> None:
        self.recorders: List[Recorder] = []
        self.expected = 0

    def text(self, frames: int, size: int = FRAME, period_ms: float = 0, speeches: int = 1) -> str:
        """A request's text for the benchmark server (see bench_server.py), for ``speeches``
        speeches."""
        self.expected += frames * size * speeches
        return f"bench frames={frames} bytes={size} period_ms={period_ms:g}"

    def recorder(self, keep_latencies: bool = True) -> Recorder:
        rec = Recorder(keep_latencies)
        self.recorders.append(rec)
        return rec

    def totals(self) -> Dict[str, int]:
        return {"bytes_received": sum(r.bytes for r in self.recorders),
                "frames_received": sum(r.frames for r in self.recorders),
                "bytes_expected": self.expected}


def percentile(values: List[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; values need not be sorted."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def throughput(impl: Any, spec: Dict[str, Any], ledger: Ledger) -> Dict[str, Any]:
    """Unpaced: ``frames`` frames of ``size`` bytes; MB/s from the first frame's arrival to
    the last's (the bytes after the first frame over that time)."""
    size = spec["size"]
    impl.cold(ledger.text(5, size), ledger.recorder())  # warm-up: first use of code paths
    rec = ledger.recorder()
    impl.cold(ledger.text(spec["frames"], size), rec)
    seconds = (rec.last - rec.first) / 1e9
    return {"mb_per_s": (rec.bytes - rec.first_bytes) / seconds / 1e6 if seconds > 0 else 0.0,
            "seconds": seconds}


def latency(impl: Any, spec: Dict[str, Any], ledger: Ledger) -> Dict[str, Any]:
    """One real-time stream (a 4,800-byte frame every 100 ms); per frame, from the
    server's send (the stamp) to on_audio."""
    impl.cold(ledger.text(2), ledger.recorder())
    rec = ledger.recorder()
    impl.cold(ledger.text(spec["frames"], FRAME, FRAME_PERIOD_MS), rec)
    ms = [ns / 1e6 for ns in rec.latencies]
    return {"p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 0.99), "max_ms": max(ms), "n": len(ms)}


def first_audio(impl: Any, spec: Dict[str, Any], ledger: Ledger) -> Dict[str, Any]:
    """Time to first audio: from the user's call to the first on_audio, ``reps`` times
    cold (connect for this speech) and prewarmed (connection opened ahead), alternating."""
    for flow in (impl.cold, impl.warm):  # warm-up, unmeasured
        flow(ledger.text(5), ledger.recorder())
    times: Dict[str, List[float]] = {"cold": [], "warm": []}
    for rep in range(spec["reps"]):
        order = [("cold", impl.cold), ("warm", impl.warm)]
        for name, flow in (order if rep % 2 == 0 else order[::-1]):
            rec = ledger.recorder()
            flow(ledger.text(5), rec)
            times[name].append((rec.first - rec.t0) / 1e6)
            time.sleep(spec.get("pause", 0.02))
    return {"cold_ms": statistics.median(times["cold"]), "warm_ms": statistics.median(times["warm"]),
            "cold_all_ms": times["cold"], "warm_all_ms": times["warm"]}


def long_speech(impl: Any, spec: Dict[str, Any], ledger: Ledger) -> Dict[str, Any]:
    """One long speech (``seconds`` of audio, sent ``speedup`` times faster than real
    time), audio kept by no one (ttsstream: keep_audio=False); RSS before it, its peak
    during it (VmHWM, reset at the start), and at the end."""
    impl.cold(ledger.text(10), ledger.recorder(False))  # warm-up: first connection, lazy imports
    gc.collect()
    before = rss_kb()
    reset_peak_rss()
    frames = int(round(spec["seconds"] * 1000 / FRAME_PERIOD_MS))
    rec = ledger.recorder(False)
    impl.cold(ledger.text(frames, FRAME, FRAME_PERIOD_MS / spec["speedup"]), rec)
    peak, end = peak_rss_kb(), rss_kb()
    return {"rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024, "rss_end_mb": end / 1024,
            "growth_mb": (peak - before) / 1024, "audio_s": rec.bytes / 48000}


def concurrency(impl: Any, spec: Dict[str, Any], ledger: Ledger) -> Dict[str, Any]:
    """``n`` real-time streams at once in this process, each ``frames`` frames long,
    started spread over one frame period (``spread``, the default) or all at once after
    a barrier (``"spread": false``: the burst group); latency over every frame of every stream; first
    audio of each (from its speak() call: the wait to start under load); CPU
    of this process over the streaming (connections already open); peak RSS."""
    n = spec["n"]
    recs = [ledger.recorder() for _ in range(n)]
    text = ledger.text(spec["frames"], FRAME, FRAME_PERIOD_MS, speeches=n)
    gc.collect()
    before = rss_kb()
    reset_peak_rss()
    window = Window()
    limit = spec["frames"] * FRAME_PERIOD_MS / 1000 + 60 + n / 20
    spread = FRAME_PERIOD_MS / 1000 if spec.get("spread", True) else 0.0  # burst: all at once
    errors = impl.many(n, text, spread, recs, window, limit)
    peak = peak_rss_kb()
    ms = [ns / 1e6 for rec in recs for ns in rec.latencies]
    first = [(rec.first - rec.t0) / 1e6 for rec in recs if rec.frames]
    return {"first_audio_p50_ms": statistics.median(first) if first else 0.0,
            "first_audio_p99_ms": percentile(first, 0.99) if first else 0.0,
            "p50_ms": statistics.median(ms) if ms else 0.0, "p99_ms": percentile(ms, 0.99) if ms else 0.0,
            "max_ms": max(ms) if ms else 0.0, "cpu_pct": 100 * window.cpu / window.wall if window.wall else 0.0,
            "cpu_s": window.cpu, "wall_s": window.wall, "rss_before_mb": before / 1024,
            "rss_peak_mb": peak / 1024, "rss_per_stream_kb": (peak - before) / max(n, 1),
            "streams_failed": len(errors), "errors": errors[:5]}


METRICS: Dict[str, Callable[[Any, Dict[str, Any], Ledger], Dict[str, Any]]] = {
    "throughput": throughput, "latency": latency, "first_audio": first_audio,
    "long_speech": long_speech, "concurrency": concurrency,
}


def run_trial(spec: Dict[str, Any]) -> Dict[str, Any]:
    raise_open_files()
    ledger = Ledger()
    impl = IMPLS[spec["impl"]](spec["url"])
    try:
        result = METRICS[spec["metric"]](impl, spec, ledger)
    finally:
        impl.close()
    result.update(ledger.totals())
    return result


def main(argv: List[str]) -> int:
    spec = json.loads(argv[1])
    try:
        result = run_trial(spec)
        code = 0
    except Exception:
        result, code = {"error": traceback.format_exc()}, 1
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
