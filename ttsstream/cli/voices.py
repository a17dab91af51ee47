"""``ttsstream voices``: each model's voices (names, languages, genders), or with ``--params`` its parameters.

The voices come from ``ttsstream.voices()`` (``protocols.voices``), filtered by
provider, model and language. ``--params`` lists each model's parameters from the
dialect's parameter table, the very specs that validate ``speak()`` and the command
line, with their types, ranges and the flag that sets them; the local voice's names and
languages there come from the bundled server's engine (when its dependencies are
installed).

Imports: ``ttsstream.protocols`` (and its voice tables), ``ttsstream.errors``,
``ttsstream.server.espeak`` (lazily, for ``--params``) and the CLI's ``options`` and
``problems``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any, Dict, List, Optional, TextIO

from ..errors import InvalidParameterError
from ..protocols import DIALECTS, LOCAL
from ..protocols.params import Param
from ..protocols.voices import LANGUAGE_NAMES, Voice
from ..protocols.voices import voices as list_voices
from .options import flag_of
from .problems import OK, UsageError, shell_words

__all__ = ["voices", "catalogue"]


def _local_voice() -> Optional[Dict[str, Any]]:
    """The bundled server's voice names and language names, or None without its dependencies."""
    try:
        from ..server.espeak import LANGUAGES, VOICES
    except ImportError:
        return None
    return {"voices": [name for name, _ in VOICES.values()],
            "languages": sorted({name.title() for name in LANGUAGES if len(name) > 3 and name.isalpha()})}


def catalogue(provider: Optional[str] = None, model: Optional[str] = None) -> Dict[str, Any]:
    """What ``voices`` lists, as data: providers -> models -> default voice and parameter specs.

    Raises:
        UsageError: an unknown model, or one the provider does not have.
    """
    names = [name for name, dialect in DIALECTS.items()
             if (provider in (None, LOCAL, name)) and (model is None or model in dialect.models)]
    if model is not None and not names:
        every = ", ".join(m for d in DIALECTS.values() for m in d.models if provider in (None, LOCAL, d.name))
        raise UsageError(f"--model {model}: unknown model{f' for {provider}' if provider else ''}; "
                         f"choose one of {every}")
    found: Dict[str, Any] = {"providers": {}}
    for name in names:
        dialect = DIALECTS[name]()
        found["providers"][name] = {
            "title": dialect.title, "env_key": dialect.env_key, "url": dialect.default_url,
            "default_model": dialect.default_model,
            "models": {m: {"default_voice": dialect.default_voice(m),
                           "parameters": [_spec(param) for param in params.values()]}
                       for m, params in dialect.parameters.items() if model in (None, m)},
        }
    if provider in (None, LOCAL):
        found["local"] = _local_voice()
    return found


def _spec(param: Param) -> Dict[str, Any]:
    spec = param.as_dict()
    settings = [param.setting] + [field.setting for field in param.fields]
    flags = [flag_of(setting) for setting in settings if setting]
    flags += ["--voice" if param.name == "voice" else f"--param {param.name}"]
    spec["flags"] = flags
    return spec


def voices(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``ttsstream voices``; return the exit code. Raises UsageError."""
    if args.params:
        if args.language is not None:
            raise UsageError("--language filters voices, not parameters: drop --params or --language")
        return _params(catalogue(args.provider, args.model), args.json, out)
    try:
        found = list_voices(args.provider, args.model, args.language)
    except InvalidParameterError as exc:
        value = getattr(args, exc.parameter or "", None)
        raise UsageError(f"--{exc.parameter} {value}: {shell_words(exc.message)}") from None
    if args.json:
        print(json.dumps([dataclasses.asdict(voice) for voice in found], indent=2), file=out)
        return OK
    print("\n".join(_table(found) + _notes(args, found)), file=out)
    return OK


def _table(found: List[Voice]) -> List[str]:
    """The voices as aligned columns, the default voice of each model marked ``*``."""
    rows = [("PROVIDER", "MODEL", "VOICE", "GENDER", "LANGUAGE", "SPEAKS")]
    for voice in found:
        default = DIALECTS[_dialect_of(voice.model)]().default_voice(voice.model)
        rows.append((voice.provider, voice.model, voice.name + (" *" if voice.name == default else ""),
                     voice.gender or "?", LANGUAGE_NAMES[voice.language] if voice.language else "multilingual",
                     " ".join(voice.languages)))
    if len(rows) == 1:
        return ["no voice matches (see: ttsstream voices)"]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]


def _notes(args: argparse.Namespace, found: List[Voice]) -> List[str]:
    lines = [""]
    if found:
        lines.append("* the model's default voice. Parameters of each model: ttsstream voices --params")
    providers = [args.provider] if args.provider else list(DIALECTS) + [LOCAL]
    bare = [f"{provider}/{model}" for provider in providers for model in _models_of(provider)
            if args.model in (None, model) and not list_voices(provider, model)]
    if bare and args.language is None:
        lines.append(f"{', '.join(bare)}: no preset voices; name a cloned voice with --voice-id ID "
                     "(or --param audio_prompt_file=FILE)")
    if any(voice.provider != LOCAL for voice in found):
        lines.append("The services may have voices not listed (new presets, cloned voices): "
                     "a name not listed is sent as it is.")
    if any(voice.provider == LOCAL for voice in found):
        lines.append("local: the bundled server answers to every name above on any model, in any case; "
                     "another name is refused before anything is sent.")
    return lines if len(lines) > 1 else []


def _dialect_of(model: str) -> str:
    return next(name for name, dialect in DIALECTS.items() if model in dialect.parameters)


def _models_of(provider: str) -> List[str]:
    dialects = list(DIALECTS.values()) if provider == LOCAL else [DIALECTS[provider]]
    return [model for dialect in dialects for model in dialect.parameters]


def _params(found: Dict[str, Any], as_json: bool, out: TextIO) -> int:
    """Print the parameter catalogue (``--params``); return the exit code."""
    if as_json:
        print(json.dumps(found, indent=2), file=out)
        return OK
    lines: List[str] = []
    for name, provider in found["providers"].items():
        lines.append(f"{name}  ({provider['title']}; key: {provider['env_key']})")
        for model, about in provider["models"].items():
            default = " (default model)" if model == provider["default_model"] else ""
            voice = about["default_voice"] or "none (choose one with --voice-id)"
            lines.append(f"  {model}{default}  default voice: {voice}")
            specs = about["parameters"]
            name_width = max(len(spec["name"]) for spec in specs)
            kind_width = max(len(spec["description"]) for spec in specs)
            for spec in specs:
                lines.append(f"    {spec['name']:<{name_width}}  {spec['description']:<{kind_width}}  "
                             f"{spec['help']}  ({', '.join(spec['flags'])})")
    if "local" in found:
        local = found["local"]
        lines.append("local  (the bundled server: no key; speaks every model above, answering to these names)")
        if local is None:
            lines.append("  (its voice is not installed: pip install 'ttsstream[local]')")
        else:
            lines.append(f"  voices: {', '.join(local['voices'])}")
            lines.append(f"  languages: {', '.join(local['languages'])}, or their codes (en, hi, ta, fr, ...)")
    print("\n".join(lines), file=out)
    return OK
