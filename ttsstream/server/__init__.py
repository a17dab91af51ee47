"""The bundled offline TTS server: EigenAI's and Shunyalabs' dialects over real WebSockets.

``LocalServer`` serves both dialects (and the gateway the official Shunyalabs SDK
speaks) on a thread of its own, with a speech engine from ``engines``: eSpeak NG
(``espeak``, the default) or a deterministic tone per character (``tone``).
``provider="local"`` uses ``shared_server()``; ``ttsstream serve`` uses ``serve_forever()``.

Importing this package needs ``websockets>=13``; ``import ttsstream`` never imports it.
"""

from .app import LocalServer
from .engine import Engine, UnknownLanguage, UnknownVoice
from .engines import ENGINES, get_engine
from .faults import FAULTS
from .running import serve_forever, shared_server, stop_shared_server
from .tone import ToneEngine, tone_pcm
from .transcript import Utterance

__all__ = [
    "LocalServer",
    "Utterance",
    "FAULTS",
    "shared_server",
    "stop_shared_server",
    "serve_forever",
    "Engine",
    "ToneEngine",
    "UnknownVoice",
    "UnknownLanguage",
    "ENGINES",
    "get_engine",
    "tone_pcm",
]
