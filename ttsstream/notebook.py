"""How a speech shows itself: its state in words, and its view in a notebook.

Imports: audio. It reads a speech's public properties and its state; it never changes it.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

from .audio import write_wav

if TYPE_CHECKING:
    from .speech import Speech

__all__ = ["status", "speech_html"]


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


def speech_html(speech: "Speech") -> str:
    """A notebook's view of a speech: an audio player and its figures.

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
    table = "".join(f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
                    f"<td style='text-align:left'>{html.escape(value)}</td></tr>" for name, value in rows)
    if speech._keep_audio and speech._bytes:
        wav = io.BytesIO()
        write_wav(wav, speech.pcm, speech.sample_rate)
        data = base64.b64encode(wav.getvalue()).decode("ascii")
        player = f'<audio controls src="data:audio/wav;base64,{data}"></audio>'
    else:
        player = "<em>no audio kept</em>" if not speech._keep_audio else "<em>no audio yet</em>"
    return f"<div class='ttsstream-speech'>{player}<table>{table}</table></div>"
