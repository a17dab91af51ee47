"""Quick start: speak one sentence and hear it as it streams in.

Run it:

    python samples/quickstart.py                     # the built-in sentence
    python samples/quickstart.py "Any text you like."

With no API key in the environment it uses the bundled offline voice (provider
"local": no key, no network). Set EIGENAI_API_KEY or SHUNYALABS_API_KEY to use that
service instead. The audio is also saved to quickstart.wav; where nothing can play
(no sound card, a CI machine) it says so and only writes the file.
"""

import sys

import ttsstream

text = sys.argv[1] if len(sys.argv) > 1 else "Hello from ttsstream! This sentence is played while it streams in."

try:
    # One call: connect, stream, play as the audio arrives; returns once it has been heard.
    speech = ttsstream.speak(text, play=True)
    print(f"played {speech.duration:.2f} s of audio")
except ttsstream.PlaybackError as error:
    print(f"no audio device, so nothing played: {error}")
    speech = ttsstream.speak(text)

speech.save("quickstart.wav")
print(f"wrote quickstart.wav ({speech.duration:.2f} s); first audio came {speech.first_audio_latency * 1000:.0f} ms "
      f"after the call")
