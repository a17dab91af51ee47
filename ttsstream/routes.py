"""Routes: each provider a client may speak with, resolved: dialect, model, endpoint, key, pool, health.

A client has one route per provider, its own first and then its ``fallback`` list, in
order. A route turns what a speech asks (a ``Spec``: text, voice, parameters, extra
fields) into a request its dialect accepts:

- the client's own route checks everything and refuses what is wrong (the caller's
  mistake is an ``InvalidParameterError`` before any I/O);
- a fallback speaks with its own voice (its ``Provider``'s, or its model's default) and
  its own parameters, takes those of the speech's parameters that its model has, and
  drops the rest (and extra fields meant for another dialect); what it dropped is said
  once, in the log, at its first use.

With fallbacks, the fallback is the retry: every route but the last tries once, so a
dead first provider costs one attempt, not four. Imports: provider, config, connection,
pool, health, retry, protocols, urls, checks, errors.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from .checks import require_number
from .config import Endpoint, check_voice, choose_dialect, resolve_key
from .connection import Settings
from .errors import InvalidParameterError
from .health import Health, Slots
from .pool import ConnectionPool
from .protocols import LOCAL, Request
from .provider import Provider
from .retry import RetryPolicy, Timeouts
from .urls import display_url

__all__ = ["Spec", "Route", "make_routes"]

logger = logging.getLogger("ttsstream.fallback")


class Spec(NamedTuple):
    """What a speech (or a unit of a text stream) asks, before any route's dialect shapes it."""

    text: str
    voice: Optional[str]
    params: Mapping[str, Any]
    extra: Optional[Mapping[str, Any]]


class Options(NamedTuple):
    """What every route of a client shares."""

    timeouts: Timeouts
    max_idle: float
    retries: int
    ca_bundle: Optional[str]
    allow_insecure: bool
    max_concurrent: Optional[int]


class Route:
    """One provider as a client speaks with it.

    Attributes:
        provider: the ``Provider``, its model resolved.
        index: its place in the client's order (0: the client's own).
        dialect, model, endpoint: how and where it is spoken with.
        pool: its connections.
        health: what its recent attempts say (see ``health.py``).
        slots: its speeches at once (``max_concurrent``).
        retries: how often a speech tries it again (0 but for the last route).

    Thread: any; only ``request`` writes (the once-only log flag), and a lost race there
    logs the same line twice at worst.
    """

    def __init__(self, provider: Provider, index: int, last: bool, options: Options) -> None:
        self.index = index
        self.dialect, self.model = choose_dialect(provider.name, provider.model)
        self.provider = provider._with_model(self.model)
        check_voice(provider.name, self.model, provider.voice, {})
        self.endpoint = Endpoint(provider.name, self.dialect, provider.url, options.allow_insecure)
        key = resolve_key(provider.name, self.dialect, provider._api_key, self.endpoint.url)
        # With fallbacks, the next provider is the retry; the last one keeps the policy.
        self.retries = retries = options.retries if last else 0
        self.pool = ConnectionPool(Settings(self.dialect, self.endpoint, key, options.timeouts, options.max_idle,
                                            RetryPolicy(retries), options.ca_bundle))
        self.health = Health(self.title)
        self.slots = Slots(options.max_concurrent)
        self._told = False  # its first use as a fallback was logged
        if provider.params:  # a fallback's own parameters: checked now, not at its first use
            self.dialect.build_request(self.model, "check", self._voice(None), provider.params, None)

    def __repr__(self) -> str:
        return f"<Route {self.index} {self.provider!r}>"

    @property
    def title(self) -> str:
        """The provider as messages name it."""
        if self.provider.name == LOCAL:
            return "the local server"
        return self.dialect.title if self.provider.url is None else display_url(self.provider.url)

    def cache_parts(self, request: Request) -> Dict[str, Any]:
        """What a phrase cache's key covers for ``request`` on this route: provider,
        endpoint, model, the connection's settings (voice) and every field sent."""
        where = f"local:{self.dialect.name}" if self.provider.name == LOCAL else self.endpoint.url
        return {"provider": self.provider.name, "endpoint": where, "model": request.model,
                "session": request.session, "fields": request.params, "text": request.text}

    def _voice(self, asked: Optional[str]) -> Optional[str]:
        voice = asked if asked is not None else self.provider.voice
        return voice if voice is not None else self.dialect.default_voice(self.model)

    def request(self, spec: Spec, first: "Route") -> Request:
        """``spec`` as this route's dialect takes it.

        Args:
            spec: what the speech asks.
            first: the client's own route (what the speech's parameters were meant for).

        Raises:
            InvalidParameterError: on the client's own route, anything wrong; on a
                fallback, only its own parameters being wrong.
        """
        if self is first:
            voice = self._voice(spec.voice)
            request = self.dialect.build_request(self.model, spec.text, voice, spec.params, spec.extra)
            check_voice(self.provider.name, self.model, voice, spec.params)  # the local server's voices are known
            return request
        accepted = self.dialect.models[self.model]
        params = {**self.provider.params,
                  **{name: value for name, value in spec.params.items() if name in accepted}}
        extra = spec.extra if type(self.dialect) is type(first.dialect) else None
        dropped = sorted(set(spec.params) - set(params)) + (sorted(spec.extra) if spec.extra and extra is None else [])
        voice = self._voice(None)
        while True:
            try:
                request = self.dialect.build_request(self.model, spec.text, voice, params, extra)
                break
            except InvalidParameterError as exc:  # a value this model refuses: not for it either
                if exc.parameter not in params or exc.parameter in self.provider.params:
                    raise
                del params[exc.parameter]
                dropped.append(exc.parameter)
        self._tell(first, voice, spec.voice, dropped)
        return request

    def _tell(self, first: "Route", voice: Optional[str], asked: Optional[str], dropped: List[str]) -> None:
        if self._told:
            return
        self._told = True
        own = f"its own voice {voice!r}" if voice else "its model's voice"
        said = [f"it speaks with {own}" + (f" (not {asked!r})" if asked and asked != voice else "")]
        if dropped:
            said.append(f"it does not take {', '.join(dropped)}, which are left out")
        logger.warning("falling back from %s to %s (%s) for the first time: %s", first.title, self.title, self.model,
                       "; ".join(said))


def make_routes(own: Provider, fallback: Optional[Sequence[Union[str, Provider]]],
                options: Options) -> Tuple[Route, ...]:
    """The routes of a client: its own provider's, then its ``fallback`` list's, each checked now.

    Raises:
        InvalidParameterError: a bad provider, model, url, voice or parameter, a
            ``fallback`` that is not a list of providers, or a bad ``max_concurrent``.
        AuthenticationError: a provider with no key where one is needed.
    """
    if options.max_concurrent is not None:
        require_number("max_concurrent", options.max_concurrent, 1, 100_000, integer=True,
                       error=lambda message: InvalidParameterError(message, parameter="max_concurrent"))
    if isinstance(fallback, (str, Provider)) or (fallback is not None and not isinstance(fallback, Sequence)):
        raise InvalidParameterError("fallback is a list of providers, e.g. fallback=['local']", parameter="fallback")
    providers = [own, *(Provider.of(value) for value in fallback or ())]
    routes: List[Route] = []
    try:
        for index, provider in enumerate(providers):
            routes.append(Route(provider, index, index == len(providers) - 1, options))
    except Exception:
        for route in routes:
            route.pool.close()
        raise
    return tuple(routes)
