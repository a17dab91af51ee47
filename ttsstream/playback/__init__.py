"""ttsstream.playback: local playback of 16-bit mono PCM through PyAudio.

    with AudioPlayer(sample_rate=24000) as player:
        player.feed(pcm)
        player.finish()
        player.wait()

This package owns local playback. It knows nothing of networks: it imports numpy,
``ttsstream.errors``, ``ttsstream.audio`` and ``ttsstream.checks``, and PyAudio only
lazily, inside a function, the first time a device is needed. It must never import the
client, the connection or websocket.

One module per concern:

    player.py   AudioPlayer: the API, the player thread's start, loop and end
    feed.py     FeedQueue: what callers and the player thread share under one lock
    jitter.py   JitterBuffer: the prebuffer decision and the underrun accounting
    stream.py   OutputStream: every PortAudio call (open, write, drain, abort, release)
    devices.py  the lazy PyAudio import, ALSA/JACK log silencing, device listing
"""

from .devices import output_devices
from .player import AudioPlayer

__all__ = ["AudioPlayer", "output_devices"]
