"""The benchmark suite runs, and measures what it says: ``benchmarks/suite.py --quick``.

Runs the suite once in quick mode (tiny sizes, one run) as a subprocess and checks its
JSON: every metric has a figure for every implementation, the figures are sane
(positive, finite), and every trial received exactly the bytes the benchmark server
sent. No wall-clock threshold: timing is judged by the suite, as ratios, never here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "benchmarks" / "suite.py"
IMPLS = {"ttsstream", "loop", "app", "sync", "asyncio"}
BURST_IMPLS = {"ttsstream", "ttsstream-once", "ttsstream-cold", "loop"}  # the burst group's
STREAM_ROWS = ("p99_ms", "first_audio_p99_ms", "cpu_pct", "cpu_s", "finish_s", "rss_peak_mb", "rss_per_stream_kb")
TIMEOUT = 300  # a hang guard, not a performance bound

# Every metric of the table, by its JSON key (quick mode: N = 10 streams, a 5-second speech).
METRICS = (["throughput_4800_mb_s", "throughput_48000_mb_s", "latency_p50_ms", "latency_p99_ms",
            "first_audio_cold_ms", "first_audio_warm_ms", "proxy_cold_ms", "proxy_warm_ms"]
           + [f"concurrency_10_{name}" for name in STREAM_ROWS]
           + ["long_speech_growth_mb", "long_speech_peak_mb"])
BURST_METRICS = [f"burst_10_{name}" for name in STREAM_ROWS]
MAY_BE_ZERO = {"long_speech_growth_mb"}  # an RSS that did not grow at all reads 0.00 MB


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = subprocess.run([sys.executable, str(SUITE), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=str(REPO))
    assert done.returncode == 0, f"suite failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "ratio" in done.stdout and "targets" in done.stdout, done.stdout[-2000:]
    yield json.loads(out.read_text())


def run_quick(script: Path, tmp_path: Path) -> Tuple[str, Dict[str, Any]]:
    """Run a benchmark script with ``--quick --json``; its stdout and its JSON report."""
    out = tmp_path / f"{script.stem}.json"
    done = subprocess.run([sys.executable, str(script), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=str(REPO))
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout, json.loads(out.read_text())


def test_every_metric_has_every_implementation(report: Dict[str, Any]) -> None:
    assert set(report["suite"]["impls"]) == IMPLS | BURST_IMPLS
    assert sorted(report["metrics"]) == sorted(METRICS + BURST_METRICS)
    for key in METRICS + BURST_METRICS:
        impls = report["metrics"][key]["impls"]
        assert set(impls) == (BURST_IMPLS if key in BURST_METRICS else IMPLS), key
        for name, entry in impls.items():
            value = entry["median"]
            assert value is not None and math.isfinite(value), (key, name, entry)
            assert value > 0 or (key in MAY_BE_ZERO and value == 0), (key, name, entry)
            assert entry["min"] <= value <= entry["max"], (key, name, entry)
            assert len(entry["runs"]) == 1, (key, name, entry)
        if impls["loop"]["median"]:  # a ratio to nothing is left blank
            assert impls["loop"]["ratio"] == 1.0, key


def test_every_trial_received_every_byte_the_server_sent(report: Dict[str, Any]) -> None:
    trials = report["trials"]
    # seven groups: two throughput sizes, latency, first audio, proxy, one N of streams, the
    # long speech; and the burst (one N) with its own implementations
    assert len(trials) == 7 * len(IMPLS) + len(BURST_IMPLS)
    for trial in trials:
        result = trial["result"]
        assert "error" not in result, (trial["group"], trial["impl"], result.get("error"))
        assert result["bytes_received"] == result["bytes_sent"] == result["bytes_expected"] > 0, trial
        assert result["frames_received"] == result["server"]["frames"], trial
        assert result["bytes_ok"] and result["instrument_ok"]
        assert result["others_cpu_pct"] >= 0


def test_each_trial_measured_what_was_asked(report: Dict[str, Any]) -> None:
    for trial in report["trials"]:
        spec, result = trial["spec"], trial["result"]
        if trial["group"] == "latency":
            assert result["n"] == spec["frames"]  # one latency per paced frame
        elif trial["group"] in ("concurrency", "burst"):
            assert result["streams_failed"] == 0, result["errors"]
            assert result["server"]["requests"] == spec["n"]
            if trial["group"] == "burst":  # the asyncio websockets server, at normal priority
                assert result["server"]["scheduling"] == "normal" and spec["spread"] is False
        elif trial["group"] == "long-speech":
            assert result["audio_s"] == pytest.approx(spec["seconds"])


def test_the_targets_and_the_machine_are_reported(report: Dict[str, Any]) -> None:
    names = [item["target"] for item in report["targets"]]
    assert len(names) == 12 and any("800 streams" in name for name in names)
    assert sum("burst of 400" in name for name in names) == 3
    machine = report["machine"]
    assert machine["cpus"] >= 1 and machine["websocket-client"] and machine["websockets"]
    assert "loadavg_before" in report["machine_load"]


WORDS_LIVE = REPO / "benchmarks" / "bench_words_live.py"


def test_the_live_words_benchmark_measures_every_row(tmp_path: Path) -> None:
    # bench_words_live.py --quick: timing-ready latencies, first audio both ways, and ten
    # cancels to a PulseAudio null sink. Its figures are judged in docs/performance.md;
    # here only that it measured what it says, and that no cancel reported an unheard
    # word as heard (a correctness property of speech.played, not a timing).
    import importlib.util

    sys.path.insert(0, str(REPO / "tests"))
    from playback_pulse import pulse_missing

    missing = pulse_missing() or (None if importlib.util.find_spec("pyaudio") else "PyAudio is not installed")
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no paced device: {missing}")
    _, report = run_quick(WORDS_LIVE, tmp_path)
    rows = {row["measure"]: row for row in report["timing_ready"]}
    assert len(rows) == 2
    for row in rows.values():
        assert row["n"] >= 4 and 0 < row["median_ms"] <= row["p95_ms"], row
    assert len(report["first_audio_ms"]["with on_word"]) == len(report["first_audio_ms"]["without on_word"]) == 6
    assert report["first_audio_ratio"] > 0
    cancels = report["cancels"]
    assert cancels["takes"] == cancels["found"] == 10, cancels
    assert cancels["over_reported_words"] == 0 and cancels["heard_text_mismatch"] == 0, cancels


FALLBACK = REPO / "benchmarks" / "bench_fallback.py"


def test_the_fallback_benchmark_measures_every_line(tmp_path: Path) -> None:
    # bench_fallback.py --quick: the chaos scenario (200 speeches) with a fallback and
    # without, and 20 reps of first audio (cache hit, prewarmed, cold). Its figures are
    # judged in docs/performance.md; here only that it measured what it says, and that
    # with a fallback no speech was lost (a correctness property, not a timing).
    stdout, report = run_quick(FALLBACK, tmp_path)
    assert "completed %" in stdout and "/ cold" in stdout, stdout[-2000:]
    for name in ("fallback", "baseline"):
        [run] = report["raw"]["chaos"][name]
        assert run["speeches"] == 200 and run["leftover_threads"] == [], run
        assert run["exact"] + run["cut_after_audio"] + run["lost"] == 200, run
    [with_fallback] = report["raw"]["chaos"]["fallback"]
    assert with_fallback["lost"] == 0 and with_fallback["by_fallback"] > 0, with_fallback
    assert with_fallback["outage_connections"] <= with_fallback["outage_bound"], with_fallback
    for name in ("cache hit", "prewarmed", "cold"):
        row, raw = report["summary"]["first_audio"][name], report["raw"]["first_audio"][name]
        assert row["n"] == len(raw) == 20 and all(value > 0 for value in raw) and row["median_ms"] <= row["p95_ms"]


FORMATS = REPO / "benchmarks" / "bench_formats.py"


def test_the_formats_benchmark_measures_every_row(tmp_path: Path) -> None:
    # bench_formats.py --quick: conversion cost, aliasing and file writing. Its figures are
    # judged in docs/performance.md; here only that every row was measured, and the
    # correctness the comparison rests on: the hand-written G.711 gives ttsstream's bytes.
    _, report = run_quick(FORMATS, tmp_path)
    assert report["g711_baseline_agrees"] is True
    methods = {(row["conversion"], row["method"]) for row in report["conversion"]}
    assert len(methods) == 7 and sum(method == "ttsstream" for _, method in methods) == 3
    for row in report["conversion"]:
        assert math.isfinite(row["pct_of_core"]) and row["min"] <= row["pct_of_core"] <= row["max"], row
    assert [row["method"] for row in report["aliasing"]] == ["hand-written (np.interp)", "ttsstream (soxr HQ)"]
    assert all(math.isfinite(row["alias_db"]) for row in report["aliasing"])
    formats = [row["format"] for row in report["files"]]
    assert formats[:6] == ["wav", "flac", "ogg", "opus", "mp3", "raw"] and "notebook" in formats[6]
    for row in report["files"]:
        assert row["kb"] > 0 and row["cpu_ms"] >= 0 and row["wall_ms"] > 0, row


BATCH = REPO / "benchmarks" / "bench_batch.py"


def test_the_batch_benchmark_measures_every_line(tmp_path: Path) -> None:
    # bench_batch.py --quick: 20 paced items with jobs=8 and jobs=1, 100 short items in a
    # bare loop, a batch and its rerun, 3 items by a shell loop of `ttsstream speak` and by
    # `ttsstream batch`. Every file is checked against tone_pcm inside; its figures are
    # judged in docs/guide/batch.md; here only that every line was measured.
    stdout, report = run_quick(BATCH, tmp_path)
    assert "speed-up jobs=8 over jobs=1" in stdout and "overhead per item" in stdout, stdout[-2000:]
    assert report["spec"] == {"paced": 20, "short": 100, "shell": 3, "runs": 1}
    raw, summary = report["raw"], report["summary"]
    assert {name: len(values) for name, values in raw["paced"].items()} == {"jobs=8": 1, "jobs=1": 1}
    assert set(raw["overhead"]) == {"bare loop", "batch", "rerun"}
    assert set(raw["shell"]) == {"shell loop", "batch --jobs 1", "batch --jobs 8"}
    for section in ("overhead", "shell"):
        for name, values in raw[section].items():
            assert len(values) == 1 and values[0] > 0, (section, name, values)
            row = summary[section][name]
            assert row["min_ms"] <= row["median_ms"] <= row["max_ms"], (section, name, row)
    assert summary["speedup"] > 0 and isinstance(summary["goal_met"], bool)
