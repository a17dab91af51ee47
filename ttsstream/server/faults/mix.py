"""``FaultMix``: faults drawn at random, one per connection, for chaos tests.

Each new connection draws one fault from the weights (or none, with the chance left
over), so a client meets a server that fails now and then in several ways at once, as
a busy service does. A seed makes the sequence of draws repeat. ``fault_source`` reads
what ``LocalServer(fault=...)`` and ``set_fault`` take: a spec, a mix, or None.

This module owns the mix and its checks. It imports ``spec`` from the package and
``ttsstream.checks``.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Dict, Mapping, Optional, Tuple, Union

from ...checks import is_int, is_number
from .spec import FaultSpec, fault_spec, parse_fault

__all__ = ["FaultMix", "fault_source", "FaultSource"]


class FaultMix:
    """Faults by weight: each new connection draws one of them, or none.

    Args:
        weights: each fault (a spec string such as ``"drop:after=2"``, or a
            ``FaultSpec``) and the chance that a connection draws it, a number >= 0.
            The chances add up to 1 at most; what is left is the chance of no fault.
        seed: an int makes the sequence of draws the same on every run; None draws
            differently each time.

    Raises:
        ValueError: no weights, an unknown or badly written fault, a fault named twice,
            a weight that is not a number >= 0, weights that add up to more than 1, or
            a seed that is not an int.

    Thread: any; draws are serialised.
    """

    def __init__(self, weights: Mapping[Union[str, FaultSpec], float], seed: Optional[int] = None) -> None:
        if not isinstance(weights, Mapping) or not weights:
            raise ValueError("FaultMix takes a mapping of faults to chances, e.g. {'http_503': 0.1, 'drop': 0.05}")
        if seed is not None and not is_int(seed):
            raise ValueError(f"FaultMix's seed must be an int or None, got {seed!r}")
        chances: Dict[FaultSpec, float] = {}
        for fault, weight in weights.items():
            spec = parse_fault(fault)
            if not is_number(weight) or weight < 0:
                raise ValueError(f"the chance of fault {str(spec)!r} must be a number >= 0, got {weight!r}")
            if spec in chances:
                raise ValueError(f"fault {str(spec)!r} is named twice in the mix: give it once, with one chance")
            chances[spec] = float(weight)
        total = math.fsum(chances.values())
        if total > 1 + 1e-9:
            raise ValueError(f"the chances add up to {total:g}, more than 1: they are each connection's chance "
                             "of each fault, and what is left over is the chance of none")
        self._chances: Tuple[Tuple[FaultSpec, float], ...] = tuple(chances.items())
        self.seed = seed
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # guarded by the lock: one draw at a time

    @property
    def weights(self) -> Dict[FaultSpec, float]:
        """Each fault and its chance, in the order given."""
        return dict(self._chances)

    @property
    def holds_handshakes(self) -> bool:
        """Whether a fault of the mix keeps handshakes open (see ``Fault.holds_handshake``)."""
        return any(spec.fault.holds_handshake for spec, _ in self._chances)

    def draw(self) -> Optional[FaultSpec]:
        """One connection's fault, or None for none."""
        with self._lock:
            point = self._random.random()
        for spec, chance in self._chances:
            if point < chance:
                return spec
            point -= chance
        return None

    def __repr__(self) -> str:
        weights = ", ".join(f"{str(spec)!r}: {chance:g}" for spec, chance in self._chances)
        return f"FaultMix({{{weights}}}, seed={self.seed!r})"

    __str__ = __repr__


FaultSource = Union[None, FaultSpec, FaultMix]


def fault_source(fault: Union[None, str, FaultSpec, FaultMix], after: Optional[float] = None) -> FaultSource:
    """What ``LocalServer(fault=..., fault_after=...)`` and ``set_fault`` inject.

    Raises:
        ValueError: as ``fault_spec``, or ``after`` with a mix.
    """
    if isinstance(fault, FaultMix):
        if after is not None:
            raise ValueError("a FaultMix says when each of its faults acts; leave fault_after out")
        return fault
    return fault_spec(fault, after)
