"""Layer-error prediction vs the integer kernel at the precision the report claims (issue 10).

The report (paper_repro/intconv/REPORT.md) claims agreement within 0.5 dB. One draw of the
(4, 16, 16, 16, 32, 3, 3) layer measures the output SQNR with a standard deviation of 0.07–0.10 dB
at clip ratios 2 and 4 (bits 4–8) and 0.16 dB at ratio 8 and 8 bits, where a few clipped tail
values dominate (measured over 20 draws). So: every cell within 0.5 dB at ratios 2 and 4
(≥ 4.8 SD), and no bias — the mean gap over 20 draws and 6 cells within 0.1 dB (the standard
error of that mean is ≈ 0.015 dB; ≈ 0.02 dB was measured).
"""

import numpy as np
import pytest

from qtheory import Gaussian, Laplace, Rectified
from qtheory.intconv import sqnr_sweep

SHAPE = (4, 16, 16, 16, 32, 3, 3)


def _sweep(seed, bits, ratios):
    b = np.exp(np.random.default_rng(seed).normal(np.log(0.03), 0.5, SHAPE[4]))
    return sqnr_sweep(Rectified(Gaussian()), [Laplace(v) for v in b], bits=bits, clip_ratios=ratios,
                      shape=SHAPE, rng=seed)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_predicted_sqnr_within_half_a_db(bits, seed):
    df = _sweep(seed, (bits,), (2.0, 4.0))
    assert np.all(np.abs(df.gap_db) < 0.5), df


@pytest.mark.slow
def test_prediction_has_no_bias(seed):
    seeds = np.random.default_rng(seed).integers(0, 2**32, size=20)
    gaps = np.concatenate([_sweep(int(s), (4, 8), (2.0, 4.0, 8.0)).gap_db.to_numpy() for s in seeds])
    assert gaps.size == 120
    assert abs(gaps.mean()) < 0.1, gaps.mean()
