"""Makes the modules named in TTSSTREAM_TEST_BLOCK (comma-separated) unimportable, as if
their packages were not installed: tests/test_cli_output.py puts this folder on a child
process's PYTHONPATH to check what ttsstream says when an extra is missing."""

import os
import sys
from importlib.abc import MetaPathFinder

BLOCKED = {name for name in os.environ.get("TTSSTREAM_TEST_BLOCK", "").split(",") if name}


class _Blocker(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if BLOCKED:
    sys.meta_path.insert(0, _Blocker())
