"""The 95 % intervals of the metrics: Student-t for means, Clopper-Pearson for rates (scipy.stats as
the reference; commsim computes the same quantiles with scipy.special, whose import is much cheaper)."""
import math

import numpy as np
import pytest
from scipy import stats

from commsim.core.metrics import binomial_ci, mean_ci


@pytest.mark.parametrize("n", [2, 3, 10, 200, 1000])
def test_mean_ci_is_the_student_t_interval(n):
    values = np.random.default_rng(n).normal(3.0, 2.0, size=n)
    low, high = stats.t.interval(0.95, n - 1, loc=values.mean(), scale=stats.sem(values))
    est = mean_ci(values)
    assert est.count == n and est.mean == pytest.approx(values.mean(), rel=1e-12)
    assert (est.low, est.high) == pytest.approx((low, high), rel=1e-12)


def test_mean_ci_of_one_or_no_value():
    assert math.isnan(mean_ci(np.array([4.0])).low) and mean_ci(np.array([4.0])).mean == 4.0
    assert mean_ci(np.array([])).count == 0 and math.isnan(mean_ci(np.array([])).mean)


@pytest.mark.parametrize("k, n", [(0, 10), (1, 10), (5, 10), (10, 10), (3, 1000), (500, 1000), (7, 100_000)])
def test_binomial_ci_is_clopper_pearson(k, n):
    reference = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    est = binomial_ci(k, n)
    assert est.mean == k / n and est.count == n
    assert (est.low, est.high) == pytest.approx((reference.low, reference.high), rel=1e-6, abs=1e-15)  # its roots: to ~1e-8
    assert (est.low == 0.0) == (k == 0) and (est.high == 1.0) == (k == n)
