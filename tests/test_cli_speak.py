"""The command line as a shell user meets it, each run as a process of its own.

Model parameters reach the server's request; ``--out -`` pipes exactly the speech's
audio; ``voices`` lists what the parameter tables hold; the status line shows on a
pseudo-terminal and nowhere else; every bad argument is one line and its exit code.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import wave
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from playback_pulse import alsa_file_home
from processes import read_pty, reaped
from ttsstream.cli.sink import wav_header
from ttsstream.cli.text import PIECE_CHARS
from ttsstream.protocols import DIALECTS
from ttsstream.server import tone_pcm

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # a hang guard, not a performance bound
KEY = "k3y-never-shown-0123"


def env(**extra: str) -> Dict[str, str]:
    """The child's environment: this worktree's package, no API keys unless given."""
    base = {k: v for k, v in os.environ.items() if k not in ("EIGENAI_API_KEY", "SHUNYALABS_API_KEY")}
    return dict(base, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **extra)


def cli(*args: str, stdin: Optional[bytes] = None, cwd: Optional[Path] = None, **extra: str
        ) -> "subprocess.CompletedProcess[bytes]":
    return subprocess.run([sys.executable, "-m", "ttsstream", *args], input=stdin, capture_output=True,
                          timeout=TIMEOUT, env=env(**extra), cwd=str(cwd) if cwd else None)


def test_the_child_imports_this_worktree() -> None:
    result = subprocess.run([sys.executable, "-c", "import ttsstream; print(ttsstream.__file__)"],
                            capture_output=True, text=True, env=env(), cwd="/", timeout=TIMEOUT)
    assert result.stdout.strip() == str(REPO / "ttsstream" / "__init__.py")


# -- 1. every parameter the models take reaches the request ------------------------------


def test_eigenai_parameters_reach_the_request(server) -> None:
    url = server.eigenai_url
    runs = [
        (["--speed", "1.5", "--param", "sampling={\"top_p\": 0.9}", "--voice-id", "v-7"],
         {"voice": "Linda", "voice_settings": {"speed": 1.5}, "sampling": {"top_p": 0.9}, "voice_id": "v-7"}),
        (["--model", "chatterbox", "--language", "hi", "--exaggeration", "0.5", "--temperature", "0.8",
          "--param", "audio_prompt_file=prompt.wav"],
         {"language_id": "hi", "exaggeration": 0.5, "temperature": 0.8, "audio_prompt_file": "prompt.wav"}),
        (["--model", "qwen3-tts", "--language", "English", "--instructions", "Speak warmly.", "--speed", "0.9",
          "--param", "voice_settings={\"pitch\": 2}", "--extra", "seed=42", "--voice", "Serena"],
         {"voice": "Serena", "language": "English", "instructions": "Speak warmly.",
          "voice_settings": {"pitch": 2, "speed": 0.9}, "seed": 42}),
        (["--param", "voice_id=123"], {"voice_id": "123"}),  # a text parameter keeps the text as written
    ]
    for flags, expected in runs:
        result = cli("speak", "Hello", "--url", url, "-q", "--out", "-", *flags)
        assert result.returncode == 0, result.stderr
        request = server.transcript[-1].request
        assert {name: request.get(name) for name in expected} == expected, flags
        assert request["text"] == "Hello"


def test_shunyalabs_parameters_and_key_reach_the_server(make_server) -> None:
    server = make_server(api_key=KEY)
    result = cli("speak", "Namaste", "--url", server.shunyalabs_url, "--api-key", KEY, "--voice", "Varun",
                 "--speed", "1.2", "--language", "hi", "--out", "-", "-q")
    assert result.returncode == 0, result.stderr
    heard = server.transcript[-1]
    assert (heard.voice, heard.speed, heard.language, heard.text) == ("Varun", 1.2, "hi", "Namaste")
    assert heard.config["speed"] == 1.2 and heard.config["language"] == "hi"

    wrong = cli("speak", "Hi", "--url", server.shunyalabs_url, "--api-key", "nope-wrong", "--no-play")
    assert wrong.returncode == 1 and wrong.stdout == b""
    message = wrong.stderr.decode()
    assert message.count("\n") == 1 and "AuthenticationError" in message
    assert "SHUNYALABS_API_KEY" in message and "--api-key" in message and "api_key=" not in message
    assert "nope-wrong" not in message


# -- 2. pipes ---------------------------------------------------------------------------------


def test_out_dash_streams_exactly_the_speech_as_wav_then_raw(server) -> None:
    result = cli("speak", "Hello", "--url", server.eigenai_url, "--out", "-")
    assert result.returncode == 0, result.stderr
    assert result.stdout == wav_header(24000) + tone_pcm("Hello")  # nothing else on stdout
    assert b"streamed 0.25 s" in result.stderr

    raw = cli("speak", "Hello", "--url", server.shunyalabs_url, "--out", "-", "--format", "raw", "-q")
    assert raw.returncode == 0 and raw.stdout == tone_pcm("Hello") and raw.stderr == b""


def test_a_long_text_is_spoken_in_units_into_one_stream(server, tmp_path) -> None:
    text = " ".join(f"Sentence number {n} of the long text." for n in range(40))
    assert len(text) > 3 * PIECE_CHARS
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    result = cli("speak", "--file", "long.txt", "--url", server.eigenai_url, "--out", "-", "--format", "raw",
                 "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The units, in text order (the server records them as they complete), each sent
    # without the spaces at its edges, make up the text; the audio is theirs, in order.
    units = sorted(server.transcript, key=lambda u: text.index(u.text))
    assert " ".join(u.text for u in units) == text
    assert result.stdout == b"".join(tone_pcm(u.text) for u in units)
    summary = json.loads(result.stderr)
    assert summary["pieces"] == len(units) > 1 and summary["characters"] == len(text)


def test_standard_input_is_spoken_as_it_arrives(server) -> None:
    # The first sentence goes in and its audio comes out while the pipe is still open.
    process = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", "-", "--url", server.shunyalabs_url,
                                "--out", "-", "--format", "raw", "-q"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        first = "The first sentence comes through the pipe on its own. "
        process.stdin.write(first.encode())
        process.stdin.write(b"And then the ")
        process.stdin.flush()
        audio = process.stdout.read(4800)  # blocks until audio comes: the pipe is still open
        assert len(audio) == 4800
        process.stdin.write(b"second one, after the first was heard.\n")
        process.stdin.close()
        rest = process.stdout.read()
        assert process.wait(TIMEOUT) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        for stream in (process.stdout, process.stderr):
            stream.close()
    texts = [u.text for u in server.transcript]
    assert texts == ["The first sentence comes through the pipe on its own.",
                     "And then the second one, after the first was heard."]
    assert audio + rest == tone_pcm(texts[0]) + tone_pcm(texts[1])


def test_out_dash_into_a_file_gets_its_sizes_put_right(server, tmp_path) -> None:
    target = tmp_path / "redirected.wav"
    with open(target, "wb") as stdout:
        result = subprocess.run([sys.executable, "-m", "ttsstream", "speak", "Hello", "--url", server.eigenai_url,
                                 "--out", "-", "-q"], stdout=stdout, stderr=subprocess.PIPE, env=env(),
                                timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    with wave.open(str(target), "rb") as wav:
        assert wav.readframes(wav.getnframes()) == tone_pcm("Hello")


@pytest.mark.parametrize("out_format, magic", [([], b"RIFF"), (["--format", "flac"], b"fLaC")], ids=["wav", "flac"])
def test_a_reader_that_goes_away_ends_the_speech_quietly(server, out_format, magic) -> None:
    text = "A long text for a reader who leaves early. " * 60  # far more audio than a pipe buffers
    child = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", text, "--url", server.eigenai_url,
                              "--out", "-", *out_format], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    with reaped(child):
        assert child.stdout.read(4) == magic
        child.stdout.close()  # as `| head -c 4` does
        code = child.wait(TIMEOUT)
        err = child.stderr.read()
    assert code == 141
    assert err == b"", err.decode()  # no traceback (for FLAC, none from libsndfile's callbacks)


def test_ctrl_c_stops_the_speech_with_130(make_server, tmp_path) -> None:
    server = make_server(realtime=1)  # real time: the speech is still streaming when Ctrl-C comes
    child = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", "Interrupt me. " * 20, "--url",
                              server.eigenai_url, "--out", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env(), cwd=str(tmp_path))
    with reaped(child):
        assert child.stdout.read(44) == wav_header(24000)
        child.send_signal(signal.SIGINT)
        code = child.wait(TIMEOUT)
        err = child.stderr.read().decode()
    assert code == 130 and err == "ttsstream speak: interrupted\n", err


# -- 3. voices ----------------------------------------------------------------------------------


def test_voices_params_lists_what_the_tables_hold() -> None:
    listed = json.loads(cli("voices", "--params", "--json").stdout)
    for name, dialect in DIALECTS.items():
        about = listed["providers"][name]
        assert about["env_key"] == dialect.env_key and about["default_model"] == dialect.default_model
        assert set(about["models"]) == set(dialect.parameters)
        for model, params in dialect.parameters.items():
            assert about["models"][model]["default_voice"] == dialect().default_voice(model)
            specs = about["models"][model]["parameters"]
            assert [spec["name"] for spec in specs] == list(params)
            for spec in specs:
                flags = spec.pop("flags")
                assert spec == params[spec["name"]].as_dict()
                assert flags[-1] in ("--voice", f"--param {spec['name']}")
    assert {"Linda", "Vivian", "Nisha"} <= set(listed["local"]["voices"])
    assert "Hindi" in listed["local"]["languages"]

    text = cli("voices", "--params").stdout.decode()
    for dialect in DIALECTS.values():
        for params in dialect.parameters.values():
            for param in params.values():
                assert re.search(rf"^    {re.escape(param.name)} +{re.escape(param.describe())} ", text, re.M)
    assert "number from 0.25 to 4" in text and "object {speed: number in (0, 4], ...}" in text

    only = cli("voices", "--params", "--provider", "shunyalabs", "--model", "zero-indic").stdout.decode()
    assert "zero-indic" in only and "higgs2p5" not in only and "local" not in only


# -- 4. the status line -------------------------------------------------------------------------


def run_on_a_terminal(args: List[str], environment: Optional[Dict[str, str]] = None) -> Tuple[int, bytes, bytes]:
    """Run the CLI with stderr on a pseudo-terminal; return (code, stdout, what the terminal got)."""
    master, slave = os.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-m", "ttsstream", *args], stdout=subprocess.PIPE, stderr=slave,
                                 stdin=subprocess.DEVNULL, env=environment or env())
    finally:
        os.close(slave)
    try:
        with reaped(child):
            out = child.stdout.read()
            code = child.wait(TIMEOUT)
            screen = read_pty(master)
    finally:
        os.close(master)
    return code, out, screen


def test_the_status_line_shows_on_a_terminal_only(make_server) -> None:
    server = make_server(realtime=20)  # a couple of redraws' worth of streaming, not a bound
    text = "Status line. " * 40
    code, out, screen = run_on_a_terminal(["speak", text, "--url", server.shunyalabs_url, "--out", "-"])
    assert code == 0, screen
    # A text this long goes in units, one after another on one connection.
    assert out == wav_header(24000) + b"".join(tone_pcm(u.text) for u in server.transcript)
    lines = screen.decode().split("\r")
    drawn = [line for line in lines if line.startswith("first audio ")]
    assert drawn, screen
    assert re.match(r"first audio \d+ ms \| received \d+\.\d s \| text \d+ \d+%\x1b\[K$", drawn[-1]), drawn[-1]
    assert drawn[-1].startswith("first audio") and " 100%" in drawn[-1]
    assert "streamed" in screen.decode()

    piped = cli("speak", text, "--url", server.eigenai_url, "--out", "-")
    assert piped.returncode == 0 and b"\r" not in piped.stderr and b"| received" not in piped.stderr

    code, _, screen = run_on_a_terminal(["speak", "Hi", "--url", server.eigenai_url, "--out", "-", "-q"])
    assert code == 0 and screen == b""


@pytest.mark.skipif(importlib.util.find_spec("pyaudio") is None and not os.environ.get("CI"),
                    reason='PyAudio is not installed (pip install "ttsstream[playback]")')
def test_the_status_line_counts_what_is_played(server, tmp_path) -> None:
    device = tmp_path / "device.raw"
    playing = env(HOME=alsa_file_home(tmp_path / "home", str(device))["HOME"])
    code, out, screen = run_on_a_terminal(["speak", "Played here.", "--url", server.eigenai_url], playing)
    assert code == 0, screen
    drawn = [line for line in screen.decode().split("\r") if line.startswith("first audio ")]
    assert drawn and re.match(r"first audio \d+ ms \| received 0\.6 s \| played 0\.6 s \| underruns \d+\x1b", drawn[-1]), drawn
    assert out.startswith(b"played 0.60 s of audio") and device.read_bytes() == tone_pcm("Played here.")


def test_json_prints_a_summary(server, tmp_path) -> None:
    result = cli("speak", "Hello", "--url", server.shunyalabs_url, "--no-play", "--out", "hi.wav", "--json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["provider"] == "shunyalabs" and summary["model"] == "zero-indic"
    assert summary["duration_s"] == 0.25 and summary["sample_rate"] == 24000 and summary["pieces"] == 1
    assert summary["out"] == str(tmp_path / "hi.wav") and summary["first_audio_ms"] >= 0
    with wave.open(str(tmp_path / "hi.wav"), "rb") as wav:
        assert wav.readframes(wav.getnframes()) == tone_pcm("Hello")


# -- 5. errors a shell user can act on ------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BAD = [
    # (arguments, exit code, what the one line must name)
    (["serve", "--port", "70000"], 2, "--port"),
    (["serve", "--port", "eighty"], 2, "--port"),
    (["serve", "--engine", "nope", "--port", "0"], 2, "--engine nope"),
    (["serve", "--fault", "nope", "--port", "0"], 2, "unknown fault 'nope'"),
    (["serve", "--host", "0.0.0.0", "--port", "0"], 2, "--allow-open"),
    (["serve", "--certfile", "no-such.pem", "--port", "0"], 2, "--certfile no-such.pem"),
    (["speak", "--file", "no-such.txt"], 2, "--file no-such.txt"),
    (["speak", "Hi", "--out", "no-such-folder/x.wav", "--no-play", "--provider", "local"], 2, "--out"),
    (["speak", "Hi", "--provider", "eigenai"], 2, "EIGENAI_API_KEY"),
    (["speak", "Hi", "--provider", "shunyalabs"], 2, "--api-key"),
    (["speak", "Hi", "--model", "zero-indic", "--speed", "9"], 2, "--speed"),
    (["speak", "Hi", "--model", "chatterbox", "--exaggeration", "lots"], 2, "--exaggeration"),
    (["speak", "Hi", "--language", "hi"], 2, "--model"),
    (["speak", "Hi", "--param", "pitch=2"], 2, "--extra pitch=VALUE"),
    (["speak", "Hi", "--param", "pitch"], 2, "NAME=VALUE"),
    (["speak", "Hi", "--param", "voice_url=ftp://x"], 2, "--param voice_url"),
    (["speak", "Hi", "--model", "nope"], 2, "--model nope"),
    (["speak", "Hi", "--url", "ws://example.com/ws"], 2, "--allow-insecure"),
    (["speak", "Hi", "--timeout", "0"], 2, "--timeout"),
    (["speak"], 2, "TEXT"),
    (["speak", "   ", "--no-play"], 2, "TEXT is empty"),
    (["speak", "-", "--no-play"], 2, "standard input is empty"),
    (["speak", "Hi", "--format", "aiff"], 2, "--format"),
    (["speak", "Hi", "--rate", "4000"], 2, "--rate"),
    (["speak", "Hi", "--out", "x.m4a", "--provider", "local"], 2, "--out x.m4a"),
    (["shout", "Hi"], 2, "shout"),
    (["speak", "Hi", "--no-play", "--url", f"ws://127.0.0.1:{_closed_port()}/ws"], 1, "ConnectionFailed"),
]


def test_every_bad_argument_is_one_line_and_its_exit_code(tmp_path) -> None:
    children = [(args, code, named, subprocess.Popen(
        [sys.executable, "-m", "ttsstream", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, env=env(), cwd=str(tmp_path))) for args, code, named in BAD]
    for args, code, named, child in children:
        out, err = child.communicate(timeout=TIMEOUT)
        message = err.decode()
        assert (child.returncode, out) == (code, b""), (args, message)
        assert message.count("\n") == 1 and message.endswith("\n"), (args, message)
        assert named in message, (args, message)
        assert "Traceback" not in message and "api_key=" not in message and "extra={" not in message
        assert "allow_open" not in message
    assert list(tmp_path.iterdir()) == []  # no file left behind, not even a half one


def test_serve_with_a_fault_as_a_process(tmp_path) -> None:
    server = subprocess.Popen([sys.executable, "-m", "ttsstream", "serve", "--port", "0", "--engine", "tone",
                               "--fault", "error:after=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env())
    try:
        match = re.search(r"ws://127\.0\.0\.1:\d+", server.stdout.readline())
        assert match, server.stderr.read()
        result = cli("speak", "Hello there", "--url", match.group(0) + "/ws", "--no-play", cwd=tmp_path)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(TIMEOUT)
        finally:
            server.kill()
            server.stdout.close()
            server.stderr.close()
    kept, failed = result.stderr.decode().splitlines()
    assert result.returncode == 1 and failed.startswith("ttsstream speak: ServerError: "), failed
    # the frame before the error is kept, in a file the user did not name: speech.wav
    assert kept == f"ttsstream: kept the 0.10 s of audio received so far in {tmp_path / 'speech.wav'}"
    assert code == 0 and list(tmp_path.iterdir()) == [tmp_path / "speech.wav"]


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = cli("serve", "--port", str(taken.getsockname()[1]), "--engine", "tone")
    message = result.stderr.decode()
    assert result.returncode == 1 and message.count("\n") == 1 and "cannot listen on" in message, message


def test_help_says_the_environment_is_the_way_for_keys() -> None:
    text = " ".join(cli("speak", "--help").stdout.decode().split())
    assert "EIGENAI_API_KEY / SHUNYALABS_API_KEY instead is recommended" in text
    for flag in ("--speed", "--language", "--param NAME=VALUE", "--api-key", "--allow-insecure", "--out", "--json"):
        assert flag in text
    assert "Exit codes: 0 done; 1 the work failed" in text


def test_in_process_main_writes_the_pipe_to_out(server) -> None:
    from ttsstream.cli import main

    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    assert main(["speak", "Hi", "--url", server.eigenai_url, "--out", "-", "--format", "raw", "-q"],
                out=out, err=err) == 0
    out.flush()
    assert out.buffer.getvalue() == tone_pcm("Hi") and err.getvalue() == ""


# -- 6. what the command line says, and with which code --------------------------------------------


def test_an_unknown_local_voice_is_a_usage_error_before_anything_is_sent() -> None:
    result = cli("speak", "Hi", "--provider", "local", "--voice", "Nobody", "--out", "-")
    message = result.stderr.decode()
    assert (result.returncode, result.stdout) == (2, b""), message
    assert message.count("\n") == 1 and message.startswith("ttsstream speak: --voice: unknown voice 'Nobody'")
    assert "Linda" in message and "Nisha" in message and "ttsstream voices --provider local" in message
    assert "ServerError" not in message


def test_a_url_of_neither_dialect_asks_for_the_provider(server) -> None:
    base = server.eigenai_url.rsplit("/api/", 1)[0]
    for path in ("/ws/tts", "/proxy/tts", ""):
        result = cli("speak", "Hi", "--url", base + path, "--api-key", KEY, "--out", "-")
        message = result.stderr.decode()
        assert (result.returncode, result.stdout) == (2, b""), message
        assert message.count("\n") == 1 and message.startswith("ttsstream speak: --url: ")
        assert "--provider eigenai or --provider shunyalabs" in message, message
        assert KEY not in message and "refused" not in message
    assert server.connections == 0  # nothing was sent anywhere


@pytest.mark.skipif(importlib.util.find_spec("pyaudio") is None and not os.environ.get("CI"),
                    reason='PyAudio is not installed (pip install "ttsstream[playback]")')
def test_a_device_that_does_not_exist_is_a_usage_error(server, tmp_path) -> None:
    playing = env(HOME=alsa_file_home(tmp_path / "home", str(tmp_path / "device.raw"))["HOME"])
    result = subprocess.run([sys.executable, "-m", "ttsstream", "speak", "Hi", "--url", server.eigenai_url,
                             "--device", "99"], capture_output=True, timeout=TIMEOUT, env=playing, cwd=str(tmp_path))
    message = result.stderr.decode()
    assert result.returncode == 2 and message.count("\n") == 1, message
    assert "--device 99: no such output device" in message and "ttsstream devices" in message
    assert server.connections == 0

    # On a machine with no output device at all (a HOME without the ALSA file device, no
    # sound server), naming one is the same usage error, not a playback failure.
    bare = tmp_path / "bare"
    bare.mkdir()
    nothing = env(HOME=str(bare), PULSE_SERVER="unix:/nonexistent", JACK_NO_START_SERVER="1")
    result = subprocess.run([sys.executable, "-m", "ttsstream", "speak", "Hi", "--url", server.eigenai_url,
                             "--device", "99"], capture_output=True, timeout=TIMEOUT, env=nothing, cwd=str(tmp_path))
    message = result.stderr.decode()
    assert result.returncode == 2 and "--device 99: no such output device" in message, message
    assert server.connections == 0


def test_json_says_a_failure_as_json_and_keeps_the_code() -> None:
    port = _closed_port()
    failed = cli("speak", "Hi", "--url", f"ws://127.0.0.1:{port}/ws", "--api-key", KEY, "--no-play", "--json")
    assert failed.returncode == 1
    said = json.loads(failed.stdout)
    assert said == {"ok": False, "error": {"type": "ConnectionFailed", "message": said["error"]["message"]}}
    assert "refused" in said["error"]["message"] and KEY.encode() not in failed.stdout + failed.stderr
    assert failed.stderr.decode().count("\n") == 1  # the line for people stays on stderr

    usage = cli("speak", "Hi", "--speed", "fast", "--json")
    assert usage.returncode == 2 and json.loads(usage.stdout)["error"]["type"] == "UsageError"

    # With --out -, stdout is the audio's: the JSON goes to stderr, as the summary does, said once.
    piped = cli("speak", "Hi", "--provider", "local", "--voice", "Nobody", "--json", "--out", "-")
    assert piped.returncode == 2 and piped.stdout == b""
    assert json.loads(piped.stderr)["error"]["message"].startswith("--voice: unknown voice")


def _on_a_pty(args: List[str], stdin_pty: bool = False, stdin: Optional[bytes] = None) -> Tuple[int, bytes, bytes]:
    """Run the CLI with stdout (or stdin) on a pseudo-terminal; return (code, what the
    terminal got, stderr)."""
    master, slave = os.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-m", "ttsstream", *args], env=env(), stderr=subprocess.PIPE,
                                 stdout=subprocess.PIPE if stdin_pty else slave,
                                 stdin=slave if stdin_pty else subprocess.PIPE)
    finally:
        os.close(slave)
    try:
        with reaped(child):
            if not stdin_pty:
                child.stdin.write(stdin or b"")
                child.stdin.close()
            err = child.stderr.read()
            code = child.wait(TIMEOUT)
            screen = child.stdout.read() if stdin_pty else read_pty(master)
    finally:
        os.close(master)
    return code, screen, err


def test_out_dash_onto_a_terminal_is_refused(server) -> None:
    code, screen, err = _on_a_pty(["speak", "Hi", "--url", server.eigenai_url, "--out", "-"])
    assert code == 2 and screen == b"", screen[:80]
    assert err.decode().startswith("ttsstream speak: --out -: standard output is a terminal")
    assert server.connections == 0


def test_no_text_reads_a_pipe_and_refuses_a_terminal(server) -> None:
    piped = cli("speak", "--url", server.eigenai_url, "--out", "-", "--format", "raw", "-q", stdin=b"From a pipe.\n")
    assert piped.returncode == 0, piped.stderr
    assert server.transcript[-1].text == "From a pipe." and piped.stdout == tone_pcm("From a pipe.")

    code, out, err = _on_a_pty(["speak", "--url", server.eigenai_url, "--out", "-"], stdin_pty=True)
    assert (code, out) == (2, b"") and b"give the text to say as TEXT" in err and err.count(b"\n") == 1
    assert len(server.transcript) == 1


def test_voices_lists_voices_and_its_filters_work() -> None:
    local = cli("voices", "--provider", "local").stdout.decode()
    rows = [line.split() for line in local.split("\n\n")[0].splitlines()[1:]]
    assert rows and {row[0] for row in rows} == {"local"}, local
    assert ["local", "qwen3-tts", "Vivian", "*", "female", "Chinese"] == rows[[r[2] for r in rows].index("Vivian")][:6]

    listed = json.loads(cli("voices", "--json").stdout)
    import ttsstream

    assert listed == [dict(dataclasses.asdict(voice), languages=list(voice.languages)) for voice in ttsstream.voices()]
    hindi = json.loads(cli("voices", "--json", "--provider", "shunyalabs", "--language", "Hindi").stdout)
    assert {voice["name"] for voice in hindi} == {"Nisha", "Varun", "Rajesh", "Priya", "Arjun", "Kavya"}
    only = cli("voices", "--model", "higgs2p5", "--provider", "eigenai").stdout.decode()
    assert "Linda *" in only and "Jack" in only and "Vivian" not in only and "local " not in only

    bad = cli("voices", "--provider", "shunyalabs", "--model", "higgs2p5")
    assert bad.returncode == 2 and b"--model higgs2p5" in bad.stderr and b"zero-indic" in bad.stderr


def test_serve_and_devices_help_say_what_they_do() -> None:
    serve = " ".join(cli("serve", "--help").stdout.decode().split())
    assert "Run the bundled offline TTS server in the foreground" in serve and "--quiet" in serve
    devices = " ".join(cli("devices", "--help").stdout.decode().split())
    assert "List the audio output devices" in devices


def test_an_open_host_names_the_flags_not_python() -> None:
    result = cli("serve", "--host", "0.0.0.0", "--port", "0", "--engine", "tone")
    message = result.stderr.decode()
    assert result.returncode == 2 and message.count("\n") == 1
    assert "--api-key KEY" in message and "--allow-open" in message and "allow_open" not in message, message


def _serve_and_speak(*serve_flags: str) -> str:
    """Run ``ttsstream serve`` as a process, speak twice to it (once refused), stop it; return its stderr."""
    server = subprocess.Popen([sys.executable, "-m", "ttsstream", "serve", "--port", "0", "--engine", "tone",
                               "--api-key", KEY, *serve_flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env())
    try:
        match = re.search(rb"ws://127\.0\.0\.1:\d+", server.stdout.readline())
        assert match, server.stderr.read()
        base = match.group(0).decode()
        spoken = cli("speak", "Hello there, a request to log.", "--url", base + "/api/v1/generate/ws", "--out", "-",
                     EIGENAI_API_KEY=KEY)
        assert spoken.returncode == 0, spoken.stderr
        refused = cli("speak", "Hi", "--url", base + "/ws", "--voice", "Varun", "--out", "-",
                      SHUNYALABS_API_KEY="wrong-key")
        assert refused.returncode == 1
    finally:
        server.send_signal(signal.SIGINT)
        try:
            assert server.wait(TIMEOUT) == 0
        finally:
            server.kill()
            err = server.stderr.read().decode()
            server.stdout.close()
            server.stderr.close()
    return err


def test_serve_logs_each_request_and_quiet_silences_it() -> None:
    logged = _serve_and_speak()
    lines = [line for line in logged.splitlines() if " -> " in line]
    assert lines == ['ttsstream serve: eigenai higgs2p5 voice=Linda 30 chars "Hello there, a request \u2026" '
                     '-> completed, 1.50 s of audio'], logged
    assert "refused a Shunyalabs connection: missing or invalid API key" in logged
    assert KEY not in logged and "wrong-key" not in logged and "connection open" not in logged
    assert _serve_and_speak("--quiet") == ""


def test_the_local_voice_notice_is_said_once_per_machine(tmp_path) -> None:
    cache = str(tmp_path / "cache")
    said = [cli("speak", "Hi", "--out", "-", "--format", "raw", XDG_CACHE_HOME=cache).stderr.decode()
            for _ in range(2)]
    assert "speaking with the local offline voice" in said[0]
    assert "local offline voice" not in said[1] and said[1].startswith("streamed")
    verbose = cli("speak", "Hi", "--out", "-", "--verbose", XDG_CACHE_HOME=cache).stderr.decode()
    assert "speaking with the local offline voice" in verbose


def test_the_short_flags_users_expect(server) -> None:
    result = cli("speak", "Namaste", "--url", server.shunyalabs_url, "-v", "Varun", "-s", "1.2", "-l", "hi",
                 "-o", "-", "-q")
    assert result.returncode == 0, result.stderr
    heard = server.transcript[-1]
    assert (heard.voice, heard.speed, heard.language) == ("Varun", 1.2, "hi")
    assert result.stdout == wav_header(24000) + tone_pcm("Namaste", speed=1.2)


def test_fallback_speaks_when_the_first_provider_is_down_and_says_so(tmp_path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = f"ws://127.0.0.1:{probe.getsockname()[1]}/api/v1/generate/ws"
    probe.close()
    out = tmp_path / "said.wav"
    result = cli("speak", "Spoken anyway.", "--url", dead, "--fallback", "local", "--out", str(out), "--no-play")
    assert result.returncode == 0, result.stderr
    said = result.stdout.decode()
    assert "eigenai failed before any audio (connection refused" in said and "spoken by local instead" in said
    with wave.open(str(out)) as wav:
        assert wav.getnframes() > 0 and wav.getframerate() == 24000
    as_json = cli("speak", "Spoken anyway.", "--url", dead, "--fallback", "local", "--out", str(out),
                  "--no-play", "--json")
    summary = json.loads(as_json.stdout.decode().strip().splitlines()[-1])
    assert summary["spoken_by"] == "local" and summary["failed_first"][0]["error"] == "ConnectionFailed"
