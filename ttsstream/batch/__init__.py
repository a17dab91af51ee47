"""Batches: many texts spoken to files, resumably, on one machine or any executor.

``ttsstream.batch(items, out_dir, ...)`` (``run.py``) is the front door. The rooms:
``items`` (what to say and the files that list it), ``manifest`` (what is finished),
``work`` (one item into a file, safely, wherever it runs), ``result`` (``Progress`` and
``BatchResult``), ``progress`` (the bar) and ``run`` (the plan and the threads or the executor).

This package sits above the client, as a user of its public API: it imports
``TTSClient``, the errors and ``formats.files``, never connections, the pool or the wire.
"""

from .items import Item, as_items, read_items
from .result import BatchResult, Progress
from .run import batch

__all__ = ["batch", "BatchResult", "Progress", "Item", "read_items", "as_items"]
