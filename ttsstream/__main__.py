"""``python -m ttsstream``: the command line (see ttsstream.cli)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
