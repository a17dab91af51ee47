"""A speech's notebook view: a light page (compressed audio and a waveform), its figures.

Real speeches from the bundled server over loopback, real libsndfile encoding, and the
embedded audio decoded back with ``formats.files.read_audio``. The view without
soundfile runs in a subprocess where ``import soundfile`` fails, as on a machine
without the formats extra: nothing is mocked.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
import wave
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from ttsstream import InvalidParameterError, TTSClient
from ttsstream.formats import AudioFileWriter, read_audio
from ttsstream.notebook import THUMB_HEIGHT, THUMB_WIDTH, rendition, waveform_svg
from ttsstream.server import tone_pcm

# 234 characters at the tone engine's 50 ms each: 11.7 s, the length the issue measured.
LONG = ("A notebook keeps every cell's output, so a page with a few long speeches in it "
        "should weigh what the audio needs to be heard, not what sixteen-bit samples weigh, "
        "and this one sentence is as long as eleven point seven seconds of speech")
EXTENSIONS = {"audio/ogg": ".opus", "audio/mpeg": ".mp3", "audio/wav": ".wav"}
SVG = "{http://www.w3.org/2000/svg}"


def embedded(page: str) -> Tuple[str, bytes]:
    """The MIME type and bytes of the audio a page embeds."""
    match = re.search(r'<audio controls src="data:(audio/[a-z]+);base64,([A-Za-z0-9+/=]+)"', page)
    assert match, page[:300]
    return match.group(1), base64.b64decode(match.group(2))


def decoded(mime: str, data: bytes, folder: Path) -> Tuple[np.ndarray, int]:
    path = folder / f"embedded{EXTENSIONS[mime]}"
    path.write_bytes(data)
    return read_audio(path)


def loudness(samples: np.ndarray) -> np.ndarray:
    """RMS of each 50 ms (one tone-engine character)."""
    return np.sqrt(np.mean(samples.astype(np.float64).reshape(-1, 1200) ** 2, axis=1))


def test_a_long_speech_weighs_tens_of_kb_and_its_audio_decodes_to_its_length(server, tmp_path: Path) -> None:
    assert len(LONG) == 234
    with TTSClient(url=server.eigenai_url) as client:
        speech = client.speak(LONG)
    assert speech.duration == pytest.approx(11.7)
    page = speech._repr_html_()
    # The whole WAV was 750 KB of base64 here: now Opus at 24 kbit/s and a thumbnail.
    assert len(page.encode("utf-8")) < 60_000, len(page)
    mime, data = embedded(page)
    assert mime == "audio/ogg" and data[:4] == b"OggS" and b"OpusHead" in data[:100]
    samples, rate = decoded(mime, data, tmp_path)
    assert rate == 24000
    assert len(samples) / rate == pytest.approx(speech.duration, abs=0.08)  # the codec's padding at most
    # It is the speech, not silence of the right length: the loud stretches line up.
    source = np.frombuffer(speech.pcm, dtype="<i2")
    n = min(len(source), len(samples)) // 1200 * 1200
    assert np.corrcoef(loudness(source[:n]), loudness(samples[:n]))[0, 1] > 0.9
    assert "Opus 24 kbit/s" in page
    assert f"{speech.duration:.2f} s at 24000 Hz" in page and f"{speech.first_audio_latency * 1000:.0f} ms" in page
    assert "state</th><td style='text-align:left'>done" in page


def test_the_waveform_thumbnail_is_well_formed_svg_that_follows_the_audio() -> None:
    quiet = bytes(2 * 24000)  # a second of silence, then a second at full scale
    loud = (np.sin(np.arange(24000) * 2 * np.pi * 440 / 24000) * 32767).astype("<i2").tobytes()
    svg = ET.fromstring(waveform_svg(quiet + loud))
    assert svg.tag == f"{SVG}svg" and svg.get("viewBox") == f"0 0 {THUMB_WIDTH} {THUMB_HEIGHT}"
    line = svg.find(f"{SVG}polyline")
    assert line is not None
    points = [tuple(float(v) for v in point.split(",")) for point in line.get("points", "").split()]
    assert len(points) == 2 * THUMB_WIDTH  # each column's highest and lowest
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and 0 <= xs[0] and xs[-1] <= THUMB_WIDTH
    first, second = points[:THUMB_WIDTH], points[THUMB_WIDTH:]
    assert {y for _, y in first} == {THUMB_HEIGHT / 2}  # silence: the middle line
    assert min(y for _, y in second) <= 0.5 and max(y for _, y in second) >= THUMB_HEIGHT - 0.5
    assert len(waveform_svg(quiet * 60)) < 6000  # a minute weighs what a second does
    few = ET.fromstring(waveform_svg(loud[:20]))  # fewer samples than columns: one column each
    assert len(few.find(f"{SVG}polyline").get("points", "").split()) == 20
    assert ET.fromstring(waveform_svg(b"")).find(f"{SVG}polyline").get("points") == ""  # nothing yet: no line


def test_a_moment_of_audio_stays_wav_where_that_is_smaller() -> None:
    pcm = tone_pcm("a")[:480]  # 10 ms: the codec's headers alone weigh more
    mime, data, what = rendition(pcm, 24000)
    assert (mime, what) == ("audio/wav", "WAV")
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.readframes(wav.getnframes()) == pcm


def test_a_speech_that_kept_no_audio_still_shows_its_figures(server) -> None:
    with TTSClient(url=server.eigenai_url) as client:
        page = client.speak("Kept nothing.", keep_audio=False)._repr_html_()
    assert "<audio" not in page and "<svg" not in page and "no audio kept" in page
    assert "duration" in page and "first audio after" in page


NO_SOUNDFILE = """
import sys
sys.modules["soundfile"] = None  # import soundfile raises ImportError, as where it is not installed
from ttsstream import TTSClient
with TTSClient(url=sys.argv[1]) as client:
    sys.stdout.write(client.speak(sys.argv[2])._repr_html_())
"""


def test_without_soundfile_the_view_embeds_the_wav(server) -> None:
    text = "No codec here."
    done = subprocess.run([sys.executable, "-c", NO_SOUNDFILE, server.eigenai_url, text],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    mime, data = embedded(done.stdout)
    assert mime == "audio/wav"
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getframerate() == 24000 and wav.readframes(wav.getnframes()) == tone_pcm(text)
    assert "<svg" in done.stdout and "WAV" in done.stdout


def test_a_bitrate_is_for_opus_and_mp3_only_and_sets_their_size() -> None:
    pcm = tone_pcm(LONG)
    sizes = {}
    for format in ("opus", "mp3"):
        for bitrate in (16000, 64000):
            out = io.BytesIO()
            with AudioFileWriter(out, format, 24000, bitrate=bitrate) as writer:
                writer.write(pcm)
            sizes[format, bitrate] = len(out.getvalue()) * 8 / 11.7
    for format in ("opus", "mp3"):
        assert sizes[format, 16000] == pytest.approx(16000, rel=0.25), sizes
        assert sizes[format, 64000] == pytest.approx(64000, rel=0.25), sizes
    for format, bitrate in (("flac", 24000), ("wav", 24000), ("opus", 0), ("mp3", 24.5)):
        with pytest.raises(InvalidParameterError, match="bitrate"):
            AudioFileWriter(io.BytesIO(), format, 24000, bitrate=bitrate)  # type: ignore[arg-type]
