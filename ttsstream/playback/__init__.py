"""ttsstream.playback: local playback of 16-bit mono PCM through PyAudio.

    with AudioPlayer(sample_rate=24000) as player:
        player.feed(pcm)
        player.finish()
        player.wait()

This package owns local playback. It knows nothing of networks: it imports numpy,
``ttsstream.errors``, ``ttsstream.audio`` and ``ttsstream.checks``, and PyAudio and
soxr only lazily, inside a function, the first time a device (or a resampler) is
needed. It must never import the client, the connection or websocket.

One module per concern:

    player.py   AudioPlayer: the API, starting (and after a failure restarting) the thread
    worker.py   PlayerThread: what the player thread does with each item, fades included
    feed.py     FeedQueue: what callers and the player thread share under one lock
    items.py    the items besides audio: segment ends, rate changes, stops, pauses
    jitter.py   JitterBuffer: the prebuffer decision and the underrun accounting
    dsp.py      Resampler (soxr), Fader, volume: the samples on their way to the device
    stream.py   OutputStream: every PortAudio call (open, write, drain, abort, release)
    ring.py     CallbackRing: what a callback-mode (JACK) stream pulls
    guard.py    bounded(): PortAudio calls that may hang, on an abandonable helper thread
    devices.py  the lazy PyAudio import, ALSA/JACK log silencing, device listing
"""

from .devices import output_devices
from .player import AudioPlayer

__all__ = ["AudioPlayer", "output_devices"]
