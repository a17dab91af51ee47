"""ttsstream: streaming text-to-speech from WebSocket TTS services, for plain threaded Python.

    import ttsstream

    with ttsstream.TTSClient(provider="local") as client:
        speech = client.speak("Hello, streaming audio world!", on_audio=lambda chunk: ...)
        speech.save("hello.wav")

    ttsstream.speak("One line in a plain script.", play=True)   # on a default client

Importing this package starts no thread and imports neither PyAudio nor the bundled
server's dependencies.
"""

import logging

from .api import choose_provider, speak
from .audio import AudioChunk
from .batch import BatchResult, batch
from .cache import PhraseCache
from .client import Speech, TTSClient
from .formats import AudioFormat  # soxr and soundfile are imported only when first needed
from .errors import (
    AuthenticationError,
    Cancelled,
    ConnectionFailed,
    InvalidParameterError,
    PlaybackError,
    ProtocolError,
    RateLimited,
    ServerError,
    SynthesisTimeout,
    TTSError,
)
from .playback import AudioPlayer  # PyAudio itself is imported only when playback starts
from .protocols.voices import Voice, voices
from .provider import Provider
from .retry import Timeouts
from .segmenter import Segmenter
from .speech import Segment
from .streaming import StreamSpeech
from .words import Word

__version__ = "0.1.0"

__all__ = [
    "speak",
    "choose_provider",
    "voices",
    "Voice",
    "TTSClient",
    "Provider",
    "PhraseCache",
    "Speech",
    "AudioChunk",
    "AudioFormat",
    "AudioPlayer",
    "Timeouts",
    "Segment",
    "Word",
    "Segmenter",
    "batch",
    "BatchResult",
    "StreamSpeech",
    "TTSError",
    "AuthenticationError",
    "ConnectionFailed",
    "ProtocolError",
    "ServerError",
    "RateLimited",
    "SynthesisTimeout",
    "InvalidParameterError",
    "PlaybackError",
    "Cancelled",
    "__version__",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
