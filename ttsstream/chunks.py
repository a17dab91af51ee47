"""How a speech's audio becomes the chunks ``on_audio`` receives: as it came, or in an ``AudioFormat``.

Without an output format a chunk is the server's audio as it arrived (whole samples).
With one, the audio goes through the format's ``Converter`` (resampled with state
across chunks, encoded, cut into exact frames): a chunk's ``data`` is the encoded bytes,
its ``pcm`` the 16-bit PCM at the output rate, and where the server's frames began and
ended never shows. The speech keeps, plays and times the server's audio as it came.

Imports: audio, formats, errors.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from .audio import AudioChunk
from .errors import InvalidParameterError
from .formats import AudioFormat, Converter

__all__ = ["Chunker", "check_output"]


def check_output(output: object) -> Optional[AudioFormat]:
    """``output`` if it is an ``AudioFormat`` or None. Raises InvalidParameterError."""
    if output is None or isinstance(output, AudioFormat):
        return output
    raise InvalidParameterError(f"output must be a ttsstream.AudioFormat, e.g. AudioFormat(8000, 'mulaw', 20), "
                                f"got {output!r}", parameter="output")


class Chunker:
    """A speech's chunk maker: numbers its chunks, converting them when it has a format.

    Args:
        output: the format to deliver in, or None for the audio as it came.

    Thread: whoever delivers the speech's audio (under the speech's delivery lock).
    """

    __slots__ = ("output", "_converter", "_rate", "_index")

    def __init__(self, output: Optional[AudioFormat]) -> None:
        self.output = output
        self._converter: Optional[Converter] = None
        self._rate = 0
        self._index = 0

    def make(self, pcm: bytes, sample_rate: int) -> List[AudioChunk]:
        """The chunks ``pcm`` (whole samples at ``sample_rate``) makes now: one as it came,
        or with a format, as many whole frames (or converted pieces) as are ready."""
        if self.output is None:
            chunk = AudioChunk(pcm, sample_rate, self._index)
            self._index += 1
            return [chunk]
        if self._converter is None:  # the rate is the server's, settled by the first audio
            self._converter = self.output.converter(sample_rate)
            self._rate = self.output.rate(sample_rate)
        return self._chunks(self._converter.push(pcm))

    def flush(self) -> List[AudioChunk]:
        """What the format still holds (a last, shorter frame) once the audio has ended."""
        if self._converter is None:
            return []
        return self._chunks(self._converter.flush())

    def _chunks(self, pieces: List[Tuple[bytes, bytes]]) -> List[AudioChunk]:
        chunks = []
        encoding = self.output.encoding if self.output is not None else "pcm16"
        for pcm, data in pieces:
            chunks.append(AudioChunk(pcm, self._rate, self._index, data=data, encoding=encoding))
            self._index += 1
        return chunks
