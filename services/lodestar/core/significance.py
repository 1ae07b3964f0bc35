"""Two-proportion z-tests between campaign treatments, and when to call a winner.

``z_test(a, b, alpha)`` compares the conversion rates of two arms
(conversions / sends): the pooled two-sided z-test, its p-value from the
normal CDF (``math.erfc``) and the Wald confidence interval of the difference
``rate(a) - rate(b)`` at ``1 - alpha``.

``verdict(arms, rule)`` calls a winner only when every check passes: at least
two arms, each with ``rule.min_sends`` sends, at least ``rule.min_conversions``
conversions in all, and the best arm beating every other with
``p < rule.alpha / (arms - 1)`` (Bonferroni, since the best arm is compared
with each other one). Otherwise the verdict is "no winner yet" with the reason.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist


@dataclass(frozen=True)
class Arm:
    """One treatment's outcome: ``conversions`` out of ``sends``."""

    name: str
    sends: int
    conversions: int

    def __post_init__(self) -> None:
        if self.sends < 0 or not 0 <= self.conversions <= self.sends:
            raise ValueError(f"arm {self.name!r}: need 0 <= conversions <= sends")

    @property
    def rate(self) -> float:
        return self.conversions / self.sends if self.sends else 0.0


@dataclass(frozen=True)
class ZTest:
    """``a`` against ``b``: ``difference`` is rate(a) - rate(b)."""

    a: str
    b: str
    difference: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float


def normal_cdf(x: float) -> float:
    """The standard normal CDF, ``Φ(x) = erfc(-x / √2) / 2``."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def z_test(a: Arm, b: Arm, alpha: float = 0.05) -> ZTest:
    """The pooled two-proportion z-test of ``a`` against ``b`` (two-sided).

    With no variance to measure (no sends in an arm, or every send converting
    or none) ``z`` is 0 and the p-value 1.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    diff = a.rate - b.rate
    z = 0.0
    if a.sends and b.sends:
        pooled = (a.conversions + b.conversions) / (a.sends + b.sends)
        se = math.sqrt(pooled * (1 - pooled) * (1 / a.sends + 1 / b.sends))
        z = diff / se if se > 0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2.0))
    margin = 0.0
    if a.sends and b.sends:
        critical = NormalDist().inv_cdf(1 - alpha / 2)
        margin = critical * math.sqrt(
            a.rate * (1 - a.rate) / a.sends + b.rate * (1 - b.rate) / b.sends
        )
    return ZTest(a.name, b.name, diff, z, p_value, diff - margin, diff + margin)


class NoWinnerReason(StrEnum):
    SINGLE_ARM = "SINGLE_ARM"  # fewer than two treatments to compare
    TOO_FEW_SENDS = "TOO_FEW_SENDS"  # an arm has fewer than min_sends sends
    TOO_FEW_CONVERSIONS = "TOO_FEW_CONVERSIONS"  # fewer than min_conversions in all
    NOT_SIGNIFICANT = "NOT_SIGNIFICANT"  # the best arm is not significantly ahead of one


@dataclass(frozen=True)
class Rule:
    """When a winner may be called."""

    alpha: float = 0.05
    min_sends: int = 100
    min_conversions: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")
        if self.min_sends < 1 or self.min_conversions < 0:
            raise ValueError("min_sends must be at least 1 and min_conversions at least 0")


@dataclass(frozen=True)
class Verdict:
    """``winner`` is an arm name, or None with ``reason`` and ``message`` saying why."""

    winner: str | None
    reason: NoWinnerReason | None
    message: str
    best: str | None
    tests: tuple[ZTest, ...]
    alpha_per_test: float


def verdict(arms: Sequence[Arm], rule: Rule = Rule()) -> Verdict:
    """The best arm (highest rate, then most sends, then name) against each other arm."""
    if len(arms) < 2:
        only = arms[0].name if arms else None
        return Verdict(None, NoWinnerReason.SINGLE_ARM,
                       "No winner yet: fewer than two treatments to compare.", only, (), rule.alpha)
    ranked = sorted(arms, key=lambda arm: (-arm.rate, -arm.sends, arm.name))
    best, others = ranked[0], ranked[1:]
    per_test = rule.alpha / len(others)
    tests = tuple(z_test(best, other, per_test) for other in others)

    def no_winner(reason: NoWinnerReason, message: str) -> Verdict:
        return Verdict(None, reason, f"No winner yet: {message}", best.name, tests, per_test)

    small = [arm.name for arm in arms if arm.sends < rule.min_sends]
    if small:
        return no_winner(NoWinnerReason.TOO_FEW_SENDS,
                         f"{', '.join(small)} sent fewer than {rule.min_sends} messages.")
    total = sum(arm.conversions for arm in arms)
    if total < rule.min_conversions:
        return no_winner(NoWinnerReason.TOO_FEW_CONVERSIONS,
                         f"{total} conversions in all, fewer than {rule.min_conversions}.")
    weak = [t for t in tests if not (t.p_value < per_test and t.difference > 0)]
    if weak:
        worst = max(weak, key=lambda t: t.p_value)
        return no_winner(
            NoWinnerReason.NOT_SIGNIFICANT,
            f"{best.name} is not significantly ahead of {worst.b} "
            f"(p = {worst.p_value:.4g}, needs < {per_test:.4g}).",
        )
    return Verdict(best.name, None,
                   f"{best.name} wins (every p < {per_test:.4g}).", best.name, tests, per_test)
