"""What the suite reads of processes and of the machine, from /proc (Linux; no psutil).

- this process's RSS and peak RSS (``VmRSS``, ``VmHWM``), and resetting the peak
  (``/proc/self/clear_refs``), so that a peak belongs to one phase of a trial;
- CPU seconds (``time.process_time()``: CLOCK_PROCESS_CPUTIME_ID, nanosecond-resolved,
  where /proc's ticks resolve only 10 ms);
- the open-files limit, raised for a thousand sockets;
- the machine: CPUs, Python, library versions, clocks, load; and which other processes
  used the CPU while the suite ran, in all and during each trial (``MachineWatch``).

Imports: the standard library only.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from typing import Any, Dict, List, Set, Tuple

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _status_kb(field: str, pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def rss_kb() -> int:
    """Resident memory now, in kB."""
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    """The highest resident memory since the process started or ``reset_peak_rss()``, in kB."""
    return _status_kb("VmHWM")


def reset_peak_rss() -> None:
    """Make the peak start again from the present RSS (Linux 4.0+: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def raise_open_files() -> int:
    """Raise the soft limit on open files to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _cpu_ticks() -> Dict[int, List[Any]]:
    """Every process's pid -> [ppid, CPU ticks so far, command name]."""
    found: Dict[int, List[Any]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # it ended meanwhile
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        found[int(entry)] = [int(fields[1]), int(fields[11]) + int(fields[12]), name]
    return found


def _command(pid: int, name: str) -> str:
    """The start of a process's command line (its name if that cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        words = ""
    return (words or name)[:80]


def _machine_busy_s() -> float:
    """CPU seconds all CPUs have spent busy since boot (/proc/stat, 10 ms ticks)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


class MachineWatch:
    """Who else used the CPU while the suite ran.

    ``sample()`` (between trials) adds up, per process outside the suite's own tree, the
    CPU it used since the previous sample (all of it for one that is new), so that a
    test run that starts and ends during the suite is seen too. ``mark()`` before and
    after a trial gives ``others_pct``: the CPU the whole machine spent beyond the suite
    and its children during that trial, in % of one core (/proc/stat; 10 ms ticks).
    """

    def __init__(self) -> None:
        self.load_before = os.getloadavg()
        self.since = time.monotonic()
        self.last = _cpu_ticks()
        self.used: Dict[int, float] = {}
        self.names: Dict[int, str] = {}

    def _ours(self, snapshot: Dict[int, List[Any]]) -> Set[int]:
        mine = {os.getpid()}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _, _) in snapshot.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    changed = True
        return mine

    def sample(self) -> None:
        now = _cpu_ticks()
        mine = self._ours(now)
        for pid, (_, ticks, name) in now.items():
            if pid in mine:
                continue
            before = self.last[pid][1] if pid in self.last else 0
            self.used[pid] = self.used.get(pid, 0.0) + (ticks - before) / CLK_TCK
            if pid not in self.names:
                self.names[pid] = _command(pid, name)
        self.last = now

    def mark(self) -> Tuple[float, float, float]:
        """(machine busy s, the suite's own CPU s including its children, wall s)."""
        snapshot = _cpu_ticks()
        children = [pid for pid in self._ours(snapshot) if pid != os.getpid()]
        live = sum(snapshot[pid][1] for pid in children) / CLK_TCK
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return _machine_busy_s(), live + sum(u.ru_utime + u.ru_stime for u in usage), time.monotonic()

    @staticmethod
    def others_pct(before: Tuple[float, float, float], after: Tuple[float, float, float]) -> float:
        wall = max(after[2] - before[2], 1e-9)
        return max(0.0, 100 * ((after[0] - before[0]) - (after[1] - before[1])) / wall)

    def report(self) -> Dict[str, Any]:
        self.sample()
        wall = time.monotonic() - self.since
        busy = [{"pid": pid, "command": self.names.get(pid, "?"), "cpu_s": round(used, 1),
                 "cpu_pct": round(100 * used / wall, 1)} for pid, used in self.used.items() if used >= 0.01 * wall]
        busy.sort(key=lambda item: -item["cpu_s"])
        return {"wall_s": round(wall, 1), "loadavg_before": [round(x, 2) for x in self.load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()], "other_busy_processes": busy[:10]}


def machine() -> Dict[str, Any]:
    """CPUs, memory, Python and the libraries measured, and the clocks used."""
    import websocket
    import websockets

    try:
        from importlib.metadata import version
        ttsstream_version = version("ttsstream")
    except Exception:
        ttsstream_version = "?"
    with open("/proc/meminfo") as meminfo:
        mem_kb = int(meminfo.readline().split()[1])
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    clock = time.get_clock_info("monotonic")
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "websocket-client": websocket.__version__, "websockets": websockets.__version__,
        "ttsstream": ttsstream_version,
        "clock": f"time.monotonic_ns: {clock.implementation}, resolution {clock.resolution:g} s "
                 "(shared by all processes: server stamps, client reads)",
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }
