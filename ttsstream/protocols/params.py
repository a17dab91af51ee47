"""Model parameters as data: one declarative spec per parameter, read by validation and listings alike.

A dialect's table maps each model to its parameters, ``{"chatterbox": {"exaggeration":
Param(...), ...}}``. ``Param.check`` validates a value against its spec, so the table
*is* the validation; ``Param.describe`` and ``Param.as_dict`` say the same spec in words
and in JSON (``ttsstream voices``); ``Param.parse`` reads a value from command-line text.
A parameter may carry a common *setting* (``speed``, ``language``) that models spell
differently, so that a front end can offer one ``--speed`` for all of them
(``find_setting``). This module also holds the checks of single values that every
dialect shares.

Nothing here knows a service: the dialect modules fill the tables. Pure: no I/O.
Imports: ``ttsstream.errors``, ``ttsstream.checks`` and the standard library.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, FrozenSet, Iterable, Mapping, Optional, Pattern, Tuple

from ..checks import require_float, span
from ..errors import InvalidParameterError

__all__ = [
    "Param",
    "STRING",
    "NUMBER",
    "OBJECT",
    "table",
    "names_of",
    "check_params",
    "find_setting",
    "parse_value",
    "check_string",
    "check_number",
    "check_mapping",
    "check_json",
    "check_encodable",
]

# The kinds of value a parameter takes, as JSON names them.
STRING, NUMBER, OBJECT = "string", "number", "object"


class Param:
    """One model parameter: its name, kind, bounds and what it is for.

    Args:
        name: the field as the server spells it.
        kind: ``STRING``, ``NUMBER`` (sent as a float) or ``OBJECT`` (a JSON object).
        help: what it does, in a few words.
        low, high, low_open: a number's bounds (inclusive; ``low`` exclusive with ``low_open``).
        choices: the only strings allowed, when the set is closed.
        pattern: a regular expression a string must match whole, and ``shape``, how
            messages describe it ("an http(s) URL").
        fields: an object's known fields, each a Param checked when present; the
            object may hold others.
        setting: the common setting this parameter carries (``"speed"``), when models
            spell one idea differently (``speed``, ``voice_settings.speed``).
    """

    __slots__ = ("name", "kind", "help", "low", "high", "low_open", "choices", "pattern", "shape", "fields",
                 "setting")

    def __init__(self, name: str, kind: str, help: str, *, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, choices: Tuple[str, ...] = (), pattern: Optional[Pattern[str]] = None,
                 shape: str = "", fields: Tuple["Param", ...] = (), setting: Optional[str] = None) -> None:
        self.name = name
        self.kind = kind
        self.help = help
        self.low, self.high, self.low_open = low, high, low_open
        self.choices = choices
        self.pattern, self.shape = pattern, shape
        self.fields = fields
        self.setting = setting

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.describe()!r})"

    def check(self, value: Any, label: Optional[str] = None) -> Any:
        """Return ``value`` as it will be sent, or raise InvalidParameterError.

        ``label`` names the value in the message and in the error's ``parameter``
        (``voice_settings['speed']`` for a field); the name by default.
        """
        label = label or self.name
        if self.kind == NUMBER:
            return check_number(label, value, self.low, self.high, low_open=self.low_open)
        if self.kind == OBJECT:
            value = check_mapping(label, value)
            for field in self.fields:
                if field.name in value:
                    field.check(value[field.name], f"{label}[{field.name!r}]")
            return value
        if self.choices and value not in self.choices:
            raise InvalidParameterError(
                f"{label} must be {_one_of(self.choices)}{_said(self.help)}, got {value!r}", parameter=label)
        value = check_string(label, value)
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise InvalidParameterError(f"{label} must be {self.shape}, got {value!r}", parameter=label)
        return value

    def describe(self) -> str:
        """The spec in words: ``number in (0, 4]``, ``string, one of 'pcm'``, ``object {speed: ...}``."""
        if self.kind == NUMBER:
            return NUMBER + span(self.low, self.high, self.low_open)
        if self.kind == OBJECT:
            inner = ", ".join(f"{field.name}: {field.describe()}" for field in self.fields)
            return OBJECT + (f" {{{inner}, ...}}" if inner else "")
        if self.choices:
            return f"{STRING}, {_one_of(self.choices)}"
        return STRING + (f", {self.shape}" if self.shape else "")

    def as_dict(self) -> Dict[str, Any]:
        """The spec as JSON-ready data (only the keys that apply)."""
        spec: Dict[str, Any] = {"name": self.name, "type": self.kind, "help": self.help,
                                "description": self.describe()}
        if self.kind == NUMBER:
            if self.low != -math.inf:
                spec["min"] = self.low
                spec["min_exclusive"] = self.low_open
            if self.high != math.inf:
                spec["max"] = self.high
        if self.choices:
            spec["choices"] = list(self.choices)
        if self.shape:
            spec["format"] = self.shape
        if self.fields:
            spec["fields"] = [field.as_dict() for field in self.fields]
        if self.setting:
            spec["setting"] = self.setting
        return spec

    def parse(self, text: str) -> Any:
        """A value from command-line text: a string as written, else JSON where it parses.

        Text that does not parse is returned as it is, for ``check`` to refuse by name.
        """
        return text if self.kind == STRING else parse_value(text)


def parse_value(text: str) -> Any:
    """``text`` as JSON where it parses (``1.2``, ``true``, ``{"a": 1}``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _one_of(choices: Iterable[str]) -> str:
    return "one of " + ", ".join(repr(choice) for choice in choices)


def _said(help: str) -> str:
    return f" ({help})" if help else ""


# -- tables -------------------------------------------------------------------------


def table(*params: Param) -> Dict[str, Param]:
    """A model's parameters by name, in the order given."""
    return {param.name: param for param in params}


def names_of(tables: Mapping[str, Mapping[str, Param]]) -> Dict[str, FrozenSet[str]]:
    """Model -> the names of its parameters."""
    return {model: frozenset(params) for model, params in tables.items()}


def check_params(params_table: Mapping[str, Param], params: Mapping[str, Any]) -> Dict[str, Any]:
    """Check each value by its spec; return them as they will be sent, leaving out None.

    Every name must be in the table (``reject_foreign`` says so first).
    """
    return {name: params_table[name].check(value) for name, value in params.items() if value is not None}


def find_setting(params_table: Mapping[str, Param], setting: str) -> Optional[Tuple[str, Optional[str]]]:
    """Where a model keeps ``setting``: ``(parameter, None)``, ``(object parameter, field)``, or None."""
    for param in params_table.values():
        if param.setting == setting:
            return param.name, None
    for param in params_table.values():
        for field in param.fields:
            if field.setting == setting:
                return param.name, field.name
    return None


# -- checks of single values ------------------------------------------------------------


def check_encodable(name: str, text: str) -> None:
    """Raise InvalidParameterError if ``text`` cannot be sent as UTF-8 (a lone surrogate).

    Such text comes from bytes that were not UTF-8 (standard input under a C locale
    decodes them as surrogates); the socket would refuse it only after connecting.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidParameterError(
            f"{name} holds a character UTF-8 cannot encode ({text[exc.start]!r} at position {exc.start}, a lone "
            "surrogate, which comes from input that was not decoded as UTF-8): decode the input as UTF-8, or "
            "drop such characters with text.encode('utf-8', 'replace').decode()",
            parameter=name,
        ) from None


def check_string(name: str, value: object) -> str:
    """Return ``value`` if it is a non-empty str, else raise InvalidParameterError."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(f"{name} must be a non-empty str, got {value!r}", parameter=name)
    check_encodable(name, value)
    return value


def check_number(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
    """Return ``value`` as a float if it is a real number in range, else raise InvalidParameterError."""
    return require_float(name, value, low, high, low_open=low_open,
                         error=lambda message: InvalidParameterError(message, parameter=name))


def check_mapping(name: str, value: object) -> Dict[str, Any]:
    """Return ``value`` as a dict if it is a JSON-serialisable mapping with str keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidParameterError(f"{name} must be a JSON object (a dict with str keys), got {value!r}",
                                    parameter=name)
    check_json(name, value)
    return dict(value)


def check_json(name: str, value: object) -> None:
    """Raise InvalidParameterError unless ``value`` can be sent as strict JSON."""
    try:
        sent = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} cannot be sent as JSON: {exc}", parameter=name) from None
    check_encodable(name, sent)

