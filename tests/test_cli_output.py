"""Where ``ttsstream speak`` puts the audio, and what is left there when things go wrong.

Each run is a process of its own against a bundled server on a loopback port:
interrupted (SIGINT, SIGTERM, SIGHUP) or failed, a file keeps the audio received so
far under its final name, with a true header and no part file beside it; output the
user did not name never replaces a file; a missing dependency is named with the extra
that brings it, before any talk of files; a name whose extension promises a format
that is not written is refused before anything is sent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from processes import reaped
from ttsstream import InvalidParameterError, TTSClient
from ttsstream.cli import main
from ttsstream.cli.sink import wav_header
from ttsstream.formats import read_audio
from ttsstream.server import tone_pcm

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # a hang guard, not a performance bound
LONG = "An audiobook chapter that is interrupted. " * 40  # minutes of tones at real time


def env(*blocked: str) -> Dict[str, str]:
    """The child's environment: this worktree's package, no API keys; ``blocked`` modules
    cannot be imported (as if their package were not installed)."""
    base = {k: v for k, v in os.environ.items() if k not in ("EIGENAI_API_KEY", "SHUNYALABS_API_KEY")}
    path = [str(REPO)] + ([str(REPO / "tests" / "blocker")] if blocked else [])
    return dict(base, PYTHONPATH=os.pathsep.join(path), PYTHONUNBUFFERED="1",
                TTSSTREAM_TEST_BLOCK=",".join(blocked))


def cli(*args: str, cwd: Path, blocked: tuple = (), stdin: Optional[bytes] = None
        ) -> "subprocess.CompletedProcess[bytes]":
    return subprocess.run([sys.executable, "-m", "ttsstream", *args], input=stdin, capture_output=True,
                          timeout=TIMEOUT, env=env(*blocked), cwd=str(cwd))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def part_files(folder: Path) -> List[Path]:
    return [path for path in folder.iterdir() if path.name.endswith(".part")]


def audio_so_far(folder: Path, at_least: int) -> Callable[[], bool]:
    """A part file in ``folder`` holds a header and ``at_least`` bytes of audio."""
    def holds() -> bool:
        return any(path.stat().st_size >= 44 + at_least for path in part_files(folder))
    return holds


def check_wav(path: Path) -> bytes:
    """The audio of a valid WAV whose header's sizes match the bytes present (and hold some)."""
    size = path.stat().st_size
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        data = wav.readframes(wav.getnframes())
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and int.from_bytes(raw[4:8], "little") == size - 8
    assert int.from_bytes(raw[40:44], "little") == size - 44 == len(data) > 0
    return data


# -- defect 2: an interrupted or failed --out keeps what it has ----------------------------------


@pytest.mark.parametrize("signum, code, said", [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (signal.SIGHUP, 129, "hung up (SIGHUP)"),
])
def test_a_signal_keeps_the_audio_received_so_far(make_server, tmp_path, signum, code, said) -> None:
    server = make_server(realtime=1)  # real time: the speech is still streaming when the signal comes
    child = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", LONG, "--url", server.eigenai_url,
                              "--out", "book.wav", "--no-play"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env(), cwd=str(tmp_path))
    with reaped(child):
        wait_for(audio_so_far(tmp_path, 9600), "some audio in the part file")
        child.send_signal(signum)
        assert child.wait(TIMEOUT) == code
        err = child.stderr.read().decode()
    assert os.listdir(tmp_path) == ["book.wav"]  # no part file, nothing else
    audio = check_wav(tmp_path / "book.wav")
    assert tone_pcm(LONG).startswith(audio)
    lines = err.splitlines()
    assert lines[-1] == f"ttsstream speak: {said}", err
    assert lines[-2].startswith("ttsstream: kept the ") and str(tmp_path / "book.wav") in lines[-2], err


@pytest.mark.parametrize("name", ["stalled.wav", "stalled.flac"])
def test_a_stalled_server_leaves_a_valid_partial_file_and_exit_1(make_server, tmp_path, name) -> None:
    server = make_server(fault="stall", fault_after=3)  # three frames, then silence with the socket open
    text = "A server that stalls after three frames of this sentence."
    result = cli("speak", text, "--url", server.eigenai_url, "--out", name, "--no-play",
                 "--timeout", "2", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert b"SynthesisTimeout" in result.stderr
    assert os.listdir(tmp_path) == [name]
    kept = check_wav(tmp_path / name) if name.endswith(".wav") else read_audio(tmp_path / name)[0].tobytes()
    assert kept == tone_pcm(text)[:3 * 4800]


def test_a_failure_before_any_audio_leaves_no_file_and_an_older_one_intact(make_server, tmp_path) -> None:
    server = make_server(fault="stall", fault_after=0)
    (tmp_path / "old.wav").write_bytes(b"an older file")
    result = cli("speak", "Hello", "--url", server.eigenai_url, "--out", "old.wav", "--no-play",
                 "--timeout", "1", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert os.listdir(tmp_path) == ["old.wav"]
    assert (tmp_path / "old.wav").read_bytes() == b"an older file"


def test_standard_output_into_a_file_gets_its_header_patched_when_interrupted(make_server, tmp_path) -> None:
    server = make_server(realtime=1)
    target = tmp_path / "redirected.wav"
    with open(target, "wb") as stdout:
        child = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", LONG, "--url", server.eigenai_url,
                                  "--out", "-", "-q"], stdout=stdout, stderr=subprocess.PIPE, env=env(),
                                 cwd=str(tmp_path))
        with reaped(child):
            wait_for(lambda: target.stat().st_size >= 44 + 9600, "some audio on standard output")
            child.send_signal(signal.SIGTERM)
            assert child.wait(TIMEOUT) == 143
    assert tone_pcm(LONG).startswith(check_wav(target))


def test_a_pipe_keeps_the_streaming_header_when_terminated(make_server, tmp_path) -> None:
    server = make_server(realtime=1)
    child = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", LONG, "--url", server.eigenai_url,
                              "--out", "-", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
                             cwd=str(tmp_path))
    with reaped(child):
        header = child.stdout.read(44)
        child.send_signal(signal.SIGTERM)
        child.stdout.read()  # the rest, to the end: nothing blocks the child's last writes
        code = child.wait(TIMEOUT)
        err = child.stderr.read().decode()
    assert header == wav_header(24000)  # the unknown sizes, as streaming readers expect
    assert code == 143 and err == "ttsstream speak: terminated (SIGTERM)\n", err
    assert os.listdir(tmp_path) == []


def test_in_process_a_signal_joins_every_thread_and_restores_the_handlers(make_server, tmp_path) -> None:
    # main() on this (the main) thread; a helper sends SIGTERM to this process once audio
    # has been written. The autouse fixture then fails the test if a thread is left.
    server = make_server(realtime=1)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    class NotHandled(Exception):
        pass

    def unhandled(signum: int, frame: object) -> None:  # before the fix SIGTERM would end pytest
        raise NotHandled()

    def kill_when_written() -> None:
        try:
            wait_for(audio_so_far(tmp_path, 9600), "some audio in the part file")
        except AssertionError:
            return  # the assertions on the main thread say what went wrong
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, unhandled)
    killer = threading.Thread(target=kill_when_written, name="test-killer")
    try:
        killer.start()
        code = main(["speak", LONG, "--url", server.eigenai_url, "--out", str(tmp_path / "in.wav"),
                     "--no-play", "-q"])
    finally:
        killer.join(TIMEOUT)
        signal.signal(signal.SIGTERM, previous)
    assert code == 143
    assert signal.getsignal(signal.SIGINT) == before[signal.SIGINT]
    assert signal.getsignal(signal.SIGHUP) == before[signal.SIGHUP]
    assert os.listdir(tmp_path) == ["in.wav"]
    check_wav(tmp_path / "in.wav")


def test_a_signal_while_held_comes_after_the_step_and_a_second_one_is_ignored() -> None:
    from ttsstream.cli.signals import Interrupted, held, interrupts

    before = signal.getsignal(signal.SIGTERM)
    steps = []
    with pytest.raises(Interrupted) as caught:
        with interrupts():
            with held():
                os.kill(os.getpid(), signal.SIGHUP)
                steps.append("the step finished")
            steps.append("not reached")
    assert steps == ["the step finished"] and caught.value.exit_code == 129
    with interrupts():
        with pytest.raises(Interrupted) as caught:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.getsignal(signal.SIGTERM)  # a statement after the kill, where the handler runs
        os.kill(os.getpid(), signal.SIGINT)  # while cleaning up: ignored
        steps.append("cleaned up")
    assert caught.value.reason == "terminated (SIGTERM)" and steps[-1] == "cleaned up"
    assert signal.getsignal(signal.SIGTERM) == before


# -- defect 3: output the user did not name never replaces a file ------------------------------


def test_the_default_output_never_replaces_a_file(server, tmp_path) -> None:
    (tmp_path / "speech.wav").write_bytes(b"precious")
    first = cli("speak", "Hi", "--url", server.eigenai_url, "--no-play", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.decode().startswith(f"wrote {tmp_path / 'speech-1.wav'}:")
    second = cli("speak", "-", "--url", server.eigenai_url, "--no-play", cwd=tmp_path, stdin=b"Hi")
    assert second.returncode == 0, second.stderr
    assert second.stdout.decode().startswith(f"wrote {tmp_path / 'speech-2.wav'}:")
    assert (tmp_path / "speech.wav").read_bytes() == b"precious"
    assert check_wav(tmp_path / "speech-1.wav") == check_wav(tmp_path / "speech-2.wav") == tone_pcm("Hi")
    assert sorted(os.listdir(tmp_path)) == ["speech-1.wav", "speech-2.wav", "speech.wav"]


def test_with_nothing_to_play_on_the_note_names_the_file_written(server, tmp_path) -> None:
    (tmp_path / "speech.wav").write_bytes(b"precious")
    result = cli("speak", "Hi", "--url", server.eigenai_url, cwd=tmp_path, blocked=("pyaudio",))
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "cannot play here (playback needs PyAudio" in err and "ttsstream[playback]" in err
    assert "portaudio19-dev" in err and "writing speech-1.wav instead" in err, err
    assert (tmp_path / "speech.wav").read_bytes() == b"precious"
    assert check_wav(tmp_path / "speech-1.wav") == tone_pcm("Hi")


def test_two_runs_at_once_write_two_files(server, tmp_path) -> None:
    children = [subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", text, "--url", server.eigenai_url,
                                  "--no-play", "-q"], env=env(), cwd=str(tmp_path)) for text in ("One", "Two")]
    try:
        assert [child.wait(TIMEOUT) for child in children] == [0, 0]
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert sorted(os.listdir(tmp_path)) == ["speech-1.wav", "speech.wav"]
    audio = {check_wav(tmp_path / name) for name in ("speech.wav", "speech-1.wav")}
    assert audio == {tone_pcm("One"), tone_pcm("Two")}


def test_a_named_file_is_replaced_and_a_failed_default_leaves_nothing(make_server, tmp_path) -> None:
    server = make_server()
    (tmp_path / "mine.wav").write_bytes(b"old")
    named = cli("speak", "Hi", "--url", server.eigenai_url, "--out", "mine.wav", "--no-play", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert check_wav(tmp_path / "mine.wav") == tone_pcm("Hi")  # the user named it: replaced as asked

    stalled = make_server(fault="stall", fault_after=0)
    failed = cli("speak", "Hi", "--url", stalled.eigenai_url, "--no-play", "--timeout", "1", cwd=tmp_path)
    assert failed.returncode == 1
    assert os.listdir(tmp_path) == ["mine.wav"]  # no empty speech.wav left reserved


def test_free_name_takes_the_first_name_no_file_has(tmp_path) -> None:
    from ttsstream.cli.sink import free_name

    for name in ("take.wav", "take-1.wav", "take-3.wav"):
        (tmp_path / name).write_bytes(b"x")
    assert free_name(str(tmp_path / "take.wav")) == str(tmp_path / "take-2.wav")
    assert (tmp_path / "take-2.wav").read_bytes() == b""  # made at once: the next run skips it
    assert free_name(str(tmp_path / "take.wav")) == str(tmp_path / "take-4.wav")
    assert free_name(str(tmp_path / "new.raw")) == str(tmp_path / "new.raw")


# -- defect 7: a missing dependency is named, with the extra that brings it ----------------------


def test_without_the_local_extra_the_cli_names_it_and_writes_nothing(tmp_path) -> None:
    for missing in ("websockets", "espeakng_loader"):
        result = cli("speak", "Hello", cwd=tmp_path, blocked=("pyaudio", missing))
        err = result.stderr.decode()
        assert result.returncode == 1, err
        assert f"({missing} is missing" in err and "pip install 'ttsstream[local]'" in err, err
        assert "None" not in err and "WAV" not in err and "writing" not in err, err
        assert os.listdir(tmp_path) == []


def test_without_the_extras_the_library_names_them(tmp_path) -> None:
    code = (
        "import ttsstream\n"
        "for args in ({'play': True, 'provider': 'eigenai', 'url': 'ws://127.0.0.1:9/none'}, {'provider': 'local'}):\n"
        "    try:\n"
        "        ttsstream.speak('Hello', **args)\n"
        "    except ttsstream.TTSError as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT,
                            env=env("pyaudio", "websockets"), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    playback, local = result.stdout.splitlines()
    assert playback.startswith("PlaybackError playback needs PyAudio") and "ttsstream[playback]" in playback
    assert "apt-get install portaudio19-dev" in playback
    assert local.startswith("ConnectionFailed provider='local' needs") and "(websockets is missing" in local
    assert "pip install 'ttsstream[local]'" in local


# -- defect 8: a name that promises another format is refused -----------------------------------


def test_the_extension_says_the_format() -> None:
    from ttsstream.formats import check_format

    names = ("a.wav", "B.WAV", "c.raw", "d.pcm", "e.flac", "f.OGG", "g.opus", "h.mp3", "noext", ".hidden")
    assert [check_format(name) for name in names] == [
        "wav", "wav", "raw", "raw", "flac", "ogg", "opus", "mp3", "wav", "wav"]
    for name in ("x.aiff", "x.m4a", "x.wav.gz"):
        with pytest.raises(InvalidParameterError, match=r"\.wav"):
            check_format(name)


def test_save_refuses_a_format_it_does_not_write(server, tmp_path) -> None:
    with TTSClient(url=server.eigenai_url) as client:
        speech = client.speak("Hi")
    for name in ("x.aiff", "x.m4a", "x.wav.gz"):
        with pytest.raises(InvalidParameterError, match="name the file with one of those") as caught:
            speech.save(tmp_path / name)
        assert caught.value.parameter == "path"
    assert os.listdir(tmp_path) == []
    speech.save(tmp_path / "upper.WAV")
    speech.save(tmp_path / "noext")  # no extension: WAV
    assert check_wav(tmp_path / "upper.WAV") == check_wav(tmp_path / "noext") == tone_pcm("Hi")


@pytest.mark.parametrize("flags, said", [
    (["--out", "x.aiff"], "--out x.aiff: ttsstream writes .al, .alaw, .flac, .mp3, .mulaw, .ogg, .opus, .pcm, "
                          ".raw, .ul, .ulaw, .wav files, not .aiff: name the file with one of those"),
    (["--out", "x.ogg", "--format", "raw"], "--out x.ogg: a .ogg file holds OGG Vorbis, not raw PCM: leave out "
                                            "--format raw, or name the file .raw"),
    (["--out", "x.wav", "--format", "mulaw"], "--out x.wav: a .wav file holds WAV, not mu-law: leave out "
                                              "--format mulaw, or name the file .ul"),
    (["--out", "x.mp3", "--format", "flac"], "--out x.mp3: a .mp3 file holds MP3, not FLAC"),
    (["--out", "x.opus", "--rate", "22050"], "--rate 22050: Opus takes 8000, 12000, 16000, 24000, 48000 Hz"),
    (["--out", "-", "--format", "mp3", "--rate", "44000"], "--rate 44000: MP3 takes 8000, 11025,"),
])
def test_the_cli_refuses_a_name_of_another_format_before_sending(server, tmp_path, flags, said) -> None:
    result = cli("speak", "Hi", "--url", server.eigenai_url, "--no-play", *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.decode().startswith(f"ttsstream speak: {said}"), result.stderr
    assert result.stdout == b""
    assert os.listdir(tmp_path) == [] and server.transcript == []


def test_the_cli_writes_what_the_name_says(server, tmp_path) -> None:
    for flags in (["--out", "a.raw", "--format", "raw"], ["--out", "a.pcm"], ["--out", "noext"],
                  ["--format", "raw"]):
        result = cli("speak", "Hi", "--url", server.eigenai_url, "--no-play", "-q", *flags, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.raw").read_bytes() == (tmp_path / "a.pcm").read_bytes() == tone_pcm("Hi")
    assert (tmp_path / "speech.raw").read_bytes() == tone_pcm("Hi")  # the default name follows --format
    assert check_wav(tmp_path / "noext") == tone_pcm("Hi")


def test_write_wav_refuses_another_extension_and_writes_nothing(tmp_path) -> None:
    from ttsstream.audio import write_wav

    with pytest.raises(InvalidParameterError, match=r"writes WAV, not \.flac.*speech\.save"):
        write_wav(tmp_path / "x.flac", b"\x00\x00", 24000)
    assert os.listdir(tmp_path) == []
