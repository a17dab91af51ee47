"""Output formats: G.711, streaming resampling, exact framing, ``AudioFormat`` and audio files.

A leaf package over numpy, soxr and soundfile (those two imported lazily, when first
needed): ``g711.py`` (μ-law and A-law), ``resample.py`` (``StreamResampler``),
``framer.py`` (``Framer``), ``spec.py`` (``AudioFormat`` and its ``Converter``) and
``files.py`` (file formats, ``AudioFileWriter``, ``write_audio``, ``read_audio``).
Imports ``ttsstream.errors``, ``ttsstream.checks`` and ``ttsstream.audio``; never the
client, the speech, a connection or playback (playback may import this package).
"""

from .files import FILE_FORMATS, AudioFileWriter, check_format, read_audio, write_audio
from .framer import Framer
from .g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from .resample import StreamResampler
from .spec import ENCODINGS, AudioFormat, Converter

__all__ = ["AudioFormat", "Converter", "ENCODINGS", "StreamResampler", "Framer", "FILE_FORMATS", "check_format",
           "AudioFileWriter", "write_audio", "read_audio", "mulaw_encode", "mulaw_decode", "alaw_encode",
           "alaw_decode"]
