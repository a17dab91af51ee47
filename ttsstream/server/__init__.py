"""The bundled offline TTS server: EigenAI's and Shunyalabs' dialects over real WebSockets.

``LocalServer`` serves, on a thread of its own,

- EigenAI's ``/api/v1/generate/ws`` (auth message, requests, PCM, ``complete``),
- Shunyalabs' ``/ws?api_key=KEY`` (config, then ``{"input": …}`` frames), and
- Shunyalabs' gateway ``/ws/tts`` (``Authorization: Bearer``; what the official SDK
  speaks; also recognised on ``/ws`` by the shape of its first message),

with audio from a speech engine: eSpeak NG (``espeak``, the default) or a
deterministic tone per character (``tone``). It records every utterance it serves,
can inject faults (``FAULTS``, ``parse_fault``, ``FaultMix``) so that clients can be tested against
a bad server, can pace audio at a multiple of real time, and can serve ``wss://``. To a
client that asks in its handshake (``X-TTSStream-Extensions: words``) it also says when
each word is spoken, in a ``ttsstream.words`` message before each end message (see
``speaker`` and ``ttsstream.protocols.extensions``); other clients see no difference.
``provider="local"`` uses ``shared_server()``; ``ttsstream serve`` uses ``serve_forever()``.

One module per concern; each imports only modules below it in this list:

- ``running``: the process's shared server and ``serve_forever``;
- ``app``: ``LocalServer``: thread, loop, socket, start/stop, handshake;
- ``handlers``: one handler per endpoint;
- ``speaker``: one utterance on a connection: frames, metadata, end and error messages;
- ``faults``: ``FAULTS``, their table, their specs and their injection (a package);
- ``security``: key checks, exposure beyond loopback, TLS and the size limits;
- ``synthesis``: engine worker threads and real-time pacing;
- ``transcript``: ``Utterance`` and the server's record;
- ``engines`` (the registry), ``tone``, ``espeak``, ``wordtimes`` (which spans are words,
  and when an engine's marks and audio say each was spoken) and ``engine`` (the interface).

The server speaks the dialects from ``ttsstream.protocols`` and never imports the
client side of the package. Importing it needs ``websockets>=13``; ``import
ttsstream`` never imports it.
"""

import importlib

# Checked once, here, before any module that imports websockets.
try:
    importlib.import_module("websockets.asyncio.server")
except ImportError as exc:  # not installed, or websockets < 13 (which has no asyncio.server)
    raise ImportError(
        "ttsstream's bundled server needs websockets>=13: pip install 'ttsstream[local]' "
        "(or pip install -U 'websockets>=13')", name="websockets"
    ) from exc

from .app import LocalServer
from .engine import Engine, UnknownLanguage, UnknownVoice
from .engines import ENGINES, get_engine
from .faults import FAULTS, FaultMix, FaultSpec, describe_faults, parse_fault
from .running import serve_forever, shared_server, stop_shared_server
from .tone import ToneEngine, tone_pcm
from .transcript import Utterance

__all__ = [
    "LocalServer",
    "Utterance",
    "FAULTS",
    "FaultSpec",
    "FaultMix",
    "parse_fault",
    "describe_faults",
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
