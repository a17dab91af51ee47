"""Checks of argument values, shared by every layer of the package.

Python counts ``True`` as an int and ``nan`` as a float; ttsstream accepts neither as a
number. These functions say so in one place. The caller chooses the error to raise
(``InvalidParameterError`` for ``speak()`` and ``TTSClient``, ``ValueError`` for
``AudioPlayer`` and the bundled server), so this module imports nothing of the package.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Callable, TypeVar

if TYPE_CHECKING:  # TypeGuard is in typing from 3.10; only the checker needs it
    from typing_extensions import TypeGuard

__all__ = ["is_int", "is_number", "require_float", "require_number", "span"]

N = TypeVar("N", int, float)


def is_int(value: object) -> TypeGuard[int]:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[float]:  # a numpy scalar works as a float too
    """True for a finite real number that is not a bool (ints, floats, numpy scalars)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return isinstance(value, numbers.Integral) or math.isfinite(value)  # a huge int would overflow isfinite


def span(low: float, high: float, low_open: bool = False) -> str:
    """The bounds in words, with a leading space: `` from 0 to 10``, `` in (0, 4]``, `` >= 1``; "" for none."""
    if low == -math.inf and high == math.inf:
        return ""
    if high == math.inf:
        return f" {'>' if low_open else '>='} {low:g}"
    if low == -math.inf:
        return f" <= {high:g}"
    if low_open:
        return f" in ({low:g}, {high:g}]"
    return f" from {low:g} to {high:g}"


def require_number(name: str, value: N, low: float = -math.inf, high: float = math.inf, *,
                   integer: bool = False, low_open: bool = False,
                   error: Callable[[str], Exception] = ValueError) -> N:
    """Return ``value`` if it is a number (an int with ``integer``) within the bounds.

    Args:
        name: how the message names the value.
        value: what the caller was given.
        low, high: inclusive bounds (``low`` is exclusive with ``low_open``).
        integer: only an int will do.
        error: builds the exception from the message.

    Raises:
        whatever ``error`` builds, with a message such as
        ``"volume must be a number from 0 to 1, got 2"``.
    """
    kind = "an int" if integer else "a number"
    if not (is_int(value) if integer else is_number(value)) or not (
            (value > low if low_open else value >= low) and value <= high):
        raise error(f"{name} must be {kind}{span(low, high, low_open)}, got {value!r}")
    return value


def require_float(name: str, value: object, low: float = -math.inf, high: float = math.inf, *,
                  low_open: bool = False, error: Callable[[str], Exception] = ValueError) -> float:
    """``require_number`` for a value of any type: return it as a float, else raise.

    Raises:
        whatever ``error`` builds, with the message ``require_number`` gives.
    """
    if is_number(value):
        return float(require_number(name, value, low, high, low_open=low_open, error=error))
    raise error(f"{name} must be a number{span(low, high, low_open)}, got {value!r}")
