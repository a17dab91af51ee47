"""How a speech shows itself: its state in words, and its view in a notebook.

A notebook keeps what a cell displays, so the audio embedded in a speech's view is the
weight of the saved notebook: as 16-bit WAV that is 48 KB a second at 24 kHz (750 KB
for 11.7 s in base64). The view embeds Opus in OGG at ``SPEECH_BITRATE`` instead (or
MP3 where this libsndfile has no Opus), about 3 KB a second, unless the WAV is smaller
(a moment of audio, where the codec's headers weigh more); without soundfile it embeds
the WAV. Beside the player, a waveform thumbnail: an inline SVG polyline through each
column's lowest and highest sample. Building the view never raises for want of a codec.

Imports: ``audio`` and ``formats`` (which loads soundfile only when asked to encode),
numpy and the standard library. It reads a speech's public properties and its state;
it never changes it.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from typing import TYPE_CHECKING, List, Optional, Tuple

import numpy as np

from .audio import pcm_to_array, write_wav
from .formats.files import AudioFileWriter

if TYPE_CHECKING:
    from .speech import Speech

__all__ = ["status", "speech_html", "rendition", "waveform_svg", "SPEECH_BITRATE"]

logger = logging.getLogger(__name__)

# 24 kbit/s: Opus's range for full, clear speech at 24 kHz (its authors place
# super-wideband speech at 20-28 kbit/s); MPEG-2 layer III at 24 kHz takes it too.
SPEECH_BITRATE = 24000
# The compressed renditions, best first: (format, MIME type).
_CODECS = (("opus", "audio/ogg"), ("mp3", "audio/mpeg"))
THUMB_WIDTH = 240  # columns of the waveform thumbnail, in CSS pixels
THUMB_HEIGHT = 40


def status(speech: "Speech", detail: bool = False) -> str:
    """running, playing, done, or failed: ErrorName (with its message if ``detail``)."""
    if not speech._final:
        return "running"
    if not speech._done.is_set():
        return "playing"
    error = speech._error
    if error is None:
        return "done"
    name = type(error).__name__
    return f"failed: {name}: {error}" if detail else f"failed: {name}"


def rendition(pcm: bytes, sample_rate: int) -> Tuple[str, bytes, str]:
    """The audio to embed: Opus (or MP3) at ``SPEECH_BITRATE``, or the WAV where that is smaller.

    Args:
        pcm: 16-bit mono little-endian PCM.
        sample_rate: its rate.

    Returns:
        ``(MIME type, file bytes, what it is in words)``; the WAV when no codec is at hand
        (soundfile, or soxr for an odd rate, missing), never an error.
    """
    wav = io.BytesIO()
    write_wav(wav, pcm, sample_rate)
    best = ("audio/wav", wav.getvalue(), "WAV")
    for format, mime in _CODECS:
        encoded = _encoded(pcm, sample_rate, format)
        if encoded is not None:
            if len(encoded) < len(best[1]):
                best = (mime, encoded, f"{'Opus' if format == 'opus' else 'MP3'} {SPEECH_BITRATE // 1000} kbit/s")
            break
    return best


def _encoded(pcm: bytes, sample_rate: int, format: str) -> Optional[bytes]:
    """``pcm`` as a ``format`` file, or None where this machine cannot write one."""
    try:
        out = io.BytesIO()
        with AudioFileWriter(out, format, sample_rate, bitrate=SPEECH_BITRATE) as writer:
            writer.write(pcm)
        return out.getvalue()
    except Exception as exc:  # noqa: BLE001 -- a notebook's view never raises: it shows the WAV instead
        logger.debug("no %s rendition for the notebook view: %s", format, exc)
        return None


def waveform_svg(pcm: bytes, width: int = THUMB_WIDTH, height: int = THUMB_HEIGHT) -> str:
    """A waveform thumbnail of 16-bit PCM: an inline SVG, a few KB whatever the length.

    The polyline goes through each column's highest then lowest sample, at full scale
    (a quiet speech looks quiet; a clipped one touches the edges).

    Args:
        pcm: 16-bit mono little-endian PCM (none: an empty thumbnail).
        width: columns (CSS pixels).
        height: CSS pixels; full scale spans it.

    Returns:
        An ``<svg>`` element, well-formed XML.
    """
    samples = pcm_to_array(pcm[:len(pcm) - len(pcm) % 2])
    columns = min(width, len(samples))
    points: List[str] = []
    if columns:
        starts = (np.arange(columns) * len(samples)) // columns  # strictly increasing: len >= columns
        highs = np.maximum.reduceat(samples, starts).astype(np.int32).tolist()
        lows = np.minimum.reduceat(samples, starts).astype(np.int32).tolist()
    else:
        highs = lows = []
    half = height / 2
    x = np.arange(columns) * (width / max(1, columns))
    for column, high, low in zip(x.tolist(), highs, lows):
        points.append(f"{column:.0f},{half - high * half / 32768:.1f}")
        points.append(f"{column:.0f},{half - low * half / 32768:.1f}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="waveform">'
            f'<polyline fill="none" stroke="currentColor" stroke-width="1" points="{" ".join(points)}"/></svg>')


def speech_html(speech: "Speech") -> str:
    """A notebook's view of a speech: an audio player, its waveform and its figures.

    A running speech shows what has arrived so far; display it again (or
    ``speech.wait()`` first) for the whole of it.
    """
    latency = speech.first_audio_latency
    rows = [("text", speech.text if len(speech.text) <= 200 else speech.text[:200] + "…"),
            ("state", status(speech, detail=True)),
            ("duration", f"{speech.duration:.2f} s at {speech.sample_rate} Hz"),
            ("first audio after", "-" if latency is None else f"{latency * 1000:.0f} ms")]
    if speech._turn is not None:
        rows.append(("playback underruns", f"{speech.underruns} ({speech.underrun_ms:.0f} ms)"))
    if speech._keep_audio and speech._bytes:
        pcm = speech.pcm
        mime, data, what = rendition(pcm, speech.sample_rate)
        rows.append(("in this page", f"{what}, {len(data) / 1000:.1f} KB"))
        encoded = base64.b64encode(data).decode("ascii")
        player = (f'<audio controls src="data:{mime};base64,{encoded}"></audio>'
                  f"{waveform_svg(pcm)}")
    else:
        player = "<em>no audio kept</em>" if not speech._keep_audio else "<em>no audio yet</em>"
    table = "".join(f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
                    f"<td style='text-align:left'>{html.escape(value)}</td></tr>" for name, value in rows)
    return (f"<div class='ttsstream-speech'><div style='display:flex;align-items:center;gap:8px'>{player}</div>"
            f"<table>{table}</table></div>")
