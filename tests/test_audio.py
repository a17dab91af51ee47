"""ttsstream.audio: sample alignment, AudioChunk's numpy view, WAV writing and reading.

Pure tests: no sockets, no threads. Byte strings are built by hand so that every
expected value is exact.
"""

from __future__ import annotations

import itertools
import random
import struct
import wave
from pathlib import Path
from typing import Iterator, List, Sequence

import numpy as np
import pytest

from ttsstream.audio import SAMPLE_WIDTH, AudioChunk, SampleAligner, pcm_to_array, read_wav, write_wav

# Little-endian int16: 1, -1, 32767, -32768, 0x1234, 0.
KNOWN_PCM = b"\x01\x00" b"\xff\xff" b"\xff\x7f" b"\x00\x80" b"\x34\x12" b"\x00\x00"
KNOWN_SAMPLES = [1, -1, 32767, -32768, 0x1234, 0]


def cycled_frames(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """Cut ``data`` into frames whose sizes cycle through ``sizes``."""
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(data):
            return
        yield data[position:position + size]
        position += size


def compositions(n: int) -> Iterator[List[int]]:
    """Every way of writing n as an ordered sum of positive sizes (2**(n-1) of them)."""
    for cuts in itertools.product((False, True), repeat=n - 1):
        sizes, run = [], 1
        for cut in cuts:
            if cut:
                sizes.append(run)
                run = 1
            else:
                run += 1
        sizes.append(run)
        yield sizes


def feed(frames: Sequence[bytes]) -> "tuple[List[bytes], SampleAligner]":
    aligner = SampleAligner()
    return [aligner.push(frame) for frame in frames], aligner


# -- SampleAligner -----------------------------------------------------------------


def test_sample_width_is_two_bytes() -> None:
    assert SAMPLE_WIDTH == 2


def test_aligner_starts_empty() -> None:
    assert SampleAligner().pending == 0


def test_aligner_carries_a_split_sample_to_the_next_frame() -> None:
    aligner = SampleAligner()
    assert aligner.push(b"\x01") == b""
    assert aligner.pending == 1
    assert aligner.push(b"\x02\x03") == b"\x01\x02"
    assert aligner.pending == 1
    assert aligner.push(b"\x04") == b"\x03\x04"
    assert aligner.pending == 0
    assert aligner.push(b"\x05\x06\x07\x08") == b"\x05\x06\x07\x08"
    assert aligner.pending == 0


def test_aligner_empty_frame_changes_nothing() -> None:
    aligner = SampleAligner()
    assert aligner.push(b"") == b""
    assert aligner.pending == 0
    assert aligner.push(b"\xaa") == b""
    assert aligner.push(b"") == b""
    assert aligner.pending == 1
    assert aligner.push(b"\xbb") == b"\xaa\xbb"


@pytest.mark.parametrize("sizes", [
    [1, 3, 5, 2],
    [1],
    [3],
    [2],
    [7, 1, 1, 4],
    [5, 0, 3, 1, 2],
    [1023, 1, 2, 9],
])
@pytest.mark.parametrize("total", [0, 1, 2, 99, 100, 4097])
def test_aligner_any_frame_sizes_give_the_stream_minus_a_pending_byte(sizes: List[int], total: int) -> None:
    data = bytes(random.Random(total * 31 + len(sizes)).getrandbits(8) for _ in range(total))
    frames = list(cycled_frames(data, sizes))
    outputs, aligner = feed(frames)

    assert all(isinstance(out, bytes) for out in outputs)
    assert all(len(out) % 2 == 0 for out in outputs)
    assert b"".join(outputs) == data[:total - total % 2]
    assert aligner.pending == total % 2


@pytest.mark.parametrize("total", [7, 8, 9])
def test_aligner_every_split_of_a_short_stream(total: int) -> None:
    """Every possible way of cutting 7, 8 or 9 bytes into frames; after each frame the
    output so far is exactly the whole samples received so far."""
    data = bytes(range(0x41, 0x41 + total))
    count = 0
    for sizes in compositions(total):
        aligner = SampleAligner()
        received, emitted = 0, b""
        for size in sizes:
            out = aligner.push(data[received:received + size])
            received += size
            emitted += out
            assert len(out) % 2 == 0, sizes
            assert emitted == data[:received - received % 2], sizes
            assert aligner.pending == received % 2, sizes
        count += 1
    assert count == 2 ** (total - 1)


# -- pcm_to_array and AudioChunk ----------------------------------------------------


def test_pcm_to_array_reads_little_endian_int16() -> None:
    array = pcm_to_array(KNOWN_PCM)
    assert array.dtype == np.int16
    assert array.tolist() == KNOWN_SAMPLES


@pytest.mark.parametrize("pcm", [b"\x01", b"\x01\x00\x02"])
def test_pcm_to_array_refuses_odd_length(pcm: bytes) -> None:
    with pytest.raises(ValueError):
        pcm_to_array(pcm)


def test_chunk_keeps_its_fields() -> None:
    chunk = AudioChunk(KNOWN_PCM, 24000, 3)
    assert chunk.pcm == KNOWN_PCM
    assert chunk.sample_rate == 24000
    assert chunk.index == 3
    assert len(chunk) == 12


def test_chunk_samples_is_an_int16_view_equal_to_frombuffer() -> None:
    chunk = AudioChunk(KNOWN_PCM, 24000, 0)
    samples = chunk.samples
    assert isinstance(samples, np.ndarray)
    assert samples.dtype == np.int16
    assert samples.shape == (6,)
    assert samples.tolist() == KNOWN_SAMPLES
    np.testing.assert_array_equal(samples, np.frombuffer(KNOWN_PCM, dtype=np.int16))
    # A view over the bytes, not a copy: it cannot be written and shares the buffer.
    assert samples.flags.writeable is False
    assert samples.base is chunk.pcm


def test_chunk_samples_of_random_audio_equal_frombuffer() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(-32768, 32768, size=4801, dtype=np.int16)
    pcm = values.astype("<i2").tobytes()
    chunk = AudioChunk(pcm, 16000, 1)
    np.testing.assert_array_equal(chunk.samples, values)
    np.testing.assert_array_equal(chunk.samples, np.frombuffer(pcm, dtype="<i2"))


def test_empty_chunk_has_no_samples_and_no_duration() -> None:
    chunk = AudioChunk(b"", 24000, 0)
    assert chunk.samples.dtype == np.int16
    assert chunk.samples.shape == (0,)
    assert chunk.duration == 0.0
    assert len(chunk) == 0


def test_chunk_samples_refuses_odd_length() -> None:
    with pytest.raises(ValueError):
        AudioChunk(b"\x00\x00\x01", 24000, 0).samples


@pytest.mark.parametrize("nbytes, rate, seconds", [
    (48000, 24000, 1.0),
    (24000, 24000, 0.5),
    (32000, 16000, 1.0),
    (480, 24000, 0.01),
    (2, 8000, 0.000125),
])
def test_chunk_duration(nbytes: int, rate: int, seconds: float) -> None:
    assert AudioChunk(b"\x00" * nbytes, rate, 0).duration == pytest.approx(seconds, rel=1e-12)


def test_chunk_repr_shows_no_audio_bytes() -> None:
    text = repr(AudioChunk(KNOWN_PCM, 24000, 2))
    assert "index=2" in text
    assert "bytes=12" in text
    assert "24000" in text


# -- WAV ------------------------------------------------------------------------------


def test_write_wav_header_read_by_wave_module(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    write_wav(path, KNOWN_PCM, 24000)
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == 24000
        assert wav.getnframes() == 6
        assert wav.getcomptype() == "NONE"
        assert wav.readframes(wav.getnframes()) == KNOWN_PCM


def test_write_wav_bytes_are_a_canonical_pcm_wav(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    write_wav(path, KNOWN_PCM, 16000)
    raw = path.read_bytes()
    assert len(raw) == 44 + len(KNOWN_PCM)
    assert raw[:44] == (
        b"RIFF" + struct.pack("<I", 36 + len(KNOWN_PCM)) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 16000 * 2, 2, 16)
        + b"data" + struct.pack("<I", len(KNOWN_PCM))
    )
    assert raw[44:] == KNOWN_PCM


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_wav_round_trip(tmp_path: Path, rate: int) -> None:
    pcm = np.arange(-3000, 3000, 7, dtype="<i2").tobytes()
    path = tmp_path / f"round-{rate}.wav"
    write_wav(path, pcm, rate)
    assert read_wav(path) == (pcm, rate)


def test_wav_round_trip_with_str_path(tmp_path: Path) -> None:
    path = str(tmp_path / "as-str.wav")
    write_wav(path, KNOWN_PCM, 24000)
    assert read_wav(path) == (KNOWN_PCM, 24000)


def test_wav_round_trip_of_no_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    write_wav(path, b"", 24000)
    with wave.open(str(path), "rb") as wav:
        assert wav.getnframes() == 0
    assert read_wav(path) == (b"", 24000)


@pytest.mark.parametrize("pcm", [b"\x01", b"\x01\x00\x02", KNOWN_PCM + b"\x00"])
def test_write_wav_refuses_odd_length_pcm_and_writes_nothing(tmp_path: Path, pcm: bytes) -> None:
    path = tmp_path / "odd.wav"
    with pytest.raises(ValueError):
        write_wav(path, pcm, 24000)
    assert not path.exists()


@pytest.mark.parametrize("rate", [0, -24000])
def test_write_wav_refuses_a_rate_that_is_not_positive(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "rate.wav"
    with pytest.raises(ValueError):
        write_wav(path, KNOWN_PCM, rate)
    assert not path.exists()


def test_read_wav_refuses_stereo(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(24000)
        wav.writeframes(KNOWN_PCM)
    with pytest.raises(ValueError):
        read_wav(path)


def test_read_wav_refuses_8_bit(tmp_path: Path) -> None:
    path = tmp_path / "eight.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80\x81\x82")
    with pytest.raises(ValueError):
        read_wav(path)
