"""Word times measured from received audio: the aeneas approach, with eSpeak NG as reference.

``align(tokens, text, pcm, sample_rate, language)`` speaks ``text`` again with the
bundled eSpeak NG, which reports where each of its words starts; computes MFCCs of
that reference and of the received audio; warps one onto the other with a banded DTW
(``features.dtw_path``), and carries the reference's word boundaries across the
warping path. A start that lands in (or just before) a pause of 100 ms or more in
the received audio moves to the pause's end: a pause the reference lacks is matched
to the next word's first frame, which would start that word early (in
``benchmarks/bench_words.py`` this takes Festival's p95 from 63-74 ms to 53-55 ms on
texts it was not tuned on; a looser rule, any quiet frame, made starts worse, since
weak onsets such as "s" and "th" read as quiet). It needs only the audio, so it works for any provider, and it works
for every language eSpeak NG speaks (Hindi and the other languages zero-indic speaks
included), which rules out an English-only recogniser.

eSpeak NG keeps its state in globals, and the bundled server (which may run in this
process: ``provider="local"``) drives the library too, holding its own lock for each
clause. Sharing that instance would make the server's synthesis wait for alignments
and would change its selected voice behind its back. So the aligner loads a private
copy of the library (the same file, copied once to a temporary directory, since the
dynamic loader hands out one instance per path) and serialises its own calls with
the lock of that instance: alignments wait for each other only for the reference's
synthesis (about 1 ms per second of speech here); the server never waits for them.
ctypes releases the GIL during ``espeak_Synth``, so the two run in parallel.

Thread: ``align`` may be called from any number of threads at once. It is CPU work
(tens of milliseconds per unit); callers run it on a worker thread, never on a thread
that carries audio.

This module owns the reference synthesis and the mapping of word boundaries. It
imports numpy, the standard library, ``features`` beside it, and ``espeakng_loader``
lazily (on the first alignment); never sockets, the client or the server.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import tempfile
import threading
import unicodedata
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import features

__all__ = ["align", "reference_available"]

log = logging.getLogger(__name__)

TokenLike = Any  # (text, char_start, char_end), or an object with .char_start and .char_end
Span = Tuple[float, float]

# eSpeak NG's C interface (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_BUFFER_MS = 200
_PARAM_RATE = 1
_PARAM_PITCH = 3
_REFERENCE_WPM = 175     # eSpeak's own defaults, set on every call all the same
_REFERENCE_PITCH = 50

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_int64)]


# The eSpeak voice for each language zero-indic speaks (and English), by ISO 639-1 code.
_VOICES = {"en": "en-us", "hi": "hi", "ta": "ta", "te": "te", "bn": "bn", "mr": "mr", "gu": "gu",
           "kn": "kn", "ml": "ml", "pa": "pa"}
# Unicode blocks of the Indic scripts, for a text without a language. Devanagari reads as Hindi.
_SCRIPTS = ((0x0900, 0x097F, "hi"), (0x0980, 0x09FF, "bn"), (0x0A00, 0x0A7F, "pa"), (0x0A80, 0x0AFF, "gu"),
            (0x0B80, 0x0BFF, "ta"), (0x0C00, 0x0C7F, "te"), (0x0C80, 0x0CFF, "kn"), (0x0D00, 0x0D7F, "ml"))
_CONTROL = {code: " " for code in list(range(0x00, 0x09)) + list(range(0x0B, 0x20)) + [0x7F]}

_MIN_SECONDS = 0.2       # less received sound than this cannot be aligned
_BAND_SECONDS = 1.5      # the DTW band: at least this far either side of the diagonal ...
_BAND_FRACTION = 0.25    # ... or this fraction of the longer signal


class _Reference:
    """A private eSpeak NG instance that speaks reference audio with word events.

    Thread: any; ``speak()`` holds the instance's ``lock``.
    """

    _instance: "Optional[_Reference]" = None
    _failed = False
    _instance_lock = threading.Lock()  # guards the two above

    @classmethod
    def get(cls) -> "Optional[_Reference]":
        """The instance, loaded on first use; None if eSpeak NG cannot be loaded."""
        with cls._instance_lock:
            if cls._instance is None and not cls._failed:
                try:
                    cls._instance = cls()
                except (ImportError, OSError, RuntimeError) as exc:
                    cls._failed = True
                    log.warning("word alignment is off, word times will be estimated (%s): "
                                "pip install 'ttsstream[local]' for eSpeak NG", exc)
            return cls._instance

    def __init__(self) -> None:
        import espeakng_loader  # ImportError: not installed

        data = espeakng_loader.get_data_path()
        lib = self._load_private_copy(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, os.fsencode(data), _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with its data in {data} (error {rate})")
        self.lock = threading.Lock()  # one synthesis at a time: the instance's state is global
        self._callback = _SynthCallback(self._receive)  # kept: ctypes frees a collected callback
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self.sample_rate: int = rate
        self._voice: Optional[str] = None
        self._sink: List[bytes] = []
        self._words: List[Tuple[int, int]] = []  # (text position from 1, sample)

    @staticmethod
    def _load_private_copy(path: str) -> Any:
        """The library loaded from a copy at a path of its own, so that it is a second
        instance instead of the server's (the dynamic loader hands out one per path).
        On POSIX the copy is removed at once (the loaded mapping stays valid); on
        Windows, where a loaded DLL cannot be deleted, it stays in the temporary
        directory (one per process)."""
        folder = tempfile.mkdtemp(prefix="ttsstream-align-")
        name, extension = os.path.splitext(os.path.basename(path))
        copy = os.path.join(folder, f"{name}-ttsstream-align{extension}")
        try:
            shutil.copyfile(path, copy)
            return ctypes.CDLL(copy, mode=getattr(os, "RTLD_LOCAL", 0))
        finally:
            if os.name == "posix":
                shutil.rmtree(folder, ignore_errors=True)

    def _receive(self, wav: Any, count: int, events: Any) -> int:
        # Inside espeak_Synth, on the thread holding the lock; exceptions cannot propagate.
        if count > 0:
            self._sink.append(ctypes.string_at(wav, 2 * count))
        if events:
            event = ctypes.cast(events, ctypes.POINTER(_Event))
            index = 0
            while event[index].type != _EVENT_LIST_TERMINATED:
                if event[index].type == _EVENT_WORD:
                    self._words.append((event[index].text_position, event[index].sample))
                index += 1
        return 0

    def speak(self, text: str, voice: str, wpm: int = _REFERENCE_WPM,
              pitch: int = _REFERENCE_PITCH) -> Optional[Tuple[bytes, List[Tuple[int, int]]]]:
        """``text`` spoken in ``voice`` (an eSpeak name, "hi" or "en-us+f3") at ``wpm``
        words per minute and ``pitch`` (0-100): its samples (int16 at ``sample_rate``)
        and its word events as (character position from 1, sample); None if eSpeak
        failed."""
        data = text.translate(_CONTROL).encode("utf-8") + b"\0"
        with self.lock:
            if voice != self._voice:
                self._voice = None
                if self._lib.espeak_SetVoiceByName(voice.encode("ascii")):
                    return None
                self._voice = voice
            self._lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self._sink, self._words = [], []
            try:
                error = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                pcm, words = b"".join(self._sink), self._words
            finally:
                self._sink, self._words = [], []
        return None if error else (pcm, words)


def reference_available() -> bool:
    """Whether eSpeak NG can be loaded for alignment (loads it on first call)."""
    return _Reference.get() is not None


def _voice(language: Optional[str], text: str) -> Optional[str]:
    """The eSpeak voice for ``language`` ("hi", "hi-IN", "en"), or from the text's script."""
    if language:
        return _VOICES.get(language.strip().lower().replace("_", "-").split("-", 1)[0])
    for char in text:
        point = ord(char)
        if point >= 0x0900:
            for low, high, code in _SCRIPTS:
                if low <= point <= high and unicodedata.category(char).startswith("L"):
                    return _VOICES[code]
    return _VOICES["en"]


def align(tokens: Sequence[TokenLike], text: str, pcm: bytes, sample_rate: int,
          language: Optional[str] = None) -> Optional[List[Span]]:
    """Each token's (start, end) in seconds from ``pcm``'s first sample, measured.

    Args:
        tokens: the words of ``text`` in order, each a ``(text, char_start, char_end)``
            tuple or an object with ``char_start`` and ``char_end`` (a ``Token`` of
            ``ttsstream.words``).
        text: the text the audio speaks.
        pcm: the audio received, int16 little-endian mono.
        sample_rate: its rate in Hz.
        language: "en", "hi", "ta", "te", "bn", "mr", "gu", "kn", "ml", "pa" (a region
            such as "hi-IN" is ignored); None reads Indic script in its language and
            anything else as English.

    Returns:
        One (start, end) per token, in order, non-decreasing and within the audio; or
        None when alignment is impossible (eSpeak NG missing, a language it has no
        voice for, no tokens, audio too short or silent), so that the caller estimates.

    Thread: any; several calls may run at once (they take turns on one eSpeak
    instance, about 1 ms per second of speech each). CPU-bound (about 6 ms per second
    of audio): run it on a worker thread, never on one that carries audio.
    """
    if not tokens or sample_rate <= 0 or len(pcm) < 4:
        return None
    voice = _voice(language, text)
    reference = _Reference.get() if voice else None
    if reference is None or voice is None:
        return None
    received = np.frombuffer(pcm[:len(pcm) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    received = features.resample(received, sample_rate)
    received_level = features.loudness(received)
    received_sound = features.voiced(received_level)
    if received_sound.sum() * features.HOP < _MIN_SECONDS * features.RATE or received_level.max() < -60.0:
        return None
    spoken = reference.speak(text, voice)
    if spoken is None or not spoken[1]:
        return None
    reference_pcm, events = spoken
    ref = np.frombuffer(reference_pcm, dtype=np.int16).astype(np.float64) / 32768.0
    ref = features.resample(ref, reference.sample_rate)
    ref_sound = features.voiced(features.loudness(ref))
    if not ref_sound.any():
        return None

    # Warp only the stretch from the first sound to the last in each: leading and
    # trailing silence differ between services and would only bend the path.
    r0, r1 = _sounding(ref_sound)
    s0, s1 = _sounding(received_sound)
    path = features.warp(features.mfcc(ref)[r0:r1], features.mfcc(received)[s0:s1], _BAND_FRACTION,
                         int(_BAND_SECONDS * features.RATE / features.HOP))

    starts, ends = _reference_bounds(tokens, events, reference.sample_rate, ref_sound)
    frame = features.HOP / features.RATE

    def carry(ref_frame: int) -> int:
        return s0 + int(path[min(max(ref_frame - r0, 0), len(path) - 1)])

    pauses = _pauses(received_level, _PAUSE_DB, _PAUSE_FRAMES)
    spans: List[Span] = []
    total = (len(pcm) // 2) / sample_rate  # the audio as received, not as resampled
    last = 0.0
    for start_frame, end_frame in zip(starts, ends):
        start = _out_of_pause(carry(start_frame), pauses) * frame
        end = carry(end_frame) * frame if end_frame < r1 else s1 * frame
        start = min(max(start, last), total)
        end = min(max(end, start), total)
        spans.append((start, end))
        last = start
    return _close_gaps(spans)


def _sounding(sound: "np.ndarray[Any, np.dtype[np.bool_]]") -> Tuple[int, int]:
    """The frames from the first that sounds to just after the last (the whole if none)."""
    where = np.flatnonzero(sound)
    if where.size == 0:
        return 0, int(sound.size)
    return int(where[0]), int(where[-1]) + 1


def _reference_bounds(tokens: Sequence[TokenLike], events: List[Tuple[int, int]], rate: int,
                      sound: "np.ndarray[Any, np.dtype[np.bool_]]") -> Tuple[List[int], List[int]]:
    """Each token's first and last-plus-one frame in the reference.

    A token starts at eSpeak's first word event inside its characters (eSpeak may split
    "1,250" into several words, and may report none for a token it reads with the one
    before); tokens without one are placed between their neighbours by character
    count. A token ends where the next one starts, less the pause between them.
    """
    to_frame = features.RATE / rate / features.HOP
    starts: List[Optional[float]] = []
    cursor = 0
    offsets = [_offsets(token) for token in tokens]
    for low, high in offsets:
        found: Optional[float] = None
        while cursor < len(events) and events[cursor][0] - 1 < high:
            position, sample = events[cursor]
            if found is None and position - 1 >= low:
                found = sample * to_frame
            cursor += 1
        starts.append(found)
    filled = _fill(starts, [low for low, _ in offsets], float(sound.size))
    frames = [int(round(value)) for value in filled]
    ends: List[int] = []
    for index, start in enumerate(frames):
        stop = frames[index + 1] if index + 1 < len(frames) else int(sound.size)
        end = stop
        while end > start + 1 and not sound[end - 1]:
            end -= 1  # back over the pause before the next word
        ends.append(end)
    return frames, ends


def _offsets(token: TokenLike) -> Tuple[int, int]:
    """A token's (char_start, char_end)."""
    if hasattr(token, "char_start"):
        return int(token.char_start), int(token.char_end)
    return int(token[1]), int(token[2])


def _fill(starts: List[Optional[float]], offsets: List[int], total: float) -> List[float]:
    """Missing starts interpolated by character offset between known neighbours."""
    known = [index for index, value in enumerate(starts) if value is not None]
    if not known:
        return [total * index / len(starts) for index in range(len(starts))]
    xs = np.array([offsets[index] for index in known], dtype=np.float64)
    ys = np.array([starts[index] for index in known], dtype=np.float64)
    filled = np.interp(np.array(offsets, dtype=np.float64), xs, ys)
    result = [float(value) if value is not None else float(filled[index]) for index, value in enumerate(starts)]
    return list(np.maximum.accumulate(np.array(result)))


_PAUSE_DB = 40.0     # a pause is this far below the loudest frames ...
_PAUSE_FRAMES = 10   # ... for 100 ms or more
_PAUSE_LEAD = 5      # a start up to 50 ms before one moves too


def _pauses(level: "np.ndarray[Any, np.dtype[np.float64]]", below_peak_db: float,
            frames: int) -> "np.ndarray[Any, np.dtype[np.int64]]":
    """For each frame, the frame where the pause holding it ends (itself if none)."""
    quiet = level < float(np.percentile(level, 99)) - below_peak_db
    ends = np.arange(level.size, dtype=np.int64)
    if frames <= 0:
        return ends
    run_start = None
    for index in range(level.size + 1):
        if index < level.size and quiet[index]:
            if run_start is None:
                run_start = index
        elif run_start is not None:
            if index - run_start >= frames:
                # From a little before it, too: no word starts 50 ms before a long pause.
                ends[max(run_start - _PAUSE_LEAD, 0):index] = index
            run_start = None
    return ends


def _out_of_pause(frame: int, pauses: "np.ndarray[Any, np.dtype[np.int64]]") -> int:
    """``frame``, or the end of the pause it is in: a pause in the received audio that the
    reference lacks is matched to the next word's first frame, which would start it early."""
    return int(pauses[min(frame, pauses.size - 1)]) if pauses.size else frame


def _close_gaps(spans: List[Span]) -> List[Span]:
    """Ends never past the next start."""
    closed = []
    for index, (start, end) in enumerate(spans):
        if index + 1 < len(spans):
            end = min(end, spans[index + 1][0])
        closed.append((start, max(start, end)))
    return closed
