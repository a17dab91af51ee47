"""``ttsstream.voices()``: each model's voices as data, the filters, and the local server's
closed list refused before anything is sent (while the services' open lists are not)."""

from __future__ import annotations

import dataclasses

import pytest

import ttsstream
from ttsstream.protocols import DIALECTS
from ttsstream.server.espeak import VOICES as SERVER_VOICES


def test_every_model_lists_its_voices_with_the_default_first() -> None:
    found = ttsstream.voices()
    assert found and all(isinstance(voice, ttsstream.Voice) for voice in found)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].name = "Other"  # type: ignore[misc]
    for provider in ("eigenai", "shunyalabs", "local"):
        for name, dialect in DIALECTS.items():
            if provider not in (name, "local"):
                continue
            for model in dialect.parameters:
                default = dialect().default_voice(model)
                names = [voice.name for voice in ttsstream.voices(provider, model)]
                assert names[:1] == ([default] if default else []), (provider, model, names)
    qwen = {voice.name: voice for voice in ttsstream.voices("eigenai", "qwen3-tts")}
    assert (qwen["Vivian"].language, qwen["Vivian"].gender) == ("zh", "female")
    assert (qwen["Ryan"].language, qwen["Ryan"].gender) == ("en", "male")
    assert "en" in qwen["Vivian"].languages and len(qwen) == 9
    nisha = ttsstream.voices("shunyalabs", "zero-indic")[0]
    assert (nisha.name, nisha.language, nisha.gender) == ("Nisha", None, "female") and "ta" in nisha.languages
    assert ttsstream.voices("eigenai", "chatterbox") == []  # no presets: a cloned voice's voice_id


def test_the_local_list_is_the_bundled_servers() -> None:
    local = {voice.name for voice in ttsstream.voices("local")}
    assert local == {name for name, _ in SERVER_VOICES.values()}
    assert {voice.provider for voice in ttsstream.voices("local")} == {"local"}


def test_the_filters_work() -> None:
    hindi = ttsstream.voices(language="Hindi")
    assert hindi and {voice.model for voice in hindi} == {"zero-indic"}
    assert ttsstream.voices(language="hi-IN") == ttsstream.voices(language="hi") == hindi
    english = ttsstream.voices("eigenai", language="en")
    assert {voice.name for voice in english} == {"Linda", "Jack", "Ryan", "Aiden"}
    assert {voice.provider for voice in ttsstream.voices(model="zero-indic")} == {"shunyalabs", "local"}


@pytest.mark.parametrize("arguments, named", [
    (dict(provider="acme"), "eigenai, shunyalabs, local"),
    (dict(provider="shunyalabs", model="higgs2p5"), "zero-indic"),
    (dict(model="nope"), "qwen3-tts"),
    (dict(language="Klingon"), "hi (Hindi)"),
])
def test_bad_arguments_name_the_valid_ones(arguments: dict, named: str) -> None:
    with pytest.raises(ttsstream.InvalidParameterError) as caught:
        ttsstream.voices(**arguments)
    assert named in str(caught.value)


def test_an_unknown_local_voice_is_refused_before_anything_is_sent() -> None:
    with ttsstream.TTSClient(provider="local") as client:
        with pytest.raises(ttsstream.InvalidParameterError) as caught:
            client.speak("Hello.", voice="Nobody")
        assert caught.value.parameter == "voice"
        assert "'Nobody'" in str(caught.value) and "Linda" in str(caught.value) and "Nisha" in str(caught.value)
        with pytest.raises(ttsstream.InvalidParameterError):
            client.prewarm(1, voice="Nobody")
    with pytest.raises(ttsstream.InvalidParameterError):
        ttsstream.TTSClient(provider="local", voice="Nobody")
    with ttsstream.TTSClient(provider="local", model="chatterbox") as client:
        with pytest.raises(ttsstream.InvalidParameterError) as caught:
            client.speak("Hello.", voice_id="Nobody")  # chatterbox names its voice with voice_id
        assert caught.value.parameter == "voice_id"


def test_a_local_voice_in_any_case_and_of_any_model_is_spoken() -> None:
    with ttsstream.TTSClient(provider="local", model="zero-indic") as client:
        assert client.speak("Hi.", voice="linda").duration > 0  # the server matches names in any case


def test_the_services_lists_stay_open(server) -> None:
    # A name ttsstream does not know goes to a real service, which may have it (a new
    # preset, a cloned voice): the bundled server, standing in for it, answers.
    with ttsstream.TTSClient(provider="eigenai", url=server.eigenai_url) as client:
        assert client.speak("Hi.", voice="Nobody").duration > 0
    assert server.transcript[-1].voice == "Nobody"


def test_a_url_of_neither_dialect_is_not_guessed() -> None:
    for url in ("ws://127.0.0.1:1/ws/tts", "ws://127.0.0.1:1/proxy/tts", "ws://127.0.0.1:1"):
        with pytest.raises(ttsstream.InvalidParameterError) as caught:
            ttsstream.speak("Hello.", url=url)
        assert "provider='eigenai'" in str(caught.value) and "provider='shunyalabs'" in str(caught.value)
    with ttsstream.TTSClient(provider="shunyalabs", url="ws://127.0.0.1:1/proxy/tts") as client:
        assert "/proxy/tts" in repr(client)  # named, the path is used as given
