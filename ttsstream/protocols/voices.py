"""Each model's voices as data: names, languages and genders, and which lists are closed.

``voices(provider=None, model=None, language=None)`` (``ttsstream.voices``) lists them
as ``Voice`` objects; ``check_voice`` refuses, before any I/O, a voice that a closed list
does not have. Only the bundled local server's list is closed: it answers to the names
below and nothing else (``ttsstream.server.espeak.VOICES``, matched in any case). The
real services' lists are open: their protocol documents name no list of voices (only the
examples ``Linda`` and ``Nisha``), EigenAI adds cloned voices (``voice_id``,
``voice_url``), and a preset added by the service must not be refused by an older
client; an unknown name there is the server's to refuse.

Sources: the protocol documents (the defaults Linda and Nisha), Qwen3-TTS's model card
(its nine preset speakers, their own languages, and the ten languages each speaks) and
the genders of the bundled server's stand-ins (an eSpeak NG variant of the same sex).

Pure data, no I/O. Imports: ``ttsstream.protocols`` (the registry), its dialect modules
and ``ttsstream.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

from ..errors import InvalidParameterError
from . import DIALECTS, LOCAL, PROVIDERS
from .shunyalabs import LANGUAGES as ZERO_INDIC_LANGUAGES
from .shunyalabs import VOICES as ZERO_INDIC_VOICES

__all__ = ["Voice", "voices", "check_voice", "LOCAL_VOICES", "LANGUAGE_NAMES", "language_code"]

FEMALE, MALE = "female", "male"

# Language codes (ISO 639-1) to names, for listings and for filters given by name.
LANGUAGE_NAMES: Dict[str, str] = dict(ZERO_INDIC_LANGUAGES, zh="Chinese", ja="Japanese", ko="Korean", de="German",
                                      fr="French", ru="Russian", pt="Portuguese", es="Spanish", it="Italian")

# Qwen3-TTS speaks ten languages with every preset speaker (its model card).
_QWEN_LANGUAGES = ("zh", "en", "ja", "ko", "de", "fr", "ru", "pt", "es", "it")


@dataclass(frozen=True)
class Voice:
    """One voice of one model.

    Attributes:
        provider: ``"eigenai"``, ``"shunyalabs"`` or ``"local"``.
        model: the model that has it (``"qwen3-tts"``).
        name: the name to pass as ``voice=`` (``--voice``).
        language: the voice's own language (a code such as ``"zh"``), or None for a
            voice made for every language its model speaks.
        gender: ``"female"``, ``"male"``, or None where unknown.
        languages: the codes of the languages it speaks, its own first.
    """

    provider: str
    model: str
    name: str
    language: Optional[str]
    gender: Optional[str]
    languages: Tuple[str, ...] = ()


_ZERO_INDIC_GENDERS = {"Nisha": FEMALE, "Priya": FEMALE, "Kavya": FEMALE, "Varun": MALE, "Rajesh": MALE,
                       "Arjun": MALE}

# model -> (name, own language, gender, languages it speaks), the model's default first.
_TABLE: Dict[str, Tuple[Tuple[str, Optional[str], Optional[str], Tuple[str, ...]], ...]] = {
    "higgs2p5": (("Linda", "en", FEMALE, ("en",)), ("Jack", "en", MALE, ("en",))),
    "chatterbox": (),  # no preset voices: a cloned voice's voice_id, or audio_prompt_file
    "qwen3-tts": tuple((name, language, gender, (language,) + tuple(c for c in _QWEN_LANGUAGES if c != language))
                       for name, language, gender in (
        ("Vivian", "zh", FEMALE), ("Serena", "zh", FEMALE), ("Uncle_Fu", "zh", MALE), ("Dylan", "zh", MALE),
        ("Eric", "zh", MALE), ("Ryan", "en", MALE), ("Aiden", "en", MALE), ("Ono_Anna", "ja", FEMALE),
        ("Sohee", "ko", FEMALE))),
    "zero-indic": tuple((name, None, _ZERO_INDIC_GENDERS.get(name), tuple(ZERO_INDIC_LANGUAGES))
                        for name in ZERO_INDIC_VOICES),
}

# Every name the bundled server answers to, on any model (it matches them in any case).
LOCAL_VOICES: Tuple[str, ...] = tuple(entry[0] for entries in _TABLE.values() for entry in entries)
_LOCAL_KEYS: FrozenSet[str] = frozenset(name.lower() for name in LOCAL_VOICES)


def _models(provider: str) -> Dict[str, str]:
    """Model -> the dialect that has it, for ``provider`` (local: every dialect's models)."""
    names = list(DIALECTS) if provider == LOCAL else [provider]
    return {model: name for name in names for model in DIALECTS[name].parameters}


def language_code(language: str) -> str:
    """``"hi"``, ``"Hindi"``, ``"hi-IN"`` -> ``"hi"``.

    Raises:
        InvalidParameterError: a language no model's voice speaks.
    """
    key = language.strip().lower().replace("_", "-") if isinstance(language, str) else ""
    by_name = {name.lower(): code for code, name in LANGUAGE_NAMES.items()}
    code = by_name.get(key) or key.split("-", 1)[0]
    if code not in LANGUAGE_NAMES:
        known = ", ".join(f"{code} ({name})" for code, name in LANGUAGE_NAMES.items())
        raise InvalidParameterError(f"unknown language {language!r}: choose one of {known}", parameter="language")
    return code


def voices(provider: Optional[str] = None, model: Optional[str] = None,
           language: Optional[str] = None) -> List[Voice]:
    """The voices of every model, or of one provider, model or language.

    Args:
        provider: ``"eigenai"``, ``"shunyalabs"`` or ``"local"`` (the bundled server,
            which answers to every model's names); None for all.
        model: one model (``"qwen3-tts"``); None for all of the provider's.
        language: a code or name (``"hi"``, ``"Hindi"``): voices whose own language it
            is, and the voices made for every language of their model that speak it.

    Returns:
        ``Voice`` objects, by provider, model, then the model's default voice first.

    Raises:
        InvalidParameterError: an unknown provider, model or language (the message
            names the valid ones).
    """
    if provider is not None and provider not in PROVIDERS:
        raise InvalidParameterError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}",
                                    parameter="provider")
    providers = [provider] if provider is not None else list(PROVIDERS)
    if model is not None and not any(model in _models(name) for name in providers):
        every = sorted({m for name in providers for m in _models(name)})
        where = f" of {provider}" if provider is not None else ""
        raise InvalidParameterError(f"unknown model {model!r}{where}: choose one of {', '.join(every)}",
                                    parameter="model")
    code = language_code(language) if language is not None else None
    found: List[Voice] = []
    for name in providers:
        for each in _models(name):
            if model not in (None, each):
                continue
            for voice, own, gender, speaks in _TABLE.get(each, ()):
                if code is None or code == own or (own is None and code in speaks):
                    found.append(Voice(name, each, voice, own, gender, speaks))
    return found


def check_voice(provider: str, model: str, voice: Optional[str], params: Mapping[str, Any]) -> None:
    """Refuse a voice that ``provider`` surely does not have, before any I/O.

    Only the local server's list is closed; any name goes to the real services. A model
    without a ``voice`` parameter (chatterbox) names its voice with ``voice_id``, which
    the local server reads as a name too.

    Raises:
        InvalidParameterError: an unknown local voice; the message lists the known ones.
    """
    if provider != LOCAL:
        return
    label, name = "voice", voice
    if voice is None and "voice" not in _parameters(model):
        label, name = "voice_id", params.get("voice_id")
    if not isinstance(name, str):
        return  # none, or a wrong type: the dialect's to refuse, with its own message
    if name.strip().lower() not in _LOCAL_KEYS:
        raise InvalidParameterError(
            f"unknown {label} {name!r}: the local voice answers to {', '.join(LOCAL_VOICES)} (on any model; "
            "see ttsstream.voices(provider='local'))", parameter=label)


def _parameters(model: str) -> Mapping[str, Any]:
    for dialect in DIALECTS.values():
        if model in dialect.parameters:
            return dialect.parameters[model]
    return {}
