"""Benchmark: speaking an LLM's answer while it is written, against waiting for all of it.

    python benchmarks/bench_streaming.py [--runs 5] [--quick] [--json FILE]
                                         [--engine espeak|tone] [--realtime X]
                                         [--delay-ms 20] [--proxy-script PATH | --no-proxy]

A 600-character answer comes from a fake generator at 30 tokens/s (4-character tokens:
150 tokens, 5 s), and is spoken two ways, with a fresh ``TTSClient`` each run (its first
connection is part of the cost, as for a reply in a chat app):

- streaming: ``client.speak(tokens)``: the text is cut into units as it comes and each
  unit is synthesized as soon as it is cut (EigenAI: a request each on connections
  opened ahead; Shunyalabs: one input after another on one connection);
- naive: join all the tokens, then ``client.speak(text)``: one request.

for both dialects of the bundled server (``LocalServer``, the real ``espeak`` engine by
default), over loopback directly and through ``delay_proxy.py`` (20 ms each way: a
40 ms round trip, TCP's handshake modelled). Measured per run:

- first token -> first audio: from the generator's first token to the first
  ``on_audio`` call (on the reader thread: ``dispatch="thread"``);
- gaps: nothing is played (no device is needed): playback is simulated from the audio's
  arrival times, as a player that starts at the first chunk and plays continuously
  would run. A gap is time the player would run dry (a chunk arrives after the audio
  before it has played out); "gaps" is their total, "gap count" how many there were
  (a jitter buffer would hide some of them at the cost of a later start);
- units: ``len(speech.segments)`` (the naive speech is one);
- first token -> end: when the last sample would have played, on that same timeline.

Each cell is ``--runs`` runs (streaming and naive alternate, so drift in the machine's
load hits both); the table gives medians with min-max and the ratio streaming / naive of
the medians (below 1: streaming is sooner). ``--quick`` is one run of each.

The machine may be shared: the load average before and after is printed (and kept in
the JSON) so a noisy result can be recognised. The espeak engine synthesizes much
faster than real time with ~10 ms to first audio; ``--realtime X`` paces the server's
audio at X times real time, closer to a remote model's. Needs the ``local`` extra.

Measured (2 CPUs, shared; espeak, unpaced; medians of 5, each dialect alike within 5 ms):

    path      first audio: streaming / naive     gaps     end of playback: streaming / naive
    direct    0.51 s / 4.91 s  (0.10)            0 / 0    33.4 s / 39.0 s  (0.86)
    proxy     0.55 s / 5.03 s  (0.11)            0 / 0    33.5 s / 39.1 s  (0.86)

Streaming's first audio is the segmenter's first cut: "Good question." is shorter than
``first_min_chars`` (20), so the first unit ends at the clause after it, 60 characters
(0.5 s) in. Through the proxy naive pays the connection (about 3 round trips, 120 ms);
streaming pays one (its connection was opened while the text came). Streaming's speech
is 1.2 s shorter (six units' pauses instead of one speech's). With ``--realtime 1``
(``--quick``) Shunyalabs streaming has gaps: each unit goes out when the one before it has
ended, so each boundary costs a round trip and the next unit's first audio (47 ms in all
direct, 240 ms through the proxy, over 5 boundaries); EigenAI's units, sent ahead on
connections of their own, have none (1-5 ms; naive 9-13 ms of scheduling jitter).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import ttsstream  # noqa: E402
from ttsstream.server import LocalServer  # noqa: E402

ANSWER = (
    "Good question. A heat pump moves heat instead of making it, which is why it can deliver "
    "three or four units of heat for every unit of electricity it uses. In winter it pulls "
    "warmth from the outside air, even when it feels cold to you, and pumps it indoors; in "
    "summer it runs the other way and cools the house. The catch is the upfront cost: a "
    "typical system runs between eight and fifteen thousand dollars installed, although "
    "rebates can cover a good part of that. If your home is well insulated, you will "
    "probably save money within a few years. Ask an installer for a load calculation first.")
TOKEN_CHARS = 4
TOKENS_PER_SECOND = 30.0
DIALECTS = {  # name: (provider, endpoint attribute of LocalServer, speak() parameters)
    "EigenAI": ("eigenai", "eigenai_url", {}),
    "Shunyalabs": ("shunyalabs", "shunyalabs_url", {"language": "en"}),
}
APPROACHES = ("streaming", "naive")
MEASURES = [  # key, label, unit, scale
    ("first_audio", "first token -> first audio", "ms", 1000.0),
    ("gaps", "gaps in playback (total)", "ms", 1000.0),
    ("gap_count", "gap count", "", 1.0),
    ("units", "units", "", 1.0),
    ("end", "first token -> end of playback", "s", 1.0),
    ("audio_s", "audio (speech's length)", "s", 1.0),
]
GAP_EPSILON = 0.001  # a chunk a millisecond late is a scheduling blip, not a gap one hears


# -- the fake LLM ----------------------------------------------------------------------

class FakeLLM:
    """Yields ``text`` in ``TOKEN_CHARS``-character tokens at ``tps`` tokens a second,
    on a fixed schedule from its first token (which it yields at once)."""

    def __init__(self, text: str, tps: float) -> None:
        self.tokens = [text[i:i + TOKEN_CHARS] for i in range(0, len(text), TOKEN_CHARS)]
        self.tps = tps
        self.first_token: Optional[float] = None
        self.last_token: Optional[float] = None

    def __iter__(self) -> Iterator[str]:
        for i, token in enumerate(self.tokens):
            if self.first_token is None:
                self.first_token = time.perf_counter()
            else:
                wait = self.first_token + i / self.tps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            self.last_token = time.perf_counter()
            yield token


# -- the audio timeline ------------------------------------------------------------------

class Arrivals:
    """Records each chunk's arrival time and length. ``on_audio`` runs on the reader thread."""

    def __init__(self) -> None:
        self.chunks: List[Tuple[float, int, int]] = []  # (perf_counter, bytes, sample rate)

    def on_audio(self, chunk: ttsstream.AudioChunk) -> None:
        self.chunks.append((time.perf_counter(), len(chunk.pcm), chunk.sample_rate))


def playback_timeline(chunks: List[Tuple[float, int, int]]) -> Tuple[float, int, float]:
    """(total gap seconds, gap count, when the last sample plays) for a player that starts
    at the first chunk's arrival and plays each chunk as soon as both it has arrived and
    the one before it has played out."""
    clock = chunks[0][0]  # when the player would have played everything it had so far
    gaps, count = 0.0, 0
    for arrived, size, rate in chunks:
        if arrived > clock:
            if arrived - clock > GAP_EPSILON:
                count += 1
            gaps += arrived - clock
            clock = arrived
        clock += size / (2 * rate)  # 16-bit mono
    return gaps, count, clock


# -- one run ----------------------------------------------------------------------------

def run_once(approach: str, provider: str, url: str, params: Dict[str, Any], tps: float) -> Dict[str, float]:
    llm = FakeLLM(ANSWER, tps)
    arrivals = Arrivals()
    with ttsstream.TTSClient(provider, url=url, api_key="bench", timeout=60.0) as client:
        if approach == "streaming":
            speech = client.speak(llm, on_audio=arrivals.on_audio, **params)
        else:
            text = "".join(llm)  # the whole answer first
            speech = client.speak(text, on_audio=arrivals.on_audio, **params)
    assert speech.text == ANSWER, speech
    assert arrivals.chunks and llm.first_token is not None, speech
    gaps, count, end = playback_timeline(arrivals.chunks)
    return {"first_audio": arrivals.chunks[0][0] - llm.first_token, "gaps": gaps, "gap_count": float(count),
            "units": float(len(speech.segments)), "end": end - llm.first_token, "audio_s": speech.duration}


# -- the delay proxy -------------------------------------------------------------------

class Proxy:
    """``delay_proxy.py`` in a process of its own, forwarding to ``port``; ``stop()`` ends it."""

    def __init__(self, script: Path, port: int, delay_ms: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), "--target", f"127.0.0.1:{port}", "--delay-ms", str(delay_ms),
             "--max-seconds", "3600"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the delay proxy did not start (it said {line!r})")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        process = self.process
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()  # its signal to exit
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def find_proxy(given: Optional[str]) -> Path:
    script = Path(given) if given else HERE / "delay_proxy.py"
    if not script.is_file():
        raise SystemExit(f"bench_streaming: no delay proxy at {script} (it comes with the benchmarks "
                         f"branch: merge main, or pass --proxy-script PATH, or --no-proxy)")
    return script


# -- the whole benchmark ------------------------------------------------------------------

def measure(runs: int, engine: str, realtime: float, paths: List[str], proxy_script: Optional[Path],
            delay_ms: float, tps: float, progress: Callable[[str], None]) -> Dict[str, Any]:
    results: Dict[str, Any] = {}
    server = LocalServer(engine=engine, realtime=realtime, thread_name="bench-streaming-server").start()
    proxy: Optional[Proxy] = None
    try:
        if proxy_script is not None:
            proxy = Proxy(proxy_script, server.port, delay_ms)
        for dialect, (provider, endpoint, params) in DIALECTS.items():
            direct_url = getattr(server, endpoint)
            urls = {"direct": direct_url}
            if proxy is not None:
                urls["proxy"] = direct_url.replace(f":{server.port}/", f":{proxy.port}/")
            # Warm-up (not counted): the engine's first utterance, the first connections.
            run_once("naive", provider, direct_url, params, 1e6)
            for path in paths:
                cell: Dict[str, List[Dict[str, float]]] = {approach: [] for approach in APPROACHES}
                for run in range(runs):
                    order = APPROACHES if run % 2 == 0 else APPROACHES[::-1]
                    for approach in order:
                        result = run_once(approach, provider, urls[path], params, tps)
                        cell[approach].append(result)
                        progress(f"{dialect:10} {path:6} {approach:9} run {run + 1}/{runs}: first audio "
                                 f"{result['first_audio'] * 1000:.0f} ms, gaps {result['gaps'] * 1000:.0f} ms, "
                                 f"{result['units']:.0f} units")
                results[f"{dialect} {path}"] = cell
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
    return results


def summarize(values: List[float]) -> Dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def print_table(results: Dict[str, Any], header: Dict[str, Any]) -> None:
    print(f"{len(ANSWER)}-character answer, {TOKEN_CHARS}-character tokens at {header['tps']:g} tokens/s "
          f"({header['tokens']} tokens, {header['tokens'] / header['tps']:.1f} s); engine {header['engine']}"
          f"{', realtime x%g' % header['realtime'] if header['realtime'] else ''}; "
          f"{header['runs']} run(s) per cell; "
          f"{'proxy %g ms each way' % header['delay_ms'] if header['delay_ms'] else 'no proxy'}")
    print(f"load average before {header['load_before']}, after {header['load_after']}; "
          f"{header['cpus']} CPUs; {header['seconds']:.0f} s")
    columns = f"{'dialect, path':19} {'measure':32} {'streaming: median (min-max)':>30} " \
              f"{'naive: median (min-max)':>30} {'ratio':>6}"
    print(columns)
    print("-" * len(columns))
    for cell_name, cell in results.items():
        for key, label, unit, scale in MEASURES:
            row = []
            for approach in APPROACHES:
                stats = summarize([run[key] * scale for run in cell[approach]])
                form = "{:.0f}" if unit in ("ms", "") else "{:.2f}"
                low, middle, high = (form.format(stats[name]) for name in ("min", "median", "max"))
                text = f"{middle} ({low}-{high}) {unit}"
                row.append((stats["median"], text))
            ratio = f"{row[0][0] / row[1][0]:.2f}" if row[1][0] else "-"
            print(f"{cell_name:19} {label:32} {row[0][1]:>30} {row[1][1]:>30} {ratio:>6}")
        print()
    print("ratio = streaming median / naive median (below 1: streaming is sooner or gaps less); "
          "gaps from arrival times against a player started at the first audio, no device")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each approach per cell (default 5)")
    parser.add_argument("--quick", action="store_true", help="one run of each (a smoke test)")
    parser.add_argument("--json", help="also write every run and the summary as JSON to this file")
    parser.add_argument("--engine", default="espeak", choices=("espeak", "tone"), help="the server's engine")
    parser.add_argument("--realtime", type=float, default=0.0,
                        help="pace the server's audio at this multiple of real time (default 0: unpaced)")
    parser.add_argument("--tps", type=float, default=TOKENS_PER_SECOND, help="tokens a second (default 30)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="the proxy's one-way delay (default 20)")
    parser.add_argument("--proxy-script", help="delay_proxy.py (default: next to this file)")
    parser.add_argument("--no-proxy", action="store_true", help="loopback only")
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per run")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    proxy_script = None if args.no_proxy else find_proxy(args.proxy_script)
    paths = ["direct"] if proxy_script is None else ["direct", "proxy"]

    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    results = measure(runs, args.engine, args.realtime, paths, proxy_script, args.delay_ms, args.tps,
                      (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)))
    header = {"tps": args.tps, "tokens": len(FakeLLM(ANSWER, args.tps).tokens), "engine": args.engine,
              "realtime": args.realtime, "runs": runs, "delay_ms": args.delay_ms if proxy_script else 0.0,
              "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
              "cpus": os.cpu_count(), "seconds": time.perf_counter() - started}
    print_table(results, header)
    if args.json:
        summary = {cell_name: {approach: {key: summarize([run[key] for run in cell[approach]])
                                          for key, _, _, _ in MEASURES}
                               for approach in APPROACHES}
                   for cell_name, cell in results.items()}
        Path(args.json).write_text(json.dumps({"setup": header, "summary": summary, "runs": results}, indent=2))
    leftover = [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if leftover:
        print(f"threads still running: {leftover}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
