"""Benchmark: never silent. The chaos scenario with a fallback and without; a cache hit's first audio.

    python benchmarks/bench_fallback.py [--quick] [--runs N] [--reps N] [--json FILE]

Two measures, each against a baseline in the same run:

- **chaos**: issue 19's scenario (``tests/chaos_scenario.py``, the same as
  ``tests/test_chaos.py``): speeches from 8 threads to a primary behind a ``ChaosDoor``
  that fails at random (15 % HTTP 503, 10 % HTTP 429, 10 % a close before audio, 5 %
  silent, 5 % a drop after two frames of audio) and refuses everything for an outage in
  the middle. ``TTSClient(fallback=[a healthy server])`` against the baseline, the same
  client without a fallback (its default retries), with the same seed, interleaved run
  by run. Per run: speeches completed byte-exact (% of those whose failure came before
  any audio), lost (neither byte-exact nor cut after audio began), the primary's
  connections in all and during the outage, and wall time.
- **first audio**: ``speech.first_audio_latency`` (from ``speak()`` to the first audio)
  to the bundled server on loopback (tone engine), interleaved rep by rep: a phrase
  spoken again with ``TTSClient(cache=True)`` (a cache hit), a speech after
  ``prewarm(1, wait=True)`` (an open connection), and a cold speech (connect, handshake,
  request). Median and p95 in ms, and the ratio of each median to the cold one's.

Figures are printed no finer than 0.1 ms (``perf_counter`` resolves far finer; the
scheduler of a shared 2-core machine does not). ``tests/test_benchmarks.py`` runs
``--quick`` and checks the JSON; it judges no timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import ttsstream  # noqa: E402
from ttsstream.server import LocalServer, tone_pcm  # noqa: E402

from chaos_scenario import SEED, ChaosRig, probe_bound, run, tally  # noqa: E402

PHRASE = "One moment, please; your call is important to us."
RESOLUTION_MS = 0.1


def chaos_once(with_fallback: bool, count: int, outage_seconds: float, seed: int) -> Dict[str, Any]:
    """One run of the scenario with a fresh rig (servers, door) and client."""
    rig = ChaosRig(seed=seed)
    try:
        with rig.client(with_fallback) as client:
            result = run(client, rig.door, count=count, outage_at=count * 3 // 10, resume_at=count * 6 // 10,
                         outage_seconds=outage_seconds)
        counts = rig.door.counts()
    finally:
        rig.close()
    sorted_out = tally(result.spoken, rig.url)
    return {"speeches": len(result.spoken), "completed_pct": 100 * sorted_out.completed_share,
            "exact": sorted_out.exact, "by_fallback": sorted_out.by_fallback,
            "cut_after_audio": sorted_out.cut_after_audio, "lost": len(sorted_out.lost),
            "primary_connections": sum(counts.values()), "outage_connections": result.outage_connections,
            "outage_bound": probe_bound(result, outage_seconds), "wall_s": result.seconds,
            "connections": counts, "attempts": sorted_out.attempts, "leftover_threads": result.leftover}


def chaos(runs: int, count: int, outage_seconds: float) -> Dict[str, List[Dict[str, Any]]]:
    found: Dict[str, List[Dict[str, Any]]] = {"fallback": [], "baseline": []}
    for n in range(runs):
        order = [True, False] if n % 2 == 0 else [False, True]
        for with_fallback in order:
            found["fallback" if with_fallback else "baseline"].append(
                chaos_once(with_fallback, count, outage_seconds, seed=SEED + n))
    return found


def first_audio(reps: int) -> Dict[str, List[float]]:
    """Per rep, in ms: a cache hit, a prewarmed speech, a cold speech (interleaved)."""
    times: Dict[str, List[float]] = {"cache hit": [], "prewarmed": [], "cold": []}
    server = LocalServer(engine="tone").start()
    try:
        with ttsstream.TTSClient("eigenai", url=server.url, cache=True) as cached, \
                ttsstream.TTSClient("eigenai", url=server.url) as warm, \
                ttsstream.TTSClient("eigenai", url=server.url) as cold:
            cached.speak(PHRASE)  # the miss that fills the cache
            warm.speak("warm-up")
            cold.speak("warm-up")

            def hit(rep: int) -> float:
                speech = cached.speak(PHRASE)
                assert speech.cached and speech.pcm == tone_pcm(PHRASE)
                return _latency(speech)

            def prewarmed(rep: int) -> float:
                warm.prewarm(1, wait=True)
                return _checked(warm.speak(f"Prewarmed speech {rep}."))

            def unwarmed(rep: int) -> float:
                return _checked(cold.speak(f"Cold speech {rep}."))

            measures = [("cache hit", hit), ("prewarmed", prewarmed), ("cold", unwarmed)]
            for rep in range(reps):
                for name, measure in (measures if rep % 2 == 0 else measures[::-1]):
                    times[name].append(measure(rep) * 1000)
            warm.prewarm(0)
    finally:
        server.stop()
    return times


def _latency(speech: Any) -> float:
    latency = speech.first_audio_latency
    assert latency is not None, speech
    return float(latency)


def _checked(speech: Any) -> float:
    assert not speech.cached and speech.pcm == tone_pcm(speech.text), speech
    return _latency(speech)


def p95(values: List[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{round(value / RESOLUTION_MS) * RESOLUTION_MS:.1f}"


def summarise(found: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"chaos": {}, "first_audio": {}}
    for name, runs in found["chaos"].items():
        out["chaos"][name] = {key: statistics.median(r[key] for r in runs)
                              for key in ("completed_pct", "lost", "cut_after_audio", "by_fallback",
                                          "primary_connections", "outage_connections", "outage_bound", "wall_s")}
        out["chaos"][name]["runs"] = len(runs)
    cold_median = statistics.median(found["first_audio"]["cold"])
    for name, values in found["first_audio"].items():
        median = statistics.median(values)
        out["first_audio"][name] = {"median_ms": round(median, 1), "p95_ms": round(p95(values), 1), "n": len(values),
                                    "ratio_to_cold": round(median / cold_median, 3)}
    return out


def print_table(summary: Dict[str, Any], spec: Dict[str, Any]) -> None:
    print(f"chaos: {spec['count']:,} speeches from 8 threads, outage {spec['outage_seconds']:g} s, "
          f"median of {spec['runs']} run(s) each (seeds {SEED}, {SEED + 1}, ...)")
    header = (f"{'client':28} {'completed %':>11} {'lost':>6} {'cut':>5} {'by fallback':>11} "
              f"{'primary conns':>13} {'in outage':>9} {'bound':>6} {'wall s':>7}")
    print(header)
    print("-" * len(header))
    labels = {"fallback": "fallback=[healthy server]", "baseline": "baseline: no fallback"}
    for name, row in summary["chaos"].items():
        bound = f"{row['outage_bound']:g}" if name == "fallback" else "-"
        print(f"{labels[name]:28} {row['completed_pct']:>11.1f} {row['lost']:>6g} {row['cut_after_audio']:>5g} "
              f"{row['by_fallback']:>11g} {row['primary_connections']:>13g} {row['outage_connections']:>9g} "
              f"{bound:>6} {row['wall_s']:>7.1f}")
    print("completed % = byte-exact, of the speeches whose failure (if any) came before any audio; cut = ended "
          "with an error after audio began, holding a strict prefix;\nbound = in flight + FAILURES_TO_OPEN + "
          "outage / COOL_DOWN + 1 attempts (with a fallback, one connection per attempt; without one, the last "
          "provider's retries multiply its connections)")
    print()
    print(f"first audio to the bundled server on loopback (tone engine), {spec['reps']} interleaved reps")
    header = f"{'speech':34} {'median ms':>10} {'p95 ms':>8} {'/ cold':>7}"
    print(header)
    print("-" * len(header))
    labels = {"cache hit": "cache hit: TTSClient(cache=True)", "prewarmed": "prewarm(1, wait=True), then speak",
              "cold": "cold: connect, then speak"}
    for name, row in summary["first_audio"].items():
        print(f"{labels[name]:34} {ms(row['median_ms']):>10} {ms(row['p95_ms']):>8} {row['ratio_to_cold']:>7.2f}")
    print("/ cold = median / the cold speech's median, within this run")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 speeches, a 2-second outage, 1 run, 20 reps")
    parser.add_argument("--runs", type=int, help="chaos runs per client (default 5)")
    parser.add_argument("--reps", type=int, help="first-audio repetitions of each speech (default 200)")
    parser.add_argument("--json", help="also write every figure as JSON to this file")
    args = parser.parse_args(argv)
    spec = {"count": 200 if args.quick else 1000, "outage_seconds": 2.0 if args.quick else 4.0,
            "runs": args.runs or (1 if args.quick else 5), "reps": args.reps or (20 if args.quick else 200)}
    started = time.perf_counter()
    found = {"chaos": chaos(spec["runs"], spec["count"], spec["outage_seconds"]),
             "first_audio": first_audio(spec["reps"])}
    summary = summarise(found)
    print_table(summary, spec)
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"spec": spec, "summary": summary, "raw": found}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
