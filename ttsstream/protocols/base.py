"""The dialect interface and what every dialect shares: events, requests, checks of models.

A dialect (``eigenai.py``, ``shunyalabs.py``) subclasses ``Dialect``; this module holds
the events it turns frames into, the ``Request`` it builds, the checks of text, model
and parameter names across dialects, and the strict JSON it sends. The parameter
specs and the checks of single values live in ``params.py`` (re-exported here). No
I/O, no threads.

Imports: ``protocols.params``, ``ttsstream.errors``, ``ttsstream.checks`` and the
standard library. It never imports a dialect: ``reject_foreign`` and ``setting_params``
find the others as ``Dialect``'s subclasses.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple, Type, Union
from urllib.parse import urlsplit

from ..checks import is_number
from ..errors import InvalidParameterError, ProtocolError, TTSError
from .params import Param, check_encodable, check_json, check_mapping, check_number, check_string, find_setting

__all__ = [
    "Audio",
    "Metadata",
    "Done",
    "Failed",
    "WordTime",
    "WordTimes",
    "Event",
    "Request",
    "Dialect",
    "MAX_TEXT_CHARS",
    "check_text",
    "check_string",
    "check_number",
    "check_mapping",
    "check_json",
    "check_model",
    "reject_foreign",
    "setting_params",
    "model_owners",
    "dumps",
    "loads_object",
    "sample_rate_of",
]

MAX_TEXT_CHARS = 20_000


# -- events -----------------------------------------------------------------------


class Audio:
    """A piece of PCM audio as the server framed it (may split a sample)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Audio({len(self.data)} bytes)"


class Metadata:
    """Information about the audio that follows; ``sample_rate`` is None if not given."""

    __slots__ = ("sample_rate", "fields")

    def __init__(self, sample_rate: Optional[int], fields: Mapping[str, Any]) -> None:
        self.sample_rate = sample_rate
        self.fields = dict(fields)

    def __repr__(self) -> str:
        return f"Metadata(sample_rate={self.sample_rate})"


class Done:
    """The current utterance ended normally."""

    __slots__ = ("fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)

    def __repr__(self) -> str:
        return "Done()"


class Failed:
    """The server reported an error; ``error`` is the TTSError to raise."""

    __slots__ = ("error",)

    def __init__(self, error: TTSError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Failed({self.error!r})"


class WordTime(NamedTuple):
    """One word of the utterance as the server timed it (``protocols.extensions``).

    Attributes:
        text: the word, as it stands in the request's text.
        char_start: its offset in the request's text; ``text == request_text[char_start:char_end]``.
        char_end: the offset just past it.
        start: seconds from the utterance's first audio sample to the word's first sound.
        end: seconds to just past its last sound (``>= start``).
    """

    text: str
    char_start: int
    char_end: int
    start: float
    end: float


class WordTimes:
    """The server said when each word of the current utterance is spoken (a hint:
    only the bundled server sends it, and only to a client that asked)."""

    __slots__ = ("words",)

    def __init__(self, words: Tuple[WordTime, ...]) -> None:
        self.words = words

    def __repr__(self) -> str:
        return f"WordTimes({len(self.words)} words)"


Event = Union[Audio, Metadata, Done, Failed, WordTimes]


# -- requests ---------------------------------------------------------------------


class Request:
    """A validated synthesis request, ready to be framed by its dialect.

    Attributes:
        model: the model name.
        text: the text to speak.
        params: the fields to send besides the text, as the server spells them.
        session: the fields fixed per connection; requests with equal sessions may
            share one connection when the dialect allows it.
    """

    __slots__ = ("model", "text", "params", "session")

    def __init__(self, model: str, text: str, params: Dict[str, Any], session: Tuple[Any, ...]) -> None:
        self.model = model
        self.text = text
        self.params = params
        self.session = session

    def __repr__(self) -> str:
        return f"Request(model={self.model!r}, text={self.text[:40]!r}, params={self.params!r})"


def check_text(text: object, max_chars: Optional[int] = MAX_TEXT_CHARS) -> str:
    """Return ``text`` if it is speakable (at most ``max_chars`` long, unless None), else
    raise InvalidParameterError."""
    if not isinstance(text, str):
        raise InvalidParameterError(
            f"text must be a str, got {type(text).__name__}", parameter="text"
        )
    if not text.strip():
        raise InvalidParameterError("text is empty: give speak() something to say", parameter="text")
    if max_chars is not None and len(text) > max_chars:
        raise InvalidParameterError(
            f"text is {len(text)} characters; one request takes {max_chars}: split it (speak() cuts a longer "
            "str itself)", parameter="text",
        )
    if "\x00" in text:
        raise InvalidParameterError("text contains a NUL character", parameter="text")
    check_encodable("text", text)
    return text


def dumps(message: Mapping[str, Any]) -> str:
    """Serialise an outgoing message: compact, strict JSON, non-ASCII kept as is."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads_object(text: str, dialect: str) -> Optional[Dict[str, Any]]:
    """Parse an incoming text frame.

    Returns the JSON object, or None for JSON that is not an object (tolerated and
    ignored). Raises ProtocolError for a frame that is not JSON at all.
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ProtocolError(f"{dialect} server sent a text frame that is not JSON: {shown!r}") from None
    return value if isinstance(value, dict) else None


def sample_rate_of(value: object) -> Optional[int]:
    """Return ``value`` as a plausible sample rate in Hz, or None."""
    if not (is_number(value) or isinstance(value, str)):
        return None
    try:
        rate = int(value)
    except (ValueError, OverflowError):
        return None
    return rate if 1000 <= rate <= 384_000 else None


# -- the dialect interface --------------------------------------------------------


class Dialect(ABC):
    """What a server dialect must provide. Subclasses hold no connection state.

    Class attributes:
        name: the provider name (``"eigenai"``).
        title: how messages name the service (``"EigenAI"``).
        env_key: the environment variable holding the API key.
        default_url: the production endpoint.
        parameters: model name -> its parameters' specs by name (``params.Param``), the
            table that validation and listings both read.
        models: model name -> the parameter names it takes (besides the text), from
            ``parameters``.
        default_model: the model used when none is given.
        sample_rate: the rate of the audio unless the server says otherwise.
        reusable: whether one connection may carry several speeches in turn.
    """

    name = ""
    title = ""
    env_key = ""
    default_url = ""
    parameters: Dict[str, Dict[str, Param]] = {}
    models: Dict[str, FrozenSet[str]] = {}
    default_model = ""
    sample_rate = 24000
    reusable = False

    @classmethod
    def default_path(cls) -> str:
        """The URL path of the endpoint, e.g. ``/ws``."""
        return urlsplit(cls.default_url).path

    @abstractmethod
    def default_voice(self, model: str) -> Optional[str]:
        """The voice used when the caller names none (None: the model takes no voice)."""
        ...

    @abstractmethod
    def build_request(self, model: str, text: str, voice: Optional[str], params: Mapping[str, Any],
                      extra: Optional[Mapping[str, Any]]) -> Request:
        """Validate everything and return a Request. Raises InvalidParameterError."""
        ...

    def connect_url(self, url: str, api_key: Optional[str]) -> str:
        """The URL to open (it may carry the key: never log it)."""
        return url

    def connect_headers(self, api_key: Optional[str]) -> List[str]:
        """Extra HTTP headers for the handshake (they may carry the key)."""
        return []

    @abstractmethod
    def open_frames(self, request: Request, api_key: Optional[str]) -> List[str]:
        """Text frames sent once, right after the connection opens."""
        ...

    @abstractmethod
    def request_frames(self, request: Request) -> List[str]:
        """Text frames that ask for one utterance."""
        ...

    @abstractmethod
    def parse_text(self, text: str, audio_seen: bool) -> Optional[Event]:
        """Turn a text frame into an event; None for JSON this dialect ignores."""
        ...

    def parse_binary(self, data: bytes) -> Optional[Event]:
        """Turn a binary frame into an event."""
        return Audio(data) if data else None

    @abstractmethod
    def close_error(self, code: Optional[int], reason: str, audio_seen: bool) -> TTSError:
        """The error for a server close during an utterance."""
        ...


# -- shared checks of model parameters ---------------------------------------------


def reject_foreign(dialect: Type[Dialect], model: str, params: Mapping[str, Any]) -> None:
    """Raise InvalidParameterError for a parameter ``model`` does not take.

    The message names the models that do take it, across every dialect, and where
    ``model`` keeps the same setting under another name (``voice_settings['speed']``).
    """
    accepted = dialect.models[model]
    for name in params:
        if name in accepted:
            continue
        owners = [f"{other.name}/{other_model}" for other in Dialect.__subclasses__()
                  for other_model, names in other.models.items() if name in names]
        where = f"; it belongs to {', '.join(owners)}" if owners else ""
        place = find_setting(dialect.parameters[model], name)
        here = ""
        if place is not None:
            spelled = f"{place[0]}={{{place[1]!r}: ...}}" if place[1] else f"{place[0]}=..."
            here = f" ({model} sets {name} with {spelled})"
        raise InvalidParameterError(
            f"{dialect.name}/{model} does not take {name!r}{where}{here}. "
            f"{model} takes: {', '.join(sorted(accepted))}; "
            f"send anything else with extra={{{name!r}: ...}}",
            parameter=name,
        )


def model_owners(setting: str) -> List[str]:
    """``"provider/model (where)"`` for every model, across dialects, that has ``setting``."""
    found = []
    for other in Dialect.__subclasses__():
        for other_model, params in other.parameters.items():
            place = find_setting(params, setting)
            if place is not None:
                found.append(f"{other.name}/{other_model} ({place[0]}{'.' + place[1] if place[1] else ''})")
    return found


def setting_params(dialect: Type[Dialect], model: str, settings: Mapping[str, Any],
                   params: Mapping[str, Any]) -> Dict[str, Any]:
    """``params`` with common settings (``speed``, ``language``) put where ``model`` keeps them.

    ``speed=1.2`` becomes ``speed=1.2`` for zero-indic and ``voice_settings={"speed":
    1.2}`` for higgs2p5. Values are not checked here; ``build_request`` checks them.

    Raises:
        InvalidParameterError: (``parameter`` is the setting) the model has no place for
            a setting, or ``params`` sets it already.
    """
    merged = dict(params)
    model_params = dialect.parameters[model]
    for setting, value in settings.items():
        if value is None:
            continue
        place = find_setting(model_params, setting)
        if place is None:
            owners = model_owners(setting)
            raise InvalidParameterError(
                f"{dialect.name}/{model} has no {setting} setting"
                + (f"; these models have: {', '.join(owners)}" if owners else ""), parameter=setting)
        name, field = place
        inner = merged.get(name)
        if field is None or (name in merged and not isinstance(inner, Mapping)):
            if name in merged:
                raise InvalidParameterError(f"{setting} is given twice (also as {name})", parameter=setting)
            merged[name] = value
            continue
        inner = dict(inner or {})
        if field in inner:
            raise InvalidParameterError(f"{setting} is given twice (also in {name})", parameter=setting)
        inner[field] = value
        merged[name] = inner
    return merged


def check_model(dialect: Type[Dialect], model: Optional[str]) -> str:
    """Return the model to use, or raise InvalidParameterError naming the choices."""
    if model is None:
        return dialect.default_model
    if model not in dialect.models:
        raise InvalidParameterError(
            f"unknown {dialect.title} model {model!r}: choose one of {', '.join(dialect.models)}",
            parameter="model",
        )
    return model


