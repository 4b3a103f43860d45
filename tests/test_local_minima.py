"""optimal_clip's local minima are basins of the MSE, never the end of its search range."""

import numpy as np
import pytest

from qtheory import Gaussian, Mixture, clipping_mse, optimal_clip


def test_bimodal_second_basin_is_found_not_the_end_of_the_scan():
    """The bimodal cell of notebooks/custom_distributions.ipynb printed [4. 10.411]: 10.411 was the
    end of the scan, where the MSE was still falling. The second basin (inner levels ±α/4 on the
    modes ±3) is at α = 12."""
    p = Mixture([0.5, 0.5], [Gaussian(0.25, loc=-3.0), Gaussian(0.25, loc=3.0)])
    r = optimal_clip(p, 2)
    assert r.local_minima.size == 2
    np.testing.assert_allclose(r.local_minima, [4.0, 12.0], atol=1e-3)
    # each reported minimum is a minimum of the exact MSE curve: both neighbours are higher
    for a in r.local_minima:
        mid, lo, hi = clipping_mse(p, [a, 0.99 * a, 1.01 * a], 2).mse
        assert mid < lo and mid < hi
    assert r.alpha == pytest.approx(4.0, abs=1e-3)


@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
@pytest.mark.parametrize("bits", [1, 4, 8])
def test_unimodal_priors_report_one_interior_minimum(prior, bits):
    r = optimal_clip(prior, bits)
    assert r.local_minima.size == 1 and r.local_minima[0] == pytest.approx(r.alpha, rel=1e-6)
    mid, lo, hi = clipping_mse(prior, [r.alpha, 0.999 * r.alpha, 1.001 * r.alpha], bits).mse
    assert mid <= lo and mid <= hi
