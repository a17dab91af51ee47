"""ttsstream.checks: what counts as a number, and the messages for one out of range."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from ttsstream.checks import is_int, is_number, require_number


@pytest.mark.parametrize("value, expected", [
    (0, True), (-3, True), (10**400, True), (True, False), (False, False), (1.0, False), ("1", False),
    (None, False), (np.int64(3), False),
])
def test_is_int(value, expected):
    assert is_int(value) is expected


@pytest.mark.parametrize("value, expected", [
    (0, True), (2.5, True), (10**400, True), (np.float32(0.5), True), (Fraction(1, 3), True),
    (True, False), (float("nan"), False), (float("inf"), False), (-float("inf"), False), ("2", False),
    (None, False), (1j, False),
])
def test_is_number(value, expected):
    assert is_number(value) is expected


@pytest.mark.parametrize("args, kwargs, message", [
    (("volume", 2, 0, 1), {}, "volume must be a number from 0 to 1, got 2"),
    (("rate", True, 1), {"integer": True}, "rate must be an int >= 1, got True"),
    (("rate", 2.0, 1), {"integer": True}, "rate must be an int >= 1, got 2.0"),
    (("timeout", 0, 0, 3600), {"low_open": True}, "timeout must be a number in (0, 3600], got 0"),
    (("after", -1, 0), {}, "after must be a number >= 0, got -1"),
    (("ms", 5, 0.5, 2), {}, "ms must be a number from 0.5 to 2, got 5"),
    (("x", float("nan")), {}, "x must be a number, got nan"),
    (("limit", 7), {"high": 5}, "limit must be a number <= 5, got 7"),
])
def test_require_number_refuses_with_a_message_that_says_what_to_give(args, kwargs, message):
    with pytest.raises(ValueError) as caught:
        require_number(*args, **kwargs)
    assert str(caught.value) == message


def test_require_number_returns_the_value_and_raises_the_callers_error():
    assert require_number("n", 5, 1, 10, integer=True) == 5
    assert require_number("t", 3600, 0, 3600, low_open=True) == 3600

    class Refused(Exception):
        pass

    with pytest.raises(Refused, match="n must be an int"):
        require_number("n", 1.5, integer=True, error=Refused)
