"""Audio devices for playback tests on machines without a sound card.

Two devices, both real to PortAudio:

- ALSA's ``file`` plugin (``alsa_file_home``): a temporary HOME whose ``.asoundrc`` makes
  ALSA's default PCM write everything it is given to a raw file, through the ``null``
  PCM. It is not paced: the device consumes audio as fast as it is written.
- A PulseAudio daemon with a null sink (``PulseDaemon``): paced in real time. Its
  monitor source, recorded with ``parec`` (``MonitorRecorder``), shows what was played
  and when. The sink is created with ``norewinds=1`` so that the monitor never loses the
  start of a stream to a rewind, and at 24 kHz mono s16le, so that a 24 kHz stream
  reaches the monitor bit for bit.

ALSA reads its configuration once per process, so whatever uses these devices runs in a
process of its own whose environment (``HOME``, ``PULSE_SERVER``) points at them.

A third, ``JackDaemon``, is a JACK server on its dummy driver (a device that takes one rate
only, and that can be stopped under a playing stream).

Used by tests/test_playback.py, tests/playback_scenarios.py, tests/test_devices.py and
benchmarks/bench_playback.py. Needs (Debian/Ubuntu): portaudio19-dev (brings libasound2)
for both; pulseaudio, pulseaudio-utils (parec, pactl) and libasound2-plugins (ALSA's
``pulse`` PCM) for the daemon; jackd2 (jackd, jack_lsp, jack_rec) for JACK.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

SINK = "ttsnull"
SINK_RATE = 24000


def alsa_file_home(root: Path, out_file: str) -> Dict[str, str]:
    """Make ``root`` a HOME whose ALSA default device writes raw PCM to ``out_file``.

    ``out_file`` may contain ALSA's ``%r`` (the rate the device was opened at). Returns the
    environment for a subprocess.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / ".asoundrc").write_text(
        "pcm.!default {\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        f'    file "{out_file}"\n'
        '    format "raw"\n'
        "}\n")
    return dict(os.environ, HOME=str(root))


def missing_card_home(root: Path) -> Dict[str, str]:
    """Make ``root`` a HOME whose ALSA default points at a sound card that does not exist."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".asoundrc").write_text(
        "pcm.!default { type hw; card 7 }\n"
        "ctl.!default { type hw; card 7 }\n")
    return dict(os.environ, HOME=str(root))


def pulse_missing() -> Optional[str]:
    """Why a PulseAudio null-sink device cannot be made here, or None if it can."""
    for tool in ("pulseaudio", "parec", "pactl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so") \
            and not glob.glob("/usr/lib/alsa-lib/libasound_module_pcm_pulse.so"):
        return "ALSA's pulse plugin is not installed (apt-get install libasound2-plugins)"
    return None


class PulseDaemon:
    """A private PulseAudio daemon with one null sink, started and stopped by its owner.

    Everything lives under ``root``: the runtime directory (socket), and a HOME whose
    ``.asoundrc`` routes ALSA's default device to this daemon. Runs as root too
    (PulseAudio warns that it is not meant to, and works).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.runtime = self.root / "run"
        self.home = self.root / "home"
        self.socket = self.runtime / "native"
        self.log_path = self.root / "pulseaudio.log"
        self._process: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def env(self) -> Dict[str, str]:
        """The environment for a process that should play to, or record from, this daemon."""
        return dict(
            os.environ,
            HOME=str(self.home),
            XDG_RUNTIME_DIR=str(self.runtime),
            PULSE_RUNTIME_PATH=str(self.runtime),
            PULSE_SERVER=f"unix:{self.socket}",
        )

    def start(self, timeout: float = 20.0) -> "PulseDaemon":
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        (self.home / ".config" / "pulse").mkdir(parents=True, exist_ok=True)
        (self.home / ".asoundrc").write_text(
            "pcm.!default { type pulse }\n"
            "ctl.!default { type pulse }\n")
        command = [
            "pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
            "--system=no", "--disable-shm=yes", "--realtime=no", "--high-priority=no",
            "--log-target=stderr", "--log-level=notice",
            f"--load=module-null-sink sink_name={SINK} rate={SINK_RATE} channels=1 format=s16le norewinds=1",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
        ]
        self._log = open(self.log_path, "wb")
        self._process = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"pulseaudio exited with {self._process.returncode}: {self.log()}")
            if self.socket.exists():
                probe = subprocess.run(["pactl", "list", "short", "sinks"], env=self.env,
                                       capture_output=True, text=True, timeout=10)
                if probe.returncode == 0 and SINK in probe.stdout:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pulseaudio did not come up within {timeout:g} s: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Kill the daemon at once (SIGKILL, by its pid), as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "PulseDaemon":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class MonitorRecorder:
    """Records the null sink's monitor with ``parec``; each read is stamped with
    ``time.monotonic()`` when it arrived.

    Starts a reader thread: use it only in a process of its own (a scenario or the
    benchmark), and call ``stop()``.
    """

    READ_BYTES = 240  # 5 ms at 24 kHz mono s16le

    def __init__(self, env: Dict[str, str], rate: int = SINK_RATE) -> None:
        self.rate = rate
        self._process = subprocess.Popen(
            ["parec", "-d", f"{SINK}.monitor", "--format=s16le", f"--rate={rate}", "--channels=1",
             "--raw", "--latency-msec=5"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self._reads: List[Tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._read, name="monitor-recorder", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stream = self._process.stdout
        while True:
            data = stream.read(self.READ_BYTES)
            if not data:
                return
            now = time.monotonic()
            with self._lock:
                self._reads.append((now, data))
            self._first.set()

    def wait_started(self, timeout: float = 10.0) -> bool:
        """Wait until the monitor delivers its first bytes."""
        return self._first.wait(timeout)

    def recorded_bytes(self) -> int:
        with self._lock:
            return sum(len(data) for _, data in self._reads)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._thread.join(10)

    def samples(self) -> np.ndarray:
        """Everything recorded, as int16."""
        with self._lock:
            data = b"".join(chunk for _, chunk in self._reads)
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")

    def sample_times(self) -> np.ndarray:
        """An estimated arrival time (monotonic seconds) for every recorded sample.

        A read that arrived at ``t`` holding ``n`` samples is taken to have been played
        over ``[t - n/rate, t)``, one sample period apart.
        """
        with self._lock:
            reads = list(self._reads)
        times = []
        done = 0      # samples stamped so far
        received = 0  # bytes received so far
        for stamp, data in reads:
            received += len(data)
            end = received // 2
            if end > done:
                times.append(stamp - (end - 1 - np.arange(done, end)) / self.rate)
                done = end
        if not times:
            return np.zeros(0)
        return np.concatenate(times)


def jack_missing() -> Optional[str]:
    """Why a JACK server (dummy driver) cannot be started here, or None if it can."""
    for tool in ("jackd", "jack_lsp", "jack_rec"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install jackd2)"
    return None


class JackDaemon:
    """A private JACK server on the dummy driver (paced, no sound card), named so that
    it never meets anyone else's; started and stopped (by its pid) by its owner.

    ``env`` points JACK clients at it (``JACK_DEFAULT_SERVER``) and forbids them to
    start a server of their own (``JACK_NO_START_SERVER``).
    """

    _count = 0

    def __init__(self, rate: int) -> None:
        JackDaemon._count += 1
        self.rate = rate
        self.name = f"ttsstream-test-{os.getpid()}-{JackDaemon._count}"
        self._process: Optional[subprocess.Popen] = None

    @property
    def env(self) -> Dict[str, str]:
        return dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, timeout: float = 20.0) -> "JackDaemon":
        self._process = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", "1024"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"jackd exited with {self._process.returncode}")
            probe = subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True, timeout=10)
            if probe.returncode == 0 and "system:playback_1" in probe.stdout:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"jackd did not come up within {timeout:g} s")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def __enter__(self) -> "JackDaemon":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
