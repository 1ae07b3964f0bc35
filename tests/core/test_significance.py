"""Two-proportion z-tests and winner calls, against values worked out by hand.

a = 200/1000 = 0.20, b = 150/1000 = 0.15: pooled p = 350/2000 = 0.175,
SE = sqrt(0.175 * 0.825 * (1/1000 + 1/1000)) = sqrt(0.00028875) = 0.0169926,
z = 0.05 / 0.0169926 = 2.94245, two-sided p = 2 * (1 - Φ(2.94245)) = 0.003256
(tables: Φ(2.94) = 0.99836). Wald 95% CI of the difference: 0.05 ± 1.95996 *
sqrt(0.2 * 0.8 / 1000 + 0.15 * 0.85 / 1000) = 0.05 ± 0.033233.
"""

from __future__ import annotations

import pytest

from lodestar.core.significance import (
    Arm,
    NoWinnerReason,
    Rule,
    normal_cdf,
    verdict,
    z_test,
)

A = Arm("A", 1000, 200)
B = Arm("B", 1000, 150)


def test_normal_cdf_matches_the_table() -> None:
    assert normal_cdf(0) == 0.5
    assert normal_cdf(1.96) == pytest.approx(0.975002, abs=1e-6)
    assert normal_cdf(-1.0) == pytest.approx(0.158655, abs=1e-6)


def test_z_test_by_hand() -> None:
    t = z_test(A, B)
    assert t.difference == pytest.approx(0.05)
    assert t.z == pytest.approx(2.94245, abs=1e-5)
    assert t.p_value == pytest.approx(0.0032563, abs=1e-6)
    assert t.ci_low == pytest.approx(0.05 - 0.033233, abs=1e-6)
    assert t.ci_high == pytest.approx(0.05 + 0.033233, abs=1e-6)
    reverse = z_test(B, A)
    assert reverse.z == pytest.approx(-t.z) and reverse.p_value == pytest.approx(t.p_value)
    # a stricter alpha widens the interval: z(0.995) = 2.5758
    assert z_test(A, B, alpha=0.01).ci_high == pytest.approx(
        0.05 + 2.5758293 * 0.0169558, abs=1e-5)


def test_no_variance_means_no_evidence() -> None:
    t = z_test(Arm("x", 100, 0), Arm("y", 100, 0))
    assert (t.z, t.p_value) == (0.0, 1.0)
    assert z_test(Arm("x", 0, 0), Arm("y", 10, 5)).p_value == 1.0


def test_a_significant_difference_with_enough_data_calls_the_winner() -> None:
    v = verdict([B, A], Rule(alpha=0.05, min_sends=500, min_conversions=10))
    assert v.winner == "A" and v.reason is None and v.best == "A"
    assert [(t.a, t.b) for t in v.tests] == [("A", "B")]


def test_alpha_decides() -> None:
    v = verdict([A, B], Rule(alpha=0.001))  # p = 0.0033 is not below 0.001
    assert v.winner is None and v.reason is NoWinnerReason.NOT_SIGNIFICANT
    assert "No winner yet" in v.message and "B" in v.message


def test_bonferroni_across_three_arms() -> None:
    # A against B has p = 0.0033; against C (195/1000) it is far from significant
    v = verdict([A, B, Arm("C", 1000, 195)], Rule(alpha=0.05))
    assert v.alpha_per_test == pytest.approx(0.025)
    assert v.winner is None and v.reason is NoWinnerReason.NOT_SIGNIFICANT
    # with a clear margin over both others, A wins
    v = verdict([A, B, Arm("C", 1000, 120)], Rule(alpha=0.05))
    assert v.winner == "A"


def test_minimum_samples_hold_back_a_winner() -> None:
    v = verdict([A, B], Rule(min_sends=1001))
    assert v.winner is None and v.reason is NoWinnerReason.TOO_FEW_SENDS
    assert "A, B" in v.message
    few = verdict([Arm("A", 1000, 4), Arm("B", 1000, 0)], Rule(min_conversions=5))
    assert few.reason is NoWinnerReason.TOO_FEW_CONVERSIONS


def test_small_samples_are_not_significant() -> None:
    # 12/100 against 10/100: pooled 0.11, z = 0.452, p = 0.651
    t = z_test(Arm("A", 100, 12), Arm("B", 100, 10))
    assert t.z == pytest.approx(0.45198, abs=1e-5)
    assert t.p_value == pytest.approx(0.65128, abs=1e-5)
    assert verdict([Arm("A", 100, 12), Arm("B", 100, 10)]).reason is (
        NoWinnerReason.NOT_SIGNIFICANT)


def test_one_arm_has_nothing_to_compare() -> None:
    v = verdict([A])
    assert v.winner is None and v.reason is NoWinnerReason.SINGLE_ARM and v.tests == ()
    assert verdict([]).best is None


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        Arm("x", 10, 11)
    with pytest.raises(ValueError):
        Rule(alpha=1.5)
    with pytest.raises(ValueError):
        z_test(A, B, alpha=0)
