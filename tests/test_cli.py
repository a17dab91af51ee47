"""The command line: ``ttsstream speak`` and ``ttsstream serve``, run for real."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import importlib.util
import wave
from pathlib import Path

import pytest

from playback_pulse import alsa_file_home, missing_card_home
from ttsstream.cli import main
from ttsstream.server import tone_pcm


REPO = Path(__file__).resolve().parent.parent


def read_wav(path):
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.readframes(wav.getnframes())


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("path", ["/api/v1/generate/ws", "/ws"])
def test_speak_to_a_url_writes_a_24khz_wav(server, tmp_path, path):
    out_path = tmp_path / "x.wav"
    code, out, err = run_main(["speak", "Hello", "--url", server.url + path, "--out", str(out_path), "--no-play"])
    assert code == 0, err
    assert read_wav(out_path) == (24000, 1, 2, tone_pcm("Hello"))
    assert str(out_path) in out
    assert server.transcript[-1].dialect == ("eigenai" if path.startswith("/api") else "shunyalabs")


def test_speak_reads_standard_input(server, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Text from a pipe.\n"))
    out_path = tmp_path / "stdin.wav"
    code, _, err = run_main(["speak", "-", "--url", server.eigenai_url, "--out", str(out_path), "--no-play"])
    assert code == 0, err
    assert server.transcript[-1].text == "Text from a pipe."  # a unit goes without the spaces at its edges


def test_speak_defaults_to_the_local_voice_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENAI_API_KEY", raising=False)
    monkeypatch.delenv("SHUNYALABS_API_KEY", raising=False)
    out_path = tmp_path / "local.wav"
    code, _, err = run_main(["speak", "Offline.", "--out", str(out_path), "--no-play"])
    assert code == 0, err
    assert "local" in err
    rate, _, _, pcm = read_wav(out_path)
    assert rate == 24000 and len(pcm) > 0


def test_errors_are_one_line_and_a_nonzero_exit(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run_main(["speak", "Hi", "--url", f"ws://127.0.0.1:{port}/ws", "--out", str(tmp_path / "n.wav"),
                               "--no-play"])
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "ConnectionFailed" in err and "refused" in err
    assert not (tmp_path / "n.wav").exists()

    code, _, err = run_main(["speak", "Hi", "--provider", "local", "--model", "nope", "--no-play"])
    assert code == 2 and "--model nope" in err and err.count("\n") == 1


def test_bad_command_line_exits_2(capsys):
    assert main(["speak", "--speed"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_serve_and_speak_as_separate_processes(tmp_path):
    """`ttsstream serve` in one process, the `ttsstream` console script in another."""
    script = shutil.which("ttsstream")
    assert script, "the ttsstream console script is not installed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = subprocess.Popen([sys.executable, "-m", "ttsstream", "serve", "--port", "0", "--api-key", "k3y",
                               "--engine", "tone"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        match = re.search(r"ws://127\.0\.0\.1:\d+", line)
        assert match, line + server.stderr.read()
        base = match.group(0)
        for path, variable in (("/api/v1/generate/ws", "EIGENAI_API_KEY"), ("/ws", "SHUNYALABS_API_KEY")):
            out_path = tmp_path / f"{path.strip('/').replace('/', '_')}.wav"
            result = subprocess.run([script, "speak", "Hello", "--url", base + path, "--out", str(out_path),
                                     "--no-play"],
                                    capture_output=True, text=True, timeout=60, env=dict(env, **{variable: "k3y"}))
            assert result.returncode == 0, result.stderr
            assert read_wav(out_path) == (24000, 1, 2, tone_pcm("Hello"))
        wrong = subprocess.run([script, "speak", "Hello", "--url", base + "/ws", "--out", str(tmp_path / "w.wav"),
                                "--no-play"],
                               capture_output=True, text=True, timeout=60, env=dict(env, SHUNYALABS_API_KEY="nope"))
        assert wrong.returncode == 1 and "AuthenticationError" in wrong.stderr
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(15)
        finally:
            server.kill()
            server.stdout.close()
            server.stderr.close()
    assert code == 0


# -- playing: each in a process of its own, since ALSA reads its configuration once ----------

# A developer without the playback extra may skip these; CI installs everything, so
# there (CI is set) a missing PyAudio fails the test instead of hiding behind a skip.
needs_pyaudio = pytest.mark.skipif(importlib.util.find_spec("pyaudio") is None and not os.environ.get("CI"),
                                   reason='PyAudio is not installed (pip install "ttsstream[playback]")')


def run_cli(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "ttsstream", *args], capture_output=True, text=True,
                          timeout=60, env=dict(env, PYTHONPATH=str(REPO)), cwd=str(cwd))


@needs_pyaudio
def test_speak_plays_on_the_default_device_and_writes_out(server, tmp_path):
    env = alsa_file_home(tmp_path / "home", str(tmp_path / "device.raw"))
    result = run_cli(["speak", "Hello", "--url", server.eigenai_url, "--out", "hello.wav"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("played 0.25 s of audio at 24000 Hz")
    assert f"wrote {tmp_path / 'hello.wav'}" in result.stdout
    assert "ALSA" not in result.stderr and "jack" not in result.stderr.lower()
    assert (tmp_path / "device.raw").read_bytes() == tone_pcm("Hello")
    assert read_wav(tmp_path / "hello.wav")[3] == tone_pcm("Hello")

    listed = run_cli(["devices"], env, tmp_path)
    assert listed.returncode == 0 and re.search(r"\d+  default  \(\d+ ch, \d+ Hz\)  \(default\)", listed.stdout)


@needs_pyaudio
def test_speak_without_a_device_says_so_and_writes_a_wav(server, tmp_path):
    env = missing_card_home(tmp_path / "home")
    result = run_cli(["speak", "Hello", "--url", server.eigenai_url], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cannot play here" in result.stderr and "writing speech.wav instead" in result.stderr
    assert "ALSA lib" not in result.stderr, "PortAudio's probing leaked onto the terminal"
    assert f"wrote {tmp_path / 'speech.wav'}" in result.stdout
    assert read_wav(tmp_path / "speech.wav")[3] == tone_pcm("Hello")

    # A device the user names that PortAudio does not have is a usage error (issue 17).
    chosen = run_cli(["speak", "Hello", "--url", server.eigenai_url, "--device", "nosuch"], env, tmp_path)
    assert chosen.returncode == 2 and "--device nosuch: no such output device" in chosen.stderr
