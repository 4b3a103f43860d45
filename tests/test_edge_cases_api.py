"""Edge cases across the API, each against an independent reference:

5  symbolic ACIQ Gaussian clipping term in float64 vs scipy quad of the clipping integral;
6  symbolic ACIQ optimum for every bit-width vs qtheory.optimal_clip and an mpmath residual;
7  torch_ste refuses float32 parameters exactly where the numpy rules (qtheory.ste) do;
8  LSQQuantizer on an empty tensor: empty output, zero step gradient (an empty sum);
9  `qtheory report` errors for a --csv directory and an unreachable --scheduler;
10 E8M0 "ceil"/"rne" block scales vs exact Fraction arithmetic, down to 5e-324;
11 block casts keep the sign of zero, vs ml_dtypes / np.rint casts of x/s;
12 qat.analysis.learned_clip: clear ValueError for quantizers without a learned clip.
"""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import qtheory
from qtheory.symbolic import aciq as sa


# ----------------------------------------------------------------------------- 5
def _gauss_clip_quad(t: float, sigma: float) -> float:
    """``2∫_α^∞ (x − α)² p(x) dx``, α = tσ, for N(0, σ²), by quadrature.

    With ``x = σ(t + u)``: ``2σ² φ(t) ∫_0^∞ u² e^{−tu − u²/2} du`` (a well-scaled integrand).
    """
    from scipy.integrate import quad

    val, err = quad(lambda u: u * u * math.exp(-t * u - 0.5 * u * u), 0.0, math.inf, epsabs=0.0, epsrel=2e-14,
                    limit=200)
    assert err <= 1e-12 * val
    return 2.0 * sigma**2 * math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi) * val


@pytest.mark.parametrize("sigma", [1.0, 1.7])
def test_symbolic_gaussian_clipping_is_accurate_in_float64(sigma):
    f = sa.derive("gaussian").numeric()
    ts = [0.5, 2.0, 6.0, 8.0, 12.0, 20.0, 30.0]
    alphas = np.array(ts) * sigma
    clip, noise = f(alphas, sigma, 8)              # array path
    for t, a, c in zip(ts, alphas, clip, strict=True):
        ref = _gauss_clip_quad(t, sigma)
        assert c == pytest.approx(ref, rel=1e-12, abs=0.0), t         # was -1.5e-15 for 3.6e-17 at t = 8
        c1, n1 = f(float(a), sigma, 8)                        # scalar path
        assert c1 == c and n1 == pytest.approx(a * a / (3 * 4**8), rel=1e-15)
    np.testing.assert_allclose(noise, alphas**2 / (3 * 4**8), rtol=1e-15)


# ----------------------------------------------------------------------------- 6
@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
def test_symbolic_optimal_alpha_every_bit_width(prior):
    for bits in range(17):
        hp = sa.optimal_alpha(prior, bits)            # raised "Could not find root" from 11 bits
        assert float(hp) == pytest.approx(qtheory.optimal_clip(prior, bits, method="aciq").ratio, rel=1e-12)
        # the stationarity condition α/(3·4^M) = E[(|X| − α)_+] in mpmath at 50 digits (closed forms)
        with mpmath.workdps(50):
            a = mpmath.mpf(str(hp))
            if prior == "laplace":
                tail = mpmath.exp(-a)
            else:
                tail = mpmath.sqrt(2 / mpmath.pi) * mpmath.exp(-a * a / 2) - a * mpmath.erfc(a / mpmath.sqrt(2))
            lhs = a / (3 * mpmath.mpf(4) ** bits)
            assert abs(lhs - tail) <= mpmath.mpf("1e-25") * lhs


# ----------------------------------------------------------------------------- 7, 8
@pytest.mark.torch
def test_torch_ste_refuses_float32_parameters_like_the_numpy_rules():
    torch = pytest.importorskip("torch")
    from qtheory import ste
    from qtheory import torch_ste as ts

    x = np.array([0.0, 0.5, -1.0, 3.0, -1e30, 1e-30], dtype=np.float32)
    xt = torch.from_numpy(x)
    cases = [("tqt", "theta", [-200.0, -150.0, -140.0, -120.0, -119.0, 0.5, 126.0, 127.0, 128.0, 200.0]),
             ("lsq", "s", [1e-44, 1e-39, 1.1754944e-38, 1.2e-38, 0.1, 2e36, 2.6e37, 3e37, 1e38]),
             ("pact", "alpha", [1e-44, 2e-36, 3e-36, 1.0, 3e38]),
             ("calibrated_pact", "alpha", [1e-44, 2e-36, 3e-36, 1.0, 3e38])]
    for estimator, name, values in cases:
        func = {"tqt": ts.tqt_quantize, "lsq": ts.lsq_quantize, "pact": ts.pact_quantize,
                "calibrated_pact": ts.calibrated_pact_quantize}[estimator]
        refused = 0
        for v in values:
            p = torch.tensor(v, dtype=torch.float32)
            v32 = float(p)
            try:
                with np.errstate(over="ignore", invalid="ignore"):  # (x/s = inf: clipped; inf − inf unused)
                    ref = ste.pointwise(estimator, x, v32, 8)    # the numpy rule: the reference
            except ValueError:
                with pytest.raises(ValueError, match=f"'{name}' parameter of {func.__name__}"):
                    func(xt, p, 8)
                refused += 1
                continue
            q = func(xt, p, 8)                                   # accepted: equal to the rule, finite
            np.testing.assert_array_equal(q.numpy(), ref.q)
            assert np.all(np.isfinite(q.numpy()))
        assert 0 < refused < len(values)
    # the modules call the functions: TQTQuantizer(init_threshold=1e60) gave all NaN
    with pytest.raises(ValueError, match="'theta' parameter of tqt_quantize"):
        ts.TQTQuantizer(8, init_threshold=1e60)(xt)
    with pytest.raises(ValueError, match="'grad_scale' parameter of lsq_quantize"):
        ts.lsq_quantize(xt, torch.tensor(0.1), 4, grad_scale=1e-40)
    # float64: PACT's step 5e-324/255 underflows to 0 (0/0 = NaN at x = 0)
    assert 5e-324 / 255.0 == 0.0
    with pytest.raises(ValueError, match="'alpha' parameter of pact_quantize"):
        ts.pact_quantize(xt.double(), torch.tensor(5e-324, dtype=torch.float64), 8)


@pytest.mark.torch
def test_lsq_quantizer_on_an_empty_tensor():
    torch = pytest.importorskip("torch")
    from qtheory import torch_ste as ts

    for shape in [(0,), (0, 3)]:
        m = ts.LSQQuantizer(4)                          # was ZeroDivisionError (1/sqrt(0·Q_P))
        y = m(torch.zeros(shape))
        assert tuple(y.shape) == shape
        y.sum().backward()
        assert m.s.grad.item() == 0.0                   # an empty sum
    # the default gradient scale of a non-empty input is still LSQ's 1/sqrt(N·Q_P)
    m = ts.LSQQuantizer(4, init_scale=1.0)
    x = torch.tensor([20.0, 0.25, -0.3])                # u = x: clipped at Q_P = 7, then two in range
    m(x).sum().backward()
    assert m.s.grad.item() == pytest.approx((7 + (0 - 0.25) + (0 + 0.3)) / math.sqrt(3 * 7), rel=1e-6)


# ----------------------------------------------------------------------------- 9
@pytest.fixture
def weights_npy(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.random.default_rng(0).laplace(size=(8, 16)))
    return path


def test_report_csv_directory_is_a_clean_error(weights_npy, tmp_path, capsys):
    from qtheory.cli import main

    d = tmp_path / "out"
    d.mkdir()
    assert main(["report", str(weights_npy), "--all-tensors", "--bits", "4", "--csv", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qtheory report: error: The '--csv' option") and "directory" in err
    assert list(d.iterdir()) == []
    f = tmp_path / "file"
    f.write_text("")
    assert main(["report", str(weights_npy), "--all-tensors", "--bits", "4", "--csv", str(f / "x.csv")]) == 2
    assert "'--csv'" in capsys.readouterr().err


def test_report_unreachable_scheduler_is_a_clean_error(weights_npy, capsys):
    pytest.importorskip("distributed")
    import dask

    from qtheory.cli import main

    # a closed port: distributed retries until its connect timeout (30 s by default), shortened here
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        rc = main(["report", str(weights_npy), "--all-tensors", "--bits", "4", "--scheduler", "tcp://127.0.0.1:1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("qtheory report: error: The '--scheduler' option") and "tcp://127.0.0.1:1" in err


# ----------------------------------------------------------------------------- 10
def _e8m0_exponent_exact(rule: str, m: float, emax: Fraction) -> int:
    """The E8M0 exponent by exact rational arithmetic (clamped to [-127, 127])."""
    m = Fraction(m)
    if m == 0:
        return -127
    r = m / emax
    k = r.numerator.bit_length() - r.denominator.bit_length() - 2     # 2^k below r
    if rule == "ceil":   # smallest k with element_max·2^k >= m
        while emax * Fraction(2) ** k < m:
            k += 1
    else:                # rne: the k with 0.75·2^k <= m/element_max < 1.5·2^k
        while not Fraction(3, 4) * Fraction(2) ** k <= m / emax < Fraction(3, 2) * Fraction(2) ** k:
            k += 1
    return max(-127, min(127, k))


def test_e8m0_ceil_and_rne_scales_match_exact_arithmetic(rng):
    from qtheory.formats import BLOCK_FORMATS
    from qtheory.formats.block import block_scale

    edge = [5e-324, 1e-323, 2.0**-1074, 2.0**-1022, 2.0**-1000, 0.0, 6 * 2.0**-130, 6 * 2.0**-127,
            4.5 * 2.0**-127, 1e-45, 1.0, 5.9, 6.0, 8.0, 9.0, 1e38, 1.7e308]
    for name in ["mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8"]:
        bf0 = BLOCK_FORMATS[name]
        emax = Fraction(bf0.element_max)
        ties = [float(emax * Fraction(3, 2) * Fraction(2) ** k) for k in (-200, -127, -3, 0, 5, 100)]
        ties += [float(emax * Fraction(2) ** k) for k in (-140, -127, -1, 0, 7, 126)]
        m = np.array(edge + ties)
        m = np.concatenate([m, np.nextafter(m, 0.0), np.nextafter(m, np.inf),
                            np.exp(rng.uniform(-744.0, 709.0, 300)), rng.uniform(0.0, 20.0, 100)])
        m = m[np.isfinite(m)]
        for rule in ["ceil", "rne"]:
            got = block_scale(bf0.with_rule(rule), m)
            want = np.array([math.ldexp(1.0, _e8m0_exponent_exact(rule, v, emax)) for v in m])
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {rule}")
    # the finding: 0.5 instead of 2^-127
    assert block_scale(BLOCK_FORMATS["mxfp4"].with_rule("ceil"), [5e-324]).tolist() == [2.0**-127]


# ----------------------------------------------------------------------------- 11
def test_block_casts_keep_the_sign_of_zero(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    from qtheory.formats import BLOCK_FORMATS, quantize_blocks

    # MXFP4 with the OCP floor rule: every block holds ±4 (scale 2^(floor(log2 4) − 2) = 1), so the
    # reference is the ml_dtypes E2M1 cast of x itself (|x| <= 4: no saturation)
    x = rng.uniform(-4.0, 4.0, (50, 32))
    x[:, :8] = rng.uniform(-0.2, 0.2, (50, 8))       # many values that round to ±0
    x[:, 8] = -0.0
    x[:, 9] = 0.0
    x[:, 10] = np.where(rng.random(50) < 0.5, 4.0, -4.0)
    ref = x.astype(ml_dtypes.float4_e2m1fn).astype(np.float64)
    got = quantize_blocks(x, "mxfp4")
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))
    assert np.signbit(got[:, 8]).all() and np.signbit(got[:, :8]).sum() > 0
    # INT4 groups of 32 with an FP16 absmax scale: s = fp16(amax/7), q = clip(rint(x/s), ±7)·s
    bf = BLOCK_FORMATS["int4_g32"]
    s = (np.max(np.abs(x), axis=-1, keepdims=True) / 7.0).astype(np.float16).astype(np.float64)
    ref = np.clip(np.rint(x / s), -7, 7) * s
    got = quantize_blocks(x, bf)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))
    # NVFP4: an all-zero tensor keeps its signs
    assert np.signbit(quantize_blocks([-0.0, 0.0, -0.0], "nvfp4")).tolist() == [True, False, True]


# ----------------------------------------------------------------------------- 12
@pytest.mark.torch
def test_learned_clip_without_a_learned_threshold():
    torch = pytest.importorskip("torch")
    from qtheory.qat import analysis as A
    from qtheory.qat import network as N

    codes = np.random.default_rng(0).integers(0, 17, (64, 1, 8, 8)).astype(np.uint8)  # digits-like pixel codes
    torch.manual_seed(0)
    fp = N.DigitsCNN()
    for method in ("pact", "sat"):
        m = N.quantize_model(fp, method, 4, codes)
        for name in ("w0", "w3"):
            with pytest.raises(ValueError, match="'name' parameter of learned_clip"):
                A.learned_clip(m, name)               # was AttributeError: no 'alpha'
        # activations do have a learned clip: PACT's α, initialised at the calibration maximum
        taps: dict = {}
        with torch.no_grad():
            fp.eval()
            fp(N.as_input(codes), taps=taps)
        top = float(torch.clamp(taps["act0"], min=0).max())
        assert A.learned_clip(m, "a0") == pytest.approx(top, rel=1e-7)
    with pytest.raises(ValueError, match="'name' parameter of learned_clip"):
        A.learned_clip(m, "w9")
