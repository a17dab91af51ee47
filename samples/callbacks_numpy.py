"""Callbacks into numpy: measure the level of every chunk as it arrives, then save a WAV.

Run it:

    python samples/callbacks_numpy.py                 # writes callbacks.wav
    python samples/callbacks_numpy.py out.wav --text "Something else to say."

Each chunk's samples come as a numpy int16 array (chunk.samples); this prints its RMS
level in dBFS (0 dB is a full-scale square wave; silence is -inf). Nothing is played,
so it runs the same on a machine without a sound card. The bundled offline voice is
used unless EIGENAI_API_KEY or SHUNYALABS_API_KEY is set.
"""

import argparse
import math

import numpy as np

import ttsstream
from ttsstream import choose_provider

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("path", nargs="?", default="callbacks.wav", help="where to write the WAV (default callbacks.wav)")
parser.add_argument("--text", default="Every chunk of this sentence is measured the moment it arrives.")
args = parser.parse_args()

levels = []  # one dBFS value per chunk


def rms_dbfs(samples: np.ndarray) -> float:
    """The RMS level of int16 samples in dB relative to full scale."""
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) if samples.size else 0.0
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


def on_audio(chunk: ttsstream.AudioChunk) -> None:
    # Runs on the connection's reader thread (dispatch="thread", the default): keep it quick.
    level = rms_dbfs(chunk.samples)
    levels.append(level)
    print(f"chunk {chunk.index:3d}: {len(chunk.samples):6d} samples at {chunk.sample_rate} Hz, {level:6.1f} dBFS")


with ttsstream.TTSClient(choose_provider()) as client:
    speech = client.speak(args.text, on_audio=on_audio)  # blocks until the last chunk has arrived

speech.save(args.path)
audible = [level for level in levels if level > -math.inf]
loudest = f"{max(audible):.1f} dBFS" if audible else "silent"
print(f"{len(levels)} chunks, {speech.duration:.2f} s of audio, loudest chunk {loudest}; wrote {args.path}")
