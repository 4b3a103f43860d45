"""qtheory.montecarlo: the in-numba random streams (xoshiro256** against its published definition,
the fdlibm transforms against libm), the seed -> stream mapping (deterministic, independent of the
thread count), and the Monte-Carlo MSE against the exact MSE within k standard errors for any seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import qtheory
from qtheory import Gaussian, Laplace, Quantizer, Rectified, clipping_mse, montecarlo
from qtheory.montecarlo import mse

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


def test_spawn_states_equal_numpy_seedsequence(rng):
    """The numba seeding kernel gives the words of numpy's SeedSequence(root).spawn(n)[c].generate_state."""
    from qtheory.kernels.mc_draw import LANES, spawn_states
    from qtheory.montecarlo import _chunk_states, _entropy_words

    for trial in range(6):
        root = rng.integers(0, 2**64, 4, dtype=np.uint64)
        if trial == 1:
            root[[0, 2]] = [0, 12345]  # words of 0 and of a value below 2^32 take one uint32 each
        n = int(rng.integers(1, 200))
        want = np.stack([c.generate_state(4 * LANES, np.uint64).reshape(LANES, 4).T
                         for c in np.random.SeedSequence(root).spawn(n)])
        got = np.empty((n, 4, LANES), dtype=np.uint64)
        spawn_states(_entropy_words(root), got)
        np.testing.assert_array_equal(got, want)
    # and _chunk_states draws the root entropy as documented (four uint64 from default_rng(seed))
    seed = int(rng.integers(0, 2**32))
    root = np.random.default_rng(seed).integers(0, 2**64, 4, dtype=np.uint64)
    want = np.stack([c.generate_state(4 * LANES, np.uint64).reshape(LANES, 4).T
                     for c in np.random.SeedSequence(root).spawn(3)])
    np.testing.assert_array_equal(_chunk_states(np.random.default_rng(seed), 3), want)


def _draws(dist, loc, scale, seed, n=2_000_003, chunk=50_000, rectify=False):
    from qtheory.kernels.mc_draw import draw_chunks
    from qtheory.montecarlo import _chunk_states

    states = _chunk_states(np.random.default_rng(seed), -(-n // chunk))
    out = np.empty(n)
    draw_chunks(states, n, chunk, {"laplace": 0, "gaussian": 1}[dist], loc, scale, rectify, out)
    return out


# each distribution test makes 9 comparisons: Bonferroni at a false-alarm rate of 1e-6 per test
K_DRAW = float(stats.norm.isf(0.5e-6 / 9))


@pytest.mark.parametrize(("dist", "loc", "scale"), [("gaussian", 0.0, 1.0), ("gaussian", -7.0, 25.0),
                                                    ("laplace", 0.0, 1.0), ("laplace", 2.0, 0.3)])
def test_draws_follow_their_distribution(dist, loc, scale, seed):
    """The in-numba draws against scipy: moments 1-4, a far tail, 256 equiprobable bins (chi-square),
    Kolmogorov-Smirnov, and (Box-Muller) independence of the two draws made from one pair of uniforms."""
    x = _draws(dist, loc, scale, seed)
    n = x.size
    ref = stats.norm() if dist == "gaussian" else stats.laplace()
    z = (x - loc) / scale
    def raw(k):  # E z^k: (k-1)!! for the standard normal, k! for the standard Laplace, 0 for odd k
        return 0.0 if k % 2 else float(math.prod(range(k - 1, 0, -2)) if dist == "gaussian" else math.factorial(k))

    for k in (1, 2, 3, 4):
        mean, var = raw(k), raw(2 * k) - raw(k) ** 2
        assert abs(np.mean(z**k) - mean) < K_DRAW * np.sqrt(var / n), (k, np.mean(z**k), mean)
    t = 4.0 if dist == "gaussian" else 8.0
    p = 2 * ref.sf(t)
    assert abs(np.mean(np.abs(z) > t) - p) < K_DRAW * np.sqrt(p * (1 - p) / n)
    counts = np.bincount(np.minimum((ref.cdf(z) * 256).astype(np.int64), 255), minlength=256)
    chi2 = float(np.sum((counts - n / 256) ** 2 / (n / 256)))
    assert chi2 < stats.chi2.isf(1e-6 / 9, 255), chi2
    assert stats.kstest(z, ref.cdf).pvalue > 1e-6 / 9
    if dist == "gaussian":
        # x[i] = r cos, x[i + 512] = r sin of one pair: uncorrelated, and so are their squares
        from qtheory.kernels.mc_draw import BATCH

        b = z[: (n // BATCH) * BATCH].reshape(-1, 2, BATCH // 2)
        c, s = b[:, 0].ravel(), b[:, 1].ravel()
        m = c.size
        assert abs(np.mean(c * s)) < K_DRAW / np.sqrt(m)  # var(cs) = 1
        assert abs(np.mean((c * c - 1) * (s * s - 1))) < K_DRAW * 2 / np.sqrt(m)  # var = 2 * 2
        angle = np.arctan2(s, c) / (2 * np.pi) % 1.0
        assert stats.kstest(angle, "uniform").pvalue > 1e-6 / 9


def test_kernel_measures_exactly_its_draws(seed):
    """mse_chunks accumulates the draws draw_chunks writes (also rectified): equal sums to rounding."""
    from qtheory.kernels.mc_draw import mse_chunks
    from qtheory.montecarlo import _chunk_states

    q = Quantizer(3, 2.0)
    (sc, off, qmin, qmax, mode), (lo, hi) = q.kernel_params, q.overload
    n, chunk = 30_001, 4096
    for dist, rectify in (("gaussian", False), ("laplace", False), ("gaussian", True)):
        x = _draws(dist, 0.2, 1.1, seed, n=n, chunk=chunk, rectify=rectify)
        assert (x >= 0).all() if rectify else (x < 0).any()
        e2 = (np.clip(np.rint(x / sc - off), qmin, qmax) + off) * sc - x
        e2 = e2 * e2
        clip = (x < lo) | (x >= hi)
        want = [e2[clip].sum(), (e2[clip] ** 2).sum(), e2[~clip].sum(), (e2[~clip] ** 2).sum()]
        out = np.zeros((-(-n // chunk), 1, 4))
        mse_chunks(_chunk_states(np.random.default_rng(seed), out.shape[0]), n, chunk, {"laplace": 0, "gaussian": 1}[dist],
                   0.2, 1.1, rectify, np.array([sc]), np.array([off]), np.array([qmin]), np.array([qmax]),
                   np.array([mode]), np.array([lo]), np.array([hi]), out)
        np.testing.assert_allclose(out.sum(axis=0)[0], want, rtol=1e-12)


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


@pytest.mark.parametrize("k", [-600, -300, 300, 600])
def test_standard_errors_scale_with_the_prior(k):
    """The standard errors come from fourth powers of the errors, which underflowed (0.0) or
    overflowed (NaN) beyond ~2^±256; the draws are now taken at unit scale and scaled back,
    the same draws exactly, so every number is the unit one times 4^k."""
    c = 2.0**k
    for prior, prior1, q, q1 in [(Laplace(c), Laplace(1.0), Quantizer(4, 5 * c), Quantizer(4, 5.0)),
                                 (Gaussian(c), Gaussian(1.0), Quantizer(3, 2 * c, "affine", beta=-c),
                                  Quantizer(3, 2.0, "affine", beta=-1.0))]:
        r, r1 = mse(prior, q, n_samples=20_000, rng=3), mse(prior1, q1, n_samples=20_000, rng=3)
        for f in ("mse", "stderr", "clipping", "clipping_stderr", "rounding_stderr"):
            with np.errstate(over="ignore", under="ignore"):
                want = np.ldexp(getattr(r1, f), 2 * k)
            assert getattr(r, f) == want, (f, prior)
        assert r1.stderr > 0


def test_audit_inputs_name_the_parameter():
    from qtheory import montecarlo

    q = Quantizer(4, 1.0)
    for call, param, exc in [(lambda: mse("laplace", None), "quantizers", TypeError),
                             (lambda: montecarlo.quantize("abc", q), "x", TypeError),
                             (lambda: montecarlo.quantize(None, q), "x", TypeError),
                             (lambda: montecarlo.quantize([[1, 2], [3]], q), "x", TypeError),
                             (lambda: mse("laplace", q, rng=True), "rng", TypeError),
                             (lambda: mse("laplace", q, n_samples=10**18, chunk=10**18), "chunk", ValueError)]:
        with pytest.raises(exc, match=rf"The '{param}' parameter of [\w.]+ must be .+\. Got .+ instead\."):
            call()
