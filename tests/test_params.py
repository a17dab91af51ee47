"""The parameter tables: one declarative spec per parameter drives validation, listings and settings."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from ttsstream.errors import InvalidParameterError
from ttsstream.protocols import DIALECTS, get_dialect
from ttsstream.protocols.base import model_owners, setting_params
from ttsstream.protocols.eigenai import EigenAI
from ttsstream.protocols.params import NUMBER, OBJECT, STRING, Param, find_setting, parse_value
from ttsstream.protocols.shunyalabs import Shunyalabs

ALL = [(name, model, param) for name, dialect in DIALECTS.items()
       for model, params in dialect.parameters.items() for param in params.values()]


def test_models_are_the_names_of_the_tables() -> None:
    for dialect in DIALECTS.values():
        assert dialect.models == {model: frozenset(params) for model, params in dialect.parameters.items()}
        assert all(name == param.name for params in dialect.parameters.values() for name, param in params.items())


@pytest.mark.parametrize("provider, model, param", ALL, ids=[f"{p}/{m}/{x.name}" for p, m, x in ALL])
def test_validation_follows_each_spec(provider: str, model: str, param: Param) -> None:
    """Values just inside and just outside a number's bounds are judged by the table alone."""
    dialect = get_dialect(provider)
    voice = dialect.default_voice(model)

    def build(value: Any) -> Any:
        return dialect.build_request(model, "Hi", voice, {param.name: value}, None)

    if param.name == "voice":
        return  # passed as speak()'s voice, checked by the same spec (test_protocols)
    if param.kind == NUMBER:
        assert math.isfinite(param.low) and math.isfinite(param.high)
        build(param.high)
        with pytest.raises(InvalidParameterError) as info:
            build(param.high + 0.01)
        assert info.value.parameter == param.name and param.describe().split(" ", 1)[1] in str(info.value)
        with pytest.raises(InvalidParameterError):
            build(param.low - 0.01 if not param.low_open else param.low)
        with pytest.raises(InvalidParameterError):
            build("1")
    elif param.kind == OBJECT:
        build({})
        with pytest.raises(InvalidParameterError):
            build("{}")
        for field in param.fields:
            with pytest.raises(InvalidParameterError) as info:
                build({field.name: field.high + 1})
            assert info.value.parameter == f"{param.name}[{field.name!r}]"
    else:
        assert param.kind == STRING
        with pytest.raises(InvalidParameterError):
            build("")
        if param.choices:
            build(param.choices[0])
            with pytest.raises(InvalidParameterError) as info:
                build(param.choices[0].upper() + "x")
            assert repr(param.choices[0]) in str(info.value)


def test_descriptions_say_type_and_range() -> None:
    table = EigenAI.parameters
    assert table["chatterbox"]["exaggeration"].describe() == "number from 0 to 10"
    assert table["chatterbox"]["temperature"].describe() == "number in (0, 10]"
    assert table["higgs2p5"]["voice_settings"].describe() == "object {speed: number in (0, 4], ...}"
    assert table["higgs2p5"]["voice_url"].describe() == "string, an http(s) URL"
    shunya = Shunyalabs.parameters["zero-indic"]
    assert shunya["speed"].describe() == "number from 0.25 to 4"
    assert shunya["response_format"].describe() == "string, one of 'pcm'"


def test_as_dict_is_json_and_carries_the_bounds() -> None:
    for _, _, param in ALL:
        json.dumps(param.as_dict(), allow_nan=False)
    speed = Shunyalabs.parameters["zero-indic"]["speed"].as_dict()
    assert (speed["type"], speed["min"], speed["max"], speed["min_exclusive"]) == ("number", 0.25, 4.0, False)
    settings = EigenAI.parameters["qwen3-tts"]["voice_settings"].as_dict()
    assert settings["fields"][0]["name"] == "speed" and settings["fields"][0]["min_exclusive"] is True


@pytest.mark.parametrize("text, value", [("1.2", 1.2), ("2", 2), ("true", True), ('{"a": 1}', {"a": 1}),
                                         ("hi", "hi"), ("nan", "nan"), ("", "")])
def test_parse_value_is_json_where_it_parses(text: str, value: Any) -> None:
    assert parse_value(text) == value


def test_a_string_parameter_keeps_the_text_as_written() -> None:
    assert EigenAI.parameters["higgs2p5"]["voice_id"].parse("123") == "123"
    assert Shunyalabs.parameters["zero-indic"]["speed"].parse("1.5") == 1.5


@pytest.mark.parametrize("dialect, model, setting, where", [
    (Shunyalabs, "zero-indic", "speed", ("speed", None)),
    (EigenAI, "higgs2p5", "speed", ("voice_settings", "speed")),
    (EigenAI, "qwen3-tts", "speed", ("voice_settings", "speed")),
    (EigenAI, "chatterbox", "language", ("language_id", None)),
    (EigenAI, "qwen3-tts", "language", ("language", None)),
    (EigenAI, "higgs2p5", "language", None),
    (EigenAI, "chatterbox", "speed", None),
])
def test_find_setting(dialect: Any, model: str, setting: str, where: Any) -> None:
    assert find_setting(dialect.parameters[model], setting) == where


def test_setting_params_puts_a_setting_where_the_model_keeps_it() -> None:
    assert setting_params(EigenAI, "higgs2p5", {"speed": 1.2}, {"voice_settings": {"x": 1}}) == {
        "voice_settings": {"x": 1, "speed": 1.2}}
    assert setting_params(EigenAI, "chatterbox", {"language": "hi", "speed": None}, {}) == {"language_id": "hi"}
    assert setting_params(Shunyalabs, "zero-indic", {"speed": 1.2, "language": "hi"}, {}) == {
        "speed": 1.2, "language": "hi"}


def test_setting_params_refuses_a_setting_the_model_has_not() -> None:
    with pytest.raises(InvalidParameterError) as info:
        setting_params(EigenAI, "higgs2p5", {"language": "hi"}, {})
    assert info.value.parameter == "language"
    for owner in ("eigenai/chatterbox (language_id)", "eigenai/qwen3-tts (language)",
                  "shunyalabs/zero-indic (language)"):
        assert owner in str(info.value)
    with pytest.raises(InvalidParameterError) as info:
        setting_params(Shunyalabs, "zero-indic", {"speed": 1.2}, {"speed": 2})
    assert "twice" in str(info.value)


def test_model_owners() -> None:
    assert model_owners("speed") == ["eigenai/higgs2p5 (voice_settings.speed)",
                                     "eigenai/qwen3-tts (voice_settings.speed)", "shunyalabs/zero-indic (speed)"]


def test_a_foreign_name_says_where_this_model_keeps_it() -> None:
    with pytest.raises(InvalidParameterError) as info:
        EigenAI().build_request("higgs2p5", "Hi", "Linda", {"speed": 1.2}, None)
    assert "voice_settings={'speed': ...}" in str(info.value)
