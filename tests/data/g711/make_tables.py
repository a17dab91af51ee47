"""Write the G.711 reference tables with Python's audioop (Python 3.9 to 3.12 only).

    python3.12 tests/data/g711/make_tables.py

Writes, beside this script:

- ``mulaw_encode.bin``, ``alaw_encode.bin``: 65,536 bytes each, the code of every 16-bit
  sample from -32768 to 32767 in that order (``audioop.lin2ulaw`` / ``lin2alaw``);
- ``mulaw_decode.bin``, ``alaw_decode.bin``: 256 little-endian int16 samples each, the
  sample of every code 0 to 255 (``audioop.ulaw2lin`` / ``alaw2lin``).

audioop is gone from Python 3.13; these files let the tests check ttsstream's numpy
encoders bit for bit on every version.
"""

import audioop
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
every_sample = struct.pack("<65536h", *range(-32768, 32768))
every_code = bytes(range(256))
(HERE / "mulaw_encode.bin").write_bytes(audioop.lin2ulaw(every_sample, 2))
(HERE / "alaw_encode.bin").write_bytes(audioop.lin2alaw(every_sample, 2))
(HERE / "mulaw_decode.bin").write_bytes(audioop.ulaw2lin(every_code, 2))
(HERE / "alaw_decode.bin").write_bytes(audioop.alaw2lin(every_code, 2))
