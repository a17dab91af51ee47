"""Several texts over one Shunyalabs connection: the connection is kept and reused.

Run it:

    python samples/shunyalabs_multi.py

With SHUNYALABS_API_KEY set it talks to Shunyalabs; otherwise to the bundled offline
server in Shunyalabs' dialect (provider "local" with model "zero-indic"). A
Shunyalabs connection outlives a speech, so later speeches with the same voice and
settings skip the connect and handshake: the first latency is higher than the rest.
Nothing is played; each text is saved as shunyalabs_1.wav, shunyalabs_2.wav, ...
"""

import os

import ttsstream

TEXTS = [
    "Namaste! This is the first sentence.",
    "The second one reuses the same connection.",
    "And so does the third,",
    "and the fourth.",
]

if os.environ.get("SHUNYALABS_API_KEY"):
    client = ttsstream.TTSClient("shunyalabs")                      # voice "Nisha" by default
else:
    client = ttsstream.TTSClient("local", model="zero-indic")      # the offline server, Shunyalabs' dialect

with client:
    for number, text in enumerate(TEXTS, 1):
        speech = client.speak(text)
        speech.save(f"shunyalabs_{number}.wav")
        print(f"text {number}: {speech.duration:5.2f} s of audio, first audio after "
              f"{speech.first_audio_latency * 1000:6.1f} ms  {text!r}")

    if client.provider == "local":
        # The bundled server counts the WebSocket connections it has accepted.
        from ttsstream.server import shared_server

        print(f"{len(TEXTS)} texts over {shared_server().connections} connection(s)")
