"""Element formats and codebooks: bit-exact against ml_dtypes, uniform grids unchanged, exact MSE vs Monte Carlo."""

import subprocess
import sys

import numpy as np
import pytest
from _mc import k_family
from scipy import stats

import qtheory
from qtheory import Quantizer, clipping_mse, optimal_clip
from qtheory.formats import (
    FORMATS,
    apot_levels,
    element_quantizer,
    int_levels,
    level_set,
    level_set_mse,
    lloyd_max_levels,
    nf4_levels,
    optimal_scale,
    pow2_levels,
)
from qtheory.formats.exact import StudentT

ml_dtypes = pytest.importorskip("ml_dtypes")

FP = [n for n, f in FORMATS.items() if f.signed]


def _all_codes(f):
    dt = np.dtype(getattr(ml_dtypes, f.ml_dtype) if f.ml_dtype != "float16" else np.float16)
    width = {1: np.uint8, 2: np.uint16}[dt.itemsize]
    codes = np.arange(2 ** min(f.bits, 16), dtype=width)
    with np.errstate(invalid="ignore"):
        return codes.view(dt).astype(np.float64)


def _cast(x, f):
    dt = np.float16 if f.ml_dtype == "float16" else getattr(ml_dtypes, f.ml_dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(x, np.float64).astype(dt).astype(np.float64)


# --------------------------------------------------------------------------- spec
@pytest.mark.parametrize("name", list(FORMATS))
def test_every_code_equals_ml_dtypes(name):
    f = FORMATS[name]
    v = _all_codes(f)
    finite = np.unique(v[np.isfinite(v)])  # -0 and +0 collapse
    assert np.array_equal(finite, f.values())
    info = ml_dtypes.finfo(np.float16 if f.ml_dtype == "float16" else getattr(ml_dtypes, f.ml_dtype))
    assert f.max == float(info.max)
    if f.signed:
        assert f.min_normal == float(info.smallest_normal)
        assert f.min_subnormal == float(info.smallest_subnormal)


def test_spec_facts():
    # OCP FP8 / MX v1.0 maxima and E2M1 values (the notes)
    assert [FORMATS[n].max for n in ("fp8_e4m3fn", "fp8_e5m2", "fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn")] == [
        448.0, 57344.0, 7.5, 28.0, 6.0]
    assert FORMATS["fp4_e2m1fn"].magnitudes().tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert FORMATS["fp8_e4m3fn"].min_subnormal == 2.0**-9
    assert [FORMATS[n].emax for n in ("fp4_e2m1fn", "fp6_e2m3fn", "fp6_e3m2fn", "fp8_e4m3fn", "fp8_e5m2")] == [
        2, 2, 4, 8, 15]


@pytest.mark.parametrize("name", FP)
def test_rounding_equals_ml_dtypes_on_every_tie_and_between(name, rng):
    """Every midpoint (tie), points just beside it, and random values; clipped to ±max first."""
    f = FORMATS[name]
    v = f.values()
    mid = 0.5 * (v[1:] + v[:-1])
    m32 = mid.astype(np.float32)  # exact: every midpoint has few significant bits
    x = np.concatenate([m32, np.nextafter(m32, np.float32(np.inf)), np.nextafter(m32, np.float32(-np.inf)), v,
                        rng.uniform(-f.max, f.max, 20000), f.max * np.exp(rng.uniform(-30, 0, 20000)),
                        [0.0, -0.0], np.array([-0.25, -0.5, -0.75]) * f.min_subnormal])
    # ml_dtypes casts float64 through float32, so the reference inputs are float32 numbers
    x = x.astype(np.float32).astype(np.float64)
    q = element_quantizer(f.level_set(), 1.0)
    out, ref = q.quantize(x), _cast(np.clip(x, -f.max, f.max), f)
    assert np.array_equal(out, ref)
    assert np.array_equal(np.signbit(out), np.signbit(ref))  # (-0.0 where a negative value rounds to 0)


def test_ml_dtypes_float64_inputs_against_exact_rounding():
    """A float64 just inside a tie: exact RNE rounds it down to -416, as qtheory does. ml_dtypes
    before 0.7 cast float64 through float32, whose rounding lands on the tie -432 (then to even:
    -448); 0.7 casts float64 directly (jax-ml/ml_dtypes#401). Either way its cast of the float32
    value is -448, so the reference inputs of the tests above are float32 numbers."""
    import ml_dtypes
    from packaging.version import Version

    x = np.nextafter(-432.0, 0.0)  # between -448 and -416, nearer -416
    assert element_quantizer("fp8_e4m3fn", 1.0).quantize([x])[0] == -416.0
    direct = -416.0 if Version(ml_dtypes.__version__) >= Version("0.7") else -448.0
    assert _cast([x], FORMATS["fp8_e4m3fn"])[0] == direct
    assert _cast([np.float32(x)], FORMATS["fp8_e4m3fn"])[0] == -448.0


def test_ml_dtypes_does_not_saturate_so_clip_first():
    f = FORMATS["fp8_e4m3fn"]
    q = element_quantizer("fp8_e4m3fn", 1.0)
    x = np.array([449.0, 464.0, 464.5, 480.0, 1e6])
    raw = _cast(x, f)
    assert raw[0] == 448.0 and raw[1] == 448.0 and np.all(np.isnan(raw[2:]))  # ties-to-even at 464, NaN beyond
    assert np.all(q.quantize(x) == 448.0)
    assert np.array_equal(q.quantize(x), _cast(np.clip(x, -448, 448), f))
    # E5M2 (IEEE): the tie at 61440 goes to Inf in ml_dtypes; the saturating quantizer stays at 57344
    assert np.isinf(_cast([61440.0], FORMATS["fp8_e5m2"]))[0]
    assert element_quantizer("fp8_e5m2", 1.0).quantize([61440.0])[0] == 57344.0
    # FP4/FP6 casts clamp (no Inf): equal without clipping
    x = np.array([6.5, 7.0, 100.0, -1e9])
    assert np.array_equal(element_quantizer("fp4_e2m1fn", 1.0).quantize(x), _cast(x, FORMATS["fp4_e2m1fn"]))


def test_e8m0_codes_and_cast():
    f = FORMATS["fp8_e8m0fnu"]
    v = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e8m0fnu).astype(np.float64)
    assert np.array_equal(v[:255], f.magnitudes()) and np.isnan(v[255])
    assert f.magnitudes()[0] == 2.0**-127 and f.max == 2.0**127


@pytest.mark.parametrize("scale", [2.0**-7, 0.37, 3.0])
def test_scaled_rounding_is_the_cast_of_x_over_s(scale, rng):
    f = FORMATS["fp6_e3m2fn"]
    x = rng.normal(0, 10, 5000)
    q = element_quantizer("fp6_e3m2fn", scale)
    assert np.array_equal(q.quantize(x), _cast(np.clip(x / scale, -f.max, f.max), f) * scale)


def test_int_codebook_equals_uniform_quantizer_including_ties(rng):
    for bits in (4, 8):
        u = Quantizer(bits, 2.0 ** (bits - 1), "int")
        c = element_quantizer(f"int{bits}", 1.0)
        x = np.concatenate([np.arange(-2.0**bits, 2.0**bits, 0.5), rng.normal(0, 2 ** (bits - 1), 5000)])
        for rounding in ("half_even", "half_away", "half_up"):
            ur = Quantizer(bits, u.alpha, "int", rounding)
            cr = element_quantizer(f"int{bits}", 1.0, rounding=rounding)
            assert np.array_equal(ur.quantize(x), cr.quantize(x)), rounding
        assert np.array_equal(u.thresholds, c.thresholds) and u.overload == c.overload
        # and the int8 cast reference: round half to even, saturate
        assert np.array_equal(c.quantize(x), np.clip(np.rint(x), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1))


def test_codebook_exact_mse_equals_uniform_exact_mse():
    for prior in ("gaussian", "laplace"):
        for bits, alpha in ((4, 3.0), (8, 5.0)):
            u = clipping_mse(prior, alpha, bits, grid="int")
            q = element_quantizer(f"int{bits}", alpha / 2 ** (bits - 1))
            r = level_set_mse(prior, q)
            assert r.mse == pytest.approx(float(u.mse), rel=1e-13)
            assert r.clipping == pytest.approx(float(u.clipping), rel=1e-12, abs=1e-300)


def test_optimal_scale_of_int_equals_optimal_clip():
    for prior in ("gaussian", "laplace"):
        r = optimal_scale(prior, "int4")
        assert r.mse == pytest.approx(optimal_clip(prior, 4, grid="int").mse, rel=1e-9)


# --------------------------------------------------------------------------- codebooks
def test_nf4_equals_qlora_table():
    # bitsandbytes' NF4 table (QLoRA appendix E), float32 values
    qlora = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
             -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
             0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
             0.7229568362236023, 1.0]
    assert np.allclose(nf4_levels().levels, qlora, atol=2e-7, rtol=0)


def test_pow2_log_and_linear_decision_points():
    lin, log = element_quantizer(pow2_levels(4, "linear")), element_quantizer(pow2_levels(4, "log"))
    k = 2.0 ** np.arange(-5, 0)
    # linear rounding: decision at 1.5·2^k; log rounding (Miyashita): at √2·2^k
    assert np.array_equal(lin.quantize(1.5 * k * (1 - 1e-12)), k) and np.array_equal(lin.quantize(1.5 * k * (1 + 1e-12)), 2 * k)
    assert np.array_equal(log.quantize(np.sqrt(2) * k * (1 - 1e-12)), k)
    assert np.array_equal(log.quantize(np.sqrt(2) * k * (1 + 1e-12)), 2 * k)
    # log rounding is rounding of log2|x|
    x = np.exp(np.random.default_rng(0).uniform(np.log(2.0**-6 / np.sqrt(2)), 0, 4000))
    assert np.array_equal(log.quantize(x), 2.0 ** np.clip(np.rint(np.log2(x)), -6, 0))


def test_apot_levels_are_sums_of_powers_of_two():
    lv = apot_levels(2, 2).levels
    raw = lv[lv >= 0] * 1.5
    # Li et al.: p0 ∈ {0, 1, 2^-2, 2^-4}, p1 ∈ {0, 2^-1, 2^-3, 2^-5}
    expect = sorted({a + b for a in (0, 1, 2**-2, 2**-4) for b in (0, 2**-1, 2**-3, 2**-5)})
    assert np.allclose(raw, expect, rtol=0, atol=1e-15)


def test_lloyd_max_codebook_beats_every_4bit_codebook():
    lm = lloyd_max_levels("gaussian", 16)
    r = level_set_mse("gaussian", element_quantizer(lm, 1.0))
    for name in ("nf4", "int4", "fp4_e2m1fn"):
        assert r.mse < optimal_scale("gaussian", name).mse


# --------------------------------------------------------------------------- exact vs Monte Carlo
PRIORS = {"gaussian": "gaussian", "laplace": "laplace", "t5": stats.t(5)}
DISTS = {"gaussian": stats.norm(), "laplace": stats.laplace(), "t5": stats.t(5)}


def _error_variance(dist, q, mse):
    """Var[(X − Q(X))²] = E[e⁴] − MSE², E[e⁴] by quadrature bin by bin (independent of the draws)."""
    from scipy import integrate

    from qtheory.mse import quantizer_intervals

    a, b, y, _ = quantizer_intervals(q)
    e4 = sum(integrate.quad(lambda x, y=y: (x - y) ** 4 * dist.pdf(x), lo, hi, epsabs=0, epsrel=1e-10,
                            limit=200)[0] for lo, hi, y in zip(a, b, y, strict=True))
    return e4 - mse**2


LEVEL_SETS = ["fp8_e4m3fn", "fp8_e5m2", "fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn", "int8", "nf4", "pow2_log4",
              "apot_k2n2"]
K_LEVEL_SET = k_family(len(PRIORS) * len(LEVEL_SETS))


@pytest.mark.parametrize("prior", list(PRIORS))
@pytest.mark.parametrize("name", LEVEL_SETS)
def test_level_set_exact_mse_matches_monte_carlo(prior, name, seed):
    p = PRIORS[prior]
    cb = level_set(name)
    q = element_quantizer(cb, 2.5 / cb.amax)
    exact = level_set_mse(p, q)
    n = 200_000
    mc = level_set_mse(p, q, method="montecarlo", n_samples=n, rng=seed)
    # the standard error comes from the exact variance, not from the draws: the squared errors are
    # right-skewed (sparse clipping tail), so a draw-estimated one shrinks exactly when the mean is low
    # (and for t5, whose e⁸ has no mean, it is far too small)
    sd = np.sqrt(_error_variance(DISTS[prior], q, exact.mse) / n)
    assert abs(mc.mse - exact.mse) < K_LEVEL_SET * sd


def test_student_t_closed_form_moments_equal_quadrature():
    p, d = StudentT(5.0, 2.0), stats.t(5, scale=2.0)
    for a, b, y in ((-np.inf, -3.0, -4.0), (-3.0, 1.0, 0.5), (1.0, 2.5, 1.5), (2.5, np.inf, 3.0), (30.0, 31.0, 30.5)):
        ref = d.expect(lambda x, y=y: (x - y) ** 2, lb=a, ub=b, epsabs=1e-14, epsrel=1e-12)
        assert float(p.interval_sq_error(a, b, y)) == pytest.approx(ref, rel=1e-8)


def test_widrow_kollar_noise_law_without_overflow():
    # E[ν²] ≈ 0.180·2^(−2p)·E[x²] (p mantissa bits with the hidden one): SQNR ≈ 13.47 + 6.02·M dB
    for name, m in (("fp8_e4m3fn", 3), ("fp8_e5m2", 2), ("fp8_e3m4", 4)):
        r = optimal_scale("gaussian", name)
        assert abs(r.sqnr_db - (10 * np.log10(1 / 0.180) + 6.0206 * (m + 1))) < 0.25
    # with only four binades (E2M3) underflow breaks it
    assert optimal_scale("gaussian", "fp6_e2m3fn").sqnr_db < 10 * np.log10(1 / 0.180) + 6.0206 * 4 - 0.5


def test_codebook_quantizer_validation():
    with pytest.raises(ValueError, match="'codebook' parameter of Quantizer"):
        Quantizer(4, 1.0, "codebook", codebook=[1.0])
    with pytest.raises(ValueError, match="'bits' parameter of Quantizer"):
        Quantizer(3, 1.0, "codebook", codebook="fp4_e2m1fn")
    with pytest.raises(ValueError, match="'codebook' parameter of level_set"):
        level_set("fp3_nope")
    with pytest.raises(ValueError, match="'x' parameter"):
        element_quantizer("nf4").to_codes([np.nan])
    assert np.isnan(element_quantizer("nf4").quantize([np.nan, 0.5])[0])  # NaN passes through, as on any grid
    with pytest.raises(ValueError, match="'scale' parameter of element_quantizer"):
        element_quantizer("nf4", 0.0)
    with pytest.raises(ValueError, match="'bits' parameter of int_levels"):
        int_levels(1)


def test_scale_equivariance_of_exact_mse():
    for s in (1e-150, 1e-50, 1.0, 1e50, 1e150):  # the MSE is a square: 1e±300 would leave float64
        q = element_quantizer("fp8_e4m3fn", 2.0**-6 * s)
        r = level_set_mse(qtheory.Gaussian(sigma=s), q)
        assert r.mse / s**2 == pytest.approx(level_set_mse("gaussian", element_quantizer("fp8_e4m3fn", 2.0**-6)).mse,
                                             rel=1e-9)


def test_import_stays_light():
    code = ("import sys, qtheory, qtheory.formats; q = qtheory.formats.element_quantizer('fp8_e4m3fn'); "
            "print([m for m in ('ml_dtypes', 'torch', 'matplotlib', 'numba', 'sympy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_montecarlo_wrappers_accept_codebook_quantizers(rng):
    from qtheory import montecarlo

    q = element_quantizer("nf4", 2.0)
    x = rng.normal(size=1000)
    assert np.array_equal(montecarlo.quantize(x, q), q.quantize(x))
    with pytest.raises(TypeError, match="codebook"):
        q.kernel_params  # noqa: B018
