"""What ``ttsstream speak``'s flags ask for: provider, model, key and the model's parameters.

The common settings (``--speed``, ``--language``, ...) are made from the dialects'
parameter tables (``SETTINGS``), and every value is read and checked by the same specs
the library validates with, before anything is sent. A refusal names the flag to change
(``--speed: speed must be a number from 0.25 to 4, got 9``) and is a ``UsageError``.

Imports: ``ttsstream.protocols`` (and its voice tables), ``ttsstream.local``, ``ttsstream.urls``, ``ttsstream.errors``,
and the CLI's ``problems``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional, Tuple, Type
from urllib.parse import urlsplit

from ..errors import InvalidParameterError
from ..local import local_dialect_name
from ..protocols import DIALECTS, LOCAL, Dialect, get_dialect
from ..protocols.base import check_model, setting_params
from ..protocols.params import Param, find_setting, parse_value
from ..protocols.voices import check_voice
from ..urls import check_url, is_loopback
from .problems import UsageError, shell_words

__all__ = ["SETTINGS", "Choice", "choose", "flag_of"]


def _settings() -> Dict[str, Tuple[str, str]]:
    """Each common setting in the tables -> (its help, where the models keep it)."""
    helps: Dict[str, str] = {}
    places: Dict[str, Dict[str, List[str]]] = {}  # setting -> path -> models
    for dialect in DIALECTS.values():
        for model, params in dialect.parameters.items():
            for param in params.values():
                for spec, path in [(param, param.name)] + [(f, f"{param.name}.{f.name}") for f in param.fields]:
                    if spec.setting:
                        helps.setdefault(spec.setting, spec.help)
                        places.setdefault(spec.setting, {}).setdefault(path, []).append(model)
    return {setting: (helps[setting], "; ".join(f"{', '.join(models)}: {path}"
                                                 for path, models in places[setting].items()))
            for setting in helps}


SETTINGS = _settings()


def flag_of(setting: str) -> str:
    """The flag of a common setting: ``voice_id`` -> ``--voice-id``."""
    return "--" + setting.replace("_", "-")


class Choice:
    """What a ``speak`` command line asks for, checked: everything ``TTSClient`` and ``speak()`` take."""

    __slots__ = ("provider", "dialect", "model", "voice", "params", "extra", "api_key", "url", "allow_insecure")

    def __init__(self, provider: str, dialect: Dialect, model: str, voice: Optional[str], params: Dict[str, Any],
                 extra: Dict[str, Any], api_key: Optional[str], url: Optional[str], allow_insecure: bool) -> None:
        self.provider, self.dialect, self.model, self.voice = provider, dialect, model, voice
        self.params, self.extra, self.api_key = params, extra, api_key
        self.url, self.allow_insecure = url, allow_insecure


def choose(args: argparse.Namespace, provider: str) -> Choice:
    """Check the model, the key and the parameters ``args`` ask for, sending nothing.

    Raises:
        UsageError: the message names the flag or variable to change.
    """
    if args.url is not None:
        try:
            check_url(args.url, allow_insecure=args.allow_insecure)
        except InvalidParameterError as exc:
            raise UsageError(f"--url: {shell_words(exc.message)}") from None
    dialect = get_dialect(local_dialect_name(args.model) if provider == LOCAL else provider)
    model = _model(type(dialect), provider, args.model)
    api_key = _api_key(dialect, provider, args)
    table = dialect.parameters[model]
    params, flags = _params(table, args.param or [])
    settings: Dict[str, Any] = {}
    for setting in SETTINGS:
        text = getattr(args, "setting_" + setting, None)
        if text is None:
            continue
        place = find_setting(table, setting)
        spec = table[place[0]] if place else None
        if place and place[1]:
            spec = next(f for f in table[place[0]].fields if f.name == place[1])
        settings[setting] = spec.parse(text) if spec else text
        flags[setting] = flag_of(setting)
        if place:
            flags[place[0] if not place[1] else f"{place[0]}[{place[1]!r}]"] = flag_of(setting)
    extra = dict(_pairs("--extra", args.extra or [], lambda name: parse_value))
    voice = args.voice if args.voice is not None else dialect.default_voice(model)
    try:
        params = setting_params(type(dialect), model, settings, params)
        dialect.build_request(model, "a check of the parameters", voice, params, extra or None)
        check_voice(provider, model, voice, params)  # the local server's voices are known
    except InvalidParameterError as exc:
        lacking = exc.parameter in settings and find_setting(table, exc.parameter) is None
        hint = "; choose one with --model" if lacking else ""
        raise UsageError(f"{_flag(exc.parameter, flags)}: {shell_words(exc.message)}{hint}") from None
    return Choice(provider, dialect, model, args.voice, params, extra, api_key, args.url, args.allow_insecure)


def _model(dialect: Type[Dialect], provider: str, model: Optional[str]) -> str:
    if provider == LOCAL and model is not None and not any(model in d.models for d in DIALECTS.values()):
        every = ", ".join(m for d in DIALECTS.values() for m in d.models)
        raise UsageError(f"--model {model}: unknown model; the local voice speaks {every}")
    try:
        return check_model(dialect, model)
    except InvalidParameterError as exc:
        raise UsageError(f"--model: {exc.message}") from None


def _api_key(dialect: Dialect, provider: str, args: argparse.Namespace) -> Optional[str]:
    """The key to send: ``--api-key``, else the dialect's variable (the client reads it)."""
    if args.api_key is not None and not args.api_key.strip():
        raise UsageError("--api-key is empty")
    key: Optional[str] = args.api_key
    if provider == LOCAL or key or os.environ.get(dialect.env_key):
        return key
    if args.url and is_loopback(urlsplit(args.url).hostname or ""):
        return None  # a server on this machine may need none
    raise UsageError(f"no API key for {dialect.title}: set {dialect.env_key} (or pass --api-key KEY); "
                     "--provider local speaks offline without one")


def _params(table: Dict[str, Param], items: List[str]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """``--param NAME=VALUE`` items -> (parameters, parameter -> the flag that set it)."""
    def parser(name: str) -> Any:
        if name in ("text", "input"):
            raise UsageError(f"--param {name}: give the text as TEXT or --file FILE")
        return table[name].parse if name in table else parse_value

    params = dict(_pairs("--param", items, parser))
    return params, {name: f"--param {name}" for name in params}


def _pairs(flag: str, items: List[str], parser: Any) -> List[Tuple[str, Any]]:
    pairs = []
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{flag} {item}: write it as NAME=VALUE (VALUE is JSON where it parses, "
                             "else text)")
        name = name.strip()
        pairs.append((name, parser(name)(text)))
    return pairs


def _flag(parameter: Optional[str], flags: Dict[str, str]) -> str:
    """The flag behind a refused parameter (``voice_settings['speed']`` -> ``--speed``)."""
    if parameter is None:
        return "ttsstream speak"
    if parameter in flags:
        return flags[parameter]
    base = parameter.split("[", 1)[0]
    if base in flags:
        return flags[base]
    return {"voice": "--voice", "model": "--model", "extra": "--extra", "text": "TEXT",
            "url": "--url"}.get(base, f"--param {base}")
