"""The registry of the bundled server's speech engines, by name.

This module owns ``ENGINES`` and ``get_engine``. It imports ``engine`` (the interface)
and ``tone``; the ``espeak`` engine is imported only when one is made, so importing
the registry never loads eSpeak NG or its wheel. No engine imports this module.
"""

from __future__ import annotations

from typing import Callable, Dict

from .engine import Engine
from .tone import ToneEngine

__all__ = ["ENGINES", "get_engine"]


def _espeak() -> Engine:
    from .espeak import EspeakEngine

    return EspeakEngine()


# Engine factories by name: a class, or a function that imports its engine on first use.
ENGINES: Dict[str, Callable[[], Engine]] = {"tone": ToneEngine, "espeak": _espeak}


def get_engine(name: str) -> Engine:
    """Return a new engine by name.

    Raises:
        ValueError: for an unknown name; the message lists the choices.
        ImportError: the engine's optional dependencies are missing (the message says
            what to install).
        RuntimeError: the engine's library failed to start.
    """
    try:
        factory = ENGINES[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name
        raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(sorted(ENGINES))}") from None
    return factory()
