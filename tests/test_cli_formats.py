"""``ttsstream speak`` writes every output format, streamed, and keeps it readable when stopped.

Each run is a process of its own against a bundled server (tone engine: the audio is
exact) on a loopback port: every format ``--out FILE`` names reads back (sample-exact
where lossless, the same sound within the codec's padding where lossy); ``--out -
--format mulaw|alaw`` is G.711 of the speech resampled to 8 kHz, byte for byte, and
streams while the speech does; ``--rate`` sets the rate written; an interrupted FLAC,
OGG, Opus or MP3 run keeps a file that reads; a format that disagrees with the name or
the rate is refused before anything is sent.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile

from processes import reaped
from test_cli_output import LONG, TIMEOUT, cli, env, part_files, wait_for
from ttsstream.formats import AudioFileWriter, alaw_encode, mulaw_encode, read_audio
from ttsstream.formats.resample import StreamResampler
from ttsstream.server import tone_pcm

TEXT = "Hello there, in every format."
LOSSY = ("ogg", "opus", "mp3")
# What a lossy codec may add or drop at the ends (its frame, its encoder delay), in samples.
PADDING = {"ogg": 2048, "opus": 960, "mp3": 2304}


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2")


def resampled(pcm: bytes, rate: int) -> bytes:
    """The tone engine's 24 kHz audio at ``rate``, as one stream (as the CLI resamples it)."""
    resampler = StreamResampler(24000, rate)
    return resampler.push(pcm) + resampler.flush()


def sounds_like(decoded: np.ndarray, original: np.ndarray, fmt: str) -> None:
    """A lossy codec's output is the same sound as the original: their correlation, at
    the best shift within the codec's padding (a streamed MP3 keeps its encoder delay)."""
    shortest = min(len(decoded), len(original))
    assert shortest > PADDING[fmt]
    a = decoded[:shortest].astype(float) - decoded[:shortest].mean()
    b = original[:shortest].astype(float) - original[:shortest].mean()
    size = 1 << (2 * shortest).bit_length()
    cross = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    near = np.concatenate([cross[:PADDING[fmt] + 1], cross[-PADDING[fmt]:]])
    assert near.max() / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.95, fmt


def empty_size(fmt: str) -> int:
    """The bytes of a file of ``fmt`` that holds no audio yet (its headers)."""
    stream = io.BytesIO()
    writer = AudioFileWriter(stream, fmt, 24000)
    size = len(stream.getvalue())
    writer.close()
    return max(size, len(stream.getvalue()))


# -- 1. --out FILE: the extension says the format ----------------------------------------------


def test_every_format_a_name_says_is_written_and_reads_back(server, tmp_path) -> None:
    names = ["a.wav", "a.flac", "a.raw", "a.pcm", "a.ogg", "a.opus", "a.mp3", "a.ul", "a.al"]
    for name in names:
        result = cli("speak", TEXT, "--url", server.eigenai_url, "--out", name, "--no-play", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(names)  # no part file left
    pcm = tone_pcm(TEXT)
    for name in ("a.wav", "a.flac", "a.raw", "a.pcm"):
        audio, rate = read_audio(tmp_path / name)
        assert rate == 24000 and audio.tobytes() == pcm, name  # lossless: sample for sample
    for fmt in LOSSY:
        audio, rate = read_audio(tmp_path / f"a.{fmt}")
        assert rate == 24000 and abs(len(audio) - len(pcm) // 2) <= PADDING[fmt], fmt
        sounds_like(audio, samples(pcm), fmt)
    phone = samples(resampled(pcm, 8000))
    assert (tmp_path / "a.ul").read_bytes() == mulaw_encode(phone)
    assert (tmp_path / "a.al").read_bytes() == alaw_encode(phone)


def test_format_chooses_for_a_name_without_an_extension_and_the_default_name(server, tmp_path) -> None:
    for flags in (["--out", "noext", "--format", "flac"], ["--format", "mp3"], ["--format", "mulaw"]):
        result = cli("speak", TEXT, "--url", server.eigenai_url, "--no-play", "-q", *flags, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["noext", "speech.mp3", "speech.ul"]
    assert read_audio(tmp_path / "noext", format="flac")[0].tobytes() == tone_pcm(TEXT)
    sounds_like(read_audio(tmp_path / "speech.mp3")[0], samples(tone_pcm(TEXT)), "mp3")


def test_rate_sets_the_rate_written(server, tmp_path) -> None:
    for name in ("r.wav", "r.flac", "r.mp3"):
        result = cli("speak", TEXT, "--url", server.eigenai_url, "--out", name, "--rate", "16000", "--no-play",
                     cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"of {name[2:].upper()} at 16000 Hz" in result.stdout.decode(), result.stdout
    expected = resampled(tone_pcm(TEXT), 16000)
    for name in ("r.wav", "r.flac"):
        audio, rate = read_audio(tmp_path / name)
        assert rate == 16000 and audio.tobytes() == expected, name  # resampled as one stream: no seams
    audio, rate = read_audio(tmp_path / "r.mp3")
    assert rate == 16000 and abs(len(audio) - len(expected) // 2) <= PADDING["mp3"]
    raw = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "-", "--format", "raw", "--rate", "48000",
              "-q", cwd=tmp_path)
    assert raw.returncode == 0 and raw.stdout == resampled(tone_pcm(TEXT), 48000)


def test_json_and_the_last_line_name_the_format_and_rate_written(server, tmp_path) -> None:
    result = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "call.al", "--no-play", "--json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["format"], summary["out_rate"], summary["sample_rate"]) == ("alaw", 8000, 24000)
    piped = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "-", "--format", "opus", "--rate", "48000",
                cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr.decode().startswith("streamed 1.45 s of Opus at 48000 Hz to standard output")
    written = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "x.ogg", "--no-play", cwd=tmp_path)
    assert written.stdout.decode().startswith(f"wrote {tmp_path / 'x.ogg'}: 1.45 s of OGG Vorbis at 24000 Hz")


# -- 2. --out -: standard output, streamed -----------------------------------------------------


def test_out_dash_mulaw_and_alaw_are_g711_of_the_audio_at_8000_hz(server, tmp_path) -> None:
    phone = samples(resampled(tone_pcm(TEXT), 8000))
    for fmt, encode in (("mulaw", mulaw_encode), ("alaw", alaw_encode)):
        result = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "-", "--format", fmt, "-q",
                     cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == encode(phone), fmt
    wide = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "-", "--format", "mulaw", "--rate", "16000",
               "-q", cwd=tmp_path)
    assert wide.stdout == mulaw_encode(samples(resampled(tone_pcm(TEXT), 16000)))


@pytest.mark.parametrize("fmt", ["flac", "ogg", "opus", "mp3"])
def test_out_dash_streams_a_file_format_that_reads_back(server, tmp_path, fmt) -> None:
    result = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "-", "--format", fmt, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    if fmt == "flac":
        # A streamed FLAC cannot go back to its STREAMINFO (the 42 bytes after "fLaC"), so
        # it leaves the length unknown, as FLAC allows; its frames are the file's, byte for byte.
        filed = cli("speak", TEXT, "--url", server.eigenai_url, "--out", "a.flac", "-q", "--no-play", cwd=tmp_path)
        assert filed.returncode == 0, filed.stderr
        assert result.stdout[:4] == b"fLaC"
        assert result.stdout[42:] == (tmp_path / "a.flac").read_bytes()[42:]
        assert read_audio(tmp_path / "a.flac")[0].tobytes() == tone_pcm(TEXT)
        return
    audio, rate = soundfile.read(io.BytesIO(result.stdout), dtype="int16")
    assert rate == 24000
    sounds_like(audio, samples(tone_pcm(TEXT)), fmt)


@pytest.mark.parametrize("fmt", ["mulaw", "mp3"])
def test_a_pipe_gets_the_audio_while_the_speech_streams(make_server, fmt) -> None:
    server = make_server(realtime=1)  # minutes of audio at real time: still speaking while we read
    child = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", LONG, "--url", server.eigenai_url,
                              "--out", "-", "--format", fmt, "-q"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env())
    with reaped(child):
        head = child.stdout.read(1600)  # 0.2 s of mu-law; a few MP3 frames
        assert child.poll() is None  # the speech has not ended: this came as it streamed
        child.send_signal(signal.SIGTERM)
        child.stdout.read()
        assert child.wait(TIMEOUT) == 143
        err = child.stderr.read().decode()
    assert err == "ttsstream speak: terminated (SIGTERM)\n", err
    if fmt == "mulaw":
        assert mulaw_encode(samples(resampled(tone_pcm(LONG), 8000))).startswith(head)
    else:
        assert head[:2] in (b"\xff\xf3", b"\xff\xfb", b"ID"), head[:4]  # an MPEG audio frame (or a tag)


# -- 3. stopped part way: the file keeps what came, and reads ------------------------------------


def grown_past_its_headers(folder: Path, fmt: str) -> Callable[[], bool]:
    """A part file in ``folder`` holds more than the headers of an empty ``fmt`` file."""
    headers = empty_size(fmt)
    return lambda: any(path.stat().st_size > headers + 2000 for path in part_files(folder))


@pytest.mark.parametrize("fmt, signum, code", [
    ("flac", signal.SIGTERM, 143),
    ("ogg", signal.SIGINT, 130),
    ("opus", signal.SIGTERM, 143),
    ("mp3", signal.SIGHUP, 129),
])
def test_an_interrupted_encoded_file_keeps_what_came_and_reads(make_server, tmp_path, fmt, signum, code) -> None:
    server = make_server(realtime=1)  # real time: the speech is still streaming when the signal comes
    name = f"book.{fmt}"
    child = subprocess.Popen([sys.executable, "-m", "ttsstream", "speak", LONG, "--url", server.eigenai_url,
                              "--out", name, "--no-play"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env(), cwd=str(tmp_path))
    with reaped(child):
        wait_for(grown_past_its_headers(tmp_path, fmt), "some audio in the part file")
        child.send_signal(signum)
        assert child.wait(TIMEOUT) == code
        err = child.stderr.read().decode()
    assert os.listdir(tmp_path) == [name]  # no part file, nothing else
    assert "ttsstream: kept the " in err and str(tmp_path / name) in err, err
    audio, rate = read_audio(tmp_path / name)
    assert rate == 24000 and len(audio) > 0
    # The first unit of the text stream is its first sentence: that much audio is known
    # exactly (the units after it join sentences, and their edges' spaces are not spoken).
    first = samples(tone_pcm(LONG.split(". ")[0] + "."))
    if fmt == "flac":
        assert first[:len(audio)].tobytes() == audio[:len(first)].tobytes()
    else:
        sounds_like(audio[:len(first)], first, fmt)


