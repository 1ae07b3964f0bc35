from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.rate_limit import TokenBucket


def test_burst_is_free_then_sends_are_spaced_by_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=3)
    waits = []
    for _ in range(5):
        bucket, wait = bucket.take(100.0)
        waits.append(round(wait, 6))
    assert waits == [0.0, 0.0, 0.0, 0.1, 0.2]


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=2)
    for _ in range(2):
        bucket, _ = bucket.take(0.0)
    bucket, wait = bucket.take(10.0)  # long idle: full again, but never above burst
    assert wait == 0.0
    bucket, wait = bucket.take(10.0)
    assert wait == 0.0
    bucket, wait = bucket.take(10.0)
    assert wait == 0.5


def test_zero_rate_means_unlimited() -> None:
    bucket = TokenBucket(rate_per_s=0, burst=0)
    for _ in range(100):
        bucket, wait = bucket.take(0.0)
        assert wait == 0.0


@given(st.floats(0.5, 1000), st.integers(1, 50), st.integers(1, 300))
def test_n_sends_at_one_instant_finish_no_sooner_than_the_rate_allows(
    rate: float, burst: int, n: int
) -> None:
    bucket = TokenBucket(rate_per_s=rate, burst=burst)
    last = 0.0
    for _ in range(n):
        bucket, last = bucket.take(0.0)
    expected = max(0, n - burst) / rate
    assert abs(last - expected) < 1e-6 * max(1.0, expected)
