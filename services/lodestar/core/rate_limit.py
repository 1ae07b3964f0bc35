"""A token bucket, as a value: how long to wait before the next send.

``TokenBucket(rate_per_s, burst)`` refills ``rate_per_s`` tokens a second up
to ``burst``; ``take(now_s)`` returns ``(bucket_after, wait_s)``: the caller
sleeps ``wait_s`` (0 when a token was there) and owns the new bucket. The
token is reserved at once, so concurrent callers queue up in order without
overdrawing. A rate of 0 or less means "no limit". Pure: the time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float = -1.0
    updated_s: float | None = None

    def __post_init__(self) -> None:
        if self.rate_per_s > 0 and self.burst < 1:
            raise ValueError("a rate-limited bucket needs a burst of at least 1")

    @property
    def unlimited(self) -> bool:
        return self.rate_per_s <= 0

    def take(self, now_s: float) -> tuple[TokenBucket, float]:
        """Reserve one token at ``now_s``; the bucket after it and the seconds to wait."""
        if self.unlimited:
            return self, 0.0
        if self.updated_s is None:
            level = self.burst if self.tokens < 0 else self.tokens
        else:
            elapsed = max(0.0, now_s - self.updated_s)
            level = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        level -= 1.0
        wait = 0.0 if level >= 0 else -level / self.rate_per_s
        return replace(self, tokens=level, updated_s=now_s), wait
