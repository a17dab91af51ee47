"""One-call speech for scripts: ``ttsstream.speak(text, **kw)``.

As ``requests.get`` sits on a Session, ``speak`` sits on a default ``TTSClient``: one per
configuration (provider, key, model, url, timeout), made on first use and kept, so that
later calls reuse its connections, the local server and the audio player. The clients
are closed at interpreter exit, or by ``close_default_clients()``.

Imports: client, config. Starts nothing until ``speak`` is called.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any, Dict, Optional, Tuple

from .client import Speech, TTSClient
from .config import provider_for_url
from .protocols import DIALECTS

__all__ = ["speak", "default_client", "close_default_clients", "choose_provider"]

logger = logging.getLogger("ttsstream")

# Guarded by _lock: the default clients by configuration, and whether close_default_clients
# is registered to run at exit.
_lock = threading.Lock()
_clients: Dict[Tuple[Any, ...], TTSClient] = {}
_atexit_registered = False


def choose_provider(provider: Optional[str] = None, url: Optional[str] = None) -> str:
    """The provider to use when none may be named: ``TTSClient(choose_provider())``.

    ``provider`` if given; else the one whose endpoint path ``url`` has; else the one
    whose API key is in the environment; else ``"local"``.

    Args:
        provider: a provider the user named, or None.
        url: an endpoint the user named, or None.

    Returns:
        ``"eigenai"``, ``"shunyalabs"``, ``"local"``, or ``provider`` as given.

    Raises:
        InvalidParameterError: ``url``'s path is neither dialect's: name the provider.
    """
    if provider:
        return provider
    if url:
        return provider_for_url(url)
    for name, dialect in DIALECTS.items():
        if os.environ.get(dialect.env_key):
            return name
    return "local"


def default_client(provider: Optional[str] = None, api_key: Optional[str] = None, model: Optional[str] = None,
                   url: Optional[str] = None, timeout: float = 30.0) -> TTSClient:
    """The shared client for this configuration, made on first use (see ``choose_provider``).

    Thread: any; concurrent first calls make one client.

    Raises:
        InvalidParameterError, AuthenticationError: as ``TTSClient`` does.
    """
    global _atexit_registered
    chosen = choose_provider(provider, url)
    key = (chosen, api_key, model, url, timeout)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if chosen == "local" and provider is None:
                logger.info("no provider, url or API key given: speaking with the local offline voice")
            client = TTSClient(chosen, api_key=api_key, model=model, url=url, timeout=timeout)
            _clients[key] = client
            if not _atexit_registered:
                atexit.register(close_default_clients)
                _atexit_registered = True
        return client


def speak(text: str, *, provider: Optional[str] = None, api_key: Optional[str] = None,
          model: Optional[str] = None, url: Optional[str] = None, timeout: float = 30.0,
          **kwargs: Any) -> Speech:
    """Speak ``text`` with a default client; the rest is ``TTSClient.speak``'s.

        import ttsstream
        ttsstream.speak("Hello from a plain script.", play=True)

    Args:
        provider: the default client's provider; None picks one (``choose_provider``).
        api_key: its key (None: from the environment).
        model: its model (None: the provider's default).
        url: its endpoint (None: the provider's).
        timeout: its timeout in seconds (see ``default_client``).
        **kwargs: ``TTSClient.speak``'s arguments: ``voice``, ``on_audio``, ``play``,
            ``block``, model parameters, ...

    Returns:
        The Speech, finished unless ``block=False``.

    Raises:
        TTSError: what ``TTSClient`` and ``TTSClient.speak`` raise.
    """
    return default_client(provider, api_key, model, url, timeout).speak(text, **kwargs)


def close_default_clients() -> None:
    """Close every default client (running speeches end with ``Cancelled``). Thread: any."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
