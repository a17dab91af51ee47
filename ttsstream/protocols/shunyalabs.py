"""Shunyalabs' WebSocket dialects, both sides of them.

``/ws?api_key=KEY`` (what ttsstream's client speaks): one config message
``{"model", "voice", "response_format", "speed"}``, then any number of
``{"input": text}`` frames on the same connection. Audio comes as binary frames;
the service may send ``{"type": "chunk", "sample_rate": …}`` metadata first, ends an
utterance with ``{"type": "completion"}`` (we also accept ``complete`` and ``done``),
reports ``{"type": "error", "error": …}`` and closes with 4001 for a bad key.

``/ws/tts`` (the gateway that Shunyalabs' own SDK speaks; served by the bundled
server): ``Authorization: Bearer KEY``, one request ``{"input", "request_type":
"streaming", …}``, each binary frame preceded by a ``chunk`` message, then a
``completion`` message.

This is the only module that knows Shunyalabs' field names. It is pure: no I/O.
Imports: protocols.base, protocols.extensions, protocols.limits, errors, checks and the
standard library.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..checks import is_number
from ..errors import AuthenticationError, ConnectionFailed, InvalidParameterError, ServerError, TTSError
from .base import (
    Dialect,
    Done,
    Event,
    Failed,
    Metadata,
    Request,
    check_mapping,
    check_model,
    check_text,
    dumps,
    loads_object,
    reject_foreign,
    sample_rate_of,
)
from .extensions import WORDS_TYPE, parse_words
from .limits import rate_limited, rate_limited_close
from .params import NUMBER, STRING, Param, check_params, names_of, table

__all__ = ["Shunyalabs", "PARAMETERS", "MODELS", "VOICES", "LANGUAGES", "DEFAULT_VOICE", "ServerConfig", "parse_config",
           "is_gateway_request",
           "parse_input", "parse_gateway_request", "chunk_frame", "completion_frame", "error_frame",
           "GATEWAY_PATH", "query_key", "bearer_key", "is_input"]

DEFAULT_VOICE = "Nisha"
END_TYPES = frozenset({"completion", "complete", "done"})
AUTH_CLOSE_CODE = 4001

# Languages zero-indic speaks, by ISO 639-1 code.
LANGUAGES = {
    "en": "English", "hi": "Hindi", "ta": "Tamil", "te": "Telugu", "bn": "Bengali",
    "mr": "Marathi", "gu": "Gujarati", "kn": "Kannada", "ml": "Malayalam", "pa": "Punjabi",
}
VOICES = ("Nisha", "Varun", "Rajesh", "Priya", "Arjun", "Kavya")

# -- the model and its parameters: the one table that validation, listings and the
# server's side read -----------------------------------------------------------------

_VOICE = Param("voice", STRING, f"a voice by name: {', '.join(VOICES)}")
_LANGUAGE = Param("language", STRING, f"the language: {', '.join(LANGUAGES)}",
                  pattern=re.compile(r"[A-Za-z]{2,3}"), shape="an ISO 639 code such as 'hi' or 'ta'",
                  setting="language")
_RESPONSE_FORMAT = Param("response_format", STRING, "ttsstream streams raw 16-bit PCM", choices=("pcm",))
_SPEED = Param("speed", NUMBER, "speaking rate; 1.0 is normal", low=0.25, high=4.0, setting="speed")

PARAMETERS: Dict[str, Dict[str, Param]] = {"zero-indic": table(_VOICE, _LANGUAGE, _RESPONSE_FORMAT, _SPEED)}
MODELS = names_of(PARAMETERS)
SPEED_RANGE = (_SPEED.low, _SPEED.high)


class Shunyalabs(Dialect):
    """Shunyalabs' ``/ws``: config once, then ``{"input": …}`` per utterance."""

    name = "shunyalabs"
    title = "Shunyalabs"
    env_key = "SHUNYALABS_API_KEY"
    default_url = "wss://tts.shunyalabs.ai/ws"
    parameters = PARAMETERS
    models = MODELS
    default_model = "zero-indic"
    sample_rate = 24000
    reusable = True

    def default_voice(self, model: str) -> Optional[str]:
        return DEFAULT_VOICE

    def build_request(self, model: str, text: str, voice: Optional[str], params: Mapping[str, Any],
                      extra: Optional[Mapping[str, Any]]) -> Request:
        model = check_model(type(self), model)
        text = check_text(text)
        if "input" in params:
            raise InvalidParameterError("pass the text as speak()'s first argument, not input=",
                                        parameter="input")
        reject_foreign(type(self), model, params)
        config: Dict[str, Any] = {
            "model": model,
            "voice": _VOICE.check(voice if voice is not None else DEFAULT_VOICE),
            "response_format": "pcm",
            "speed": 1.0,
        }
        config.update(check_params(PARAMETERS[model], params))
        if extra:
            extra = check_mapping("extra", extra)
            clash = sorted(set(extra) & {"input", "model", "api_key", "response_format", "voice", "speed",
                                         "language"})
            if clash:
                raise InvalidParameterError(
                    f"extra may not set {', '.join(clash)}: pass them as speak() arguments", parameter="extra"
                )
            config.update(extra)
        # The config goes once per connection, so it is the connection's identity.
        return Request(model, text, config, session=(dumps(config),))

    def connect_url(self, url: str, api_key: Optional[str]) -> str:
        if not api_key:
            return url
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "api_key"]
        query.append(("api_key", api_key))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def open_frames(self, request: Request, api_key: Optional[str]) -> List[str]:
        return [dumps(request.params)]

    def request_frames(self, request: Request) -> List[str]:
        return [dumps({"input": request.text})]

    def parse_text(self, text: str, audio_seen: bool) -> Optional[Event]:
        message = loads_object(text, self.title)
        if message is None:
            return None
        kind = message.get("type")
        if kind == WORDS_TYPE:  # our own extension: only the bundled server sends it, when asked
            return parse_words(message)
        if kind == "error":
            return Failed(_server_error(message))
        if kind in END_TYPES:
            if message.get("status") == "error":
                return Failed(_server_error(message))
            return Done(message)
        if "sample_rate" in message:
            return Metadata(sample_rate_of(message.get("sample_rate")), message)
        return None

    def close_error(self, code: Optional[int], reason: str, audio_seen: bool) -> TTSError:
        busy = rate_limited_close("Shunyalabs", code, reason)
        if busy is not None:
            return busy
        if code == AUTH_CLOSE_CODE:
            said = f": {reason}" if reason else ""
            return AuthenticationError(
                f"Shunyalabs rejected the API key (close code 4001{said}). "
                "Check SHUNYALABS_API_KEY or pass api_key=.",
                code=code,
            )
        detail = f"code {code}{': ' + reason if reason else ''}" if code is not None else "no close code"
        return ConnectionFailed(
            f"Shunyalabs closed the connection before the speech was complete ({detail})", code=code
        )


def _server_error(message: Mapping[str, Any]) -> ServerError:
    said = message.get("error") or message.get("error_message") or message.get("message")
    fields: Mapping[str, Any] = message
    if isinstance(said, Mapping):  # {"error": {"message": …, "code": …}}
        fields = {**message, **said}
        code = said.get("code")
        said = said.get("message") or dumps(dict(said))
    else:
        code = message.get("code")
    said = str(said) if said is not None else "no message given"
    busy = rate_limited("Shunyalabs", said, code, fields)
    if busy is not None:
        return busy
    suffix = f" (code {code})" if code is not None else ""
    return ServerError(f"Shunyalabs reported an error: {said}{suffix}", code=code)


# -- the server's side, for ttsstream's bundled server ----------------------------

GATEWAY_PATH = "/ws/tts"  # the endpoint Shunyalabs' own SDK speaks to
_KEY_PARAM = "api_key"    # the query parameter that carries the key on /ws
_KEY_HEADER = "Authorization"


def query_key(target: str) -> Optional[str]:
    """The key in a handshake's request target (``/ws?api_key=KEY``), or None."""
    return dict(parse_qsl(urlsplit(target).query)).get(_KEY_PARAM)


def bearer_key(headers: Mapping[str, str]) -> Optional[str]:
    """The key in a handshake's ``Authorization: Bearer KEY`` header, or None.

    The SDK sends its key this way, to ``/ws/tts`` and to ``/ws`` alike.
    """
    header = headers.get(_KEY_HEADER)
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


class ServerConfig:
    """What a client asked for in its config message (``/ws``) or request (``/ws/tts``)."""

    __slots__ = ("model", "voice", "language", "response_format", "speed")

    def __init__(self, model: str, voice: Optional[str], language: Optional[str],
                 response_format: str, speed: float) -> None:
        self.model = model
        self.voice = voice
        self.language = language
        self.response_format = response_format
        self.speed = speed


def _config_from(message: Mapping[str, Any], default_format: str) -> ServerConfig:
    model = message.get("model", "zero-indic")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; this server speaks zero-indic")
    voice = message.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise ValueError('"voice" must be a string')
    language = message.get("language")
    if language is not None and not isinstance(language, str):
        raise ValueError('"language" must be a string')
    response_format = message.get("response_format") or default_format
    if response_format not in ("pcm", "wav"):
        raise ValueError(f"response_format {response_format!r} is not served here; use 'pcm' or 'wav'")
    speed = message.get("speed", 1.0)
    if speed is None:
        speed = 1.0
    if not is_number(speed) or not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise ValueError(f"speed must be a number from {SPEED_RANGE[0]} to {SPEED_RANGE[1]}")
    return ServerConfig(model, voice, language, response_format, float(speed))


def _client_object(text: str) -> Dict[str, Any]:
    try:
        message = loads_object(text, "client")
    except TTSError as exc:
        raise ValueError(str(exc)) from None
    if message is None:
        raise ValueError("expected a JSON object")
    return message


def parse_config(text: str) -> ServerConfig:
    """Read the config message of a ``/ws`` connection. Raises ValueError."""
    return _config_from(_client_object(text), default_format="pcm")


def is_gateway_request(text: str) -> bool:
    """Whether a first message is a gateway request (the SDK's ``/ws/tts`` shape)."""
    try:
        message = loads_object(text, "client")
    except TTSError:
        return False
    return message is not None and "request_type" in message and "input" in message


def parse_input(text: str) -> str:
    """Read an ``{"input": …}`` frame; return the text. Raises ValueError."""
    message = _client_object(text)
    spoken = message.get("input")
    if not isinstance(spoken, str) or not spoken.strip():
        raise ValueError('expected {"input": "some text"}')
    return spoken


def is_input(text: str) -> bool:
    """Whether a text frame is an ``{"input": …}`` frame that ``parse_input`` accepts."""
    try:
        parse_input(text)
    except ValueError:
        return False
    return True


def parse_gateway_request(text: str) -> "tuple[str, ServerConfig]":
    """Read a ``/ws/tts`` request; return ``(text, config)``. Raises ValueError."""
    message = _client_object(text)
    spoken = message.get("input")
    if not isinstance(spoken, str) or not spoken.strip():
        raise ValueError('the request must carry a non-empty "input"')
    if message.get("request_type", "streaming") != "streaming":
        raise ValueError('this endpoint streams: "request_type" must be "streaming"')
    return spoken, _config_from(message, default_format="wav")


def chunk_frame(request_id: str, index: int, is_final: bool, response_format: str, sample_rate: int) -> str:
    """The metadata message sent before each binary frame."""
    return dumps({"type": "chunk", "request_id": request_id, "chunk_index": index, "is_final": is_final,
                  "format": response_format, "sample_rate": sample_rate})


def completion_frame(request_id: str, total_chunks: int, total_seconds: float, response_format: str,
                     sample_rate: int) -> str:
    """The message that ends an utterance."""
    return dumps({"type": "completion", "request_id": request_id, "status": "complete",
                  "total_chunks": total_chunks, "total_duration_seconds": round(total_seconds, 3),
                  "format": response_format, "sample_rate": sample_rate})


def error_frame(message: str, code: Optional[int] = None) -> str:
    """An error message in the shape the service sends."""
    frame: Dict[str, Any] = {"type": "error", "error": message}
    if code is not None:
        frame["code"] = code
    return dumps(frame)
