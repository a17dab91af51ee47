"""Output formats: framing, streaming resampling, AudioFormat and its Converter, audio files.

Real soxr, real libsndfile (soundfile's wheel) and the bundled server; nothing mocked.
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path
from typing import List

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ttsstream
from ttsstream import InvalidParameterError, TTSClient
from ttsstream.formats import (FILE_FORMATS, AudioFileWriter, AudioFormat, Framer, StreamResampler, check_format,
                               mulaw_decode, read_audio, write_audio)
from ttsstream.formats.files import file_rate
from ttsstream.server import tone_pcm

LINE = "The quick brown fox jumps over the lazy dog, twice."
SPEECH = tone_pcm(LINE)  # 2.55 s of the tone engine's speech-shaped audio at 24 kHz
SOURCE = np.frombuffer(SPEECH, dtype="<i2")


def cut(data: bytes, points: List[int]) -> List[bytes]:
    """``data`` cut at ``points`` (any positions, sorted here)."""
    edges = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


# --- framing -----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=3000), points=st.lists(st.integers(min_value=0), max_size=30),
       frame=st.integers(min_value=1, max_value=400))
def test_any_split_of_any_stream_gives_exact_frames_that_join_into_the_stream(stream: bytes, points: List[int],
                                                                              frame: int) -> None:
    framer = Framer(frame)
    frames = [f for piece in cut(stream, points) for f in framer.push(piece)]
    assert all(len(f) == frame for f in frames)
    rest = framer.flush()
    assert rest is None or 0 < len(rest) < frame
    assert b"".join(frames) + (rest or b"") == stream
    assert framer.flush() is None and framer.pending == 0


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_a_framer_refuses_a_size_that_is_not_a_positive_int(size: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        Framer(size)  # type: ignore[arg-type]


# --- resampling --------------------------------------------------------------------------

def resample_in(pieces: List[bytes], rate_in: int, rate_out: int) -> bytes:
    resampler = StreamResampler(rate_in, rate_out)
    return b"".join(resampler.push(piece) for piece in pieces) + resampler.flush()


@pytest.mark.parametrize("rate_in, rate_out", [(24000, 8000), (24000, 16000), (22050, 8000), (16000, 48000)])
def test_resampling_in_any_chunks_gives_exactly_the_samples_of_one_call(rate_in: int, rate_out: int) -> None:
    rng = np.random.default_rng(rate_in + rate_out)
    whole = resample_in([SPEECH], rate_in, rate_out)
    assert abs(len(whole) // 2 - len(SOURCE) * rate_out / rate_in) <= 2
    for _ in range(5):  # odd cuts included: a split sample waits for its other byte
        points = rng.integers(0, len(SPEECH), size=int(rng.integers(1, 200))).tolist()
        assert resample_in(cut(SPEECH, points), rate_in, rate_out) == whole


def test_equal_rates_pass_the_bytes_through() -> None:
    resampler = StreamResampler(24000, 24000)
    assert not resampler.active
    assert resampler.push(SPEECH[:7]) + resampler.push(SPEECH[7:]) + resampler.flush() == SPEECH


def sweep(rate: int, seconds: float, low: float, high: float) -> np.ndarray:
    """A linear sine sweep at half scale, with 50 ms raised-cosine ends (no click to alias)."""
    t = np.arange(int(rate * seconds)) / rate
    signal = np.sin(2 * np.pi * (low * t + (high - low) * t ** 2 / (2 * seconds)))
    ramp = int(0.05 * rate)
    envelope = np.ones_like(t)
    envelope[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    envelope[-ramp:] = envelope[:ramp][::-1]
    return (0.5 * 32767 * envelope * signal).astype("<i2")


def test_a_sweep_above_the_new_nyquist_leaves_no_alias_in_band() -> None:
    # 24 kHz -> 8 kHz: everything of a 5-11.5 kHz sweep lies above 4 kHz and must go; what
    # folds back below 4 kHz is aliasing (the "metallic sss" of plain interpolation).
    source = sweep(24000, 4.0, 5000, 11500)
    out = np.frombuffer(resample_in([source.tobytes()], 24000, 8000), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    in_band = spectrum[np.fft.rfftfreq(len(out), 1 / 8000) < 4000].sum() * 2 / len(out) ** 2
    level = 10 * np.log10(in_band / np.mean(source.astype(np.float64) ** 2))
    assert level <= -60, f"aliases at {level:.1f} dB"


def test_the_telephone_band_passes_flat() -> None:
    source = sweep(24000, 2.0, 300, 3400)
    out = np.frombuffer(resample_in([source.tobytes()], 24000, 8000), dtype="<i2").astype(np.float64)
    gain = 10 * np.log10(np.mean(out ** 2) / np.mean(source.astype(np.float64) ** 2))
    assert abs(gain) < 0.5, gain


# --- AudioFormat and its Converter ------------------------------------------------------

def test_audio_format_defaults_and_sizes() -> None:
    assert ttsstream.AudioFormat is AudioFormat
    plain = AudioFormat()
    assert (plain.sample_rate, plain.encoding, plain.frame_ms, plain.bytes_per_sample) == (None, "pcm16", None, 2)
    phone = AudioFormat(encoding="mulaw", frame_ms=20)
    assert (phone.sample_rate, phone.bytes_per_sample, phone.frame_bytes()) == (8000, 1, 160)
    assert AudioFormat(encoding="ALAW", frame_ms=20) == AudioFormat(8000, "alaw", 20)
    assert AudioFormat(16000, frame_ms=10).frame_bytes() == 320
    assert AudioFormat(frame_ms=20).frame_bytes(24000) == 960
    assert plain.frame_bytes() is None and plain != phone and plain != "pcm16"
    assert len({AudioFormat(8000, "mulaw", 20), AudioFormat(encoding="mulaw", frame_ms=20)}) == 1
    assert repr(phone) == "AudioFormat(sample_rate=8000, encoding='mulaw', frame_ms=20)"


@pytest.mark.parametrize("args, parameter, said", [
    ({"encoding": "opus"}, "encoding", "'pcm16', 'mulaw', 'alaw'"),
    ({"encoding": None}, "encoding", "'pcm16', 'mulaw', 'alaw'"),
    ({"sample_rate": 7999}, "sample_rate", "from 8000 to 192000"),
    ({"sample_rate": 192001}, "sample_rate", "from 8000 to 192000"),
    ({"sample_rate": 16000.0}, "sample_rate", "whole number of Hz"),
    ({"sample_rate": True}, "sample_rate", "whole number of Hz"),
    ({"frame_ms": 0}, "frame_ms", "positive number"),
    ({"frame_ms": float("nan")}, "frame_ms", "positive number"),
    ({"sample_rate": 44100, "frame_ms": 1}, "frame_ms", "44.1 samples at 44100 Hz"),
    ({"encoding": "mulaw", "frame_ms": 0.01}, "frame_ms", "whole number of samples"),
])
def test_audio_format_refuses_what_cannot_work_and_says_what_does(args: dict, parameter: str, said: str) -> None:
    with pytest.raises(InvalidParameterError, match=said) as caught:
        AudioFormat(**args)
    assert caught.value.parameter == parameter


def test_a_frame_that_is_not_whole_samples_at_the_speech_rate_is_refused_by_the_converter() -> None:
    with pytest.raises(InvalidParameterError, match="22.05 samples"):
        AudioFormat(frame_ms=1).converter(22050)


def convert(audio_format: AudioFormat, pieces: List[bytes], source_rate: int = 24000) -> List[tuple]:
    converter = audio_format.converter(source_rate)
    return [piece for data in pieces for piece in converter.push(data)] + converter.flush()


@settings(max_examples=40, deadline=None)
@given(points=st.lists(st.integers(min_value=0), max_size=40),
       audio_format=st.sampled_from([AudioFormat(encoding="mulaw", frame_ms=20), AudioFormat(encoding="alaw"),
                                     AudioFormat(16000, frame_ms=10), AudioFormat(), AudioFormat(frame_ms=20),
                                     AudioFormat(48000, "alaw", 5)]))
def test_the_input_chunks_never_show_in_the_output(points: List[int], audio_format: AudioFormat) -> None:
    pieces = convert(audio_format, cut(SPEECH, points))
    whole = convert(audio_format, [SPEECH])
    assert b"".join(p for p, _ in pieces) == b"".join(p for p, _ in whole)
    assert b"".join(e for _, e in pieces) == b"".join(e for _, e in whole)
    frame = audio_format.frame_bytes(24000)
    if frame is not None:
        assert [len(e) for _, e in pieces[:-1]] == [frame] * (len(pieces) - 1) and 0 < len(pieces[-1][1]) <= frame
    for pcm, encoded in pieces:
        assert len(pcm) == len(encoded) * 2 // audio_format.bytes_per_sample


def test_phone_frames_are_160_bytes_of_mulaw_and_decode_to_their_pcm() -> None:
    pieces = convert(AudioFormat(encoding="mulaw", frame_ms=20), [SPEECH])
    assert {len(encoded) for _, encoded in pieces[:-1]} == {160}
    total = sum(len(encoded) for _, encoded in pieces)
    assert abs(total - len(SOURCE) / 3) <= 2  # 24 kHz -> 8 kHz, one byte a sample
    pcm = np.frombuffer(b"".join(p for p, _ in pieces), dtype="<i2").astype(np.float64)
    decoded = mulaw_decode(b"".join(e for _, e in pieces)).astype(np.float64)
    # μ-law keeps ~38 dB of signal to noise on speech; the PCM is the encoded frame's own.
    noise = 10 * np.log10(np.mean((decoded - pcm) ** 2) / np.mean(pcm ** 2))
    assert noise < -30, noise


def test_pcm16_at_the_speech_rate_is_the_speech_itself() -> None:
    pieces = convert(AudioFormat(), [SPEECH[:1001], SPEECH[1001:]])
    assert all(pcm == encoded for pcm, encoded in pieces)
    assert b"".join(pcm for pcm, _ in pieces) == SPEECH


# --- files -------------------------------------------------------------------------------

def test_libsndfile_writes_every_format_here() -> None:
    import soundfile

    assert {"MP3", "OGG", "FLAC", "WAV"} <= set(soundfile.available_formats())
    assert {"VORBIS", "OPUS"} <= set(soundfile.available_subtypes("OGG"))
    assert set(FILE_FORMATS) == {"wav", "flac", "ogg", "opus", "mp3", "raw"}


@pytest.mark.parametrize("name, fmt", [("a.wav", "wav"), ("B.FLAC", "flac"), ("c.ogg", "ogg"), ("d.opus", "opus"),
                                       ("e.mp3", "mp3"), ("f.raw", "raw"), ("g.pcm", "raw"), ("noext", "wav"),
                                       ("-", "wav")])
def test_the_format_comes_from_the_extension(name: str, fmt: str) -> None:
    assert check_format(name) == fmt
    assert check_format(name, format="MP3") == "mp3"  # format= wins over the name


@pytest.mark.parametrize("name", ["x.aiff", "x.wav.gz", "x.m4a", "x.WEBM"])
def test_another_extension_is_refused_with_the_choices(name: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"\.flac, \.mp3, \.ogg, \.opus, \.pcm, \.raw, \.wav") as caught:
        check_format(name)
    assert caught.value.parameter == "path"


@pytest.mark.parametrize("fmt", ["aac", "", "Vorbis", 3])
def test_an_unknown_format_is_refused_with_the_choices(fmt: object) -> None:
    with pytest.raises(InvalidParameterError, match="wav, flac, ogg, opus, mp3, raw") as caught:
        check_format("x.wav", format=fmt)  # type: ignore[arg-type]
    assert caught.value.parameter == "format"


@pytest.mark.parametrize("fmt", ["wav", "flac", "raw"])
@pytest.mark.parametrize("rate", [8000, 24000, 44100])
def test_lossless_formats_give_back_every_sample(tmp_path: Path, fmt: str, rate: int) -> None:
    path = tmp_path / f"speech.{fmt}"
    assert write_audio(path, SPEECH, rate) == fmt
    samples, got_rate = read_audio(path, sample_rate=rate)
    assert got_rate == rate and samples.dtype == np.dtype("<i2") and samples.tobytes() == SPEECH


def test_a_wav_is_the_standard_librarys_wav(tmp_path: Path) -> None:
    write_audio(tmp_path / "a.wav", SPEECH, 16000)
    with wave.open(str(tmp_path / "a.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.readframes(wav.getnframes()) == SPEECH


# The codecs pad to whole frames (Vorbis up to 2048 samples, Opus 20 ms, MP3 1152 samples);
# libsndfile trims that on reading. The bound: one MP3 frame, 48 ms at 24 kHz (measured: 0).
PADDING = 1152


@pytest.mark.parametrize("fmt", ["ogg", "opus", "mp3"])
def test_lossy_formats_keep_the_length_and_the_sound(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"speech.{fmt}"
    write_audio(path, SPEECH, 24000)
    samples, rate = read_audio(path)
    assert rate == 24000 and abs(len(samples) - len(SOURCE)) <= PADDING
    n = min(len(samples), len(SOURCE))
    correlation = np.corrcoef(samples[:n].astype(np.float64), SOURCE[:n].astype(np.float64))[0, 1]
    energy = 10 * np.log10(np.sum(samples.astype(np.float64) ** 2) / np.sum(SOURCE.astype(np.float64) ** 2))
    assert correlation > 0.95 and abs(energy) < 1.0, (correlation, energy)  # measured 0.986-1.0, ±0.03 dB
    assert os.path.getsize(path) < len(SPEECH) / 5  # compressed, not PCM in a box


@pytest.mark.parametrize("fmt, rate, written", [("opus", 22050, 24000), ("opus", 44100, 48000),
                                                ("opus", 96000, 48000), ("mp3", 96000, 48000),
                                                ("mp3", 22050, 22050), ("ogg", 22050, 22050)])
def test_a_rate_the_codec_does_not_take_is_resampled_to_the_next_one_up(tmp_path: Path, fmt: str, rate: int,
                                                                       written: int) -> None:
    assert file_rate(fmt, rate) == written
    write_audio(tmp_path / f"x.{fmt}", SPEECH, rate)
    samples, got = read_audio(tmp_path / f"x.{fmt}")
    assert got == written and abs(len(samples) - len(SOURCE) * written / rate) <= PADDING * written / 24000


@pytest.mark.parametrize("fmt", sorted(FILE_FORMATS))
def test_a_file_written_in_chunks_is_the_file_written_at_once(tmp_path: Path, fmt: str) -> None:
    with AudioFileWriter(tmp_path / f"chunks.{fmt}", fmt, 24000) as writer:
        for piece in cut(SPEECH, [1, 999, 1000, 30001, 50000]):
            writer.write(piece)
    write_audio(tmp_path / f"once.{fmt}", SPEECH, 24000)
    chunks, _ = read_audio(tmp_path / f"chunks.{fmt}")
    once, _ = read_audio(tmp_path / f"once.{fmt}")
    if fmt in ("wav", "flac", "raw"):
        assert chunks.tobytes() == once.tobytes() == SPEECH
    else:
        assert len(chunks) == len(once)


class Pipe(io.RawIOBase):
    """A write-only stream that cannot seek, like standard output into a pipe."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def,override]
        self.data += bytes(data)
        return len(data)


@pytest.mark.parametrize("fmt", sorted(FILE_FORMATS))
def test_a_stream_that_cannot_seek_gets_the_file_as_it_streams(tmp_path: Path, fmt: str) -> None:
    pipe = Pipe()
    with AudioFileWriter(pipe, fmt, 24000) as writer:  # type: ignore[arg-type]
        writer.write(SPEECH[:24000])
        assert len(pipe.data) > 0 or fmt in ("ogg", "opus", "mp3")  # the codecs hold a block back
        writer.write(SPEECH[24000:])
    assert not pipe.closed
    write_audio(tmp_path / f"file.{fmt}", SPEECH, 24000)
    on_file = (tmp_path / f"file.{fmt}").read_bytes()
    if fmt == "wav":  # sizes unknown (0xFFFFFFFF) where a file has them filled in
        assert pipe.data[4:8] == pipe.data[40:44] == b"\xff" * 4 and pipe.data[44:] == on_file[44:]
    elif fmt == "raw":
        assert bytes(pipe.data) == on_file == SPEECH
    elif fmt in ("flac", "mp3"):  # the header as first written: only its patched bytes differ
        assert len(pipe.data) == len(on_file) and pipe.data[200:] == on_file[200:]
    else:
        assert len(pipe.data) == len(on_file)  # Ogg differs only in its random stream serial
        (tmp_path / f"pipe.{fmt}").write_bytes(pipe.data)
        assert len(read_audio(tmp_path / f"pipe.{fmt}")[0]) == len(read_audio(tmp_path / f"file.{fmt}")[0])


def test_write_audio_writes_nothing_for_a_name_it_refuses(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError):
        write_audio(tmp_path / "x.aac", SPEECH, 24000)
    assert os.listdir(tmp_path) == []


# --- Speech.save -------------------------------------------------------------------------

def test_speech_save_writes_every_format_from_a_real_speech(make_server, tmp_path: Path) -> None:
    server = make_server()
    with TTSClient(url=server.eigenai_url) as client:
        speech = client.speak(LINE).wait(timeout=30)
    for name in ("x.mp3", "x.flac", "x.ogg", "x.opus", "x.wav", "x.raw", "noext"):
        speech.save(tmp_path / name)
        samples, rate = read_audio(tmp_path / name, format="wav" if name == "noext" else None)
        assert rate == 24000 and abs(len(samples) - len(SOURCE)) <= PADDING
        if not name.endswith((".mp3", ".ogg", ".opus")):
            assert samples.tobytes() == SPEECH
    speech.save(tmp_path / "forced.bin", format="flac")
    assert read_audio(tmp_path / "forced.bin", format="flac")[0].tobytes() == SPEECH
    with pytest.raises(InvalidParameterError, match="not .aac"):
        speech.save(tmp_path / "y.aac")
    with pytest.raises(InvalidParameterError, match="format must be one of"):
        speech.save(tmp_path / "z.wav", format="aac")
    assert not {"y.aac", "z.wav"} & set(os.listdir(tmp_path))
