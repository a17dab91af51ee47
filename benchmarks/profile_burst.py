"""Where the CPU of a burst goes: one burst trial under a profiler that sees every thread.

    python benchmarks/profile_burst.py [--impl ttsstream] [--streams 400] [--frames 80] [--top 30]

Runs one trial of the suite's burst group (``asyncio_server.py`` in a process of its
own, N real-time streams asked for at once) in this process under yappi, with its CPU
clock and every thread profiled, only while the streams run (``Window.begin`` to
``Window.end``). Prints the trial's figures, then the functions by their own CPU time
and by their total, with call counts, and the CPU of all threads together.

yappi is used rather than py-spy, which reads every thread's stack on each sample and
falls seconds behind at 800 threads; yappi charges each thread's own CPU clock, so a
thread blocked in ``recv`` costs nothing while it waits. Its own overhead inflates
Python's share (several times, per call): read the figures as proportions between
functions, and the suite's ratios for the cost itself. ``pip install yappi``.

Imports: children, impls, trials (and yappi).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # ttsstream from this checkout

import impls  # noqa: E402
import trials  # noqa: E402
from children import Child  # noqa: E402


def print_stats(stats: Any, key: str, top: int) -> None:
    stats.sort(key)
    print(f"---- by {'own' if key == 'tsub' else 'total'} CPU time: own s, total s, calls, function")
    for entry in stats[:top]:
        print(f"{entry.tsub:8.3f} {entry.ttot:8.3f} {entry.ncall:9d}  {entry.name} "
              f"({os.path.basename(entry.module)}:{entry.lineno})")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="ttsstream", help=f"one of {', '.join(impls.IMPLS)}")
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--frames", type=int, default=80, help="100 ms frames per stream (default 80)")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    try:
        import yappi
    except ImportError:
        parser.error("yappi is not installed: pip install yappi")
    begin, end = impls.Window.begin, impls.Window.end

    def profiled_begin(window: Any) -> None:
        yappi.set_clock_type("cpu")
        yappi.start(builtins=True, profile_threads=True)
        begin(window)

    def profiled_end(window: Any) -> None:
        end(window)
        yappi.stop()

    impls.Window.begin, impls.Window.end = profiled_begin, profiled_end  # type: ignore[method-assign]
    server = Child("asyncio_server.py", [])
    try:
        result = trials.run_trial({"metric": "concurrency", "n": args.streams, "frames": args.frames,
                                   "spread": False, "impl": args.impl,
                                   "url": f"ws://127.0.0.1:{server.port}/api/v1/generate/ws"})
    finally:
        server.close()
    print(f"{args.impl}, burst of {args.streams}: p99 latency {result['p99_ms']:.1f} ms, first audio p99 "
          f"{result['first_audio_p99_ms']:.1f} ms, CPU {result['cpu_s']:.2f} s (under the profiler), "
          f"{result['streams_failed']} failed")
    stats = yappi.get_func_stats()
    print_stats(stats, "tsub", args.top)
    print_stats(stats, "ttot", args.top)
    threads = yappi.get_thread_stats()
    print(f"threads profiled: {len(threads)}, their CPU together: {sum(t.ttot for t in threads):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
