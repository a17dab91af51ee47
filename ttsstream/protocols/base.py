"""The dialect interface and what every dialect shares: events, requests, value checks.

A dialect (``eigenai.py``, ``shunyalabs.py``) subclasses ``Dialect``; this module holds
the events it turns frames into, the ``Request`` it builds, the checks of text and
parameter values, and the strict JSON it sends. No I/O, no threads.

Imports: ``ttsstream.errors``, ``ttsstream.checks`` and the standard library. It never
imports a dialect: ``reject_foreign`` finds the others as ``Dialect``'s subclasses.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple, Type, Union
from urllib.parse import urlsplit

from ..checks import is_number, require_number
from ..errors import InvalidParameterError, ProtocolError, TTSError

__all__ = [
    "Audio",
    "Metadata",
    "Done",
    "Failed",
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


Event = Union[Audio, Metadata, Done, Failed]


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


def check_text(text: object) -> str:
    """Return ``text`` if it is speakable, else raise InvalidParameterError."""
    if not isinstance(text, str):
        raise InvalidParameterError(
            f"text must be a str, got {type(text).__name__}", parameter="text"
        )
    if not text.strip():
        raise InvalidParameterError("text is empty: give speak() something to say", parameter="text")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidParameterError(
            f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}: split it into several speak() calls",
            parameter="text",
        )
    if "\x00" in text:
        raise InvalidParameterError("text contains a NUL character", parameter="text")
    check_encodable("text", text)
    return text


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
    return float(require_number(name, value, low, high, low_open=low_open,  # type: ignore[type-var]
                                error=lambda message: InvalidParameterError(message, parameter=name)))


def check_mapping(name: str, value: object) -> Dict[str, Any]:
    """Return ``value`` as a dict if it is a JSON-serialisable mapping with str keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidParameterError(f"{name} must be a dict with str keys, got {value!r}", parameter=name)
    check_json(name, value)
    return dict(value)


def check_json(name: str, value: object) -> None:
    """Raise InvalidParameterError unless ``value`` can be sent as strict JSON."""
    try:
        sent = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} cannot be sent as JSON: {exc}", parameter=name) from None
    check_encodable(name, sent)


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
        models: model name -> the parameter names it takes (besides the text).
        default_model: the model used when none is given.
        sample_rate: the rate of the audio unless the server says otherwise.
        reusable: whether one connection may carry several speeches in turn.
    """

    name = ""
    title = ""
    env_key = ""
    default_url = ""
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

    The message names the models that do take it, across every dialect.
    """
    accepted = dialect.models[model]
    for name in params:
        if name in accepted:
            continue
        owners = [
            f"{other.name}/{other_model}"
            for other in Dialect.__subclasses__()
            for other_model, names in other.models.items()
            if name in names
        ]
        where = f"; it belongs to {', '.join(owners)}" if owners else ""
        raise InvalidParameterError(
            f"{dialect.name}/{model} does not take {name!r}{where}. "
            f"{model} takes: {', '.join(sorted(accepted))}; "
            f"send anything else with extra={{{name!r}: ...}}",
            parameter=name,
        )


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


