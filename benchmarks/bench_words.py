"""How well word times are measured from audio: the aligner against truth it cannot see.

    python benchmarks/bench_words.py [--quick] [--json FILE]

Audio with known word times comes from synthesisers other than the aligner's
reference: Festival (``apt-get install festival festvox-us-slt-hts festvox-kallpc16k``;
its Word items' ``word_start``/``word_end``) and eSpeak NG with voice variants, rates
(130-200 words per minute) and pitches other than the reference's (its word events).
Hindi has eSpeak only (Festival speaks no Hindi). Each unit's audio is served by the
bundled ``LocalServer`` with an engine that plays that audio: the client receives
PCM and the end marker only, as from the real services; the aligner sees only the
received PCM and the text.

The table: for each source and language, the word onset error (|start - truth|,
median and p95, ms) of the aligned times, of the aligned times without the rule that
moves a start out of a pause, of the estimate (``ttsstream.words.estimate``: the text's
syllables and the pauses in the audio, what a speech falls back to without the aligner)
and of the naive baseline (words spread by character count across the unit); and the
alignment's cost, CPU seconds of the aligning thread per second of audio.

Imports: ttsstream (client, server, words.align, words.estimate), numpy, soxr, the standard library.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import soxr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ttsstream import TTSClient  # noqa: E402
from ttsstream.server import LocalServer  # noqa: E402
from ttsstream.words import align as aligner  # noqa: E402
from ttsstream.words import Token, estimate, tokenize  # noqa: E402

Times = List[Optional[float]]  # None: the source did not say when this word starts

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella. Ask her to bring these things with her from the store.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
    "I heard you the first time, so there is no need to shout at me across the room.",
    "Our meeting starts at noon tomorrow, and everyone should read the report before then.",
    "She sells sea shells by the sea shore, but nobody seems to buy any of them.",
    "Turn left at the second light, then keep going straight until you see the old church.",
    "The library will be closed on Monday while the heating system is being repaired.",
    "If you want to stop the music, just say stop, and I will wait for your next request.",
    "Rivers carry water and sediment from the mountains down to the sea over many years.",
    "My grandmother kept a small garden behind the house, full of roses and tomatoes.",
    "The train was late again, so we waited on the cold platform for almost an hour.",
    "Could you send me the final version of the slides before the meeting starts?",
    "Every winter, thousands of birds fly south, looking for warmer weather and food.",
    "He opened the window, took a deep breath, and started to write the letter.",
    "Nobody expected the quiet student to win the national chess championship.",
    "After dinner, the children played outside until it was too dark to see the ball.",
    "Keep your receipt, because you will need it if you want to return the shoes.",
]
HINDI = [
    "नमस्ते, आप कैसे हैं?",
    "आज मौसम बहुत अच्छा है और हम पार्क में घूमने जाएंगे।",
    "कृपया अपना नाम और पता यहाँ लिखिए।",
    "मेरी ट्रेन सुबह सात बजे दिल्ली से निकलती है।",
    "बच्चे स्कूल के बाद मैदान में क्रिकेट खेलते हैं।",
    "इस किताब में भारत के इतिहास की कई कहानियाँ हैं।",
    "अगर आपको कोई सवाल है तो मुझसे पूछ सकते हैं।",
    "बाजार से दूध, फल और सब्ज़ियाँ ले आओ।",
    "मुझे चाय बहुत पसंद है, लेकिन कॉफी नहीं।",
    "कल शाम को बारिश हुई और सड़कें गीली हो गईं।",
    "हमारे गाँव में एक पुराना मंदिर है।",
    "वह हर रोज़ सुबह योग करता है और फिर दफ्तर जाता है।",
]
# (name, language, eSpeak voice, words per minute, pitch): none is the reference's
# (en-us or hi, 175 wpm, pitch 50).
ESPEAK_SOURCES = [
    ("espeak en-us+f3 140wpm p70", "en", "en-us+f3", 140, 70),
    ("espeak en+m7 195wpm p30", "en", "en+m7", 195, 30),
    ("espeak hi+f2 150wpm p70", "hi", "hi+f2", 150, 70),
    ("espeak hi+m3 190wpm p35", "hi", "hi+m3", 190, 35),
]
FESTIVAL_VOICES = [("festival slt", "voice_cmu_us_slt_arctic_hts"), ("festival kal", "voice_kal_diphone")]
SERVE_RATE = 24000


# -- truth -------------------------------------------------------------------------------


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("uid", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_int64)]


class EspeakTruth:
    """eSpeak NG (the process's ordinary instance, not the aligner's) with word events."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.rate = self.lib.espeak_Initialize(2, 200, os.fsencode(espeakng_loader.get_data_path()), 0x8000)
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self.callback = callback_type(self._receive)
        self.lib.espeak_SetSynthCallback(self.callback)
        self.sink: List[bytes] = []
        self.events: List[Tuple[int, int]] = []

    def _receive(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self.sink.append(ctypes.string_at(wav, 2 * count))
        event = ctypes.cast(events, ctypes.POINTER(_Event))
        index = 0
        while event[index].type != 0:
            if event[index].type == 1:
                self.events.append((event[index].text_position, event[index].sample))
            index += 1
        return 0

    def speak(self, text: str, voice: str, wpm: int, pitch: int) -> Tuple[np.ndarray, int, Optional[Times]]:
        """Samples, their rate and each token's start."""
        assert self.lib.espeak_SetVoiceByName(voice.encode()) == 0, voice
        self.lib.espeak_SetParameter(1, wpm, 0)
        self.lib.espeak_SetParameter(3, pitch, 0)
        self.sink, self.events = [], []
        data = text.encode() + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)
        samples = np.frombuffer(b"".join(self.sink), dtype=np.int16)
        starts: Times = []
        events = list(self.events)
        for _, low, high in tokenize(text):
            # eSpeak reads some short words with the one before ("from the") and reports
            # no event for them: those words are left out of the scores.
            inside = [sample for position, sample in events if low <= position - 1 < high]
            starts.append(inside[0] / self.rate if inside else None)
        return samples, self.rate, starts


def festival(text: str, voice: str) -> Tuple[np.ndarray, int, Optional[Times]]:
    """Festival's audio of ``text`` and each token's start (None if its words differ)."""
    folder = tempfile.mkdtemp(prefix="bench-words-")
    try:
        wav = os.path.join(folder, "out.wav")
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        script = (f"({voice})\n(set! utt (Utterance Text \"{quoted}\"))\n(utt.synth utt)\n"
                  f"(utt.save.wave utt \"{wav}\" 'riff)\n"
                  "(mapcar (lambda (w) (format t \"%s %f\\n\" (item.name w) (item.feat w \"word_start\")))"
                  " (utt.relation.items utt 'Word))\n")
        path = os.path.join(folder, "say.scm")
        with open(path, "w", encoding="utf-8") as file:
            file.write(script)
        out = subprocess.run(["festival", "--batch", path], capture_output=True, text=True, timeout=60, check=True)
        with wave.open(wav) as reader:
            rate = reader.getframerate()
            samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lines = [line.split() for line in out.stdout.splitlines() if line.strip()]
    tokens = tokenize(text)
    if len(lines) != len(tokens):
        return samples, rate, None
    return samples, rate, [float(line[-1]) for line in lines]


# -- serving ------------------------------------------------------------------------------------


class PlayEngine:
    """A server engine that plays the audio it was last given (whatever the text: the
    same text comes from several sources), resampled to the rate asked for."""

    name = "play"

    def __init__(self) -> None:
        self.audio: Tuple[np.ndarray, int] = (np.zeros(0, dtype=np.int16), SERVE_RATE)

    def synthesize(self, text: str, *, voice: Optional[str] = None, language: Optional[str] = None,
                   speed: float = 1.0, sample_rate: int = 24000) -> Iterator[bytes]:
        samples, rate = self.audio
        out = soxr.resample(samples, rate, sample_rate) if rate != sample_rate else samples
        pcm = np.asarray(out, dtype="<i2").tobytes()
        return iter([pcm[index:index + 9600] for index in range(0, len(pcm), 9600)])


# -- measuring ------------------------------------------------------------------------------------


def naive(tokens: Sequence[Token], duration: float) -> Times:
    """Words spread by character count across the unit."""
    weights = [len(token[0]) + 1 for token in tokens]
    total = float(sum(weights))
    starts: List[float] = []
    at = 0.0
    for weight in weights:
        starts.append(at)
        at += duration * weight / total
    return starts


def units(quick: bool) -> Iterator[Tuple[str, str, str, np.ndarray, int, Times]]:
    """(source, language, text, samples, rate, truth starts) for every unit."""
    english = ENGLISH[:3] if quick else ENGLISH
    hindi = HINDI[:3] if quick else HINDI
    truth = EspeakTruth()
    for name, language, voice, wpm, pitch in ESPEAK_SOURCES:
        for text in english if language == "en" else hindi:
            samples, rate, starts = truth.speak(text, voice, wpm, pitch)
            if starts is not None:
                yield name, language, text, samples, rate, starts
    if shutil.which("festival") is None:
        print("festival is not installed: apt-get install -y festival festvox-us-slt-hts festvox-kallpc16k",
              file=sys.stderr)
        return
    for name, voice in FESTIVAL_VOICES[:1] if quick else FESTIVAL_VOICES:
        for text in english:
            samples, rate, starts = festival(text, voice)
            if starts is not None:
                yield name, "en", text, samples, rate, starts


def measure(quick: bool) -> Dict[str, Any]:
    engine = PlayEngine()
    collected = list(units(quick))
    rows: Dict[Tuple[str, str], Dict[str, List[float]]] = {}
    cpu = audio_seconds = 0.0
    server = LocalServer(engine=engine).start()  # type: ignore[arg-type]
    try:
        with TTSClient(provider="eigenai", url=server.url) as client:
            for source, language, text, samples, samples_rate, truth in collected:
                engine.audio = (samples, samples_rate)  # one request at a time
                speech = client.speak(text).wait(timeout=30)
                pcm, rate = speech.pcm, speech.sample_rate
                tokens = tokenize(text)
                began = time.thread_time()
                spans = aligner.align(tokens, text, pcm, rate, language)
                cpu += time.thread_time() - began
                audio_seconds += len(pcm) / 2 / rate
                pause_frames, aligner._PAUSE_FRAMES = aligner._PAUSE_FRAMES, 0
                try:
                    unrefined = aligner.align(tokens, text, pcm, rate, language)
                finally:
                    aligner._PAUSE_FRAMES = pause_frames
                errors = rows.setdefault((source, language), {})
                found = {"aligned": spans, "aligned, no pause rule": unrefined}
                for method, values in found.items():
                    if values is None:
                        errors.setdefault(method + " (failed)", []).append(1.0)
                        continue
                    errors.setdefault(method, []).extend(
                        abs(start - true) * 1000 for (start, _), true in zip(values, truth) if true is not None)
                estimated = estimate(tokens, pcm, rate, text=text)
                errors.setdefault("estimated", []).extend(
                    abs(word[0] - true) * 1000 for word, true in zip(estimated, truth) if true is not None)
                errors.setdefault("naive", []).extend(
                    abs(start - true) * 1000 for start, true in zip(naive(tokens, len(pcm) / 2 / rate), truth)
                    if true is not None)
    finally:
        server.stop()
    for language in sorted({language for _, language in rows}):
        pooled: Dict[str, List[float]] = {}
        for (_, row_language), methods in list(rows.items()):
            if row_language == language:
                for method, errors in methods.items():
                    pooled.setdefault(method, []).extend(errors)
        rows[("all sources", language)] = pooled
    table = []
    for (source, language), methods in rows.items():
        for method, errors in methods.items():
            ordered = sorted(errors)
            p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
            table.append({"source": source, "language": language, "method": method, "words": len(errors),
                          "median_ms": statistics.median(errors), "p95_ms": p95})
    return {"table": table, "cpu_per_audio_second": cpu / max(audio_seconds, 1e-9),
            "audio_seconds": audio_seconds}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="three units per source, one Festival voice")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    result = measure(args.quick)
    print(f"{'source':28} {'lang':4} {'method':24} {'words':>5} {'median ms':>9} {'p95 ms':>7}")
    for row in result["table"]:
        print(f"{row['source']:28} {row['language']:4} {row['method']:24} {row['words']:5d} "
              f"{row['median_ms']:9.1f} {row['p95_ms']:7.1f}")
    print(f"alignment cost: {result['cpu_per_audio_second']:.4f} s CPU per second of audio "
          f"({result['audio_seconds']:.1f} s of audio); target <= 0.1")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
