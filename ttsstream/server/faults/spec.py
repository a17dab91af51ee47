"""Naming a fault: ``FaultSpec`` and ``parse_fault``, for ``LocalServer`` and ``ttsstream serve``.

A spec is a fault's name and its ``after``: how many binary frames of each utterance
go out first (faults that act inside an utterance), how many seconds a connection
may sit idle (``idle_close``), a first audio is late (``slow_first_audio``) or a 429
asks a client to wait (``http_429``), or how many connections may be open at once
(``concurrency_limit``). The other faults at the handshake, the key and an
utterance's end, and ``silent``, take no ``after``. As text, ``NAME`` or ``NAME:after=N``.

This module owns the spec's checks and its text form. It imports only ``table`` from
the package, and ``ttsstream.checks``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

from ...checks import require_number
from .table import TABLE, Fault

__all__ = ["FaultSpec", "parse_fault", "fault_spec", "describe_faults"]


@dataclass(frozen=True)
class FaultSpec:
    """A fault and when it acts: what ``LocalServer(fault=...)`` injects.

    Args:
        name: a name from ``FAULTS``.
        after: frames (an int >= 0), connections (an int >= 1) or seconds (a number
            > 0), as the fault counts them; None for the fault's default. Must be None for a fault that takes none.

    Raises:
        ValueError: an unknown name, or an ``after`` the fault cannot take.
    """

    name: str
    after: Optional[float] = None

    def __post_init__(self) -> None:
        fault = TABLE.get(self.name) if isinstance(self.name, str) else None
        if fault is None:
            raise ValueError(f"unknown fault {self.name!r}: choose one of {', '.join(TABLE)}")
        object.__setattr__(self, "after", _resolve(fault, self.after))

    @property
    def fault(self) -> Fault:
        """The fault's row in the table."""
        return TABLE[self.name]

    def __str__(self) -> str:
        """The spec as ``parse_fault`` reads it: ``drop:after=2``, ``http_500``."""
        return self.name if self.after is None else f"{self.name}:after={self.after:g}"


def _resolve(fault: Fault, after: Optional[float]) -> Optional[float]:
    unit = fault.unit
    if unit is None:
        if after is not None:
            raise ValueError(f"fault {fault.name!r} takes no 'after'")
        return None
    if after is None:
        return fault.after
    if unit == "frames":
        return require_number(f"{fault.name}'s after (binary frames before the fault)", after, 0, integer=True)
    if unit == "connections":
        return require_number(f"{fault.name}'s after (connections open at once)", after, 1, integer=True)
    return float(require_number(f"{fault.name}'s after (seconds)", after, 0, low_open=True))


def parse_fault(spec: Union[str, FaultSpec]) -> FaultSpec:
    """Read a fault spec: ``NAME`` or ``NAME:after=N`` (``drop:after=2``, ``idle_close:after=1.5``).

    A FaultSpec is returned as it is.

    Raises:
        ValueError: with a message fit to show a user (it lists the faults).
    """
    if isinstance(spec, FaultSpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"a fault spec must be a str such as 'drop:after=2', got {spec!r}")
    name, colon, options = spec.strip().partition(":")
    after: Optional[float] = None
    if colon:
        key, equals, value = options.partition("=")
        if key.strip() != "after" or not equals:
            raise ValueError(f"cannot read fault spec {spec!r}: write NAME or NAME:after=N")
        after = _number(value.strip(), spec)
    return FaultSpec(name.strip(), after)


def fault_spec(fault: Union[None, str, FaultSpec], after: Optional[float] = None) -> Optional[FaultSpec]:
    """What ``LocalServer(fault=..., fault_after=...)`` injects: a spec, or None for no fault.

    ``fault`` is a name (with ``after``), a spec string or a FaultSpec (without ``after``).

    Raises:
        ValueError: an unknown fault, a bad ``after``, or ``after`` given twice.
    """
    if fault is None:
        return None  # an ``after`` without a fault has nothing to time
    if isinstance(fault, str) and ":" not in fault:
        return FaultSpec(fault, after)
    if after is not None:
        raise ValueError(f"fault {str(fault)!r} says when it acts; leave fault_after out")
    return parse_fault(fault)


def _number(text: str, spec: str) -> float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"cannot read fault spec {spec!r}: after= takes a number, got {text!r}")
    return value


def describe_faults() -> str:
    """One line per fault, for ``--help``:
    ``drop[:after=FRAMES] (default 1): what happens. Client: what to do.``"""
    lines = []
    for fault in TABLE.values():
        usage = fault.name
        if fault.unit is not None:
            usage += f"[:after={fault.unit.upper()}] (default {fault.after:g})"
        lines.append(f"{usage}: {fault.happens}. Client: {fault.advice}.")
    return "\n".join(lines)
