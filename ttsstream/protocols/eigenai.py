"""EigenAI's WebSocket dialect (``/api/v1/generate/ws``), both sides of it.

The client opens the socket, sends ``{"token", "model"}``, then one request such as
``{"text", "voice"}``. The server answers with binary frames of 16-bit 24 kHz mono PCM
and ends with ``{"type": "complete"}``. The error format is not documented; we read
``{"type": "error", "message"|"error": …, "code": …}``.

This is the only module that knows EigenAI's field names. It is pure: no I/O.
Imports: protocols.base, protocols.extensions, protocols.limits, errors, checks and the
standard library.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..checks import is_int, is_number
from ..errors import AuthenticationError, ConnectionFailed, InvalidParameterError, ServerError, TTSError
from .base import (
    Dialect,
    Done,
    Event,
    Failed,
    Request,
    check_mapping,
    check_model,
    check_text,
    dumps,
    loads_object,
    reject_foreign,
)
from .extensions import WORDS_TYPE, parse_words
from .limits import rate_limited, rate_limited_close
from .params import NUMBER, OBJECT, STRING, Param, check_params, names_of, table

__all__ = ["EigenAI", "PARAMETERS", "MODELS", "parse_auth", "parse_request", "complete_frame", "error_frame",
           "speed_of", "language_of", "voice_of", "REFUSE_CLOSE_CODE"]

# -- the models and their parameters: the one table that validation and listings read ----

_VOICE = Param("voice", STRING, "a preset voice by name")
_VOICE_ID = Param("voice_id", STRING, "the id of a cloned or custom voice", setting="voice_id")
_VOICE_URL = Param("voice_url", STRING, "a reference recording to clone the voice from",
                   pattern=re.compile(r"https?://.+", re.IGNORECASE | re.DOTALL), shape="an http(s) URL")
_VOICE_SETTINGS = Param("voice_settings", OBJECT, "voice controls", fields=(
    Param("speed", NUMBER, "speaking rate; 1.0 is normal", low=0.0, high=4.0, low_open=True, setting="speed"),
))
_SAMPLING = Param("sampling", OBJECT, 'sampling controls, e.g. {"temperature": 0.7, "top_p": 0.95}')
_LANGUAGE_ID = Param("language_id", STRING, "the language, e.g. en or hi", setting="language")
_AUDIO_PROMPT_FILE = Param("audio_prompt_file", STRING, "a reference recording of the voice to speak with")
_EXAGGERATION = Param("exaggeration", NUMBER, "emotional intensity; 0 is flat", low=0.0, high=10.0,
                      setting="exaggeration")
_TEMPERATURE = Param("temperature", NUMBER, "sampling temperature; higher varies more", low=0.0, high=10.0,
                     low_open=True, setting="temperature")
_LANGUAGE = Param("language", STRING, "the language by name, e.g. English, Chinese or Auto", setting="language")
_INSTRUCTIONS = Param("instructions", STRING, "how to speak, in words, e.g. 'Speak warmly.'",
                      setting="instructions")

PARAMETERS: Dict[str, Dict[str, Param]] = {
    "higgs2p5": table(_VOICE, _VOICE_ID, _VOICE_URL, _VOICE_SETTINGS, _SAMPLING),
    "chatterbox": table(_LANGUAGE_ID, _VOICE_ID, _AUDIO_PROMPT_FILE, _EXAGGERATION, _TEMPERATURE),
    "qwen3-tts": table(_VOICE, _VOICE_ID, _VOICE_URL, _LANGUAGE, _INSTRUCTIONS, _VOICE_SETTINGS),
}
MODELS = names_of(PARAMETERS)

DEFAULT_VOICES = {"higgs2p5": "Linda", "qwen3-tts": "Vivian", "chatterbox": None}

# Close codes and error codes that mean "your key was refused".
AUTH_CLOSE_CODES = frozenset({4001, 1008})
AUTH_ERROR_CODES = frozenset({401, 403, 4001, 1008, "401", "403", "unauthorized", "forbidden",
                              "invalid_token", "invalid_api_key", "authentication_error"})
_AUTH_WORDS = ("auth", "token", "api key", "api_key", "unauthorized", "forbidden", "credential")


class EigenAI(Dialect):
    """EigenAI's ``/api/v1/generate/ws``: auth message, request, PCM, ``complete``."""

    name = "eigenai"
    title = "EigenAI"
    env_key = "EIGENAI_API_KEY"
    default_url = "wss://api-web.eigenai.com/api/v1/generate/ws"
    parameters = PARAMETERS
    models = MODELS
    default_model = "higgs2p5"
    sample_rate = 24000
    reusable = False  # the document describes one request per connection

    def default_voice(self, model: str) -> Optional[str]:
        return DEFAULT_VOICES.get(model)

    def build_request(self, model: str, text: str, voice: Optional[str], params: Mapping[str, Any],
                      extra: Optional[Mapping[str, Any]]) -> Request:
        model = check_model(type(self), model)
        text = check_text(text)
        if "text" in params:
            raise InvalidParameterError("pass the text as speak()'s first argument, not text=", parameter="text")
        reject_foreign(type(self), model, params)
        fields: Dict[str, Any] = {"text": text}
        if voice is not None:
            if "voice" not in MODELS[model]:
                raise InvalidParameterError(
                    f"eigenai/{model} takes no 'voice'; choose its voice with voice_id=",
                    parameter="voice",
                )
            fields["voice"] = PARAMETERS[model]["voice"].check(voice)
        fields.update(check_params(PARAMETERS[model], params))
        if extra:
            extra = check_mapping("extra", extra)
            clash = sorted(set(extra) & ({"text", "token", "model"}))
            if clash:
                raise InvalidParameterError(
                    f"extra may not set {', '.join(clash)}: those are set by ttsstream", parameter="extra"
                )
            fields.update(extra)
        return Request(model, text, fields, session=(model,))

    def open_frames(self, request: Request, api_key: Optional[str]) -> List[str]:
        return [dumps({"token": api_key or "", "model": request.model})]

    def request_frames(self, request: Request) -> List[str]:
        return [dumps(request.params)]

    def parse_text(self, text: str, audio_seen: bool) -> Optional[Event]:
        message = loads_object(text, self.title)
        if message is None:
            return None
        kind = message.get("type")
        if kind == WORDS_TYPE:  # our own extension: only the bundled server sends it, when asked
            return parse_words(message)
        if kind == "complete":
            return Done(message)
        if kind == "error" or (kind is None and "error" in message):
            return Failed(self._server_error(message, audio_seen))
        return None

    def _server_error(self, message: Mapping[str, Any], audio_seen: bool) -> TTSError:
        said = message.get("message") or message.get("error") or message.get("detail")
        said = str(said) if said is not None else "no message given"
        code = message.get("code")
        busy = rate_limited("EigenAI", said, code, message)
        if busy is not None:  # before the key: "too many requests for this API key" is about load
            return busy
        hashable = is_int(code) or isinstance(code, str)
        looks_like_auth = (hashable and code in AUTH_ERROR_CODES) or (
            not audio_seen and any(word in said.lower() for word in _AUTH_WORDS)
        )
        if looks_like_auth:
            return AuthenticationError(
                f"EigenAI refused the API key: {said}. Check EIGENAI_API_KEY or pass api_key=.",
                code=code if isinstance(code, int) else None,
            )
        suffix = f" (code {code})" if code is not None else ""
        return ServerError(f"EigenAI reported an error: {said}{suffix}", code=code)

    def close_error(self, code: Optional[int], reason: str, audio_seen: bool) -> TTSError:
        busy = rate_limited_close("EigenAI", code, reason)
        if busy is not None:
            return busy
        if code == 4001 or (code in AUTH_CLOSE_CODES and not audio_seen):
            return AuthenticationError(
                f"EigenAI closed the connection (code {code}{': ' + reason if reason else ''}); "
                "the API key was refused. Check EIGENAI_API_KEY or pass api_key=.",
                code=code,
            )
        detail = f"code {code}{': ' + reason if reason else ''}" if code is not None else "no close code"
        return ConnectionFailed(
            f"EigenAI closed the connection before the speech was complete ({detail})", code=code
        )


# -- the server's side, for ttsstream's bundled server ----------------------------

# What the server closes with after a bad auth message or a refused key: "policy
# violation", one of the codes the client reads as a refused key (AUTH_CLOSE_CODES).
REFUSE_CLOSE_CODE = 1008


def parse_auth(text: str) -> Tuple[str, str]:
    """Read a client's first frame; return ``(token, model)``.

    Raises:
        ValueError: with a message fit for an error frame.
    """
    message = _client_object(text)
    token, model = message.get("token"), message.get("model")
    if not isinstance(token, str):
        raise ValueError('the first message must be {"token": API_KEY, "model": MODEL}')
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return token, model


def parse_request(text: str, model: str) -> Dict[str, Any]:
    """Read a client's request frame; return its fields (``text`` is a non-empty str).

    Fields that ``model`` does not take are kept: the server ignores what it does not use.

    Raises:
        ValueError: with a message fit for an error frame.
    """
    message = _client_object(text)
    spoken = message.get("text")
    if not isinstance(spoken, str) or not spoken.strip():
        raise ValueError('the request must carry a non-empty "text"')
    voice = message.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise ValueError('"voice" must be a string')
    return message


def _client_object(text: str) -> Dict[str, Any]:
    try:
        message = loads_object(text, "client")
    except TTSError as exc:
        raise ValueError(str(exc)) from None
    if message is None:
        raise ValueError("expected a JSON object")
    return message


def complete_frame() -> str:
    """The frame that ends a stream."""
    return dumps({"type": "complete"})


def error_frame(message: str, code: Optional[int] = None) -> str:
    """An error frame in the shape the client reads."""
    frame: Dict[str, Any] = {"type": "error", "message": message}
    if code is not None:
        frame["code"] = code
    return dumps(frame)


def speed_of(request: Mapping[str, Any]) -> float:
    """The speaking rate a request asks for (``voice_settings.speed``), 1.0 by default."""
    settings = request.get("voice_settings")
    speed = settings.get("speed") if isinstance(settings, dict) else None
    if is_number(speed) and 0.1 <= speed <= 4.0:
        return float(speed)
    return 1.0


def language_of(request: Mapping[str, Any]) -> Optional[str]:
    """The language a request names (``language`` or ``language_id``), if any."""
    value = request.get("language") or request.get("language_id")
    return value if isinstance(value, str) else None


def voice_of(request: Mapping[str, Any], model: str) -> Optional[str]:
    """The voice a request names (``voice`` or ``voice_id``), else ``model``'s default."""
    voice = request.get("voice") or request.get("voice_id")
    return voice if isinstance(voice, str) else DEFAULT_VOICES.get(model)
