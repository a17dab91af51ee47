"""Faults the bundled server injects, so that a client (ours, or a user's app) can meet a bad server.

- ``injector``: ``FaultInjector``, the server's fault points;
- ``mix``: ``FaultMix`` (one fault per connection, drawn by weight) and ``fault_source``;
- ``spec``: ``FaultSpec`` and ``parse_fault`` (``NAME[:after=N]``);
- ``table``: ``FAULTS`` and ``TABLE``: every fault, where it acts, what happens and
  what a client should do;
- ``actions``: what each fault does, and ``Stop``.

Each module imports only those listed after it; the package imports ``transcript``,
``synthesis`` and ``ttsstream.checks`` from the rest of the package, never a dialect.
"""

from .actions import Scene, Stop
from .injector import FaultInjector
from .mix import FaultMix, FaultSource, fault_source
from .spec import FaultSpec, describe_faults, fault_spec, parse_fault
from .table import FAULTS, TABLE, Fault

__all__ = ["FAULTS", "TABLE", "Fault", "FaultSpec", "FaultMix", "FaultSource", "parse_fault", "fault_spec",
           "fault_source", "describe_faults", "FaultInjector", "Scene", "Stop"]
