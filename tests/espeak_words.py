"""Speech with its true word onsets, from eSpeak NG's word events (a child process's helper).

Run as ``python espeak_words.py VOICE WPM PITCH OUT.pcm TEXT``: writes the audio (16-bit
mono at eSpeak's rate) to OUT.pcm and prints JSON ``{"rate": ..., "words": [[char, length,
sample], ...]}`` (character offsets into TEXT, 0-based). A child process of its own,
because eSpeak NG is one instance per process and the bundled server's engine owns it
in the test process.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any, List

import espeakng_loader


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_void_p)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_WORD, _TERMINATED = 1, 0


def main(voice: str, wpm: int, pitch: int, out: str, text: str) -> None:
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_Callback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = lib.espeak_Initialize(2, 50, os.fsencode(espeakng_loader.get_data_path()), 0x8000)
    audio: List[bytes] = []
    words: List[List[int]] = []

    def receive(wav: Any, count: int, events: Any) -> int:
        if count > 0:
            audio.append(ctypes.string_at(wav, 2 * count))
        i = 0
        while events[i].type != _TERMINATED:
            if events[i].type == _WORD:
                words.append([events[i].text_position - 1, events[i].length, events[i].sample])
            i += 1
        return 0

    callback = _Callback(receive)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise SystemExit(f"no eSpeak voice {voice!r}")
    lib.espeak_SetParameter(1, wpm, 0)
    lib.espeak_SetParameter(3, pitch, 0)
    data = text.encode("utf-8") + b"\0"
    if lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None) != 0:
        raise SystemExit("espeak_Synth failed")
    with open(out, "wb") as sink:
        sink.write(b"".join(audio))
    print(json.dumps({"rate": rate, "words": words}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
