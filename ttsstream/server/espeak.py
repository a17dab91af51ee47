"""The ``espeak`` engine: real speech from eSpeak NG, clause by clause, resampled with soxr.

eSpeak NG's shared library and its voice data come from the ``espeakng-loader`` wheel
and are driven through ctypes in synchronous mode: ``espeak_Synth`` runs on the calling
thread and hands samples to a callback before it returns. The library is one global
instance per process, so every call into it holds ``_Espeak.lock``, and only for one
clause at a time: two utterances interleave clause by clause instead of one waiting for
the other's whole text. An utterance's first clause is spoken (and yielded) before its
second is even started, which is what makes the first audio quick.

Word times are exact: eSpeak reports where each of its words begins, to the sample
(``espeak_EVENT_WORD``'s ``sample``, counted in the clause's own audio at its native
rate; its ``text_position`` counts characters, not UTF-8 bytes, from 1). They are mapped
onto the words of the request's text (``wordtimes``) and onto the resampled audio,
which soxr keeps in step with its input (no added delay), and the engine returns them
with its audio as a ``TimedPieces``.

This module owns the process's eSpeak NG instance, the mapping from the voice and
language names the real services use to eSpeak voices, clause splitting and
resampling. It starts no thread, imports only ``engine`` (the interface) and
``wordtimes`` from the package, and loads ``espeakng_loader``, ``soxr`` and the library
only when an ``EspeakEngine`` is made.
"""

from __future__ import annotations

import bisect
import ctypes
import os
import re
import threading
import unicodedata
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from .engine import Engine, SpokenWord, TimedPieces, UnknownLanguage, UnknownVoice, check_speed_and_rate
from .wordtimes import Span, time_words, word_spans

__all__ = ["EspeakEngine", "VOICES", "LANGUAGES", "DEFAULT_LANGUAGE"]

# -- what a voice name and a language name mean ---------------------------------------


class _Variant(NamedTuple):
    variant: Optional[str]  # an eSpeak voice variant (espeak-ng-data/voices/!v), or None
    pitch: int              # eSpeak's base pitch parameter, 0..100 (50 is the variant's own)


# The names users of the real services know, lower-cased, each with an eSpeak variant of
# the same sex and a pitch, no two alike. The variants are those a speech recogniser
# understands best (the services' default voices, Linda, Vivian and Nisha, get the
# clearest). EigenAI's higgs2p5 voices and qwen3-tts's preset speakers first, then
# Shunyalabs' zero-indic voices (protocols.shunyalabs.VOICES).
VOICES: Dict[str, Tuple[str, _Variant]] = {name.lower(): (name, _Variant(variant, pitch)) for name, variant, pitch in (
    ("Linda", "f2", 50), ("Jack", "m6", 40),
    ("Vivian", "f5", 50), ("Serena", "f3", 58), ("Ono_Anna", "f1", 50), ("Sohee", "f5", 62),
    ("Uncle_Fu", "Diogo", 40), ("Dylan", "miguel", 50), ("Eric", "michel", 50), ("Ryan", "Henrique", 50),
    ("Aiden", "Hugo", 50),
    ("Nisha", "f2", 60), ("Priya", "f5", 56), ("Kavya", "f3", 62),
    ("Varun", "m5", 50), ("Rajesh", "miguel", 42), ("Arjun", "michel", 45),
)}
_DEFAULT_VARIANT = _Variant(None, 50)  # no voice asked for (EigenAI's chatterbox has none)

# English unless told otherwise: the services' example texts are English, and their
# preset voices are American.
DEFAULT_LANGUAGE = "en-us"

# Language names as the services' users write them (qwen3-tts's "English", Shunyalabs'
# LANGUAGES), lower-cased, to eSpeak language tags. Codes eSpeak knows itself ("fr",
# "en-gb", "hi") are found in its voice list; these are the names and the codes it
# spells differently.
LANGUAGES: Dict[str, str] = {
    "english": "en-us", "en": "en-us",
    "hindi": "hi", "tamil": "ta", "telugu": "te", "bengali": "bn", "bangla": "bn", "marathi": "mr",
    "gujarati": "gu", "kannada": "kn", "malayalam": "ml", "punjabi": "pa",
    "chinese": "cmn", "mandarin": "cmn", "zh-cn": "cmn", "cantonese": "yue", "japanese": "ja",
    "korean": "ko", "german": "de", "french": "fr", "russian": "ru", "portuguese": "pt",
    "spanish": "es", "italian": "it", "arabic": "ar", "dutch": "nl", "turkish": "tr",
}
_AUTO = frozenset({"", "auto"})  # qwen3-tts's "Auto": decide from the text

# Unicode blocks of the Indic scripts, for a text sent without a language: Shunyalabs'
# users send Hindi or Tamil text with just a voice. Devanagari reads as Hindi.
_SCRIPTS = (
    (0x0900, 0x097F, "hi"), (0x0980, 0x09FF, "bn"), (0x0A00, 0x0A7F, "pa"), (0x0A80, 0x0AFF, "gu"),
    (0x0B80, 0x0BFF, "ta"), (0x0C00, 0x0C7F, "te"), (0x0C80, 0x0CFF, "kn"), (0x0D00, 0x0D7F, "ml"),
)

# -- eSpeak NG's C interface (speak_lib.h) ----------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000   # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000               # the pause a clause's punctuation asks for, also at its end
_PARAM_RATE = 1
_PARAM_PITCH = 3
_BUFFER_MS = 50                  # how much audio eSpeak hands the callback at a time

_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT``: a list of them, ended by type 0, comes with each callback."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


class _VoiceStruct(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


# Words per minute: eSpeak's normal rate is speed 1.0. Below 80 it speaks no slower; above
# 450 it speeds up with sonic, and past 1000 words blur into noise.
_WPM_NORMAL = 175
_WPM_RANGE = (80, 1000)

# A clause ends at punctuation followed by a space (so "3.14" and "1,000" stay whole),
# including a closing quote or bracket, or at a line break. Devanagari's danda counts.
_CLAUSE_END = re.compile(r"[.,;:!?\u2026\u0964\u0965]+[\"'\u201d\u2019)\]]*\s+|\n\s*")
# A clause longer than this is cut at a space: it bounds how long one clause holds the
# library (and so how long another utterance waits for it).
_MAX_CLAUSE = 120
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # eSpeak stops at NUL; the rest is noise


class _Espeak:
    """The process's one eSpeak NG instance, initialised once and shared by all engines.

    Thread: any; ``speak()`` holds ``lock`` while it runs.
    """

    lock = threading.Lock()  # eSpeak NG's state is global: one clause at a time, process-wide
    _instance: "Optional[_Espeak]" = None
    _instance_lock = threading.Lock()

    @classmethod
    def get(cls) -> "_Espeak":
        """The instance, loading and initialising the library on first use.

        Raises:
            ImportError: espeakng-loader is not installed.
            RuntimeError: the library could not be loaded or initialised.
        """
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise ImportError(f"the espeak engine needs {exc.name}: pip install 'ttsstream[local]'",
                              name=exc.name) from exc
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise RuntimeError(f"could not load eSpeak NG from espeakng-loader: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
        with self.lock:
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, os.fsencode(data),
                                         _INITIALIZE_DONT_EXIT)
            if rate <= 0:
                raise RuntimeError(f"eSpeak NG failed to initialise with its data in {data} (error {rate})")
            # Kept on self: ctypes frees a callback whose Python object is collected.
            self._callback = _SynthCallback(self._receive)
            lib.espeak_SetSynthCallback(self._callback)
            self.languages = _list_languages(lib)
        self._lib = lib
        self.sample_rate: int = rate
        # Written by the callback, inside speak(), under the lock.
        self._sink: List[bytes] = []
        self._marks: List[Tuple[int, int]] = []
        self._voice: Optional[bytes] = None

    def _receive(self, wav: Any, count: int, events: Any) -> int:
        # Runs inside espeak_Synth, on the thread that holds the lock: keep it minimal,
        # since an exception here cannot propagate. Returning 0 means "go on".
        if count > 0:
            self._sink.append(ctypes.string_at(wav, 2 * count))
        index = 0
        while events and events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_WORD:
                self._marks.append((event.text_position - 1, event.sample))
            index += 1
        return 0

    def speak(self, clause: str, voice: bytes, wpm: int, pitch: int,
              end_pause: bool) -> Tuple[bytes, List[Tuple[int, int]]]:
        """Synthesise one clause; return its samples (int16, native order, at ``sample_rate``)
        and where eSpeak began each of its words: ``(character offset in the clause,
        sample)`` pairs.

        Thread: any; blocks while another clause is being spoken.

        Raises:
            RuntimeError: eSpeak NG reported an error.
        """
        text = clause.encode("utf-8") + b"\0"
        flags = _CHARS_UTF8 | (_ENDPAUSE if end_pause else 0)
        with self.lock:
            if voice != self._voice:  # switching reloads the voice; most clauses keep it
                self._voice = None
                error = self._lib.espeak_SetVoiceByName(voice)
                if error:
                    raise RuntimeError(f"eSpeak NG could not select voice {voice.decode()!r} (error {error})")
                self._voice = voice
            self._lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self._sink, self._marks = [], []
            try:
                error = self._lib.espeak_Synth(text, len(text), 0, _POS_CHARACTER, 0, flags, None, None)
                pcm, marks = b"".join(self._sink), self._marks
            finally:
                self._sink, self._marks = [], []
        if error:
            raise RuntimeError(f"eSpeak NG failed to speak a clause (error {error})")
        return pcm, marks


def _list_languages(lib: Any) -> Dict[str, str]:
    """eSpeak's language tags (and lower-cased voice names) to voice identifiers.

    Where several voices claim a tag ("en"), the one eSpeak ranks first wins.
    """
    best: Dict[str, Tuple[int, str]] = {}
    voices = lib.espeak_ListVoices(None)
    index = 0
    while voices[index]:
        voice = voices[index].contents
        index += 1
        identifier = voice.identifier.decode("utf-8")
        claims = [(0, voice.name.decode("utf-8").lower()), (0, identifier.rsplit("/", 1)[-1].lower())]
        # languages: (priority byte, NUL-terminated tag) pairs, ended by a zero byte.
        address = voice.languages
        while address:
            priority = ctypes.string_at(address, 1)[0]
            if priority == 0:
                break
            tag = ctypes.string_at(address + 1)
            claims.append((priority, tag.decode("utf-8").lower()))
            address += len(tag) + 2
        for priority, tag in claims:
            if tag not in best or priority < best[tag][0]:
                best[tag] = (priority, identifier)
    return {tag: identifier for tag, (_, identifier) in best.items()}


# -- text to clauses ------------------------------------------------------------------------


def _clauses(text: str) -> List[Tuple[int, str]]:
    """Split ``text`` into clauses of at most ``_MAX_CLAUSE`` characters, each with its
    punctuation and its offset in ``text``; drop the empty ones."""
    text = _CONTROL.sub(" ", text)  # one character for one: offsets stay the text's
    clauses: List[str] = []
    start = 0
    for match in _CLAUSE_END.finditer(text):
        clauses.extend(_cut(text[start:match.end()]))
        start = match.end()
    clauses.extend(_cut(text[start:]))
    placed, offset = [], 0
    for clause in clauses:
        if clause.strip():
            placed.append((offset, clause))
        offset += len(clause)
    return placed


def _cut(clause: str) -> List[str]:
    pieces = []
    while len(clause) > _MAX_CLAUSE:
        space = clause.rfind(" ", 0, _MAX_CLAUSE)
        cut = space + 1 if space > 0 else _MAX_CLAUSE
        pieces.append(clause[:cut])
        clause = clause[cut:]
    pieces.append(clause)
    return pieces


def _script_language(text: str) -> Optional[str]:
    """The language of the first Indic letter in ``text``, or None."""
    for char in text:
        point = ord(char)
        if point < 0x0900:
            continue
        for low, high, language in _SCRIPTS:
            if low <= point <= high and unicodedata.category(char).startswith("L"):
                return language
    return None


# -- the engine -------------------------------------------------------------------------------


class EspeakEngine(Engine):
    """Real, intelligible speech from eSpeak NG, streamed clause by clause.

    Voices are the names the real services use (EigenAI's Linda, Jack, Vivian, …;
    Shunyalabs' Nisha, Varun, …; any case), each an eSpeak variant; the language is a
    name ("Hindi"), a code ("hi", "hi-IN", "en-gb") or "auto", and picks eSpeak's
    pronunciation. Without one, Indic script is read in its language and anything else
    as American English.

    Making one loads and initialises eSpeak NG once per process (so a server pays for it
    at start-up, not on its first utterance).

    Raises:
        ImportError: espeakng-loader or soxr is missing (``pip install 'ttsstream[local]'``).
        RuntimeError: the library could not be loaded or initialised.
    """

    name = "espeak"

    def __init__(self) -> None:
        try:
            import soxr
        except ImportError as exc:
            raise ImportError(f"the espeak engine needs {exc.name}: pip install 'ttsstream[local]'",
                              name=exc.name) from exc
        self._soxr = soxr
        self._espeak = _Espeak.get()

    @property
    def native_rate(self) -> int:
        """The rate eSpeak NG speaks at (22050 Hz) before resampling."""
        return self._espeak.sample_rate

    def voice_names(self) -> Tuple[str, ...]:
        """The voice names accepted (in their usual spelling; matched in any case)."""
        return tuple(name for name, _ in VOICES.values())

    def synthesize(self, text: str, *, voice: Optional[str] = None, language: Optional[str] = None,
                   speed: float = 1.0, sample_rate: int = 24000) -> TimedPieces:
        """Check the request now, then yield the speech clause by clause (int16 LE mono at
        ``sample_rate``), each clause as soon as eSpeak has spoken it, with its words' times.

        Thread: any; each clause holds the process-wide eSpeak lock while it is spoken.

        Raises:
            UnknownVoice: at once, for a voice name not in ``VOICES``.
            UnknownLanguage: at once, for a language eSpeak NG does not have.
            ValueError: at once, for a speed outside 0.05..20 or an implausible rate.
        """
        check_speed_and_rate(speed, sample_rate)
        variant = self._variant(voice)
        identifier = self._language(language, text)
        name = identifier + ("+" + variant.variant if variant.variant else "")
        wpm = min(max(int(round(_WPM_NORMAL * speed)), _WPM_RANGE[0]), _WPM_RANGE[1])
        return TimedPieces(self._pieces(_clauses(text), word_spans(text), name.encode("utf-8"), wpm,
                                        variant.pitch, sample_rate))

    def _pieces(self, clauses: List[Tuple[int, str]], spans: List[Span], voice: bytes, wpm: int, pitch: int,
                sample_rate: int) -> Iterator[Tuple[bytes, List[SpokenWord]]]:
        native = self._espeak.sample_rate
        # One resampler for the whole utterance carries its filter state across clauses,
        # so joins between clauses do not click.
        resampler = None if sample_rate == native else self._soxr.ResampleStream(native, sample_rate, 1,
                                                                                  dtype="int16")
        last = len(clauses) - 1
        spoken = 0  # native samples of the clauses before this one
        firsts = [span.char_start for span in spans]
        words: List[SpokenWord] = []
        for index, (offset, clause) in enumerate(clauses):
            pcm, marks = self._espeak.speak(clause, voice, wpm, pitch, end_pause=index < last)
            native_samples = np.frombuffer(pcm, dtype=np.int16)
            samples = native_samples
            if resampler is not None:
                samples = resampler.resample_chunk(samples, last=index == last)
            # A clause's words go with the next piece: timing them waits until its audio is out.
            yield (samples.astype("<i2", copy=False).tobytes() if samples.size else b""), words
            mine = spans[bisect.bisect_left(firsts, offset):bisect.bisect_left(firsts, offset + len(clause))]
            timed = time_words(mine, [(offset + position, sample) for position, sample in marks], native_samples,
                               native)
            # soxr's stream adds no delay: native sample n is output sample n * rate / native.
            words = [word._replace(start=(spoken + word.start) * sample_rate // native,
                                   end=(spoken + word.end) * sample_rate // native) for word in timed]
            spoken += native_samples.size
        yield b"", words

    def _variant(self, voice: Optional[str]) -> _Variant:
        if voice is None or not voice.strip():
            return _DEFAULT_VARIANT
        found = VOICES.get(voice.strip().lower())
        if found is None:
            raise UnknownVoice(voice, self.voice_names())
        return found[1]

    def _language(self, language: Optional[str], text: str) -> str:
        """The eSpeak voice identifier for ``language`` (None or "auto": from the text)."""
        known = self._espeak.languages
        if language is None or language.strip().lower() in _AUTO:
            return known[_script_language(text) or DEFAULT_LANGUAGE]
        key = language.strip().lower().replace("_", "-")
        key = LANGUAGES.get(key, key)
        if key not in known:
            primary = key.split("-", 1)[0]  # "hi-in" -> "hi"
            key = LANGUAGES.get(primary, primary)
        if key not in known:
            names = sorted({name.title() for name, tag in LANGUAGES.items() if len(name) > 3 and name.isalpha()})
            raise UnknownLanguage(language, names, ", or a language code eSpeak NG knows, such as en-gb, fr, hi, ta")
        return known[key]
