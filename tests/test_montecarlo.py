"""qtheory.montecarlo: the in-numba random streams (xoshiro256** against its published definition,
the fdlibm transforms against libm), the seed -> stream mapping (deterministic, independent of the
thread count), and the Monte-Carlo MSE against the exact MSE within k standard errors for any seed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import qtheory
from qtheory import Gaussian, Laplace, Quantizer, Rectified, clipping_mse, montecarlo

M64 = (1 << 64) - 1


def _xoshiro256ss(s):
    """xoshiro256** in Python integers, from Blackman & Vigna's reference C code (one step)."""

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
    t = (s[1] << 17) & M64
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 45)
    return result


def test_xoshiro_lanes_match_reference(rng):
    from qtheory.kernels.mc_draw import LANES, xoshiro_fill

    state = rng.integers(0, 2**64, (4, LANES), dtype=np.uint64)
    ref = [[int(v) for v in state[:, ln]] for ln in range(LANES)]
    out = np.empty(LANES * 37, dtype=np.uint64)
    xoshiro_fill(state, out)
    want = [[_xoshiro256ss(ref[ln]) for ln in range(LANES)] for _ in range(37)]
    assert out.reshape(37, LANES).tolist() == want
    assert state.T.tolist() == ref  # the state is advanced in place


def test_fdlibm_transforms_against_libm(rng):
    from qtheory.kernels.mc_draw import fdlibm_log, sincos_turn

    x = np.concatenate([rng.uniform(0, 1, 100_000), np.exp(rng.uniform(-700, 700, 100_000)),
                        [2.0**-54, 0.5, 1.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2), 2.0**1000]])
    out = np.empty_like(x)
    fdlibm_log(x, out)
    ref = np.log(x)
    assert np.all(np.abs(out - ref) <= np.spacing(np.abs(ref)) + (ref == 0))  # within one ulp
    u = np.concatenate([rng.uniform(0, 1, 100_000), np.arange(64) / 64])
    c, s = np.empty_like(u), np.empty_like(u)
    sincos_turn(u, c, s)
    # np.cos(2*pi*u) itself carries the rounding of 2*pi*u (up to ~4.4e-16 here)
    np.testing.assert_allclose(c, np.cos(2 * np.pi * u), rtol=0, atol=2e-15)
    np.testing.assert_allclose(s, np.sin(2 * np.pi * u), rtol=0, atol=2e-15)
    np.testing.assert_array_equal(np.abs(c[-64:][::16]), [1.0, 0.0, 1.0, 0.0])  # exact at quarter turns


PRIORS = {
    "laplace": Laplace(1.0),
    "laplace-shifted": Laplace(0.3, loc=2.0),
    "gaussian": Gaussian(1.0),
    "gaussian-wide": Gaussian(25.0, loc=-7.0),
    "relu-laplace": Rectified(Laplace(1.5, loc=0.5)),
    "relu-gaussian": Rectified(Gaussian()),
}
# 6 priors x 4 quantizers x 3 parts: Bonferroni bound at a total false-alarm rate of 1e-4
K = float(stats.norm.isf(0.5e-4 / (6 * 4 * 3)))


@pytest.mark.parametrize("name", list(PRIORS))
def test_montecarlo_mse_within_k_standard_errors(name, seed):
    prior = PRIORS[name]
    grid = "unsigned" if isinstance(prior, Rectified) else "int"
    sd = prior.std
    qs = [Quantizer(b, a * sd + (max(prior.mean, 0.0) if grid == "unsigned" else abs(prior.mean)), grid)
          for b, a in ((2, 1.5), (3, 2.0), (4, 2.5), (8, 1.0))]
    mc = montecarlo.mse(prior, qs, n_samples=300_000, rng=seed)
    for i, q in enumerate(qs):
        e = clipping_mse(prior, q.alpha, q.bits, grid=grid)
        assert abs(mc.mse[i] - e.mse) < K * mc.stderr[i], (q, mc.mse[i], e.mse)
        for part, se in (("clipping", "clipping_stderr"), ("rounding", "rounding_stderr")):
            s = getattr(mc, se)[i]
            if s > 0:
                assert abs(getattr(mc, part)[i] - getattr(e, part)) < K * s


def test_same_seed_same_result_for_any_thread_count(seed):
    import numba

    q = [Quantizer(4, 3.0), Quantizer(2, 1.5, "narrow", rounding="half_away"), Quantizer(3, 2.0, "uint")]
    n0 = numba.get_num_threads()
    try:
        runs = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            for prior in ("laplace", "gaussian"):
                r = montecarlo.mse(prior, q, n_samples=50_001, rng=seed, chunk=4096)
                runs.append((threads, prior, r.mse.tolist(), r.stderr.tolist()))
    finally:
        numba.set_num_threads(n0)
    by_prior = {}
    for _threads, prior, m, s in runs:
        by_prior.setdefault(prior, []).append((m, s))
    for results in by_prior.values():
        assert all(r == results[0] for r in results)
    # an int seed and a Generator seeded with it give the same streams; other seeds differ
    a = montecarlo.mse("laplace", q[0], n_samples=10_000, rng=seed)
    b = montecarlo.mse("laplace", q[0], n_samples=10_000, rng=np.random.default_rng(seed))
    c = montecarlo.mse("laplace", q[0], n_samples=10_000, rng=seed + 1)
    assert a.mse == b.mse and a.mse != c.mse


def test_chunks_are_independent_streams(seed):
    """The first chunk's samples do not depend on how many chunks follow (SeedSequence.spawn)."""
    q = Quantizer(8, 1.0, "int")
    one = montecarlo.mse("gaussian", q, n_samples=1000, rng=seed, chunk=1000)
    two = montecarlo.mse("gaussian", q, n_samples=2000, rng=seed, chunk=1000)
    from qtheory.montecarlo import _chunk_states

    s1 = _chunk_states(np.random.default_rng(seed), 1)
    s2 = _chunk_states(np.random.default_rng(seed), 2)
    np.testing.assert_array_equal(s1[0], s2[0])
    assert one.mse != two.mse


def test_other_priors_use_numpy_draws(seed):
    p = qtheory.as_prior(stats.t(5))
    q = Quantizer(4, 3.0)
    mc = montecarlo.mse(p, q, n_samples=100_000, rng=seed)
    e = clipping_mse(p, 3.0, 4)
    assert abs(mc.mse - e.mse) < 5 * mc.stderr


def test_bad_inputs_name_the_parameter():
    q = Quantizer(4, 3.0)
    with pytest.raises(TypeError, match="'rng' parameter of montecarlo.mse"):
        montecarlo.mse("laplace", q, n_samples=10, rng="seed")
    with pytest.raises(TypeError, match="'rng' parameter of montecarlo.mse"):
        montecarlo.mse("laplace", q, n_samples=10, rng=-1.5)
    with pytest.raises(ValueError, match=r"'n_samples' parameter of montecarlo.mse.*MAX_CHUNKS"):
        montecarlo.mse("laplace", q, n_samples=2**21 + 1, chunk=2)
