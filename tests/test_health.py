"""A provider's health (circuit breaker, rate limit, refused key) and its slots, with the time
as an argument: no clock, no socket."""

from __future__ import annotations

import threading
from typing import List

from ttsstream import AuthenticationError, Cancelled, ConnectionFailed, InvalidParameterError, SynthesisTimeout
from ttsstream.errors import RateLimited
from ttsstream.health import COOL_DOWN, DEFAULT_RATE_PAUSE, FAILURES_TO_OPEN, MAX_COOL_DOWN, Health, Slots

DOWN = ConnectionFailed("connection refused by the server")


def fail(health: Health, times: int, now: float, error=DOWN) -> None:
    for _ in range(times):
        refusal, probe = health.admit(now)
        assert refusal is None
        health.failed(error, probe, now)


def test_the_breaker_opens_after_failures_in_a_row_and_one_probe_goes_after_the_cool_down():
    health = Health("EigenAI")
    fail(health, FAILURES_TO_OPEN, now=0.0)
    refusal, _ = health.admit(0.1)
    assert isinstance(refusal, ConnectionFailed) and "circuit breaker" in str(refusal) and "refused" in str(refusal)
    assert health.admit(COOL_DOWN - 0.01)[0] is not None
    refusal, probe = health.admit(COOL_DOWN)
    assert refusal is None and probe
    assert health.admit(COOL_DOWN)[0] is not None  # one probe at a time
    health.succeeded(probe=True)
    assert health.admit(COOL_DOWN + 0.01) == (None, False)


def test_a_failed_probe_doubles_the_cool_down_up_to_its_cap():
    health = Health("EigenAI")
    fail(health, FAILURES_TO_OPEN, now=0.0)
    now, cool_down = COOL_DOWN, COOL_DOWN
    for _ in range(10):
        refusal, probe = health.admit(now)
        assert refusal is None and probe
        health.failed(SynthesisTimeout("silent", limit="first_audio"), probe, now)
        cool_down = min(cool_down * 2, MAX_COOL_DOWN)
        assert health.admit(now + cool_down - 0.01)[0] is not None
        now += cool_down
    assert cool_down == MAX_COOL_DOWN


def test_a_success_between_failures_resets_the_count():
    health = Health("EigenAI")
    fail(health, FAILURES_TO_OPEN - 1, now=0.0)
    health.succeeded(probe=False)
    fail(health, FAILURES_TO_OPEN - 1, now=0.0)
    assert health.admit(0.0) == (None, False)


def test_a_refused_key_is_never_tried_again():
    health = Health("EigenAI")
    refusal, probe = health.admit(0.0)
    health.failed(AuthenticationError("EigenAI refused the key: check EIGENAI_API_KEY", code=4001), probe, 0.0)
    for now in (0.0, 10.0, 1e6):
        refusal, _ = health.admit(now)
        assert isinstance(refusal, AuthenticationError) and refusal.code == 4001
        assert "EIGENAI_API_KEY" in str(refusal) and "not tried again" in str(refusal)


def test_a_rate_limit_closes_the_provider_until_retry_after_without_opening_the_breaker():
    health = Health("EigenAI")
    for _ in range(FAILURES_TO_OPEN + 2):
        health.failed(RateLimited("slow down", code=429, retry_after=3.0), False, 0.0)
    refusal, _ = health.admit(2.9)
    assert isinstance(refusal, RateLimited) and 0.09 < refusal.retry_after <= 0.1 + 1e-9
    assert health.admit(3.0) == (None, False)  # and the breaker is still closed
    health.failed(RateLimited("slow down", code=429), False, 10.0)
    assert health.admit(10.0 + DEFAULT_RATE_PAUSE - 0.01)[0] is not None
    assert health.admit(10.0 + DEFAULT_RATE_PAUSE)[0] is None


def test_the_callers_errors_and_cancels_say_nothing_of_the_provider():
    health = Health("EigenAI")
    fail(health, 10, now=0.0, error=InvalidParameterError("bad speed"))
    fail(health, 10, now=0.0, error=Cancelled("cancelled"))
    assert health.admit(0.0) == (None, False)


def test_an_abandoned_probe_lets_the_next_one_go():
    health = Health("EigenAI")
    fail(health, FAILURES_TO_OPEN, now=0.0)
    _, probe = health.admit(COOL_DOWN)
    assert probe
    health.abandoned(probe=True)
    assert health.admit(COOL_DOWN) == (None, True)


def test_slots_run_in_order_and_pass_a_cancelled_waiters_slot_on():
    slots = Slots(2)
    ran: List[str] = []

    def job(name: str, wanted: bool = True):
        def go() -> bool:
            ran.append(name)
            return wanted
        return go

    for name in "ab":
        slots.take(job(name))
    slots.take(job("c"))
    slots.take(job("cancelled", wanted=False))
    slots.take(job("d"))
    assert ran == ["a", "b"] and slots.waiting == 3
    slots.give_back()
    assert ran == ["a", "b", "c"]
    slots.give_back()  # the cancelled one does not keep it: d runs
    assert ran == ["a", "b", "c", "cancelled", "d"] and slots.busy == 2
    slots.give_back()
    slots.give_back()
    assert slots.busy == 0 and slots.waiting == 0


def test_slots_never_let_more_run_at_once_from_many_threads():
    slots = Slots(3)
    lock = threading.Lock()
    running, most = [0], [0]
    releases: List[threading.Event] = []

    def go() -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        done = threading.Event()
        releases.append(done)
        return True

    threads = [threading.Thread(target=slots.take, args=(go,)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    while releases:
        releases.pop(0)
        with lock:
            running[0] -= 1
        slots.give_back()
    assert most[0] == 3 and slots.busy == 0 and slots.waiting == 0


def test_no_limit_runs_at_once():
    slots = Slots(None)
    ran: List[int] = []
    for n in range(5):
        slots.take(lambda n=n: ran.append(n) or True)
    assert ran == [0, 1, 2, 3, 4]


def test_a_503_that_says_retry_after_is_waited_out_too():
    health = Health("EigenAI")
    health.failed(ConnectionFailed("HTTP 503", status=503, retry_after=4.0), False, 0.0)
    assert isinstance(health.admit(3.9)[0], RateLimited)
    assert health.admit(4.0) == (None, False)
