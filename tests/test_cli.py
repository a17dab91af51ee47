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
import wave

import pytest

from ttsstream.cli import main
from ttsstream.server.engines import tone_pcm


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
    code, out, err = run_main(["speak", "Hello", "--url", server.url + path, "--out", str(out_path)])
    assert code == 0, err
    assert read_wav(out_path) == (24000, 1, 2, tone_pcm("Hello"))
    assert str(out_path) in out
    assert server.transcript[-1].dialect == ("eigenai" if path.startswith("/api") else "shunyalabs")


def test_speak_reads_standard_input(server, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Text from a pipe.\n"))
    out_path = tmp_path / "stdin.wav"
    code, _, err = run_main(["speak", "-", "--url", server.eigenai_url, "--out", str(out_path)])
    assert code == 0, err
    assert server.transcript[-1].text == "Text from a pipe.\n"


def test_speak_defaults_to_the_local_voice_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENAI_API_KEY", raising=False)
    monkeypatch.delenv("SHUNYALABS_API_KEY", raising=False)
    out_path = tmp_path / "local.wav"
    code, _, err = run_main(["speak", "Offline.", "--out", str(out_path)])
    assert code == 0, err
    assert "local" in err
    rate, _, _, pcm = read_wav(out_path)
    assert rate == 24000 and len(pcm) > 0


def test_errors_are_one_line_and_a_nonzero_exit(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run_main(["speak", "Hi", "--url", f"ws://127.0.0.1:{port}/ws", "--out", str(tmp_path / "n.wav")])
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "ConnectionFailed" in err and "refused" in err
    assert not (tmp_path / "n.wav").exists()

    code, _, err = run_main(["speak", "Hi", "--provider", "local", "--model", "nope"])
    assert code == 1 and "InvalidParameterError" in err and err.count("\n") == 1


def test_bad_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["speak"])
    assert caught.value.code == 2


def test_serve_and_speak_as_separate_processes(tmp_path):
    """`ttsstream serve` in one process, the `ttsstream` console script in another."""
    script = shutil.which("ttsstream")
    assert script, "the ttsstream console script is not installed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = subprocess.Popen([sys.executable, "-m", "ttsstream", "serve", "--port", "0", "--api-key", "k3y"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        match = re.search(r"ws://127\.0\.0\.1:\d+", line)
        assert match, line + server.stderr.read()
        base = match.group(0)
        for path, variable in (("/api/v1/generate/ws", "EIGENAI_API_KEY"), ("/ws", "SHUNYALABS_API_KEY")):
            out_path = tmp_path / f"{path.strip('/').replace('/', '_')}.wav"
            result = subprocess.run([script, "speak", "Hello", "--url", base + path, "--out", str(out_path)],
                                    capture_output=True, text=True, timeout=60, env=dict(env, **{variable: "k3y"}))
            assert result.returncode == 0, result.stderr
            assert read_wav(out_path) == (24000, 1, 2, tone_pcm("Hello"))
        wrong = subprocess.run([script, "speak", "Hello", "--url", base + "/ws", "--out", str(tmp_path / "w.wav")],
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
