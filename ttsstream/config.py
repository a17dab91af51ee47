"""What a client's arguments mean: its dialect and model, where it connects, and its key.

``TTSClient`` resolves its ``provider``, ``model``, ``url`` and ``api_key`` here, before
any I/O, so that a mistake is an error at construction with a message that says what to
do. ``provider="local"`` speaks the dialect whose models include the one asked for, and
its endpoint is the bundled server, started when the first speech connects. When no
provider is named, a ``url`` names it by its path (``provider_for_url``), and a path
that is neither dialect's is never guessed. A voice that a closed list (the local
server's) lacks is refused here too (``check_voice``).

Imports: protocols (and its voice tables), urls, local, errors.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple
from urllib.parse import urlsplit

from .errors import AuthenticationError, InvalidParameterError
from .local import local_dialect_name, local_url
from .protocols import DIALECTS, LOCAL, PROVIDERS, Dialect, dialect_for_url, get_dialect
from .protocols.base import check_model
from .protocols.shunyalabs import GATEWAY_PATH
from .protocols.voices import check_voice
from .urls import check_url, display_url, is_loopback, with_default_path

__all__ = ["choose_dialect", "Endpoint", "resolve_key", "provider_for_url", "check_voice"]


def provider_for_url(url: str) -> str:
    """The provider whose endpoint path ``url`` has.

    Raises:
        InvalidParameterError: the path is neither dialect's (a proxy's, a bare host,
            the Shunyalabs SDK's gateway): the caller must name the provider, and then
            the path is used as given.
    """
    found = dialect_for_url(url)
    if found is not None:
        return found
    path = urlsplit(url).path if isinstance(url, str) else ""
    known = ", ".join(f"{dialect.title} at {dialect.default_path()}" for dialect in DIALECTS.values())
    gateway = (f" ({GATEWAY_PATH} is the gateway of Shunyalabs' own SDK, which ttsstream does not speak: "
               "use /ws)") if path.rstrip("/") == GATEWAY_PATH else ""
    raise InvalidParameterError(
        f"cannot tell which service {display_url(url)!r} is from its path {path or '/'!r}{gateway}; ttsstream knows {known}. "
        f"Name it: {' or '.join(f'provider={name!r}' for name in DIALECTS)} (the url's path is then used as "
        "given)", parameter="url")


def choose_dialect(provider: str, model: Optional[str]) -> Tuple[Dialect, str]:
    """The dialect and model a client speaks.

    Raises:
        InvalidParameterError: an unknown provider or model.
    """
    if provider not in PROVIDERS:
        raise InvalidParameterError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}",
                                    parameter="provider")
    dialect = get_dialect(local_dialect_name(model) if provider == LOCAL else provider)
    return dialect, check_model(type(dialect), model)  # build_request checks it again per call


class Endpoint:
    """Where a client's connections go: ``url``, the service's own, or the local server.

    Calling it returns the URL, starting the local server first if it is the one and it
    has not started (on a reader thread, so that ``speak(block=False)`` returns at once).

    Raises:
        InvalidParameterError: a bad ``url`` (at construction).
    """

    def __init__(self, provider: str, dialect: Dialect, url: Optional[str], allow_insecure: bool) -> None:
        self._dialect = dialect
        self.url: Optional[str] = None  # None until the local server has started
        if url is not None:
            self.url = with_default_path(check_url(url, allow_insecure=allow_insecure), dialect.default_path())
        elif provider != LOCAL:
            self.url = dialect.default_url

    def __call__(self) -> str:
        """The URL. Raises ConnectionFailed if the local server cannot start. Thread: any."""
        if self.url is None:
            self.url = local_url(self._dialect)
        return self.url


def resolve_key(provider: str, dialect: Dialect, api_key: Optional[str], url: Optional[str]) -> Optional[str]:
    """The key to send: ``api_key``, else the dialect's environment variable.

    Raises:
        InvalidParameterError: a key that is not a non-empty str.
        AuthenticationError: no key, for an endpoint that is not this machine.
    """
    if provider == LOCAL:
        return api_key
    if api_key is None:
        api_key = os.environ.get(dialect.env_key) or None
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise InvalidParameterError("api_key must be a non-empty str", parameter="api_key")
    if api_key is None and not is_loopback(urlsplit(url or "").hostname or ""):
        raise AuthenticationError(f"no API key for {dialect.title}: set {dialect.env_key} or pass api_key= "
                                  "(or use provider='local' to speak offline)")
    return api_key
