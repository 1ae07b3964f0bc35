"""Retry classification, backoff and budget (lodestar.core.retry_policy)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.retry_policy import (
    HARD_MAX_ATTEMPTS,
    Action,
    Classification,
    GiveUpReason,
    NetworkFailure,
    RetryBudget,
    Verdict,
    classify_http,
    classify_network,
    classify_smtp,
    decide,
    next_delay,
    retry_after_seconds,
)

RETRY = Classification(Verdict.RETRY, "test")


@pytest.mark.parametrize(
    ("code", "stage", "verdict", "recipient"),
    [
        (250, "data", Verdict.SUCCESS, False),
        (421, "connect", Verdict.RETRY, False),
        (451, "data", Verdict.RETRY, False),
        (452, "rcpt", Verdict.RETRY, False),
        (None, "data", Verdict.RETRY, False),
        (550, "rcpt", Verdict.PERMANENT, True),
        (554, "data", Verdict.PERMANENT, True),
        (535, "auth", Verdict.PERMANENT, False),
        (553, "mail", Verdict.PERMANENT, False),
        (554, "connect", Verdict.PERMANENT, False),
        (354, "data", Verdict.RETRY, False),
    ],
)
def test_smtp(code: int | None, stage: str, verdict: Verdict, recipient: bool) -> None:
    result = classify_smtp(code, stage)
    assert result.verdict is verdict
    assert result.recipient_fault is recipient


def test_smtp_unknown_stage() -> None:
    with pytest.raises(ValueError):
        classify_smtp(550, "helo")


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS), (201, Verdict.SUCCESS), (204, Verdict.SUCCESS),
        (408, Verdict.RETRY), (425, Verdict.RETRY), (429, Verdict.RETRY),
        (500, Verdict.RETRY), (502, Verdict.RETRY), (503, Verdict.RETRY), (599, Verdict.RETRY),
        (400, Verdict.PERMANENT), (401, Verdict.PERMANENT), (403, Verdict.PERMANENT),
        (404, Verdict.PERMANENT), (410, Verdict.PERMANENT), (413, Verdict.PERMANENT),
        (301, Verdict.PERMANENT), (100, Verdict.PERMANENT),
    ],
)
def test_http(status: int, verdict: Verdict) -> None:
    assert classify_http(status).verdict is verdict
    assert not classify_http(status).recipient_fault


def test_http_out_of_range() -> None:
    with pytest.raises(ValueError):
        classify_http(600)


def test_network_is_retryable() -> None:
    for failure in NetworkFailure:
        assert classify_network(failure).retryable


def test_next_delay_exponential_without_jitter() -> None:
    assert [next_delay(n, 1.0, 30.0, rand=1.0) for n in range(1, 8)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0
    ]
    assert next_delay(3, 1.0, 30.0, rand=0.5) == 2.0
    assert next_delay(3, 1.0, 30.0, rand=0.0) == 0.0
    assert next_delay(10_000, 1.0, 30.0, rand=1.0) == 30.0


def test_retry_after_wins_even_past_the_cap() -> None:
    assert next_delay(1, 1.0, 30.0, retry_after_s=120.0, rand=0.3) == 120.0
    assert next_delay(5, 1.0, 30.0, retry_after_s=0.5, rand=1.0) == 16.0


def test_next_delay_validation() -> None:
    with pytest.raises(ValueError):
        next_delay(0, 1.0, 30.0)
    with pytest.raises(ValueError):
        next_delay(1, 1.0, 30.0, rand=1.5)
    with pytest.raises(ValueError):
        next_delay(1, -1.0, 30.0)


def test_retry_after_header() -> None:
    now_ms = 1_777_628_163_000  # 2026-05-01T09:36:03Z
    assert retry_after_seconds("120", now_ms) == 120.0
    assert retry_after_seconds(None, now_ms) is None
    assert retry_after_seconds("soon", now_ms) is None
    assert retry_after_seconds("Fri, 01 May 2026 09:37:03 GMT", now_ms) == pytest.approx(60.0)
    assert retry_after_seconds("Fri, 01 May 2026 09:00:00 GMT", now_ms) == 0.0


def test_decide() -> None:
    budget = RetryBudget(max_attempts=3)
    ok = decide(classify_http(200), 1, 0.0, budget, base_s=1, cap_s=10)
    assert ok.action is Action.DONE
    permanent = decide(classify_http(400), 1, 0.0, budget, base_s=1, cap_s=10)
    assert permanent.give_up and permanent.reason is GiveUpReason.PERMANENT
    retry = decide(RETRY, 1, 0.0, budget, base_s=1, cap_s=10, rand=1.0)
    assert retry.action is Action.RETRY and retry.delay_s == 1.0
    last = decide(RETRY, 3, 0.0, budget, base_s=1, cap_s=10)
    assert last.give_up and last.reason is GiveUpReason.MAX_ATTEMPTS
    late = decide(RETRY, 1, 50.0, RetryBudget(None, 60.0), base_s=1, cap_s=10,
                  retry_after_s=20.0)
    assert late.give_up and late.reason is GiveUpReason.DEADLINE


def test_budget_needs_a_bound() -> None:
    with pytest.raises(ValueError):
        RetryBudget(None, None)
    with pytest.raises(ValueError):
        RetryBudget(0)
    assert RetryBudget(None, 60.0).attempt_limit == HARD_MAX_ATTEMPTS


delays = st.floats(min_value=0, max_value=1e6, allow_nan=False)
rands = st.floats(min_value=0, max_value=1)


@given(st.integers(min_value=1, max_value=5000), delays, delays, rands)
def test_delay_within_cap(attempt: int, base: float, cap: float, rand: float) -> None:
    delay = next_delay(attempt, base, cap, None, rand)
    assert 0.0 <= delay <= cap


@given(st.integers(min_value=1, max_value=5000), delays, delays, delays, rands)
def test_delay_with_retry_after(attempt: int, base: float, cap: float, after: float,
                                rand: float) -> None:
    delay = next_delay(attempt, base, cap, after, rand)
    assert delay >= after
    assert delay <= max(cap, after)


@given(
    st.none() | st.integers(min_value=1, max_value=200),
    st.none() | st.floats(min_value=0, max_value=1e5),
    st.floats(min_value=0, max_value=100),
    st.floats(min_value=0, max_value=1e4),
    st.lists(rands, min_size=1, max_size=20),
    st.floats(min_value=0, max_value=5),
)
def test_budget_always_ends(max_attempts: int | None, deadline: float | None, base: float,
                            cap: float, draws: list[float], attempt_cost: float) -> None:
    if max_attempts is None and deadline is None:
        deadline = 0.0
    budget = RetryBudget(max_attempts, deadline)
    elapsed = 0.0
    attempt = 1
    while True:
        decision = decide(RETRY, attempt, elapsed, budget, base_s=base, cap_s=cap,
                          rand=draws[attempt % len(draws)])
        if decision.give_up:
            assert decision.reason in (GiveUpReason.MAX_ATTEMPTS, GiveUpReason.DEADLINE)
            break
        assert decision.action is Action.RETRY
        assert decision.delay_s >= 0
        if deadline is not None:
            assert elapsed + decision.delay_s <= deadline
        elapsed += decision.delay_s + attempt_cost
        attempt += 1
        assert attempt <= budget.attempt_limit
