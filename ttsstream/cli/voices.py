"""``ttsstream voices``: the models, their voices and their parameters, read from the tables.

Each model's parameters are listed from the dialect's parameter table, the very specs
that validate ``speak()`` and the command line, with their types, ranges and the flag
that sets them. The local voice's voices and languages come from the bundled server's
engine (when its dependencies are installed).

Imports: ``ttsstream.protocols``, ``ttsstream.server.espeak`` (lazily, for the local
voice's names) and the CLI's ``options`` and ``problems``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List, Optional, TextIO

from ..protocols import DIALECTS, LOCAL
from ..protocols.params import Param
from .options import flag_of
from .problems import OK, UsageError

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
    found = catalogue(args.provider, args.model)
    if args.json:
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
