"""The suite's numbers turned into a table: medians, ranges, ratios, targets.

A ``Row`` is one measured quantity (its unit, which way is better, how finely the
instrument resolves it, and how to read it from a trial's result). ``summarise`` turns
the per-run values into median, min and max per implementation, and the ratio of each
median to the websocket-client loop's. ``targets`` judges the issue's targets against
those ratios (within one run of the suite, never across runs). ``print_table`` prints
the table, ``print_notes`` what qualifies it (checks, server health, the machine).

Imports: the standard library only (and ``impls`` for the labels).
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any, Callable, Dict, List, Optional

from impls import BASELINE, LABELS


class Row:
    """One line group of the table: a quantity measured for every implementation.

    Args:
        key: its name in the JSON.
        label: what the table calls it.
        unit: shown after the label.
        better: "higher" or "lower".
        resolution: the finest step worth printing (the instrument's), in ``unit``.
        read: the value from one trial's result.
    """

    def __init__(self, key: str, label: str, unit: str, better: str, resolution: float,
                 read: Callable[[Dict[str, Any]], float]) -> None:
        self.key, self.label, self.unit, self.better = key, label, unit, better
        self.resolution, self.read = resolution, read


def rounded(value: Optional[float], resolution: float) -> Optional[float]:
    """Three significant figures, never finer than ``resolution``."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    step = max(resolution, 10 ** (math.floor(math.log10(abs(value))) - 2))
    digits = max(0, -int(math.floor(math.log10(step) + 1e-9)))
    return round(round(value / step) * step, digits)


def text(value: Optional[float], resolution: float) -> str:
    value = rounded(value, resolution)
    if value is None:
        return "-"
    return f"{value:,.{max(0, -int(math.floor(math.log10(resolution) + 1e-9)))}f}" if value < 100 else f"{value:,.0f}"


def summarise(rows: List[Row], values: Dict[str, Dict[str, List[float]]]) -> Dict[str, Any]:
    """``values[row key][impl]`` = per-run values -> the JSON's "metrics" section."""
    out: Dict[str, Any] = {}
    for row in rows:
        per_impl = values.get(row.key, {})
        if not per_impl:
            continue
        impls: Dict[str, Any] = {}
        base = per_impl.get(BASELINE) or []
        base_median = statistics.median(base) if base else None
        for impl, runs in per_impl.items():
            if not runs:
                impls[impl] = {"runs": [], "median": None, "min": None, "max": None, "ratio": None}
                continue
            median = statistics.median(runs)
            ratio = median / base_median if base_median else None
            impls[impl] = {"runs": [rounded(v, row.resolution) for v in runs],
                           "median": rounded(median, row.resolution), "min": rounded(min(runs), row.resolution),
                           "max": rounded(max(runs), row.resolution),
                           "ratio": None if ratio is None else round(ratio, 2)}
        out[row.key] = {"label": row.label, "unit": row.unit, "better": row.better, "impls": impls}
    return out


def print_table(rows: List[Row], metrics: Dict[str, Any]) -> None:
    width = max([len(f"{row.label}, {row.unit} ({row.better} better)") for row in rows if row.key in metrics] + [6])
    header = f"{'metric':{width}}  {'implementation':32} {'median':>9} {'min–max':>17} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        if row.key not in metrics:
            continue
        label = f"{row.label}, {row.unit} ({row.better} better)"
        for impl, entry in metrics[row.key]["impls"].items():
            span = (f"{text(entry['min'], row.resolution)}–{text(entry['max'], row.resolution)}"
                    if entry["median"] is not None else "-")
            ratio = "-" if entry["ratio"] is None else f"{entry['ratio']:.2f}"
            median = text(entry["median"], row.resolution)
            print(f"{label:{width}}  {LABELS[impl]:32} {median:>9} {span:>17} {ratio:>6}")
            label = ""
    print(f"ratio = median / the {LABELS[BASELINE]}'s median, within this run of the suite.")


def _median(metrics: Dict[str, Any], key: str, impl: str) -> Optional[float]:
    entry = metrics.get(key, {}).get("impls", {}).get(impl)
    return None if not entry else entry["median"]


def _worst(metrics: Dict[str, Any], key: str, impl: str) -> Optional[float]:
    entry = metrics.get(key, {}).get("impls", {}).get(impl)
    return None if not entry or not entry["runs"] else max(v for v in entry["runs"] if v is not None)


def targets(metrics: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The issue's targets, each judged from this run's figures (None: not measured)."""
    found: List[Dict[str, Any]] = []

    def ratio(key: str) -> Optional[float]:
        entry = metrics.get(key, {}).get("impls", {}).get("ttsstream")
        return None if not entry else entry["ratio"]

    def add(name: str, value: Optional[float], limit: float, sense: str, what: str) -> None:
        """``sense``: ">=" (at least), "<=" (at most) or "<" (below)."""
        if value is None:
            met = None
        else:
            met = {">=": value >= limit, "<=": value <= limit, "<": value < limit}[sense]
        found.append({"target": name, "value": None if value is None else round(value, 2),
                      "limit": limit, "sense": sense, "what": what, "met": met})

    for size in ("4800", "48000"):
        add(f"throughput, {int(size):,}-byte frames", ratio(f"throughput_{size}_mb_s"), 1.5, ">=", "× the loop's")
    add("first audio, cold", ratio("first_audio_cold_ms"), 1.1, "<=", "× the loop's")
    add("first audio, prewarmed", ratio("first_audio_warm_ms"), 1.1, "<=", "× the loop's (open connection)")
    warm, example = _median(metrics, "proxy_warm_ms", "ttsstream"), _median(metrics, "proxy_cold_ms", "asyncio")
    add("20 ms proxy: prewarmed speak() vs the example's connect-then-request",
        None if not warm or example is None else example / warm, 2.0, ">=", "× sooner")
    add("per-chunk latency p99", ratio("latency_p99_ms"), 1.1, "<=", "× the loop's")
    add("800 streams: p99 latency, worst run", _worst(metrics, "concurrency_800_p99_ms", "ttsstream"), 50.0, "<",
        "ms")
    add("800 streams: CPU time (the same load)", ratio("concurrency_800_cpu_s"), 0.6, "<=", "× the loop's")
    add("burst of 400: p99 latency, worst run", _worst(metrics, "burst_400_p99_ms", "ttsstream"), 50.0, "<", "ms")
    add("burst of 400: p99 latency", ratio("burst_400_p99_ms"), 1.0, "<=", "× the loop's")
    add("burst of 400: CPU time (the same load)", ratio("burst_400_cpu_s"), 0.6, "<=", "× the loop's")
    add("10-minute speech, keep_audio=False: RSS growth, worst run",
        _worst(metrics, "long_speech_growth_mb", "ttsstream"), 5.0, "<", "MB")
    return found


def print_targets(found: List[Dict[str, Any]], judged: bool) -> None:
    print("targets (ttsstream; ratios within this run):" + ("" if judged else
          "  [quick mode: sizes too small to judge; shown only to prove the wiring]"))
    for item in found:
        sign = {">=": "≥", "<=": "≤", "<": "<"}[item["sense"]]
        if item["met"] is None:
            verdict = "not measured"
        else:
            verdict = "met" if item["met"] else "MISSED"
        value = "-" if item["value"] is None else f"{item['value']:g}"
        print(f"  {item['target']:68} {value:>7} {item['what']:34} target {sign} {item['limit']:g}: {verdict}")


def print_notes(trials: List[Dict[str, Any]], others: Dict[str, Any], size: Dict[str, Any]) -> None:
    complete = [t for t in trials if t["result"]["bytes_ok"]]
    print(f"checks: {len(complete)} of {len(trials)} trials received every byte the server sent")
    for t in trials:
        result = t["result"]
        if not result["bytes_ok"]:
            what = (f"{result['streams_failed']} of {t['spec']['n']} streams failed under load: "
                    f"{'; '.join(sorted(set(result['errors'])))[:160]}" if result["instrument_ok"]
                    else f"INSTRUMENT FAULT: {str(result.get('error', 'bytes lost'))[-300:]}")
            print(f"  {t['group']} {json.dumps(t['spec'])} {LABELS[t['impl']]}, run {t['run'] + 1}: {what}")
    for group, streams, server in (("concurrency", size["streams"], "epoll"), ("burst", size["burst_streams"],
                                                                              "asyncio websockets")):
        for n in streams:
            mine = [t["result"] for t in trials if t["group"] == group and t["spec"]["n"] == n]
            if mine:
                cpu = max(t["server"]["cpu_busiest_pct"] for t in mine)
                late = max(t["server"]["late_ms_p99"] for t in mine)
                print(f"{group} server at {n:,} streams: {mine[0]['server']['processes']} {server} process(es) "
                      f"({mine[0]['server']['scheduling']}), busiest at {cpu:.0f}% of a core, paced frames sent "
                      f"late by p99 {late:.1f} ms at worst")
    if size["long_seconds"] >= 60:
        print(f"long speech: {size['long_seconds'] / 60:g} minutes of audio, sent at {size['long_speedup']:g} x "
              "real time")
    busy = sorted(t["result"]["others_cpu_pct"] for t in trials)
    if busy:
        worst = max(trials, key=lambda t: t["result"]["others_cpu_pct"])
        print(f"CPU used by processes outside the suite during its trials: median {busy[len(busy) // 2]:.0f}%, "
              f"max {busy[-1]:.0f}% of a core ({worst['group']}, {LABELS[worst['impl']]}, run {worst['run'] + 1})")
    seen = "; ".join(f"pid {p['pid']} {p['command']} ({p['cpu_s']} s)" for p in others["other_busy_processes"])
    print(f"machine during the run: load average {' '.join(map(str, others['loadavg_before']))} before, "
          f"{' '.join(map(str, others['loadavg_after']))} after; other processes that used over 1% of a core: "
          + (seen or "none seen"))
