"""Benchmark: output formats, what converting and writing cost, and how clean 24 -> 8 kHz is.

    python benchmarks/bench_formats.py [--quick] [--reps N] [--seconds S] [--json FILE]

Three tables, each against a baseline measured in the same run:

- Conversion cost per real-time stream: the CPU time of the converting thread
  (``time.thread_time``) per second of audio, as % of one core, for a stream of 24 kHz
  16-bit speech fed in 100 ms chunks (4,800 bytes) and turned into 8 kHz μ-law and A-law
  in 20 ms frames (160 bytes) and into 16 kHz pcm16. ttsstream is
  ``AudioFormat(...).converter(24000)`` (soxr, the G.711 tables in numpy, the framer).
  The hand-written client's way, as the issue's references write it: each chunk
  resampled by linear interpolation (``numpy.interp``, no scipy, no state from one chunk
  to the next), a pure-Python G.711 loop per sample (Sun's ``g711.c``, since ``audioop``
  is gone in Python 3.13) and frames sliced off a ``bytearray``. The floor is a plain
  copy of each chunk's bytes. The goal is ttsstream at or under 0.5 % of a core.
- Aliasing, 24 -> 8 kHz: a 5-11.5 kHz sweep (all of it above the new Nyquist, 4 kHz) at
  half scale through each resampler; what lands below 4 kHz is alias, given in dB
  against the sweep's power. The goal is -60 dB or lower.
- Writing 10 s of speech to a file, per format (``formats.write_audio``), and the
  notebook view's rendition (Opus at 24 kbit/s): the thread's CPU time, the wall time and
  the size, with WAV as the baseline.

The speech is eSpeak NG's (the bundled ``espeak`` engine) where it is installed, else
the tone engine's. Figures are medians over ``--reps`` interleaved repetitions, printed
with three significant figures at most and never finer than the instrument
(``report.text``). Needs numpy, soxr and soundfile (``ttsstream[formats]``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from report import text  # noqa: E402
from ttsstream.formats import AudioFileWriter, AudioFormat, FILE_FORMATS, alaw_encode, mulaw_encode, write_audio  # noqa: E402
from ttsstream.notebook import SPEECH_BITRATE  # noqa: E402

RATE = 24000
CHUNK = 4800  # bytes: 100 ms at 24 kHz, 16-bit
GOAL_PCT = 0.5
GOAL_ALIAS_DB = -60.0
TEXT = ("Streaming speech reaches a caller's phone as eight kilohertz samples, twenty "
        "milliseconds at a time. Every format costs something to make; this measures what. ")


# -- the hand-written client's way --------------------------------------------------------

_MULAW_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def py_mulaw(sample: int) -> int:
    """One 16-bit sample to μ-law, as Sun's g711.c ``linear2ulaw`` does it (on 14 bits)."""
    pcm = sample >> 2
    if pcm < 0:
        mask, pcm = 0x7F, -pcm
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + 0x21
    segment = next((i for i, end in enumerate(_MULAW_ENDS) if pcm <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((pcm >> (segment + 1)) & 0x0F)) ^ mask


_ALAW_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def py_alaw(sample: int) -> int:
    """One 16-bit sample to A-law, as Sun's g711.c ``linear2alaw`` does it."""
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    segment = next((i for i, end in enumerate(_ALAW_ENDS) if pcm <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    value = (segment << 4) | ((pcm >> (1 if segment < 2 else segment)) & 0x0F)
    return value ^ mask


def interpolated(chunk: bytes, rate_out: int) -> np.ndarray:
    """One chunk resampled by linear interpolation, on its own (no state across chunks)."""
    samples = np.frombuffer(chunk, dtype="<i2")
    count = len(samples) * rate_out // RATE
    where = np.arange(count) * (RATE / rate_out)
    return np.interp(where, np.arange(len(samples)), samples).astype("<i2")


def hand_written(rate_out: int, encode: Callable[[int], int], frame: int) -> Callable[[List[bytes]], int]:
    def run(chunks: List[bytes]) -> int:
        pending, frames = bytearray(), 0
        for chunk in chunks:
            pending += bytes(encode(s) for s in interpolated(chunk, rate_out).tolist())
            while len(pending) >= frame:
                del pending[:frame]
                frames += 1
        return frames
    return run


def resampled_only(rate_out: int) -> Callable[[List[bytes]], int]:
    def run(chunks: List[bytes]) -> int:
        return sum(len(interpolated(chunk, rate_out).tobytes()) for chunk in chunks)
    return run


def copied(chunks: List[bytes]) -> int:
    return sum(len(bytes(bytearray(chunk))) for chunk in chunks)


def ours(audio_format: AudioFormat) -> Callable[[List[bytes]], int]:
    def run(chunks: List[bytes]) -> int:
        converter = audio_format.converter(RATE)
        pieces = 0
        for chunk in chunks:
            pieces += len(converter.push(chunk))
        return pieces + len(converter.flush())
    return run


# (conversion, method, its function); the first of each conversion is the baseline of its ratio.
CONVERSIONS: List[Tuple[str, str, Callable[[List[bytes]], int]]] = [
    ("24 kHz pcm16, as received", "plain copy of the bytes", copied),
    ("24 -> 8 kHz mu-law, 20 ms frames", "hand-written (np.interp + Python loop)",
     hand_written(8000, py_mulaw, 160)),
    ("24 -> 8 kHz mu-law, 20 ms frames", "ttsstream", ours(AudioFormat(8000, "mulaw", 20))),
    ("24 -> 8 kHz A-law, 20 ms frames", "hand-written (np.interp + Python loop)",
     hand_written(8000, py_alaw, 160)),
    ("24 -> 8 kHz A-law, 20 ms frames", "ttsstream", ours(AudioFormat(8000, "alaw", 20))),
    ("24 -> 16 kHz pcm16", "hand-written (np.interp)", resampled_only(16000)),
    ("24 -> 16 kHz pcm16", "ttsstream", ours(AudioFormat(16000, "pcm16"))),
]


# -- the measures -------------------------------------------------------------------------

def speech(seconds: float) -> Tuple[bytes, str]:
    """``seconds`` of 24 kHz speech, and whose voice it is."""
    try:
        from ttsstream.server.engines import get_engine  # noqa: PLC0415

        engine, source = get_engine("espeak"), "eSpeak NG"
        one = b"".join(engine.synthesize(TEXT, sample_rate=RATE))
    except Exception:  # noqa: BLE001 -- no eSpeak here: the tone engine's speech stands in
        from ttsstream.server import tone_pcm  # noqa: PLC0415

        one, source = tone_pcm(TEXT), "the tone engine"
    size = int(seconds * RATE) * 2
    return (one * (size // len(one) + 1))[:size], source


def conversion_costs(pcm: bytes, reps: int) -> List[Dict[str, Any]]:
    chunks = [pcm[i:i + CHUNK] for i in range(0, len(pcm), CHUNK)]
    seconds = len(pcm) / (2 * RATE)
    cpu: Dict[int, List[float]] = {}
    for _ in range(reps):
        for index, (_, _, run) in enumerate(CONVERSIONS):  # interleaved, so drift hits all alike
            start = time.thread_time()
            run(chunks)
            cpu.setdefault(index, []).append(time.thread_time() - start)
    rows: List[Dict[str, Any]] = []
    base: Dict[str, float] = {}
    for index, (conversion, method, _) in enumerate(CONVERSIONS):
        runs = [100 * c / seconds for c in cpu[index]]
        median = statistics.median(runs)
        base.setdefault(conversion, median)
        rows.append({"conversion": conversion, "method": method, "pct_of_core": median, "min": min(runs),
                     "max": max(runs), "ratio": median / base[conversion] if base[conversion] else None})
    return rows


def sweep(seconds: float) -> np.ndarray:
    """A 5-11.5 kHz linear sweep at half scale with 50 ms raised-cosine ends (as tests/test_formats.py)."""
    t = np.arange(int(RATE * seconds)) / RATE
    signal = np.sin(2 * np.pi * (5000 * t + 6500 * t ** 2 / (2 * seconds)))
    ramp = int(0.05 * RATE)
    envelope = np.ones_like(t)
    envelope[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    envelope[-ramp:] = envelope[:ramp][::-1]
    return (0.5 * 32767 * envelope * signal).astype("<i2")


def alias_db(source: np.ndarray, out: np.ndarray) -> float:
    out = out.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    in_band = spectrum[np.fft.rfftfreq(len(out), 1 / 8000) < 4000].sum() * 2 / len(out) ** 2
    return float(10 * np.log10(in_band / np.mean(source.astype(np.float64) ** 2)))


def aliasing(seconds: float) -> List[Dict[str, Any]]:
    source = sweep(seconds)
    data = source.tobytes()
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    naive = np.concatenate([interpolated(chunk, 8000) for chunk in chunks])
    converter = AudioFormat(8000, "pcm16").converter(RATE)
    pieces = [pcm for chunk in chunks for pcm, _ in converter.push(chunk)] + [pcm for pcm, _ in converter.flush()]
    soxr = np.frombuffer(b"".join(pieces), dtype="<i2")
    return [{"method": "hand-written (np.interp)", "alias_db": alias_db(source, naive)},
            {"method": "ttsstream (soxr HQ)", "alias_db": alias_db(source, soxr)}]


def file_writes(pcm: bytes, reps: int) -> List[Dict[str, Any]]:
    kinds: List[Tuple[str, str, Dict[str, Any]]] = [(name, name, {}) for name in FILE_FORMATS]
    kinds.append((f"opus {SPEECH_BITRATE // 1000} kbit/s (notebook)", "opus", {"bitrate": SPEECH_BITRATE}))
    seconds = len(pcm) / (2 * RATE)
    cpu: Dict[str, List[float]] = {}
    wall: Dict[str, List[float]] = {}
    sizes: Dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(reps):
            for label, format, options in kinds:
                path = Path(folder) / f"speech.{format}"
                start, started = time.thread_time(), time.perf_counter()
                if options:
                    with AudioFileWriter(str(path), format, RATE, **options) as writer:
                        writer.write(pcm)
                else:
                    write_audio(path, pcm, RATE, format=format)
                wall.setdefault(label, []).append(time.perf_counter() - started)
                cpu.setdefault(label, []).append(time.thread_time() - start)
                sizes[label] = path.stat().st_size
    base = statistics.median(cpu["wav"])
    return [{"format": label, "cpu_ms": 1000 * statistics.median(cpu[label]),
             "wall_ms": 1000 * statistics.median(wall[label]), "kb": sizes[label] / 1000,
             "kbit_s": sizes[label] * 8 / seconds / 1000,
             "cpu_ratio": statistics.median(cpu[label]) / base if base else None} for label, _, _ in kinds]


def agrees() -> bool:
    """The hand-written G.711 loops give ttsstream's bytes for every 16-bit sample (so the
    costs compare like with like)."""
    every = np.arange(-32768, 32768, dtype="<i2")
    values = every.tolist()
    return (bytes(py_mulaw(s) for s in values) == mulaw_encode(every)
            and bytes(py_alaw(s) for s in values) == alaw_encode(every))


def ratio_text(value: Optional[float]) -> str:
    """Two significant figures, without an exponent."""
    if value is None or value <= 0:
        return "-"
    return f"{value:,.{max(0, 1 - math.floor(math.log10(value)))}f}"


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a check that it runs: 2 s of audio, one rep")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per conversion run")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    reps, seconds, file_seconds, sweep_seconds = args.reps, args.seconds, 10.0, 4.0
    if args.quick:
        reps, seconds, file_seconds, sweep_seconds = 1, 2.0, 2.0, 1.0

    pcm, source = speech(max(seconds, file_seconds))
    costs = conversion_costs(pcm[:int(seconds * RATE) * 2], reps)
    aliases = aliasing(sweep_seconds)
    files = file_writes(pcm[:int(file_seconds * RATE) * 2], reps)
    same = agrees()

    print(f"Conversion cost per real-time stream: {seconds:g} s of {source}'s 24 kHz speech in 100 ms chunks, "
          f"median of {reps}; % of one core (goal <= {GOAL_PCT} % for ttsstream)")
    print(f"{'conversion':34} {'method':40} {'% core':>8} {'min–max':>15} {'ratio':>7}")
    for row in costs:
        span = f"{text(row['min'], 0.001)}–{text(row['max'], 0.001)}"
        ratio = ratio_text(row["ratio"])
        print(f"{row['conversion']:34} {row['method']:40} {text(row['pct_of_core'], 0.001):>8} {span:>15} "
              f"{ratio:>7}")
    print(f"ratio: to the first line of the same conversion (the plain copy: itself). "
          f"Hand-written G.711 gives ttsstream's bytes: {'yes' if same else 'NO'}")
    print()
    print(f"Aliasing, 24 -> 8 kHz: a 5-11.5 kHz sweep ({sweep_seconds:g} s, half scale); power below 4 kHz "
          f"against the sweep's (goal <= {GOAL_ALIAS_DB:g} dB)")
    for row in aliases:
        print(f"{row['method']:40} {text(row['alias_db'], 0.1):>8} dB")
    print()
    print(f"Writing {file_seconds:g} s of speech to a file (formats.write_audio), median of {reps}")
    print(f"{'format':28} {'CPU ms':>8} {'wall ms':>8} {'x WAV CPU':>10} {'KB':>8} {'kbit/s':>8}")
    for row in files:
        ratio = ratio_text(row["cpu_ratio"])
        print(f"{row['format']:28} {text(row['cpu_ms'], 0.1):>8} {text(row['wall_ms'], 0.1):>8} "
              f"{ratio:>10} {text(row['kb'], 0.1):>8} {text(row['kbit_s'], 0.1):>8}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "speech": source, "reps": reps, "seconds": seconds, "conversion": costs, "aliasing": aliases,
            "files": files, "g711_baseline_agrees": same,
            "targets": {"conversion_pct_max": max(r["pct_of_core"] for r in costs if r["method"] == "ttsstream"),
                        "alias_db": aliases[1]["alias_db"]}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
