"""``Provider``: one TTS service named with its key, model, voice, endpoint and parameters.

A client speaks with its own provider and, when that one fails before the first audio,
with the next of its ``fallback`` list (``routes.py`` turns each into a route). A
``Provider`` is only a description: it is checked when a client takes it, opens nothing,
and never shows its key.

Imports: errors, protocols (the provider names), urls.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

from .errors import InvalidParameterError
from .protocols import PROVIDERS
from .urls import display_url

__all__ = ["Provider"]


class Provider:
    """One service to speak with, for ``TTSClient(fallback=[...])``.

    Args:
        name: ``"eigenai"``, ``"shunyalabs"`` or ``"local"``.
        api_key: its key; None reads the provider's environment variable
            (``EIGENAI_API_KEY``, ``SHUNYALABS_API_KEY``). Never shown in a repr.
        model: its model; None takes the provider's default.
        voice: the voice it speaks with; None takes the model's default. (A fallback
            speaks with its own voice, not the one a speech asked of the first provider.)
        url: its endpoint; None for the service's own (or the bundled local server).
        **params: model parameters it always gets (a speech's parameters that its model
            takes come on top).

    Raises:
        InvalidParameterError: an unknown name. (The model, voice, key and parameters are
            checked when a client takes the provider.)

    Example:
        ``TTSClient("eigenai", fallback=[Provider("shunyalabs", voice="Rajesh"), "local"])``
    """

    __slots__ = ("name", "model", "voice", "url", "params", "_api_key")

    def __init__(self, name: str, api_key: Optional[str] = None, model: Optional[str] = None,
                 voice: Optional[str] = None, url: Optional[str] = None, **params: Any) -> None:
        if name not in PROVIDERS:
            raise InvalidParameterError(f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)}",
                                        parameter="provider")
        self.name = name
        self.model = model
        self.voice = voice
        self.url = url
        self.params: Dict[str, Any] = dict(params)
        self._api_key = api_key

    @classmethod
    def of(cls, value: Union[str, "Provider"]) -> "Provider":
        """``value`` itself, or the provider a plain name means (with its defaults).

        Raises:
            InvalidParameterError: neither a Provider nor a known provider's name.
        """
        if isinstance(value, Provider):
            return value
        if isinstance(value, str):
            return cls(value)
        raise InvalidParameterError(f"a fallback is a Provider or a provider's name such as 'local', got {value!r}",
                                    parameter="fallback")

    def _with_model(self, model: str) -> "Provider":
        """The same provider with its model resolved (what ``speech.provider`` shows)."""
        return Provider(self.name, self._api_key, model, self.voice, self.url, **self.params)

    def _identity(self) -> Tuple[Any, ...]:
        return (self.name, self._api_key, self.model, self.voice, self.url, sorted(self.params.items(), key=repr))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Provider) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self.name, self.model, self.voice, self.url))

    def __repr__(self) -> str:
        shown = [repr(self.name)]
        for field in ("model", "voice"):
            if getattr(self, field) is not None:
                shown.append(f"{field}={getattr(self, field)!r}")
        if self.url is not None:
            shown.append(f"url={display_url(self.url)!r}")
        shown.extend(f"{name}={value!r}" for name, value in self.params.items())
        return f"Provider({', '.join(shown)})"
