"""When a failed delivery is worth another try, how long to wait, and when to stop.

Contract:

- ``classify_smtp(code, stage)``, ``classify_http(status)`` and
  ``classify_network(failure)`` map an outcome to a ``Classification``: a
  ``Verdict`` (SUCCESS, RETRY, PERMANENT), a short reason, and
  ``recipient_fault`` (true only when the recipient's address or message was
  refused, i.e. suppression-list material).

  * SMTP: 2xx SUCCESS; 4xx and no answer (network, timeout) RETRY; 5xx
    PERMANENT. A 5xx at ``rcpt``/``data`` is a recipient bounce; a 5xx at
    ``connect``/``auth``/``mail`` is our own configuration (credentials,
    sender address, relay policy): PERMANENT but not a recipient fault. Any
    other code (1xx/3xx as a final answer) is a protocol surprise: RETRY.
  * HTTP: 2xx SUCCESS; 408, 425, 429 and 5xx RETRY; every other status
    (1xx, 3xx, other 4xx) PERMANENT: a redirect or a refusal will not change
    by waiting.
  * Network failures (timeout, refused/reset connection, DNS, TLS handshake):
    RETRY.

- ``next_delay(attempt, base_s, cap_s, retry_after_s, rand)``: exponential
  backoff with full jitter, ``rand * min(cap_s, base_s * 2**(attempt-1))``
  with ``rand`` in [0, 1] passed in by the caller (so this stays pure). The
  result is always >= 0 and <= ``cap_s`` **unless** the provider sent an
  explicit Retry-After: then the delay is ``max(jittered, retry_after_s)``, so
  we never call back sooner than asked, even past the cap. Whether waiting
  that long is affordable is the budget's decision (a deadline gives up).
- ``RetryBudget(max_attempts, deadline_s)``: at least one bound; on top of
  either, ``HARD_MAX_ATTEMPTS`` always applies, so a budget always ends.
  ``decide(...)`` returns a ``Decision``: DONE, RETRY after ``delay_s``, or
  GIVE_UP with a ``GiveUpReason`` (PERMANENT, MAX_ATTEMPTS, DEADLINE); a
  retry whose delay would land past the deadline gives up now.
- ``retry_after_seconds(header, now_ms)`` reads a Retry-After header (seconds
  or HTTP-date); ``None`` when absent or unreadable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

HARD_MAX_ATTEMPTS = 100
"""No budget allows more attempts than this, whatever its deadline."""


class Verdict(StrEnum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    PERMANENT = "PERMANENT"


class SmtpStage(StrEnum):
    """Where an SMTP exchange stopped (the values of ``channels.email.Stage``)."""

    CONNECT = "connect"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


class NetworkFailure(StrEnum):
    TIMEOUT = "timeout"
    CONNECT = "connect"
    RESET = "reset"
    DNS = "dns"
    TLS = "tls"


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    reason: str
    recipient_fault: bool = False

    @property
    def retryable(self) -> bool:
        return self.verdict is Verdict.RETRY


_RECIPIENT_STAGES = frozenset({SmtpStage.RCPT, SmtpStage.DATA})
_RETRYABLE_HTTP = frozenset({408, 425, 429})


def classify_smtp(code: int | None, stage: SmtpStage | str) -> Classification:
    """Classify an SMTP reply ``code`` (``None``: no answer) received at ``stage``."""
    where = SmtpStage(stage)
    if code is None:
        return Classification(Verdict.RETRY, f"no SMTP answer at {where.value}")
    if 200 <= code <= 299:
        return Classification(Verdict.SUCCESS, f"SMTP {code}")
    if 400 <= code <= 499:
        return Classification(Verdict.RETRY, f"SMTP {code} (transient) at {where.value}")
    if 500 <= code <= 599:
        if where in _RECIPIENT_STAGES:
            return Classification(
                Verdict.PERMANENT, f"SMTP {code} at {where.value}: recipient refused",
                recipient_fault=True,
            )
        return Classification(
            Verdict.PERMANENT, f"SMTP {code} at {where.value}: sender configuration refused"
        )
    return Classification(Verdict.RETRY, f"unexpected SMTP reply {code} at {where.value}")


def classify_http(status: int) -> Classification:
    """Classify an HTTP response status (100-599)."""
    if not 100 <= status <= 599:
        raise ValueError(f"HTTP status {status} is out of range")
    if 200 <= status <= 299:
        return Classification(Verdict.SUCCESS, f"HTTP {status}")
    if status in _RETRYABLE_HTTP or status >= 500:
        return Classification(Verdict.RETRY, f"HTTP {status} (transient)")
    return Classification(Verdict.PERMANENT, f"HTTP {status}")


def classify_network(failure: NetworkFailure | str) -> Classification:
    """Classify a failure that left no protocol answer: always worth a retry."""
    return Classification(Verdict.RETRY, f"network: {NetworkFailure(failure).value}")


def next_delay(
    attempt: int,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    rand: float = 1.0,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    ``rand`` in [0, 1] is the jitter draw (``random.random()`` at the caller).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not (math.isfinite(base_s) and math.isfinite(cap_s)) or base_s < 0 or cap_s < 0:
        raise ValueError("base_s and cap_s must be finite and >= 0")
    if not 0.0 <= rand <= 1.0:
        raise ValueError("rand must be in [0, 1]")
    exponent = min(attempt - 1, 1000)
    ceiling = min(cap_s, base_s * 2.0**exponent)
    delay = min(ceiling, rand * ceiling)
    if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s > delay:
        return retry_after_s
    return max(delay, 0.0)


def retry_after_seconds(header: str | None, now_ms: int) -> float | None:
    """Seconds asked for by a Retry-After header value: delta-seconds or an HTTP-date
    (relative to ``now_ms``, never negative); ``None`` when missing or unreadable."""
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_ms / 1000.0)


@dataclass(frozen=True)
class RetryBudget:
    """How much retrying one message may cost: attempts and/or seconds since the first."""

    max_attempts: int | None = 5
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts is None and self.deadline_s is None:
            raise ValueError("a retry budget needs max_attempts or deadline_s")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.deadline_s is not None and not self.deadline_s >= 0:
            raise ValueError("deadline_s must be >= 0")

    @property
    def attempt_limit(self) -> int:
        if self.max_attempts is None:
            return HARD_MAX_ATTEMPTS
        return min(self.max_attempts, HARD_MAX_ATTEMPTS)


class Action(StrEnum):
    DONE = "DONE"
    RETRY = "RETRY"
    GIVE_UP = "GIVE_UP"


class GiveUpReason(StrEnum):
    PERMANENT = "PERMANENT"
    MAX_ATTEMPTS = "MAX_ATTEMPTS"
    DEADLINE = "DEADLINE"


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float = 0.0
    reason: GiveUpReason | None = None
    detail: str = ""

    @property
    def give_up(self) -> bool:
        return self.action is Action.GIVE_UP


def decide(
    outcome: Classification,
    attempt: int,
    elapsed_s: float,
    budget: RetryBudget,
    *,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    rand: float = 1.0,
) -> Decision:
    """What to do after attempt number ``attempt`` ended with ``outcome``,
    ``elapsed_s`` seconds after the first attempt started."""
    if outcome.verdict is Verdict.SUCCESS:
        return Decision(Action.DONE, detail=outcome.reason)
    if outcome.verdict is Verdict.PERMANENT:
        return Decision(Action.GIVE_UP, reason=GiveUpReason.PERMANENT, detail=outcome.reason)
    if attempt >= budget.attempt_limit:
        return Decision(
            Action.GIVE_UP, reason=GiveUpReason.MAX_ATTEMPTS,
            detail=f"{outcome.reason}; {attempt} attempts",
        )
    delay = next_delay(attempt, base_s, cap_s, retry_after_s, rand)
    if budget.deadline_s is not None and elapsed_s + delay > budget.deadline_s:
        return Decision(
            Action.GIVE_UP, reason=GiveUpReason.DEADLINE,
            detail=f"{outcome.reason}; next try after the {budget.deadline_s:g}s deadline",
        )
    return Decision(Action.RETRY, delay_s=delay, detail=outcome.reason)
