"""PyTorch fake-quantizers equal the numpy STE rules bit for bit (float32 and float64)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qtheory import ste  # noqa: E402
from qtheory import torch_ste as ts  # noqa: E402

pytestmark = pytest.mark.torch

DTYPES = [(np.float32, torch.float32), (np.float64, torch.float64)]
CASES = [  # estimator, param, signed, power_of_2, grad_scale
    ("tqt", 0.37, True, True, 1.0),
    ("tqt", 0.37, True, False, 1.0),
    ("tqt", -1.2, False, True, 1.0),
    ("tqt", 1.9, False, False, 1.0),
    ("lsq", 0.137, True, False, 1.0),
    ("lsq", 0.137, False, False, 0.0123),
    ("pact", 2.3, False, False, 1.0),
    ("calibrated_pact", 2.3, False, False, 1.0),
]


def _inputs(rng, npdt, n=4000):
    x = rng.normal(0, 2.0, n)
    # include exact ties and boundary values: multiples of small powers of 2
    x[:200] = np.round(x[:200] * 8) / 8
    return x.astype(npdt)


@pytest.mark.parametrize("npdt,tdt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("estimator,param,signed,power_of_2,grad_scale", CASES)
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_elementwise_rules_bit_for_bit(estimator, param, signed, power_of_2, grad_scale, bits, npdt, tdt, rng):
    x = _inputs(rng, npdt)
    param = float(torch.tensor(param, dtype=tdt))     # the value the tensor actually holds
    ref = ste.pointwise(estimator, x, param, bits, signed=signed, power_of_2=power_of_2, grad_scale=grad_scale)
    q, dx, dp = ts.ste_grads(estimator, torch.from_numpy(x), torch.tensor(param, dtype=tdt), bits,
                             signed=signed, power_of_2=power_of_2, grad_scale=grad_scale)
    for mine, theirs in ((q, ref.q), (dx, ref.dq_dx), (dp, ref.dq_dparam)):
        assert mine.dtype == tdt and theirs.dtype == npdt
        np.testing.assert_array_equal(mine.numpy(), theirs)   # exact, no tolerance


def _function(estimator, x, p, bits, signed, power_of_2, grad_scale):
    if estimator == "tqt":
        return ts.tqt_quantize(x, p, bits, signed=signed, power_of_2=power_of_2)
    if estimator == "lsq":
        return ts.lsq_quantize(x, p, bits, signed=signed, grad_scale=grad_scale)
    if estimator == "pact":
        return ts.pact_quantize(x, p, bits)
    return ts.calibrated_pact_quantize(x, p, bits)


@pytest.mark.parametrize("npdt,tdt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("estimator,param,signed,power_of_2,grad_scale", CASES)
def test_autograd_gradients_bit_for_bit(estimator, param, signed, power_of_2, grad_scale, npdt, tdt, rng):
    """Backprop an arbitrary upstream gradient: x.grad is elementwise-exact; the parameter's
    gradient, for one element at a time, is exactly grad_out · ∂q/∂param of the numpy rule."""
    bits = 3
    x_np = _inputs(rng, npdt, 500)
    go_np = rng.normal(size=x_np.size).astype(npdt)
    param = float(torch.tensor(param, dtype=tdt))     # the value the tensor actually holds
    ref = ste.pointwise(estimator, x_np, param, bits, signed=signed, power_of_2=power_of_2, grad_scale=grad_scale)
    x = torch.from_numpy(x_np.copy()).requires_grad_(True)
    p = torch.tensor(param, dtype=tdt, requires_grad=True)
    q = _function(estimator, x, p, bits, signed, power_of_2, grad_scale)
    q.backward(torch.from_numpy(go_np))
    np.testing.assert_array_equal(q.detach().numpy(), ref.q)
    np.testing.assert_array_equal(x.grad.numpy(), go_np * ref.dq_dx)
    # the summed parameter gradient: same terms, possibly another summation order
    np.testing.assert_allclose(p.grad.item(), float(np.sum((go_np * ref.dq_dparam).astype(np.float64))),
                               rtol=1e-4 if npdt == np.float32 else 1e-12, atol=1e-5 if npdt == np.float32 else 1e-12)
    # one element at a time: exact
    for i in range(0, 500, 25):
        xi = torch.from_numpy(x_np[i:i + 1].copy())
        pi = torch.tensor(param, dtype=tdt, requires_grad=True)
        _function(estimator, xi, pi, bits, signed, power_of_2, grad_scale).backward(torch.from_numpy(go_np[i:i + 1]))
        assert pi.grad.item() == float((go_np[i:i + 1] * ref.dq_dparam[i:i + 1])[0])


def test_modules_train_the_threshold(seed):
    """Drop-in modules: a few Adam steps on L2 loss move TQT's θ like the numpy simulator's rule."""
    g = torch.Generator().manual_seed(seed % (2**31))
    m = ts.TQTQuantizer(bits=4, init_threshold=1.0, power_of_2=False).double()
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(200):
        x = torch.randn(512, generator=g, dtype=torch.float64)
        loss = 0.5 * ((m(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = 2 ** m.theta.item()
    assert abs(t - ste.stationary_threshold("tqt", "gaussian", 4).clip) < 0.3
    # LSQ and PACT modules run and give gradients to their parameters
    for mod, x in ((ts.LSQQuantizer(4, 0.3), torch.randn(64, generator=g)),
                   (ts.PACTQuantizer(3, 2.0, calibrated=True), torch.randn(64, generator=g).relu())):
        mod(x).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in mod.parameters())


@pytest.mark.parametrize("call,name", [
    (lambda: ts.tqt_quantize(np.ones(3), torch.tensor(0.0), 4), "x"),
    (lambda: ts.tqt_quantize(torch.ones(3, dtype=torch.float16), torch.tensor(0.0), 4), "x"),
    (lambda: ts.tqt_quantize(torch.ones(3), torch.zeros(2), 4), "theta"),
    (lambda: ts.lsq_quantize(torch.ones(3), torch.tensor(-1.0), 4), "s"),
    (lambda: ts.pact_quantize(torch.ones(3), torch.tensor(1.0), 0), "bits"),
    (lambda: ts.ste_grads("dorefa", torch.ones(3), torch.tensor(1.0), 4), "estimator"),
])
def test_bad_input(call, name):
    with pytest.raises((ValueError, TypeError), match=f"The '{name}' parameter of "):
        call()
