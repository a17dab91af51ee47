"""The benchmark suite: ttsstream against four hand-written baselines, in one table.

    python benchmarks/suite.py [--quick] [--json FILE] [--only METRIC,...] [--runs N]

Implementations (``impls.py``, ``baselines.py``): ttsstream (``TTSClient.speak`` with
``keep_audio=False``), the websocket-client ``recv()`` loop (the reference for every
ratio), websocket-client's ``WebSocketApp`` with ``run_forever()`` on a thread,
``websockets.sync.client``, and asyncio ``websockets`` in the style of the EigenAI
document's example.

Metrics (``--only`` takes these names):

- throughput: unpaced, 4,800- and 48,000-byte frames (192 MB each): MB/s from the first
  frame's arrival to the last's.
- latency: one real-time stream (4,800 bytes every 100 ms), per chunk, from the
  server's send (its time stamped in the frame) to ``on_audio``: p50 and p99.
- first-audio: time to first audio, from the user's call to the first ``on_audio``:
  cold (connecting for this speech) and prewarmed (``prewarm()``; the baselines'
  connection opened and authenticated ahead).
- proxy: the same through ``delay_proxy.py`` (20 ms each way, loopback); the target
  compares ttsstream prewarmed with the EigenAI example's connect-then-request flow.
- concurrency: N real-time streams at once in one process (N = 100, 400, 800, 1,200;
  5 s of audio each, started spread over one 100 ms frame period): p99 latency, CPU of
  the client process over the streaming (in % of a core and in seconds: the same load,
  so a client that falls behind and takes longer shows a lower % for the same work),
  when the last stream ended, peak RSS, and RSS per stream. ttsstream: N
  threads calling ``speak()`` on one shared client after ``prewarm(N)`` (which keeps N
  open, so it opens N more while the streams run: counted, as a user would pay it).
- burst: N real-time streams (N = 400, 800, 1,200; 8 s of audio each) all asked for
  at once after a barrier, against ``asyncio_server.py`` (asyncio ``websockets`` in a
  process of its own, at normal priority, pacing and stamping its frames as the epoll
  server does): the way an independent harness measured. Same figures as concurrency,
  for ttsstream after ``prewarm(N)``, after ``prewarm(N, keep=False)`` and without
  prewarm (each speech connects when asked), and for the loop (its N connections opened
  first). The server's lateness says where it could no longer keep the pace asked.
- long-speech: one 10-minute speech (sent at 20 x real time, so 30 s; still 10 minutes
  of audio), nobody keeping the audio: peak RSS, and its growth over the speech.

Method: every trial runs in a fresh process (``trials.py``), so that CPU and RSS are
that implementation's alone; the server (``bench_server.py``, a lean epoll server) and
the proxy are other processes. Each metric runs every implementation interleaved
within one run of the suite (order reversed on odd runs, to cancel drift), ``--runs``
times; the table gives the median and range of the per-run figures and the ratio of
medians to the websocket-client loop's. Figures are rounded to three significant
figures and never finer than the instrument (clock: CLOCK_MONOTONIC, ns; CPU:
CLOCK_PROCESS_CPUTIME_ID; RSS: /proc, kB). Targets are judged on those ratios here,
never in a test. ``--quick`` (CI) runs tiny sizes once: it proves the wiring, and its
figures mean nothing.

Why both concurrency groups: the spread one describes steady traffic, users arriving
independently; the burst describes what a user sees when many speeches start together
(a broadcast, a batch), and the asyncio server there shares the cores with the client
as a user's own server does. The goals for many streams are judged on the burst.

Limits: the suite raises its open-files limit to the hard limit (1,200 streams need
2,400 sockets with ttsstream's refill). Thread stacks stay at the default (8 MiB of
address space each; RSS counts only the pages touched, so 2,400 threads fit easily):
a user's process gets the same. Traffic stays on 127.0.0.1; every process the suite
starts is ended and waited for.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # ttsstream from this checkout

from bench_server import ServerGroup  # noqa: E402
from children import Child  # noqa: E402
from impls import BASELINE, IMPLS, LABELS  # noqa: E402
from procinfo import MachineWatch, machine, raise_open_files  # noqa: E402
from report import Row, print_notes, print_table, print_targets, summarise, targets  # noqa: E402

GROUPS = ("throughput", "latency", "first-audio", "proxy", "concurrency", "burst", "long-speech")
BURST_IMPLS = ("ttsstream", "ttsstream-once", "ttsstream-cold", "loop")  # only the burst group runs the variants


def sizes(quick: bool, streams: Optional[List[int]]) -> Dict[str, Any]:
    if quick:
        return {"throughput_frames": {4800: 200, 48000: 200}, "latency_frames": 10, "first_audio_reps": 3,
                "proxy_reps": 2, "streams": streams or [10], "stream_frames": 10, "long_seconds": 5,
                "burst_streams": streams or [10], "burst_frames": 10,
                "long_speedup": 20, "proxy_delay_ms": 20}
    return {"throughput_frames": {4800: 40000, 48000: 4000}, "latency_frames": 200, "first_audio_reps": 20,
            "proxy_reps": 10, "streams": streams or [100, 400, 800, 1200], "stream_frames": 50,
            "burst_streams": streams or [400, 800, 1200], "burst_frames": 80,
            "long_seconds": 600, "long_speedup": 20, "proxy_delay_ms": 20}


class Plan:
    """What one group measures: the trial specs, in order, and the rows each yields."""

    def __init__(self, group: str, specs: List[Dict[str, Any]], rows: List[List[Row]], proxy: bool = False,
                 server: str = "epoll") -> None:
        self.group, self.specs, self.rows, self.proxy, self.server = group, specs, rows, proxy, server

    def impls(self, asked: List[str]) -> List[str]:
        """The implementations of ``asked`` this group runs."""
        if self.group == "burst":
            return [i for i in asked if i in BURST_IMPLS]
        return [i for i in asked if i not in ("ttsstream-cold", "ttsstream-once")]


def stream_rows(group: str, n: int) -> List[Row]:
    """The rows of one size of the concurrency or burst group."""
    who = f"{n:,} streams" if group == "concurrency" else f"burst of {n:,}"
    return [
        Row(f"{group}_{n}_p99_ms", f"{who}: p99 latency", "ms", "lower", 0.01, lambda r: r["p99_ms"]),
        Row(f"{group}_{n}_first_audio_p99_ms", f"{who}: first audio p99", "ms", "lower", 0.01,
            lambda r: r["first_audio_p99_ms"]),
        Row(f"{group}_{n}_cpu_pct", f"{who}: CPU", "% of a core", "lower", 0.1, lambda r: r["cpu_pct"]),
        Row(f"{group}_{n}_cpu_s", f"{who}: CPU time", "s", "lower", 0.01, lambda r: r["cpu_s"]),
        Row(f"{group}_{n}_finish_s", f"{who}: all done after", "s", "lower", 0.01, lambda r: r["wall_s"]),
        Row(f"{group}_{n}_rss_peak_mb", f"{who}: peak RSS", "MB", "lower", 0.1, lambda r: r["rss_peak_mb"]),
        Row(f"{group}_{n}_rss_per_stream_kb", f"{who}: RSS added per stream", "kB", "lower", 1,
            lambda r: r["rss_per_stream_kb"])]


def plans(size: Dict[str, Any]) -> List[Plan]:
    found = []
    specs, rows = [], []
    for frame, frames in size["throughput_frames"].items():
        specs.append({"metric": "throughput", "size": frame, "frames": frames})
        rows.append([Row(f"throughput_{frame}_mb_s", f"throughput, {frame:,}-byte frames", "MB/s", "higher", 0.1,
                         lambda r: r["mb_per_s"])])
    found.append(Plan("throughput", specs, rows))
    found.append(Plan("latency", [{"metric": "latency", "frames": size["latency_frames"]}], [[
        Row("latency_p50_ms", "per-chunk latency p50", "ms", "lower", 0.01, lambda r: r["p50_ms"]),
        Row("latency_p99_ms", "per-chunk latency p99", "ms", "lower", 0.01, lambda r: r["p99_ms"])]]))
    found.append(Plan("first-audio", [{"metric": "first_audio", "reps": size["first_audio_reps"]}], [[
        Row("first_audio_cold_ms", "first audio, cold", "ms", "lower", 0.01, lambda r: r["cold_ms"]),
        Row("first_audio_warm_ms", "first audio, prewarmed", "ms", "lower", 0.01, lambda r: r["warm_ms"])]]))
    delay = size["proxy_delay_ms"]
    found.append(Plan("proxy", [{"metric": "first_audio", "reps": size["proxy_reps"], "pause": 0.1}], [[
        Row("proxy_cold_ms", f"first audio via {delay:g} ms proxy, cold", "ms", "lower", 0.1, lambda r: r["cold_ms"]),
        Row("proxy_warm_ms", f"first audio via {delay:g} ms proxy, prewarmed", "ms", "lower", 0.1,
            lambda r: r["warm_ms"])]], proxy=True))
    specs, rows = [], []
    for n in size["streams"]:
        specs.append({"metric": "concurrency", "n": n, "frames": size["stream_frames"]})
        rows.append(stream_rows("concurrency", n))
    found.append(Plan("concurrency", specs, rows))
    specs, rows = [], []
    for n in size["burst_streams"]:
        specs.append({"metric": "concurrency", "n": n, "frames": size["burst_frames"], "spread": False})
        rows.append(stream_rows("burst", n))
    found.append(Plan("burst", specs, rows, server="asyncio"))
    seconds = size["long_seconds"]
    length = f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"
    found.append(Plan("long-speech", [{"metric": "long_speech", "seconds": size["long_seconds"],
                                       "speedup": size["long_speedup"]}], [[
        Row("long_speech_growth_mb", f"{length} speech: RSS growth", "MB", "lower", 0.01,
            lambda r: r["growth_mb"]),
        Row("long_speech_peak_mb", f"{length} speech: peak RSS", "MB", "lower", 0.1,
            lambda r: r["rss_peak_mb"])]]))
    return found


def run_trial(spec: Dict[str, Any], server: ServerGroup, timeout: float, watch: MachineWatch) -> Dict[str, Any]:
    """One trial in a fresh process; its result, with the server's counters for it and the
    CPU other processes used meanwhile."""
    server.stats()  # reset
    watch.sample()
    mark = watch.mark()
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(HERE / "trials.py"), json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout)
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {"error": done.stderr[-2000:] or "no output"}
        if done.returncode and "error" not in result:
            result["error"] = done.stderr[-2000:]
    except subprocess.TimeoutExpired:  # subprocess.run has killed and reaped it
        result = {"error": f"timed out after {timeout:g} s"}
    result["trial_s"] = round(time.monotonic() - started, 2)
    result["others_cpu_pct"] = round(watch.others_pct(mark, watch.mark()), 1)
    result["server"] = server.stats()
    sent = result["server"]["audio_bytes"]
    result["bytes_sent"] = sent
    result["bytes_ok"] = "error" not in result and result.get("bytes_received") == sent == result.get("bytes_expected")
    # An instrument fault, as opposed to streams that failed under load (a result).
    result["instrument_ok"] = result["bytes_ok"] or ("error" not in result and result.get("streams_failed", 0) > 0)
    return result


def trial_timeout(spec: Dict[str, Any]) -> float:
    if spec["metric"] == "long_speech":
        return 120 + 2 * spec["seconds"] / spec["speedup"]
    if spec["metric"] == "concurrency":
        return 120 + spec["frames"] / 10 + spec["n"] / 10
    return 300


def measure(found: List[Plan], only: List[str], impls: List[str], runs: int, size: Dict[str, Any],
            server_processes: int, watch: MachineWatch) -> Tuple[List[Row], Dict[str, Dict[str, List[float]]],
                                                                 List[Dict[str, Any]]]:
    """Run every trial of the groups in ``only``, implementations interleaved within each
    run; return the rows measured, their per-run values, and every trial's record."""
    all_rows: List[Row] = []
    values: Dict[str, Dict[str, List[float]]] = {}
    trials: List[Dict[str, Any]] = []
    servers: Dict[str, ServerGroup] = {}
    try:
        for plan in found:
            if plan.group not in only:
                continue
            if plan.server not in servers:
                servers[plan.server] = ServerGroup(server_processes, max_seconds=6 * 3600, kind=plan.server)
            server = servers[plan.server]
            proxy = None
            if plan.proxy:
                proxy = Child("delay_proxy.py", ["--target", f"127.0.0.1:{server.port}",
                                                 "--delay-ms", str(size["proxy_delay_ms"]),
                                                 "--max-seconds", "3600", "--max-connections", "500"])
            try:
                url = server.url(proxy.port if proxy else None)
                mine = plan.impls(impls)
                for spec, rows in zip(plan.specs, plan.rows):
                    all_rows.extend(rows)
                    for run in range(runs):
                        order = mine if run % 2 == 0 else mine[::-1]
                        for impl in order:
                            full = dict(spec, impl=impl, url=url)
                            result = run_trial(full, server, trial_timeout(spec), watch)
                            trials.append({"group": plan.group, "impl": impl, "run": run, "spec": spec,
                                           "result": result})
                            status = "ok" if result["bytes_ok"] else (
                                f"{result.get('streams_failed')} streams failed" if result["instrument_ok"]
                                else f"FAILED {result.get('error', 'bytes')!s:.300}")
                            print(f"  {plan.group:12} {json.dumps(spec)[:60]:60} run {run + 1} {impl:14} "
                                  f"{result['trial_s']:6.1f} s  {status}", file=sys.stderr, flush=True)
                            for row in rows:
                                bucket = values.setdefault(row.key, {name: [] for name in mine})
                                if "error" not in result:
                                    bucket[impl].append(row.read(result))
            finally:
                if proxy is not None:
                    proxy.close()
    finally:
        for server in servers.values():
            server.close()
    return all_rows, values, trials


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run: proves the suite works (CI)")
    parser.add_argument("--json", help="also write everything measured to this file")
    parser.add_argument("--only", help=f"comma-separated groups: {','.join(GROUPS)}")
    parser.add_argument("--runs", type=int, help="repetitions of every trial (default 3; 1 with --quick)")
    parser.add_argument("--streams", help="comma-separated N for the concurrency group (default 100,400,800,1200)")
    parser.add_argument("--impls", help=f"comma-separated implementations: {','.join(IMPLS)} (default all)")
    parser.add_argument("--server-processes", type=int, default=1, help="benchmark server processes (default 1)")
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else list(GROUPS)
    unknown = set(only) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    impls = args.impls.split(",") if args.impls else list(IMPLS)
    if BASELINE not in impls or set(impls) - set(IMPLS):
        parser.error(f"--impls must name known implementations and include {BASELINE!r}")
    runs = args.runs or (1 if args.quick else 3)
    size = sizes(args.quick, [int(n) for n in args.streams.split(",")] if args.streams else None)
    raise_open_files()
    watch = MachineWatch()
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gb']} GB, Linux {info['kernel']}, "
          f"Python {info['python']}, websocket-client {info['websocket-client']}, websockets {info['websockets']}, "
          f"ttsstream {info['ttsstream']}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in watch.load_before)}; runs: {runs}"
          f"{'; QUICK MODE (tiny sizes, figures meaningless)' if args.quick else ''}", flush=True)

    started = time.monotonic()
    all_rows, values, trials = measure(plans(size), only, impls, runs, size, args.server_processes, watch)
    others = watch.report()
    metrics = summarise(all_rows, values)
    judged = targets(metrics)
    print()
    print_table(all_rows, metrics)
    print()
    print_targets(judged, not args.quick)
    print()
    print_notes(trials, others, size)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "suite": {"quick": args.quick, "runs": runs, "sizes": {k: v for k, v in size.items()},
                      "groups": only, "impls": {k: LABELS[k] for k in impls}, "baseline": BASELINE,
                      "duration_s": round(time.monotonic() - started, 1)},
            "machine": info, "machine_load": others, "metrics": metrics, "targets": judged, "trials": trials,
        }, indent=1, default=str))
    return 0 if all(t["result"]["instrument_ok"] for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
