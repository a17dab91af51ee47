"""The pure protocol layer and the error tree.

Each dialect is driven with the exact strings a server would send and checked against
the exact strings a server would receive. No sockets, no threads.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, FrozenSet, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest

from ttsstream import errors
from ttsstream.errors import (
    AuthenticationError,
    RateLimited,
    Cancelled,
    ConnectionFailed,
    InvalidParameterError,
    PlaybackError,
    ProtocolError,
    ServerError,
    SynthesisTimeout,
    TTSError,
)
from ttsstream.protocols import (
    DIALECTS,
    MAX_TEXT_CHARS,
    Audio,
    Dialect,
    Done,
    Failed,
    Metadata,
    Request,
    WordTime,
    WordTimes,
    dialect_for_url,
    get_dialect,
)
from ttsstream.protocols.extensions import WORDS, header_line, parse_words, requested, words_frame
from ttsstream.protocols import eigenai as eigen_mod
from ttsstream.protocols import shunyalabs as shunya_mod
from ttsstream.protocols.eigenai import EigenAI
from ttsstream.protocols.shunyalabs import Shunyalabs

KEY = "sk-test-0123456789abcdef"

# The contract's parameter table (API.md), besides the text itself.
CONTRACT: Dict[Tuple[str, str], FrozenSet[str]] = {
    ("eigenai", "higgs2p5"): frozenset({"voice", "voice_id", "voice_url", "voice_settings", "sampling"}),
    ("eigenai", "chatterbox"): frozenset(
        {"language_id", "voice_id", "audio_prompt_file", "exaggeration", "temperature"}),
    ("eigenai", "qwen3-tts"): frozenset(
        {"voice", "voice_id", "voice_url", "language", "instructions", "voice_settings"}),
    ("shunyalabs", "zero-indic"): frozenset({"voice", "language", "response_format", "speed"}),
}
ALL_PARAMS = sorted(set().union(*CONTRACT.values()))

# A value each parameter accepts, so a refusal can only be about which model takes it.
GOOD_VALUES: Dict[str, Any] = {
    "voice": "Linda",
    "voice_id": "v-123",
    "voice_url": "https://example.com/ref.wav",
    "voice_settings": {"speed": 1.0},
    "sampling": {"temperature": 0.7},
    "language_id": "en",
    "audio_prompt_file": "prompt.wav",
    "exaggeration": 0.5,
    "temperature": 0.8,
    "language": "hi",
    "instructions": "Speak warmly.",
    "response_format": "pcm",
    "speed": 1.0,
}


def owners_of(name: str) -> List[str]:
    return [f"{provider}/{model}" for (provider, model), names in CONTRACT.items() if name in names]


def foreign_cases() -> List[Tuple[str, str, str]]:
    return [
        (provider, model, name)
        for (provider, model), names in CONTRACT.items()
        for name in ALL_PARAMS
        if name not in names
    ]


@pytest.fixture
def eigen() -> Dialect:
    return get_dialect("eigenai")


@pytest.fixture
def shunya() -> Dialect:
    return get_dialect("shunyalabs")


def frames(dialect: Dialect, model: str, text: str, voice: Optional[str] = None,
           extra: Optional[Dict[str, Any]] = None, **params: Any) -> List[str]:
    return dialect.request_frames(dialect.build_request(model, text, voice, params, extra))


def failed_error(event: object) -> TTSError:
    assert isinstance(event, Failed), event
    return event.error


# == registry ==========================================================================


def test_registry_holds_both_dialects() -> None:
    assert set(DIALECTS) == {"eigenai", "shunyalabs"}
    assert isinstance(get_dialect("eigenai"), EigenAI)
    assert isinstance(get_dialect("shunyalabs"), Shunyalabs)


@pytest.mark.parametrize("provider", ["nope", "", "EigenAI", "openai", None, ["eigenai"]])
def test_get_dialect_unknown_provider(provider: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        get_dialect(provider)
    assert info.value.parameter == "provider"
    assert "eigenai" in str(info.value) and "shunyalabs" in str(info.value)


@pytest.mark.parametrize("provider, model", sorted(CONTRACT))
def test_models_match_the_contract_table(provider: str, model: str) -> None:
    assert get_dialect(provider).models[model] == CONTRACT[(provider, model)]


def test_dialect_constants() -> None:
    eigen, shunya = get_dialect("eigenai"), get_dialect("shunyalabs")
    assert (eigen.name, eigen.env_key, eigen.default_model) == ("eigenai", "EIGENAI_API_KEY", "higgs2p5")
    assert eigen.default_url == "wss://api-web.eigenai.com/api/v1/generate/ws"
    assert eigen.default_path() == "/api/v1/generate/ws"
    assert eigen.sample_rate == 24000
    assert eigen.reusable is False
    assert (shunya.name, shunya.env_key, shunya.default_model) == ("shunyalabs", "SHUNYALABS_API_KEY",
                                                                   "zero-indic")
    assert shunya.default_url == "wss://tts.shunyalabs.ai/ws"
    assert shunya.default_path() == "/ws"
    assert shunya.reusable is True


@pytest.mark.parametrize("url, expected", [
    ("wss://api-web.eigenai.com/api/v1/generate/ws", "eigenai"),
    ("ws://127.0.0.1:8765/api/v1/generate/ws", "eigenai"),
    ("ws://localhost:1/api/v1/generate/ws/", "eigenai"),
    ("wss://api-web.eigenai.com/api/v1/generate/ws?x=1", "eigenai"),
    ("wss://tts.shunyalabs.ai/ws", "shunyalabs"),
    ("wss://tts.shunyalabs.ai/ws?api_key=abc", "shunyalabs"),
    ("ws://127.0.0.1:8765/ws", "shunyalabs"),
    ("ws://127.0.0.1:8765/ws/tts", None),
    ("ws://127.0.0.1:8765/", None),
    ("ws://127.0.0.1:8765", None),
    ("ws://127.0.0.1:8765/api/v1/generate", None),
    ("", None),
])
def test_dialect_for_url(url: str, expected: Optional[str]) -> None:
    assert dialect_for_url(url) == expected


# == text checks (both dialects) ========================================================


@pytest.mark.parametrize("provider, model", [("eigenai", "higgs2p5"), ("shunyalabs", "zero-indic")])
@pytest.mark.parametrize("text", [None, b"hello", 42, ["hello"], "", "   ", " \n\t\u3000 ", "a\x00b", "\x00",
                                  "x" * (MAX_TEXT_CHARS + 1)])
def test_bad_text_is_refused(provider: str, model: str, text: Any) -> None:
    dialect = get_dialect(provider)
    with pytest.raises(InvalidParameterError) as info:
        dialect.build_request(model, text, dialect.default_voice(model), {}, None)
    assert info.value.parameter == "text"


@pytest.mark.parametrize("provider, model", [("eigenai", "higgs2p5"), ("shunyalabs", "zero-indic")])
def test_text_at_the_length_limit_is_accepted(provider: str, model: str) -> None:
    dialect = get_dialect(provider)
    request = dialect.build_request(model, "x" * MAX_TEXT_CHARS, dialect.default_voice(model), {}, None)
    assert request.text == "x" * MAX_TEXT_CHARS


def test_text_limit_message_says_what_to_do(eigen: Dialect) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request("higgs2p5", "x" * (MAX_TEXT_CHARS + 5), "Linda", {}, None)
    assert str(MAX_TEXT_CHARS + 5) in str(info.value)
    assert str(MAX_TEXT_CHARS) in str(info.value)


# == foreign parameters (both dialects) ==================================================


@pytest.mark.parametrize("provider, model, name", foreign_cases())
def test_parameter_of_another_model_names_its_owner(provider: str, model: str, name: str) -> None:
    dialect = get_dialect(provider)
    with pytest.raises(InvalidParameterError) as info:
        dialect.build_request(model, "Hello", None, {name: GOOD_VALUES[name]}, None)
    error = info.value
    assert error.parameter == name
    message = str(error)
    assert repr(name) in message or name in message
    owners = owners_of(name)
    assert owners, name
    for owner in owners:
        assert owner in message, (owner, message)
    for (other_provider, other_model) in CONTRACT:
        other = f"{other_provider}/{other_model}"
        if other not in owners and other_model != model:
            assert other not in message, (other, message)


@pytest.mark.parametrize("name, owner", [
    ("exaggeration", "eigenai/chatterbox"),
    ("temperature", "eigenai/chatterbox"),
    ("speed", "shunyalabs/zero-indic"),
    ("response_format", "shunyalabs/zero-indic"),
    ("instructions", "eigenai/qwen3-tts"),
])
def test_named_examples_of_foreign_parameters_on_higgs(eigen: Dialect, name: str, owner: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request("higgs2p5", "Hello", "Linda", {name: GOOD_VALUES[name]}, None)
    assert info.value.parameter == name
    assert owner in str(info.value)


@pytest.mark.parametrize("provider, model", [("eigenai", m) for m in ("higgs2p5", "chatterbox", "qwen3-tts")]
                         + [("shunyalabs", "zero-indic")])
def test_unknown_parameter_points_to_extra(provider: str, model: str) -> None:
    dialect = get_dialect(provider)
    with pytest.raises(InvalidParameterError) as info:
        dialect.build_request(model, "Hello", None, {"pitch": 2}, None)
    assert info.value.parameter == "pitch"
    assert "extra=" in str(info.value)


@pytest.mark.parametrize("provider, model", sorted(CONTRACT))
def test_own_parameters_are_accepted(provider: str, model: str) -> None:
    dialect = get_dialect(provider)
    names = CONTRACT[(provider, model)] - {"voice"}
    request = dialect.build_request(model, "Hello", dialect.default_voice(model),
                                    {name: GOOD_VALUES[name] for name in names}, None)
    sent = json.loads(dialect.open_frames(request, KEY)[-1] if provider == "shunyalabs"
                      else dialect.request_frames(request)[0])
    for name in names:
        assert sent[name] == GOOD_VALUES[name], name


# == EigenAI: frames out ===============================================================


@pytest.mark.parametrize("model", ["higgs2p5", "chatterbox", "qwen3-tts"])
def test_eigen_auth_frame(eigen: Dialect, model: str) -> None:
    request = eigen.build_request(model, "Hello", eigen.default_voice(model), {}, None)
    assert eigen.open_frames(request, KEY) == ['{"token":"sk-test-0123456789abcdef","model":"%s"}' % model]
    assert request.model == model
    assert request.session == (model,)


def test_eigen_key_goes_only_in_the_auth_frame(eigen: Dialect) -> None:
    url = "wss://api-web.eigenai.com/api/v1/generate/ws"
    request = eigen.build_request("higgs2p5", "Hello", "Linda", {}, None)
    assert eigen.connect_url(url, KEY) == url
    assert all(KEY not in header for header in eigen.connect_headers(KEY))
    assert all(KEY not in frame for frame in eigen.request_frames(request))
    assert KEY not in repr(request)


def test_eigen_request_frame_of_the_documented_example(eigen: Dialect) -> None:
    assert frames(eigen, "higgs2p5", "Hello, streaming audio world!", "Linda") == [
        '{"text":"Hello, streaming audio world!","voice":"Linda"}'
    ]


def test_eigen_higgs_request_frame_with_every_parameter(eigen: Dialect) -> None:
    assert frames(
        eigen, "higgs2p5", "Hi", "Linda",
        voice_id="v-123", voice_url="https://example.com/ref.wav",
        voice_settings={"speed": 1.25}, sampling={"temperature": 0.7, "top_p": 0.95},
    ) == [
        '{"text":"Hi","voice":"Linda","voice_id":"v-123","voice_url":"https://example.com/ref.wav",'
        '"voice_settings":{"speed":1.25},"sampling":{"temperature":0.7,"top_p":0.95}}'
    ]


def test_eigen_chatterbox_request_frame_with_every_parameter(eigen: Dialect) -> None:
    assert frames(
        eigen, "chatterbox", "Hi", None,
        language_id="en", voice_id="v-9", audio_prompt_file="prompt.wav", exaggeration=1, temperature=0.8,
    ) == [
        '{"text":"Hi","language_id":"en","voice_id":"v-9","audio_prompt_file":"prompt.wav",'
        '"exaggeration":1.0,"temperature":0.8}'
    ]


def test_eigen_qwen_request_frame_with_every_parameter(eigen: Dialect) -> None:
    assert frames(
        eigen, "qwen3-tts", "Hi", "Vivian",
        voice_id="v-7", voice_url="http://example.com/v.wav", language="English",
        instructions="Speak warmly.", voice_settings={"speed": 0.9},
    ) == [
        '{"text":"Hi","voice":"Vivian","voice_id":"v-7","voice_url":"http://example.com/v.wav",'
        '"language":"English","instructions":"Speak warmly.","voice_settings":{"speed":0.9}}'
    ]


def test_eigen_request_frame_keeps_non_ascii_and_escapes_json(eigen: Dialect) -> None:
    assert frames(eigen, "higgs2p5", 'नमस्ते "friend"\n', "Linda") == [
        '{"text":"नमस्ते \\"friend\\"\\n","voice":"Linda"}'
    ]


def test_eigen_none_parameters_are_left_out(eigen: Dialect) -> None:
    assert frames(eigen, "higgs2p5", "Hi", "Linda", voice_id=None, sampling=None) == [
        '{"text":"Hi","voice":"Linda"}'
    ]


def test_eigen_numpy_number_is_sent_as_a_plain_float(eigen: Dialect) -> None:
    assert frames(eigen, "chatterbox", "Hi", None, exaggeration=np.float32(0.5)) == [
        '{"text":"Hi","exaggeration":0.5}'
    ]


def test_eigen_default_voices(eigen: Dialect) -> None:
    assert eigen.default_voice("higgs2p5") == "Linda"
    assert eigen.default_voice("qwen3-tts") == "Vivian"
    assert eigen.default_voice("chatterbox") is None


def test_eigen_chatterbox_request_without_voice(eigen: Dialect) -> None:
    assert frames(eigen, "chatterbox", "Hi", eigen.default_voice("chatterbox")) == ['{"text":"Hi"}']


def test_eigen_chatterbox_refuses_voice_and_names_voice_id(eigen: Dialect) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request("chatterbox", "Hi", "Linda", {}, None)
    assert info.value.parameter == "voice"
    assert "voice_id" in str(info.value)


def test_eigen_default_model_when_none(eigen: Dialect) -> None:
    assert eigen.build_request(None, "Hi", "Linda", {}, None).model == "higgs2p5"


@pytest.mark.parametrize("model", ["higgs3", "Higgs2p5", "zero-indic", ""])
def test_eigen_unknown_model(eigen: Dialect, model: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request(model, "Hi", "Linda", {}, None)
    assert info.value.parameter == "model"
    for choice in ("higgs2p5", "chatterbox", "qwen3-tts"):
        assert choice in str(info.value)


def test_eigen_text_keyword_is_refused(eigen: Dialect) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request("higgs2p5", "Hi", "Linda", {"text": "other"}, None)
    assert info.value.parameter == "text"


def test_eigen_extra_passes_unknown_fields(eigen: Dialect) -> None:
    assert frames(eigen, "higgs2p5", "Hi", "Linda", extra={"seed": 42, "style": {"mood": "calm"}}) == [
        '{"text":"Hi","voice":"Linda","seed":42,"style":{"mood":"calm"}}'
    ]


@pytest.mark.parametrize("clash", ["text", "token", "model"])
def test_eigen_extra_may_not_override_what_ttsstream_sets(eigen: Dialect, clash: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request("higgs2p5", "Hi", "Linda", {}, {clash: "x", "seed": 1})
    assert info.value.parameter == "extra"
    assert clash in str(info.value)


@pytest.mark.parametrize("extra", [
    {"seed": object()},
    {"seed": float("nan")},
    {"seed": float("inf")},
    {"seed": {1, 2}},
    {1: "x"},
    [("seed", 1)],
    "seed=1",
])
def test_eigen_extra_must_be_a_json_mapping(eigen: Dialect, extra: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request("higgs2p5", "Hi", "Linda", {}, extra)
    assert info.value.parameter == "extra"


@pytest.mark.parametrize("model, params, expected", [
    ("higgs2p5", {"voice_settings": "fast"}, "voice_settings"),
    ("higgs2p5", {"voice_settings": [1.0]}, "voice_settings"),
    ("higgs2p5", {"voice_settings": {1: 1.0}}, "voice_settings"),
    ("higgs2p5", {"voice_settings": {"pitch": object()}}, "voice_settings"),
    ("higgs2p5", {"voice_settings": {"pitch": float("nan")}}, "voice_settings"),
    ("higgs2p5", {"sampling": 0.7}, "sampling"),
    ("higgs2p5", {"sampling": {"temperature": float("inf")}}, "sampling"),
    ("higgs2p5", {"sampling": {"temperature": b"hot"}}, "sampling"),
    ("higgs2p5", {"voice_id": 123}, "voice_id"),
    ("higgs2p5", {"voice_id": ""}, "voice_id"),
    ("higgs2p5", {"voice_id": "   "}, "voice_id"),
    ("higgs2p5", {"voice_url": "ftp://example.com/a.wav"}, "voice_url"),
    ("higgs2p5", {"voice_url": "example.com/a.wav"}, "voice_url"),
    ("higgs2p5", {"voice_url": "file:///etc/passwd"}, "voice_url"),
    ("higgs2p5", {"voice_url": ""}, "voice_url"),
    ("higgs2p5", {"voice_url": 5}, "voice_url"),
    ("chatterbox", {"exaggeration": -0.1}, "exaggeration"),
    ("chatterbox", {"exaggeration": 10.5}, "exaggeration"),
    ("chatterbox", {"exaggeration": float("nan")}, "exaggeration"),
    ("chatterbox", {"exaggeration": float("inf")}, "exaggeration"),
    ("chatterbox", {"exaggeration": "0.5"}, "exaggeration"),
    ("chatterbox", {"exaggeration": True}, "exaggeration"),
    ("chatterbox", {"temperature": 0}, "temperature"),
    ("chatterbox", {"temperature": -1.0}, "temperature"),
    ("chatterbox", {"temperature": 11}, "temperature"),
    ("chatterbox", {"temperature": float("nan")}, "temperature"),
    ("chatterbox", {"temperature": [0.5]}, "temperature"),
    ("chatterbox", {"language_id": 7}, "language_id"),
    ("chatterbox", {"audio_prompt_file": ""}, "audio_prompt_file"),
    ("qwen3-tts", {"instructions": 5}, "instructions"),
    ("qwen3-tts", {"language": ""}, "language"),
    ("qwen3-tts", {"voice_settings": "slow"}, "voice_settings"),
])
def test_eigen_bad_values(eigen: Dialect, model: str, params: Dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request(model, "Hi", eigen.default_voice(model), params, None)
    assert info.value.parameter == expected
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("model", ["higgs2p5", "qwen3-tts"])
@pytest.mark.parametrize("speed", [0, 0.0, -1.0, 4.01, 100, float("nan"), float("inf"), "1.0", True, None])
def test_eigen_voice_settings_speed_out_of_range(eigen: Dialect, model: str, speed: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request(model, "Hi", eigen.default_voice(model), {"voice_settings": {"speed": speed}}, None)
    assert info.value.parameter.startswith("voice_settings")
    if not (isinstance(speed, float) and not math.isfinite(speed)):  # NaN/inf fail the JSON check first
        assert "speed" in str(info.value)


@pytest.mark.parametrize("speed", [0.01, 0.5, 1, 4.0])
def test_eigen_voice_settings_speed_in_range(eigen: Dialect, speed: float) -> None:
    assert frames(eigen, "higgs2p5", "Hi", "Linda", voice_settings={"speed": speed}) == [
        '{"text":"Hi","voice":"Linda","voice_settings":{"speed":%s}}' % json.dumps(speed)
    ]


@pytest.mark.parametrize("value", [0, 0.0, 10, 10.0, 2.5])
def test_eigen_exaggeration_bounds_are_inclusive(eigen: Dialect, value: float) -> None:
    assert frames(eigen, "chatterbox", "Hi", None, exaggeration=value) == [
        '{"text":"Hi","exaggeration":%s}' % json.dumps(float(value))
    ]


@pytest.mark.parametrize("voice", [5, "", "  ", b"Linda"])
def test_eigen_bad_voice(eigen: Dialect, voice: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        eigen.build_request("higgs2p5", "Hi", voice, {}, None)
    assert info.value.parameter == "voice"


def test_eigen_voice_url_scheme_is_case_insensitive(eigen: Dialect) -> None:
    """RFC 3986: URL schemes are case-insensitive, so HTTPS://… is an https URL."""
    assert frames(eigen, "higgs2p5", "Hi", "Linda", voice_url="HTTPS://example.com/ref.wav") == [
        '{"text":"Hi","voice":"Linda","voice_url":"HTTPS://example.com/ref.wav"}'
    ]


# == EigenAI: frames in ================================================================


def test_eigen_complete_is_done(eigen: Dialect) -> None:
    event = eigen.parse_text('{"type":"complete"}', True)
    assert isinstance(event, Done)
    assert event.fields == {"type": "complete"}


def test_eigen_complete_with_extra_fields_is_done(eigen: Dialect) -> None:
    event = eigen.parse_text('{"type": "complete", "duration": 1.5}', False)
    assert isinstance(event, Done)
    assert event.fields == {"type": "complete", "duration": 1.5}


@pytest.mark.parametrize("frame, said, code", [
    ('{"type":"error","message":"Voice not found","code":404}', "Voice not found", 404),
    ('{"type":"error","error":"model overloaded","code":503}', "model overloaded", 503),
    ('{"type":"error","message":"bad request","code":"bad_request"}', "bad request", "bad_request"),
    ('{"type":"error","message":"synthesis failed"}', "synthesis failed", None),
    ('{"error":"internal failure"}', "internal failure", None),
    ('{"type":"error","detail":"queue full","code":503}', "queue full", 503),  # 429 is RateLimited: test_rate_limits
])
@pytest.mark.parametrize("audio_seen", [False, True])
def test_eigen_error_frames_are_server_errors(eigen: Dialect, frame: str, said: str, code: Any,
                                              audio_seen: bool) -> None:
    error = failed_error(eigen.parse_text(frame, audio_seen))
    assert type(error) is ServerError
    assert error.code == code
    assert said in error.message
    assert str(error) == error.message


def test_eigen_error_frame_without_text(eigen: Dialect) -> None:
    error = failed_error(eigen.parse_text('{"type":"error","code":500}', True))
    assert type(error) is ServerError
    assert error.code == 500
    assert error.message


@pytest.mark.parametrize("frame, code", [
    ('{"type":"error","message":"Invalid token","code":401}', 401),
    ('{"type":"error","message":"not allowed","code":403}', 403),
    ('{"type":"error","error":"Unauthorized"}', None),
    ('{"type":"error","message":"Invalid API key"}', None),
    ('{"type":"error","message":"token expired"}', None),
    ('{"error":"authentication failed"}', None),
])
def test_eigen_auth_shaped_errors_before_audio(eigen: Dialect, frame: str, code: Optional[int]) -> None:
    error = failed_error(eigen.parse_text(frame, False))
    assert type(error) is AuthenticationError
    assert error.code == code
    said = json.loads(frame).get("message") or json.loads(frame).get("error")
    assert said in error.message


def test_eigen_auth_code_counts_even_after_audio(eigen: Dialect) -> None:
    error = failed_error(eigen.parse_text('{"type":"error","message":"key revoked","code":401}', True))
    assert type(error) is AuthenticationError
    assert error.code == 401
    assert "key revoked" in error.message


def test_eigen_auth_words_after_audio_are_a_server_error(eigen: Dialect) -> None:
    error = failed_error(eigen.parse_text('{"type":"error","message":"token limit reached"}', True))
    assert type(error) is ServerError
    assert "token limit reached" in error.message


@pytest.mark.parametrize("frame", ["not json", "", "{", "complete", "{'type': 'complete'}", '{"type":"complete"'])
@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_non_json_text_is_a_protocol_error(provider: str, frame: str) -> None:
    with pytest.raises(ProtocolError):
        get_dialect(provider).parse_text(frame, False)


@pytest.mark.parametrize("frame", ["[]", '[{"type":"complete"}]', "42", "3.5", '"complete"', "null", "true",
                                   "{}", '{"type":"progress","percent":50}', '{"type":"ping"}'])
def test_eigen_ignores_json_it_does_not_know(eigen: Dialect, frame: str) -> None:
    assert eigen.parse_text(frame, False) is None
    assert eigen.parse_text(frame, True) is None


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_binary_frames_are_audio(provider: str) -> None:
    dialect = get_dialect(provider)
    for data in (b"\x01", b"\x01\x02\x03", bytes(range(256)) * 10):
        event = dialect.parse_binary(data)
        assert isinstance(event, Audio)
        assert event.data == data
    assert dialect.parse_binary(b"") is None


@pytest.mark.parametrize("audio_seen", [False, True])
def test_eigen_close_4001_is_authentication(eigen: Dialect, audio_seen: bool) -> None:
    error = eigen.close_error(4001, "invalid key", audio_seen)
    assert type(error) is AuthenticationError
    assert error.code == 4001


def test_eigen_close_1008_before_audio_is_authentication(eigen: Dialect) -> None:
    error = eigen.close_error(1008, "policy violation", False)
    assert type(error) is AuthenticationError
    assert error.code == 1008


@pytest.mark.parametrize("code, reason, audio_seen", [
    (1008, "policy violation", True),
    (1011, "internal error", False),
    (1011, "", True),
    (1006, "", False),
    (1000, "", True),
    (None, "", False),
    (None, "", True),
])
def test_eigen_other_closes_are_connection_failed(eigen: Dialect, code: Optional[int], reason: str,
                                                 audio_seen: bool) -> None:
    error = eigen.close_error(code, reason, audio_seen)
    assert type(error) is ConnectionFailed
    assert isinstance(error, ConnectionError)
    assert error.code == code
    if code is not None:
        assert str(code) in error.message
    if reason:
        assert reason in error.message


# == EigenAI: the server's side ==========================================================


@pytest.mark.parametrize("model", ["higgs2p5", "chatterbox", "qwen3-tts"])
def test_eigen_parse_auth_reads_the_client_auth_frame(eigen: Dialect, model: str) -> None:
    request = eigen.build_request(model, "Hi", eigen.default_voice(model), {}, None)
    assert eigen_mod.parse_auth(eigen.open_frames(request, KEY)[0]) == (KEY, model)


@pytest.mark.parametrize("frame", [
    '{"model":"higgs2p5"}',
    '{"token":123,"model":"higgs2p5"}',
    '{"token":null,"model":"higgs2p5"}',
    '{"token":"k"}',
    '{"token":"k","model":"higgs3"}',
    '{"token":"k","model":"zero-indic"}',
    '["k","higgs2p5"]',
    "not json",
    "",
])
def test_eigen_parse_auth_refuses(frame: str) -> None:
    with pytest.raises(ValueError):
        eigen_mod.parse_auth(frame)


def test_eigen_parse_request_reads_the_client_request_frame(eigen: Dialect) -> None:
    request = eigen.build_request("qwen3-tts", "Hello there", "Vivian",
                                  {"language": "English", "voice_settings": {"speed": 1.5}}, {"seed": 3})
    parsed = eigen_mod.parse_request(eigen.request_frames(request)[0], "qwen3-tts")
    assert parsed == {"text": "Hello there", "voice": "Vivian", "language": "English",
                      "voice_settings": {"speed": 1.5}, "seed": 3}
    assert eigen_mod.speed_of(parsed) == 1.5
    assert eigen_mod.language_of(parsed) == "English"


def test_eigen_parse_request_keeps_fields_the_model_does_not_take() -> None:
    assert eigen_mod.parse_request('{"text":"Hi","exaggeration":0.5}', "higgs2p5") == {
        "text": "Hi", "exaggeration": 0.5}


@pytest.mark.parametrize("frame", [
    '{"voice":"Linda"}',
    '{"text":""}',
    '{"text":"   "}',
    '{"text":5}',
    '{"text":null}',
    '{"text":"Hi","voice":5}',
    '["Hi"]',
    "Hi",
])
def test_eigen_parse_request_refuses(frame: str) -> None:
    with pytest.raises(ValueError):
        eigen_mod.parse_request(frame, "higgs2p5")


def test_eigen_complete_frame(eigen: Dialect) -> None:
    assert eigen_mod.complete_frame() == '{"type":"complete"}'
    assert isinstance(eigen.parse_text(eigen_mod.complete_frame(), True), Done)


def test_eigen_error_frame_shapes(eigen: Dialect) -> None:
    assert eigen_mod.error_frame("Voice not found", 404) == '{"type":"error","message":"Voice not found","code":404}'
    assert eigen_mod.error_frame("Voice not found") == '{"type":"error","message":"Voice not found"}'
    error = failed_error(eigen.parse_text(eigen_mod.error_frame("Voice not found", 404), True))
    assert type(error) is ServerError
    assert error.code == 404
    assert "Voice not found" in error.message


def test_eigen_error_frame_for_a_bad_key_reads_as_authentication(eigen: Dialect) -> None:
    error = failed_error(eigen.parse_text(eigen_mod.error_frame("invalid API key", 401), False))
    assert type(error) is AuthenticationError
    assert error.code == 401


@pytest.mark.parametrize("request_fields, speed", [
    ({}, 1.0),
    ({"voice_settings": {"speed": 1.5}}, 1.5),
    ({"voice_settings": {"speed": 2}}, 2.0),
    ({"voice_settings": {"speed": 0.1}}, 0.1),
    ({"voice_settings": {"speed": 4.0}}, 4.0),
    ({"voice_settings": {"speed": 0.05}}, 1.0),
    ({"voice_settings": {"speed": 4.5}}, 1.0),
    ({"voice_settings": {"speed": "fast"}}, 1.0),
    ({"voice_settings": {"speed": True}}, 1.0),
    ({"voice_settings": {"speed": float("nan")}}, 1.0),
    ({"voice_settings": {}}, 1.0),
    ({"voice_settings": "fast"}, 1.0),
    ({"speed": 2.0}, 1.0),
])
def test_eigen_speed_of(request_fields: Dict[str, Any], speed: float) -> None:
    result = eigen_mod.speed_of(request_fields)
    assert type(result) is float
    assert result == speed


@pytest.mark.parametrize("request_fields, language", [
    ({}, None),
    ({"language": "English"}, "English"),
    ({"language_id": "en"}, "en"),
    ({"language": "Chinese", "language_id": "en"}, "Chinese"),
    ({"language": "", "language_id": "fr"}, "fr"),
    ({"language": 5}, None),
    ({"language_id": ["en"]}, None),
])
def test_eigen_language_of(request_fields: Dict[str, Any], language: Optional[str]) -> None:
    assert eigen_mod.language_of(request_fields) == language


# == Shunyalabs: frames out ===============================================================


def test_shunya_config_frame_default(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", "Hello, how are you?", None, {}, None)
    assert shunya.open_frames(request, KEY) == [
        '{"model":"zero-indic","voice":"Nisha","response_format":"pcm","speed":1.0}'
    ]
    assert shunya.request_frames(request) == ['{"input":"Hello, how are you?"}']
    assert request.model == "zero-indic"
    assert request.text == "Hello, how are you?"


def test_shunya_default_voice(shunya: Dialect) -> None:
    assert shunya.default_voice("zero-indic") == "Nisha"


def test_shunya_config_frame_with_every_parameter(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", "नमस्ते", "Varun",
                                   {"speed": 1.5, "language": "hi", "response_format": "pcm"}, None)
    assert shunya.open_frames(request, KEY) == [
        '{"model":"zero-indic","voice":"Varun","response_format":"pcm","speed":1.5,"language":"hi"}'
    ]
    assert shunya.request_frames(request) == ['{"input":"नमस्ते"}']


def test_shunya_config_frame_with_language_only(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", "Hi", "Nisha", {"language": "ta"}, None)
    assert shunya.open_frames(request, None) == [
        '{"model":"zero-indic","voice":"Nisha","response_format":"pcm","speed":1.0,"language":"ta"}'
    ]


def test_shunya_input_frame_escapes_json(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", 'say "hi"\n\tnow', "Nisha", {}, None)
    assert shunya.request_frames(request) == ['{"input":"say \\"hi\\"\\n\\tnow"}']


def test_shunya_key_goes_only_in_the_url(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", "Hi", "Nisha", {}, None)
    assert all(KEY not in frame for frame in shunya.open_frames(request, KEY) + shunya.request_frames(request))
    assert all(KEY not in header for header in shunya.connect_headers(KEY))


def test_shunya_connect_url_adds_the_key(shunya: Dialect) -> None:
    assert shunya.connect_url("wss://tts.shunyalabs.ai/ws", "abc123") == "wss://tts.shunyalabs.ai/ws?api_key=abc123"


def test_shunya_connect_url_replaces_a_key_and_keeps_other_params(shunya: Dialect) -> None:
    url = shunya.connect_url("wss://tts.shunyalabs.ai/ws?api_key=old&region=in&x=", "new-key")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "tts.shunyalabs.ai", "/ws")
    assert sorted(parse_qsl(parts.query, keep_blank_values=True)) == [
        ("api_key", "new-key"), ("region", "in"), ("x", "")]
    assert "old" not in url


def test_shunya_connect_url_encodes_the_key(shunya: Dialect) -> None:
    key = "a b&c/=+?#%"
    url = shunya.connect_url("ws://127.0.0.1:8765/ws?lang=hi", key)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("ws", "127.0.0.1:8765", "/ws", "")
    assert parse_qsl(parts.query, keep_blank_values=True) == [("lang", "hi"), ("api_key", key)]
    assert " " not in url


@pytest.mark.parametrize("url", ["wss://tts.shunyalabs.ai/ws", "wss://tts.shunyalabs.ai/ws?api_key=kept&x=1",
                                 "ws://127.0.0.1:8765/ws?a=b%20c"])
@pytest.mark.parametrize("key", [None, ""])
def test_shunya_connect_url_without_key_is_unchanged(shunya: Dialect, url: str, key: Optional[str]) -> None:
    assert shunya.connect_url(url, key) == url


@pytest.mark.parametrize("speed, sent", [(0.25, "0.25"), (4.0, "4.0"), (4, "4.0"), (1, "1.0"), (2.5, "2.5")])
def test_shunya_speed_in_range(shunya: Dialect, speed: float, sent: str) -> None:
    request = shunya.build_request("zero-indic", "Hi", "Nisha", {"speed": speed}, None)
    assert shunya.open_frames(request, None) == [
        '{"model":"zero-indic","voice":"Nisha","response_format":"pcm","speed":%s}' % sent
    ]


@pytest.mark.parametrize("speed", [0.24, 0.0, -1.0, 4.01, 10, float("nan"), float("inf"), "1.0", True, [1.0]])
def test_shunya_speed_out_of_range(shunya: Dialect, speed: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request("zero-indic", "Hi", "Nisha", {"speed": speed}, None)
    assert info.value.parameter == "speed"


@pytest.mark.parametrize("fmt", ["wav", "mp3", "PCM", "", 1])
def test_shunya_response_format_other_than_pcm(shunya: Dialect, fmt: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request("zero-indic", "Hi", "Nisha", {"response_format": fmt}, None)
    assert info.value.parameter == "response_format"
    assert "pcm" in str(info.value)


@pytest.mark.parametrize("language", ["h", "hind", "en-US", "h1", "", "  ", 5, "hi "])
def test_shunya_language_must_be_a_short_code(shunya: Dialect, language: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request("zero-indic", "Hi", "Nisha", {"language": language}, None)
    assert info.value.parameter == "language"


@pytest.mark.parametrize("language", ["日本", "हि", "éé", "ñu"])
def test_shunya_language_must_be_ascii_letters(shunya: Dialect, language: str) -> None:
    """ISO 639 codes are Latin letters; other scripts' letters are not language codes."""
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request("zero-indic", "Hi", "Nisha", {"language": language}, None)
    assert info.value.parameter == "language"


@pytest.mark.parametrize("language", ["hi", "ta", "en", "kok"])
def test_shunya_language_codes_accepted(shunya: Dialect, language: str) -> None:
    request = shunya.build_request("zero-indic", "Hi", "Nisha", {"language": language}, None)
    assert json.loads(shunya.open_frames(request, None)[0])["language"] == language


def test_shunya_input_keyword_is_refused(shunya: Dialect) -> None:
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request("zero-indic", "Hi", "Nisha", {"input": "other"}, None)
    assert info.value.parameter == "input"


@pytest.mark.parametrize("voice", ["", "   ", 5, b"Nisha"])
def test_shunya_bad_voice(shunya: Dialect, voice: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request("zero-indic", "Hi", voice, {}, None)
    assert info.value.parameter == "voice"


@pytest.mark.parametrize("model", ["zero", "higgs2p5", ""])
def test_shunya_unknown_model(shunya: Dialect, model: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request(model, "Hi", "Nisha", {}, None)
    assert info.value.parameter == "model"
    assert "zero-indic" in str(info.value)


def test_shunya_extra_passes_unknown_fields(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", "Hi", "Nisha", {}, {"trim_silence": True})
    assert shunya.open_frames(request, None) == [
        '{"model":"zero-indic","voice":"Nisha","response_format":"pcm","speed":1.0,"trim_silence":true}'
    ]


@pytest.mark.parametrize("clash", ["input", "model", "api_key"])
def test_shunya_extra_may_not_override_what_ttsstream_sets(shunya: Dialect, clash: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        shunya.build_request("zero-indic", "Hi", "Nisha", {}, {clash: "x"})
    assert info.value.parameter == "extra"


def test_shunya_session_equal_for_equal_configs(shunya: Dialect) -> None:
    a = shunya.build_request("zero-indic", "First sentence.", "Nisha", {"speed": 1.0}, None)
    b = shunya.build_request("zero-indic", "A different second sentence.", None, {}, None)
    c = shunya.build_request("zero-indic", "Third.", "Nisha", {"speed": 1, "language": None}, None)
    assert a.session == b.session == c.session
    assert hash(a.session) == hash(b.session)


@pytest.mark.parametrize("voice, params, extra", [
    ("Varun", {}, None),
    ("Nisha", {"speed": 1.5}, None),
    ("Nisha", {"language": "hi"}, None),
    ("Nisha", {}, {"trim_silence": True}),
])
def test_shunya_session_differs_for_different_configs(shunya: Dialect, voice: str, params: Dict[str, Any],
                                                      extra: Optional[Dict[str, Any]]) -> None:
    base = shunya.build_request("zero-indic", "Hi", "Nisha", {}, None)
    other = shunya.build_request("zero-indic", "Hi", voice, params, extra)
    assert other.session != base.session


# == Shunyalabs: frames in ===============================================================


def test_shunya_chunk_metadata(shunya: Dialect) -> None:
    frame = ('{"type":"chunk","request_id":"r-1","chunk_index":0,"is_final":false,'
             '"format":"pcm","sample_rate":16000}')
    event = shunya.parse_text(frame, False)
    assert isinstance(event, Metadata)
    assert event.sample_rate == 16000
    assert event.fields == json.loads(frame)


@pytest.mark.parametrize("value, rate", [
    (24000, 24000), (22050, 22050), (16000.0, 16000), ('"8000"', 8000),
    ("true", None), ("5", None), ("1000000000", None), ('"fast"', None), ("null", None),
])
def test_shunya_chunk_sample_rate_values(shunya: Dialect, value: Any, rate: Optional[int]) -> None:
    event = shunya.parse_text('{"type":"chunk","sample_rate":%s}' % value, False)
    assert isinstance(event, Metadata)
    assert event.sample_rate == rate


@pytest.mark.parametrize("value", ["1e999", "-1e999", "Infinity"])
def test_shunya_chunk_with_an_infinite_sample_rate(shunya: Dialect, value: str) -> None:
    """1e999 is valid JSON that Python reads as inf; it is no more a sample rate than 10**9."""
    event = shunya.parse_text('{"type":"chunk","sample_rate":%s}' % value, False)
    assert isinstance(event, Metadata)
    assert event.sample_rate is None


@pytest.mark.parametrize("kind", ["completion", "complete", "done"])
def test_shunya_end_types_are_done(shunya: Dialect, kind: str) -> None:
    event = shunya.parse_text('{"type":"%s"}' % kind, True)
    assert isinstance(event, Done)
    assert event.fields == {"type": kind}


def test_shunya_sdk_shaped_completion_is_done(shunya: Dialect) -> None:
    frame = ('{"type":"completion","request_id":"r-1","status":"complete","total_chunks":3,'
             '"total_duration_seconds":1.5,"format":"pcm","sample_rate":24000}')
    event = shunya.parse_text(frame, True)
    assert isinstance(event, Done)
    assert event.fields["total_chunks"] == 3


@pytest.mark.parametrize("frame, said", [
    ('{"type":"completion","request_id":"r-1","status":"error","error_message":"synthesis failed"}',
     "synthesis failed"),
    ('{"type":"completion","status":"error","error":"voice unavailable"}', "voice unavailable"),
    ('{"type":"done","status":"error","message":"engine crashed"}', "engine crashed"),
])
def test_shunya_completion_with_error_status_fails(shunya: Dialect, frame: str, said: str) -> None:
    error = failed_error(shunya.parse_text(frame, True))
    assert type(error) is ServerError
    assert said in error.message


@pytest.mark.parametrize("frame, said, code", [
    ('{"type":"error","error":"Voice not found"}', "Voice not found", None),
    ('{"type":"error","error":"overloaded","code":503}', "overloaded", 503),  # 429 is RateLimited: test_rate_limits
    ('{"type":"error","error":{"message":"quota exceeded","code":"quota"}}', "quota exceeded", "quota"),
    ('{"type":"error","error":{"message":"bad voice","code":400}}', "bad voice", 400),
    ('{"type":"error","message":"plain message"}', "plain message", None),
])
def test_shunya_error_frames_are_server_errors(shunya: Dialect, frame: str, said: str, code: Any) -> None:
    error = failed_error(shunya.parse_text(frame, False))
    assert type(error) is ServerError
    assert error.code == code
    assert said in error.message
    assert str(error) == error.message


def test_shunya_error_without_text(shunya: Dialect) -> None:
    error = failed_error(shunya.parse_text('{"type":"error"}', True))
    assert type(error) is ServerError
    assert error.code is None
    assert error.message


@pytest.mark.parametrize("frame", ["[]", "42", '"completion"', "null", "{}", '{"type":"ping"}',
                                   '{"type":"progress","percent":50}', '{"type":"chunk","request_id":"r"}'])
def test_shunya_ignores_json_it_does_not_know(shunya: Dialect, frame: str) -> None:
    assert shunya.parse_text(frame, False) is None
    assert shunya.parse_text(frame, True) is None


@pytest.mark.parametrize("audio_seen", [False, True])
def test_shunya_close_4001_is_authentication(shunya: Dialect, audio_seen: bool) -> None:
    error = shunya.close_error(4001, "", audio_seen)
    assert type(error) is AuthenticationError
    assert error.code == 4001
    assert "SHUNYALABS_API_KEY" in error.message


@pytest.mark.parametrize("code, reason", [(1008, "policy"), (1011, "internal error"), (1006, ""), (1000, ""),
                                          (None, "")])
@pytest.mark.parametrize("audio_seen", [False, True])
def test_shunya_other_closes_are_connection_failed(shunya: Dialect, code: Optional[int], reason: str,
                                                   audio_seen: bool) -> None:
    error = shunya.close_error(code, reason, audio_seen)
    assert type(error) is ConnectionFailed
    assert error.code == code
    if code is not None:
        assert str(code) in error.message
    if reason:
        assert reason in error.message


# == Shunyalabs: the server's side ========================================================


def test_shunya_parse_config_reads_the_client_config_frame(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", "Hi", "Priya", {"speed": 0.75, "language": "ta"}, None)
    config = shunya_mod.parse_config(shunya.open_frames(request, KEY)[0])
    assert (config.model, config.voice, config.language, config.response_format, config.speed) == (
        "zero-indic", "Priya", "ta", "pcm", 0.75)


def test_shunya_parse_config_documented_frame() -> None:
    config = shunya_mod.parse_config(
        '{"model": "zero-indic", "voice": "Nisha", "response_format": "pcm", "speed": 1.0}')
    assert (config.model, config.voice, config.language, config.response_format, config.speed) == (
        "zero-indic", "Nisha", None, "pcm", 1.0)


def test_shunya_parse_config_defaults() -> None:
    config = shunya_mod.parse_config("{}")
    assert (config.model, config.voice, config.language, config.response_format, config.speed) == (
        "zero-indic", None, None, "pcm", 1.0)
    assert type(shunya_mod.parse_config('{"speed": 2}').speed) is float
    assert shunya_mod.parse_config('{"speed": null}').speed == 1.0
    assert shunya_mod.parse_config('{"response_format": "wav"}').response_format == "wav"


@pytest.mark.parametrize("frame", [
    '{"model":"zero"}',
    '{"voice":5}',
    '{"language":["hi"]}',
    '{"response_format":"mp3"}',
    '{"speed":0.2}',
    '{"speed":4.5}',
    '{"speed":"fast"}',
    '{"speed":true}',
    '{"speed":NaN}',
    '[]',
    "not json",
    "",
])
def test_shunya_parse_config_refuses(frame: str) -> None:
    with pytest.raises(ValueError):
        shunya_mod.parse_config(frame)


def test_shunya_parse_input_reads_the_client_input_frame(shunya: Dialect) -> None:
    request = shunya.build_request("zero-indic", 'नमस्ते "दोस्त"', "Nisha", {}, None)
    assert shunya_mod.parse_input(shunya.request_frames(request)[0]) == 'नमस्ते "दोस्त"'


@pytest.mark.parametrize("frame", ['{}', '{"input":""}', '{"input":"  "}', '{"input":5}', '{"text":"Hi"}',
                                   '["Hi"]', "Hi", ""])
def test_shunya_parse_input_refuses(frame: str) -> None:
    with pytest.raises(ValueError):
        shunya_mod.parse_input(frame)


def sdk_payload(text: str = "Hello there", **config: Any) -> str:
    from shunyalabs.tts import TTSConfig

    options = {"voice": "Nisha", "language": "hi"}
    options.update(config)
    return json.dumps(TTSConfig(**options).to_request_payload(text, request_type="streaming"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's own pydantic use
def test_shunya_is_gateway_request() -> None:
    assert shunya_mod.is_gateway_request(sdk_payload()) is True
    assert shunya_mod.is_gateway_request('{"input":"Hi","request_type":"streaming"}') is True
    assert shunya_mod.is_gateway_request('{"model":"zero-indic","voice":"Nisha","response_format":"pcm",'
                                         '"speed":1.0}') is False
    assert shunya_mod.is_gateway_request('{"input":"Hi"}') is False
    assert shunya_mod.is_gateway_request('{"request_type":"streaming"}') is False
    assert shunya_mod.is_gateway_request("{}") is False
    assert shunya_mod.is_gateway_request("[]") is False
    assert shunya_mod.is_gateway_request("not json") is False


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's own pydantic use
def test_shunya_parse_gateway_request_reads_the_sdk_payload() -> None:
    text, config = shunya_mod.parse_gateway_request(sdk_payload("Hello there", voice="Varun", speed=1.25))
    assert text == "Hello there"
    assert (config.model, config.voice, config.language, config.response_format, config.speed) == (
        "zero-indic", "Varun", "hi", "wav", 1.25)


def test_shunya_parse_gateway_request_defaults_to_wav() -> None:
    text, config = shunya_mod.parse_gateway_request('{"input":"Hi","request_type":"streaming"}')
    assert text == "Hi"
    assert (config.model, config.voice, config.language, config.response_format, config.speed) == (
        "zero-indic", None, None, "wav", 1.0)


@pytest.mark.parametrize("frame", [
    '{"input":"Hi","request_type":"batch"}',
    '{"request_type":"streaming"}',
    '{"input":"","request_type":"streaming"}',
    '{"input":"   ","request_type":"streaming"}',
    '{"input":7,"request_type":"streaming"}',
    '{"input":"Hi","request_type":"streaming","speed":9}',
    '{"input":"Hi","request_type":"streaming","model":"other"}',
    '{"input":"Hi","request_type":"streaming","response_format":"ogg"}',
    '{"input":"Hi","request_type":"streaming","voice":1}',
    '["Hi"]',
    "not json",
])
def test_shunya_parse_gateway_request_refuses(frame: str) -> None:
    with pytest.raises(ValueError):
        shunya_mod.parse_gateway_request(frame)


def test_shunya_chunk_frame_shape(shunya: Dialect) -> None:
    from shunyalabs.tts import TTSChunk

    frame = shunya_mod.chunk_frame("req-1", 2, True, "pcm", 24000)
    assert frame == ('{"type":"chunk","request_id":"req-1","chunk_index":2,"is_final":true,'
                     '"format":"pcm","sample_rate":24000}')
    chunk = TTSChunk(**json.loads(frame))
    assert (chunk.type, chunk.request_id, chunk.chunk_index, chunk.is_final, chunk.format, chunk.sample_rate) == (
        "chunk", "req-1", 2, True, "pcm", 24000)
    event = shunya.parse_text(frame, False)
    assert isinstance(event, Metadata)
    assert event.sample_rate == 24000


def test_shunya_completion_frame_shape(shunya: Dialect) -> None:
    from shunyalabs.tts import TTSCompletion

    frame = shunya_mod.completion_frame("req-1", 3, 1.23456, "wav", 16000)
    assert frame == ('{"type":"completion","request_id":"req-1","status":"complete","total_chunks":3,'
                     '"total_duration_seconds":1.235,"format":"wav","sample_rate":16000}')
    completion = TTSCompletion(**json.loads(frame))
    assert (completion.type, completion.request_id, completion.status, completion.total_chunks,
            completion.total_duration_seconds, completion.error_message, completion.format,
            completion.sample_rate) == ("completion", "req-1", "complete", 3, 1.235, None, "wav", 16000)
    assert isinstance(shunya.parse_text(frame, True), Done)


def test_shunya_error_frame_shape(shunya: Dialect) -> None:
    assert shunya_mod.error_frame("Voice not found") == '{"type":"error","error":"Voice not found"}'
    assert shunya_mod.error_frame("busy", 503) == '{"type":"error","error":"busy","code":503}'
    # The SDK reads msg["error"] as the detail.
    assert json.loads(shunya_mod.error_frame("busy", 503))["error"] == "busy"
    error = failed_error(shunya.parse_text(shunya_mod.error_frame("busy", 503), True))
    assert type(error) is ServerError
    assert error.code == 503
    assert "busy" in error.message


# == malformed frames that are valid JSON or too deep to parse =============================


DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_too_deeply_nested_text_is_a_protocol_error(provider: str) -> None:
    """A frame json cannot decode (RecursionError inside json) is still a protocol error."""
    with pytest.raises(ProtocolError):
        get_dialect(provider).parse_text(DEEP_ARRAY, False)
    with pytest.raises(ProtocolError):
        get_dialect(provider).parse_text(DEEP_OBJECT, True)


@pytest.mark.parametrize("parse", [
    eigen_mod.parse_auth,
    lambda text: eigen_mod.parse_request(text, "higgs2p5"),
    shunya_mod.parse_config,
    shunya_mod.parse_input,
    shunya_mod.parse_gateway_request,
], ids=["parse_auth", "parse_request", "parse_config", "parse_input", "parse_gateway_request"])
def test_server_side_parsers_refuse_too_deep_json_with_value_error(parse: Any) -> None:
    with pytest.raises(ValueError):
        parse(DEEP_ARRAY)


def test_is_gateway_request_is_false_for_too_deep_json() -> None:
    assert shunya_mod.is_gateway_request(DEEP_ARRAY) is False


@pytest.mark.parametrize("code", ["[400]", '{"http":400}'])
def test_eigen_error_with_a_structured_code(eigen: Dialect, code: str) -> None:
    """A server may put a list or object in "code"; it is still that server's error."""
    event = eigen.parse_text('{"type":"error","message":"bad request","code":%s}' % code, True)
    error = failed_error(event)
    assert type(error) is ServerError
    assert error.code == json.loads(code)
    assert "bad request" in error.message


# == errors ==============================================================================


ALL_ERRORS = [AuthenticationError, ConnectionFailed, ProtocolError, ServerError, RateLimited, SynthesisTimeout,
              InvalidParameterError, PlaybackError, Cancelled]


def test_error_module_exports_the_tree() -> None:
    assert set(errors.__all__) == {cls.__name__ for cls in ALL_ERRORS} | {"TTSError"}


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_every_error_is_a_tts_error(cls: type) -> None:
    assert issubclass(cls, TTSError)
    assert issubclass(cls, Exception)


def test_builtin_bases() -> None:
    assert issubclass(ConnectionFailed, ConnectionError)
    assert issubclass(SynthesisTimeout, TimeoutError)
    assert issubclass(InvalidParameterError, ValueError)
    for cls in (AuthenticationError, ProtocolError, ServerError, PlaybackError, Cancelled):
        assert not issubclass(cls, (ConnectionError, TimeoutError, ValueError)), cls


@pytest.mark.parametrize("cls", [TTSError] + ALL_ERRORS)
def test_str_is_the_message(cls: type) -> None:
    error = cls("what went wrong; what to do")
    assert str(error) == "what went wrong; what to do"
    assert error.message == "what went wrong; what to do"


def test_tts_error_default_message() -> None:
    assert str(TTSError()) == ""
    assert TTSError().message == ""


def test_authentication_error_fields() -> None:
    error = AuthenticationError("refused", code=4001, status=401)
    assert (error.message, error.code, error.status, str(error)) == ("refused", 4001, 401, "refused")
    bare = AuthenticationError("refused")
    assert (bare.code, bare.status) == (None, None)


def test_connection_failed_fields() -> None:
    error = ConnectionFailed("dropped", status=503, code=1006)
    assert (error.message, error.status, error.code, str(error)) == ("dropped", 503, 1006, "dropped")
    positional = ConnectionFailed("dropped", 502, 1011)
    assert (positional.status, positional.code) == (502, 1011)
    bare = ConnectionFailed("dropped")
    assert (bare.status, bare.code) == (None, None)
    with pytest.raises(ConnectionError) as info:
        raise ConnectionFailed("dropped", code=1006)
    assert info.value.code == 1006


def test_server_error_fields() -> None:
    error = ServerError("EigenAI reported an error: boom", code="rate_limited")
    assert (error.message, error.code, str(error)) == ("EigenAI reported an error: boom", "rate_limited",
                                                       "EigenAI reported an error: boom")
    assert ServerError("x").code is None


def test_invalid_parameter_error_fields() -> None:
    error = InvalidParameterError("speed must be in [0.25, 4]", parameter="speed")
    assert (error.message, error.parameter) == ("speed must be in [0.25, 4]", "speed")
    assert InvalidParameterError("x").parameter is None
    with pytest.raises(ValueError):
        raise InvalidParameterError("x", parameter="x")


def test_synthesis_timeout_is_caught_as_timeout_error() -> None:
    with pytest.raises(TimeoutError) as info:
        raise SynthesisTimeout("no frame for 30 s")
    assert str(info.value) == "no frame for 30 s"


def test_build_request_errors_are_value_errors(eigen: Dialect) -> None:
    with pytest.raises(ValueError):
        eigen.build_request("higgs2p5", "", "Linda", {}, None)


def test_protocol_layer_values_are_plain() -> None:
    """Events and requests carry exactly what they were given."""
    assert Audio(b"\x00\x01").data == b"\x00\x01"
    assert Metadata(16000, {"a": 1}).sample_rate == 16000
    assert Done({"type": "complete"}).fields == {"type": "complete"}
    error = ServerError("x")
    assert Failed(error).error is error
    request = Request("higgs2p5", "Hi", {"text": "Hi"}, ("higgs2p5",))
    assert (request.model, request.text, request.params, request.session) == (
        "higgs2p5", "Hi", {"text": "Hi"}, ("higgs2p5",))


# -- ttsstream's own extension: word times (protocols.extensions) -------------------------

WORDS_MESSAGE = ('{"type":"ttsstream.words","words":[{"text":"Hello","char_start":0,"char_end":5,'
                 '"start":0.0,"end":0.25},{"text":"world","char_start":7,"char_end":12,"start":0.35,"end":0.6}]}')


@pytest.mark.parametrize("name", ["eigenai", "shunyalabs"])
def test_both_dialects_parse_the_words_message(name: str) -> None:
    event = get_dialect(name).parse_text(WORDS_MESSAGE, audio_seen=True)
    assert isinstance(event, WordTimes)
    assert event.words == (WordTime("Hello", 0, 5, 0.0, 0.25), WordTime("world", 7, 12, 0.35, 0.6))
    assert repr(event) == "WordTimes(2 words)"
    empty = get_dialect(name).parse_text('{"type":"ttsstream.words","words":[]}', audio_seen=False)
    assert isinstance(empty, WordTimes) and empty.words == ()


def test_the_words_message_round_trips_and_keeps_its_shape() -> None:
    words = [WordTime("नमस्ते", 0, 6, 0.0, 0.61), WordTime("1,250", 8, 13, 0.7, 1.2345678)]
    frame = words_frame(words)
    assert json.loads(frame) == {"type": "ttsstream.words", "words": [
        {"text": "नमस्ते", "char_start": 0, "char_end": 6, "start": 0.0, "end": 0.61},
        {"text": "1,250", "char_start": 8, "char_end": 13, "start": 0.7, "end": 1.234568}]}
    assert "नमस्ते" in frame  # non-ASCII as is, like every message we send
    event = parse_words(json.loads(frame))
    assert event is not None and event.words[1] == WordTime("1,250", 8, 13, 0.7, 1.234568)


@pytest.mark.parametrize("name", ["eigenai", "shunyalabs"])
@pytest.mark.parametrize("words", [
    None, "Hello", {"text": "Hello"}, [1], [None], [{"text": "Hello"}],
    [{"text": 5, "char_start": 0, "char_end": 5, "start": 0, "end": 1}],
    [{"text": "Hello", "char_start": 0.0, "char_end": 5, "start": 0, "end": 1}],
    [{"text": "Hello", "char_start": True, "char_end": 5, "start": 0, "end": 1}],
    [{"text": "Hello", "char_start": 6, "char_end": 5, "start": 0, "end": 1}],
    [{"text": "Hello", "char_start": -1, "char_end": 5, "start": 0, "end": 1}],
    [{"text": "Hello", "char_start": 0, "char_end": 5, "start": 1, "end": 0.5}],
    [{"text": "Hello", "char_start": 0, "char_end": 5, "start": -0.1, "end": 1}],
    [{"text": "Hello", "char_start": 0, "char_end": 5, "start": "0", "end": 1}],
    [{"text": "Hello", "char_start": 0, "char_end": 5, "start": 0, "end": 10 ** 400}],
    [{"text": "ok", "char_start": 0, "char_end": 2, "start": 0, "end": 1}, {"text": "bad"}],
])
def test_a_malformed_words_message_is_ignored_with_a_debug_log(name: str, words: Any, caplog: Any) -> None:
    caplog.set_level("DEBUG", logger="ttsstream.protocols")
    message = json.dumps({"type": "ttsstream.words", **({} if words is None else {"words": words})})
    assert get_dialect(name).parse_text(message, audio_seen=True) is None
    assert any("malformed ttsstream.words" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("name", ["eigenai", "shunyalabs"])
def test_other_ttsstream_messages_are_unknown_json_and_ignored(name: str) -> None:
    dialect = get_dialect(name)
    assert dialect.parse_text('{"type":"ttsstream.phonemes","phonemes":[]}', audio_seen=True) is None
    # A words message with a sample_rate is still words, not Shunyalabs metadata.
    event = dialect.parse_text('{"type":"ttsstream.words","words":[],"sample_rate":16000}', audio_seen=True)
    assert isinstance(event, WordTimes)


def test_the_extension_header_asks_by_name_in_any_case() -> None:
    assert header_line(WORDS) == "X-TTSStream-Extensions: words"
    assert requested(["Words , other", "third"]) == {"words", "other", "third"}
    assert requested([]) == frozenset() and requested([" , "]) == frozenset()
    assert WORDS not in requested(["wordsmith"])
