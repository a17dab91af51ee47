"""Where ``provider="local"`` finds its server: the bundled one, started once per process.

The bundled server speaks every dialect, so a local client speaks the dialect whose
models include the one asked for. The server and its dependencies (websockets,
eSpeak NG) are imported and started only when the first local speech connects, on that
connection's reader thread, so that ``speak(block=False)`` returns at once.

Imports: protocols, errors; ``ttsstream.server`` only inside ``local_url``.
"""

from __future__ import annotations

from typing import Optional

from .errors import ConnectionFailed
from .protocols import DIALECTS, Dialect

__all__ = ["local_dialect_name", "local_url"]


def local_dialect_name(model: Optional[str]) -> str:
    """The dialect a local client speaks for ``model``: the one that has the model, else
    the first (EigenAI's)."""
    for name, dialect in DIALECTS.items():
        if model in dialect.models:
            return name
    return next(iter(DIALECTS))


def local_url(dialect: Dialect) -> str:
    """The local server's endpoint for ``dialect``, starting the server if needed.

    Thread: any (a reader thread, in practice); concurrent first calls start one server.

    Raises:
        ConnectionFailed: the server's dependencies are missing, or it cannot start.
    """
    try:
        from .server import shared_server  # the server's dependencies load only now

        return shared_server().url + dialect.default_path()
    except ImportError as exc:
        missing = exc.name or str(exc)  # a failing import names its module; a bare ImportError says what
        raise ConnectionFailed(
            f"provider='local' needs the bundled server's dependencies ({missing} is missing or too old): "
            "pip install 'ttsstream[local]'"
        ) from exc
    except (OSError, RuntimeError) as exc:  # RuntimeError: eSpeak NG failed to initialise
        raise ConnectionFailed(f"could not start the local server: {exc}") from exc
