"""G.711 μ-law and A-law: bit for bit against the tables Python's audioop made.

The tables in tests/data/g711/ were written by make_tables.py with audioop (Python 3.12);
these tests need no audioop, so they run on 3.13 too (.ci/versions runs them on 3.9 and 3.13).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ttsstream.formats import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode

TABLES = Path(__file__).resolve().parent / "data" / "g711"
EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int16)
EVERY_CODE = bytes(range(256))
LAWS = {"mulaw": (mulaw_encode, mulaw_decode), "alaw": (alaw_encode, alaw_decode)}


@pytest.mark.parametrize("law", sorted(LAWS))
def test_every_sample_encodes_as_audioop_did(law: str) -> None:
    reference = (TABLES / f"{law}_encode.bin").read_bytes()
    assert len(reference) == 65536
    encoded = LAWS[law][0](EVERY_SAMPLE)
    wrong = np.flatnonzero(np.frombuffer(encoded, np.uint8) != np.frombuffer(reference, np.uint8)) - 32768
    assert wrong.size == 0, f"{law}: {wrong.size} samples encode differently, e.g. {wrong[:5].tolist()}"


@pytest.mark.parametrize("law", sorted(LAWS))
def test_every_code_decodes_as_audioop_did(law: str) -> None:
    reference = np.frombuffer((TABLES / f"{law}_decode.bin").read_bytes(), dtype="<i2")
    decoded = LAWS[law][1](EVERY_CODE)
    assert decoded.dtype == np.dtype("<i2") and decoded.tolist() == reference.tolist()


@pytest.mark.parametrize("law", sorted(LAWS))
def test_a_decoded_code_encodes_back_to_itself(law: str) -> None:
    encode, decode = LAWS[law]
    # μ-law has two codes for zero (0x7F and 0xFF): both decode to 0, which encodes as 0xFF.
    expected = bytes(0xFF if law == "mulaw" and code == 0x7F else code for code in EVERY_CODE)
    assert encode(decode(EVERY_CODE)) == expected


def test_known_codes_of_the_standard() -> None:
    silence = np.zeros(4, dtype=np.int16)
    assert mulaw_encode(silence) == b"\xff" * 4  # μ-law's silence
    assert alaw_encode(silence) == b"\xd5" * 4   # A-law's silence: 0x80 with the even bits inverted
    loud = np.array([32767, -32768], dtype=np.int16)
    assert mulaw_encode(loud) == b"\x80\x00" and alaw_encode(loud) == b"\xaa\x2a"


def test_a_big_endian_or_strided_array_encodes_by_value() -> None:
    samples = np.array([1000, -1000, 32000, -5], dtype=">i2")
    native = samples.astype("<i2")
    assert mulaw_encode(samples) == mulaw_encode(native)
    assert alaw_encode(native[::-1]) == alaw_encode(native)[::-1]


def test_a_sample_that_is_not_int16_is_refused() -> None:
    with pytest.raises(TypeError, match="int16"):
        mulaw_encode(np.zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match="int16"):
        alaw_encode(np.zeros(3, dtype=np.int32))
