"""The statistics against published worked examples, statsmodels, and their own promise (coverage)."""

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from stages.lib.stats import compare, holm, mcnemar_midp, paired_difference_ci, wilson


@pytest.mark.parametrize(
    ("correct", "total", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3.
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_intervals_are_newcombes(correct, total, low, high):
    assert wilson(correct, total) == pytest.approx((low, high), abs=5e-5)


def test_an_accuracy_of_93_percent_on_10000_images_is_half_a_point_either_way():
    low, high = wilson(9300, 10000)
    assert high - 0.93 == pytest.approx(0.005, abs=0.0003) and 0.93 - low == pytest.approx(0.005, abs=0.0003)


def test_mcnemar_mid_p_is_fagerland_lydersen_and_laakes_worked_example():
    # Fagerland, Lydersen & Laake (2013), the airway hyper-responsiveness data: 1 and 7 discordant pairs.
    assert mcnemar_midp(7, 1) == pytest.approx(0.039, abs=5e-4)
    assert mcnemar(np.array([[1, 1], [7, 12]]), exact=True).pvalue == pytest.approx(0.070, abs=5e-4)


def test_mcnemar_mid_p_is_the_exact_test_less_the_observed_tables_probability():
    from scipy.stats import binom

    rng = np.random.default_rng(0)
    for _ in range(200):
        fixed, broken = (int(v) for v in rng.integers(0, 60, size=2))
        exact = mcnemar(np.array([[100, broken], [fixed, 100]]), exact=True).pvalue
        midp = mcnemar_midp(fixed, broken)
        if fixed == broken:
            assert midp == pytest.approx(1.0, abs=1e-12)
        else:
            assert midp == pytest.approx(exact - binom.pmf(min(fixed, broken), fixed + broken, 0.5), abs=1e-12)
        assert midp <= exact + 1e-12
    assert mcnemar_midp(0, 0) == 1.0


def test_holm_is_statsmodels_holm():
    rng = np.random.default_rng(1)
    for size in (1, 3, 10):
        p = list(rng.uniform(0, 0.2, size=size))
        assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)


def test_the_paired_interval_holds_its_estimate_and_covers_95_percent():
    # Two correlated classifiers on 400 images, 93% and 94% accurate; 1,000 test sets, seeded (an
    # interval of true 95% coverage lands within these bounds for about 97% of seeds).
    rng = np.random.default_rng(2)
    covered, n, truth = 0, 400, 0.94 - 0.93
    for _ in range(1000):
        shared = rng.uniform(size=n)
        right_a = shared < 0.93
        right_b = np.where(rng.uniform(size=n) < 0.8, shared < 0.94, rng.uniform(size=n) < 0.94)
        result = compare(right_a, right_b)
        low, high = result.difference_ci
        assert low <= result.difference <= high
        covered += low <= truth <= high
    assert 0.935 <= covered / 1000 <= 0.965


def test_compare_counts_what_b_fixes_and_breaks():
    right_a = np.array([True, True, False, False, True])
    right_b = np.array([True, False, True, True, True])
    result = compare(right_a, right_b)
    assert (result.fixed, result.broken, result.n) == (2, 1, 5)
    assert result.accuracy_a == 0.6 and result.accuracy_b == 0.8 and result.difference == pytest.approx(0.2)
    assert result.better() is None  # 2 against 1 is no evidence
    assert compare(right_a, right_a).difference_ci[0] <= 0 <= compare(right_a, right_a).difference_ci[1]
    with pytest.raises(ValueError, match="scored on 5 and 4 images"):
        compare(right_a, right_b[:4])


def test_a_large_difference_is_significant_and_its_interval_excludes_zero():
    right_a = np.r_[np.ones(9300, bool), np.zeros(700, bool)]
    right_b = right_a.copy()
    right_b[9300:9400] = True  # B fixes 100 images
    right_b[:20] = False  # and breaks 20
    result = compare(right_a, right_b)
    assert result.better() == "b" and result.p_value < 1e-10
    assert result.difference_ci[0] > 0
    assert paired_difference_ci(9280, 20, 100, 600) == result.difference_ci
