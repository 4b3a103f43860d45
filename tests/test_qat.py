"""QAT on digits: training steps equal the analytic expected gradients; the integer network equals the
fake-quant network where equality is possible; the data split is fixed and stratified."""

import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from qtheory import ste  # noqa: E402
from qtheory.qat import integer as I  # noqa: E402
from qtheory.qat import network as N  # noqa: E402
from qtheory.qat.data import load_digits_split  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def data():
    return load_digits_split()


def test_split_is_fixed_disjoint_and_stratified(data):
    again = load_digits_split()
    np.testing.assert_array_equal(data.x_test, again.x_test)
    sizes = data.sizes()
    assert sum(sizes.values()) == 1797
    for labels in (data.y_train, data.y_val, data.y_test):
        share = np.bincount(labels, minlength=10) / len(labels)
        assert np.all(np.abs(share - 0.1) < 0.012)  # each class ~10 % of every part
    flat = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}  # noqa: E731
    assert len(flat(data.x_test) & flat(data.x_train)) <= 5  # a few digit images repeat in the data set


def _frozen_batch(data, model):
    with torch.no_grad():
        taps = {}
        model.eval()
        model(N.as_input(data.x_train[:64]), taps=taps)
    return taps["act1"].detach().clone()


@pytest.mark.parametrize("estimator, bits, signed", [
    ("tqt", 4, False), ("tqt", 2, True), ("lsq", 3, False), ("lsq", 4, True),
    ("pact", 4, False), ("calibrated_pact", 2, False),
])
def test_training_step_equals_expected_gradient(data, estimator, bits, signed):
    """One SGD step of the threshold on a frozen batch, loss ½·mean((q − x)²), moves it by exactly
    −lr·E[∂L/∂param] under the batch's empirical distribution (qtheory.ste.expected_grad): autograd
    through qtheory.torch_ste vs the bin-by-bin partial moments of the samples."""
    fp = N.DigitsCNN()
    x = _frozen_batch(data, fp)
    x = x if signed else torch.relu(x)
    v = x.numpy().ravel()
    if estimator == "tqt":
        q_mod = N.torch_ste.TQTQuantizer(bits, float(np.abs(v).max()) * 0.6, signed=signed, power_of_2=False)
        param = q_mod.theta
    elif estimator == "lsq":
        q_mod = N.torch_ste.LSQQuantizer(bits, float(np.abs(v).max()) / 5, signed=signed, grad_scale=1.0)
        param = q_mod.s
    else:
        q_mod = N.torch_ste.PACTQuantizer(bits, float(v.max()) * 0.5, calibrated=estimator == "calibrated_pact")
        param = q_mod.alpha
    q_mod = q_mod.to(torch.float64)
    param = next(q_mod.parameters())
    p0 = float(param.detach())
    opt = torch.optim.SGD(q_mod.parameters(), lr=0.1)
    loss = 0.5 * ((q_mod(x) - x) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    g = float(ste.expected_grad(estimator, v, p0, bits, signed=signed))
    assert float(param.detach()) == pytest.approx(p0 - 0.1 * g, rel=1e-9, abs=1e-12)
    assert g != 0.0


def _exact_bn(model, gen):
    """BN statistics whose folded shift is a whole number of accumulator units (no bias rounding)."""
    with torch.no_grad():
        for bn in model.bns:
            k = bn.num_features
            bn.eps = 0.0  # σ = 1 exactly, so the folded scale is γ exactly in both paths
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.copy_(torch.as_tensor(gen.choice([-1.0, 0.5, 1.0, 2.0], k)))
        model.eval()


def test_integer_network_equals_fakequant_when_bias_is_exact(data):
    gen = np.random.default_rng(0)
    torch.manual_seed(0)
    model = N.quantize_model(N.DigitsCNN(), "tqt", 4, data.x_train[:64])
    _exact_bn(model, gen)
    # make every BN shift an exact multiple of its accumulator unit: c_k = m_k · s_x s_w |a_k|
    net0 = I.export_integer(model)
    with torch.no_grad():
        s_x = I.INPUT_QUANT.scale
        for i, bn in enumerate(model.bns):
            unit = np.array([q.scale for q in net0.layers[i].w_quant]) * s_x
            bn.bias.copy_(torch.as_tensor(gen.integers(-3, 4, bn.num_features) * unit))
            s_x = net0.layers[i].out_quant.scale
        fc_unit = net0.layers[3].w_quant[0].scale * s_x
        model.fc.bias.copy_(torch.as_tensor(gen.integers(-50, 50, 10) * fc_unit))
    net = I.export_integer(model)
    assert bool((model.bns[0].weight.detach() < 0).any())  # a negative-γ channel is exercised
    codes = data.x_test[:100]
    acc = net.forward_codes(codes)
    with torch.no_grad():
        logits = model(N.as_input(codes)).numpy()
    np.testing.assert_allclose(acc * fc_unit, logits, rtol=0, atol=1e-9 * np.abs(logits).max())
    assert np.array_equal(net.predict(codes), logits.argmax(1))


def test_export_refuses_a_float_model_and_nine_bit_codes(data):
    fp = N.DigitsCNN()
    with pytest.raises(ValueError, match="'model' parameter of export_integer"):
        I.export_integer(fp)
    sat8 = N.quantize_model(fp, "sat", 8, data.x_train[:32])
    with pytest.raises(ValueError, match="9-bit codes"):
        I.export_integer(sat8)


def test_dorefa_and_sat_scaling_follow_qtheory_sat():
    from qtheory import sat

    w = torch.as_tensor(np.random.default_rng(1).normal(scale=0.3, size=(10, 128)))
    q = N.DoReFaWeight(3)(w).detach().numpy()
    np.testing.assert_allclose(q, sat.dorefa_quantize(w.numpy(), 3), rtol=0, atol=1e-15)
    scaled = N.SATScaled(N.DoReFaWeight(3))(w).detach().numpy()
    np.testing.assert_allclose(scaled, sat.sat_weights(q), rtol=1e-12)
    assert float(np.var(scaled, ddof=1) * 10) == pytest.approx(1.0, rel=1e-12)


def test_quantize_model_refuses_unknown_method(data):
    with pytest.raises(ValueError, match="'method' parameter of quantize_model"):
        N.quantize_model(N.DigitsCNN(), "tqt2", 4, data.x_train[:8])
    with pytest.raises(ValueError, match="'bits' parameter of quantize_model"):
        N.quantize_model(N.DigitsCNN(), "tqt", 1, data.x_train[:8])


def test_short_qat_run_learns_the_task(data):
    """A float model then 1 epoch of LSQ at 4 bits: far above chance (10 %) on held-out images."""
    fp = N.float_model(data, seed=0, epochs=4)
    q = N.quantize_model(fp, "lsq", 4, data.x_train[:128])
    N.train(q, data, epochs=1, lr=1e-3, lr_threshold=1e-2, seed=0)
    assert N.evaluate(q, data.x_val, data.y_val) > 0.8
    assert math.isfinite(float(q.wq[0].s.detach()))


@pytest.mark.slow
def test_run_grid_tables_do_not_depend_on_the_number_of_processes():
    """The pool starts a seed's runs as soon as its float model is trained; the tables come back in
    job order and equal those of one process (every run is deterministic on one thread)."""
    from qtheory.qat import experiment as E

    cfg = E.Config(seeds=(0, 1, 2), bits=(2,), methods=("pact",), sat_ablation_bits=(), float_epochs=1,
                   qat_epochs=1, analysis_images=64, integer_bits=())
    one = E.run_grid(cfg, n_jobs=1, progress=False)
    two = E.run_grid(cfg, n_jobs=2, progress=False)
    assert list(one["accuracy"].method) == ["float"] * 3 + ["ptq_exact", "pact"] * 3
    for key in one:
        pd.testing.assert_frame_equal(one[key], two[key])


def test_worker_processes_take_the_pinned_cpu_paths(monkeypatch):
    """Runs train in spawned workers on ATen's and MKL's AVX2 code paths (``CPU_PATHS``), whatever
    this CPU offers beyond AVX2; a value the user set is kept; the parent's environment is restored."""
    import multiprocessing as mp
    import os
    import platform
    from concurrent.futures import ProcessPoolExecutor

    from qtheory.qat import experiment as E

    if platform.machine().lower() not in ("x86_64", "amd64") or torch.backends.cpu.get_cpu_capability() not in (
            "AVX2", "AVX512"):
        pytest.skip("needs an x86-64 CPU with AVX2")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    with E._pinned_cpu_paths(), ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        cap, env = ex.submit(E._worker_cpu_paths).result()
    assert cap == "AVX2"
    assert env == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"}
    assert "ATEN_CPU_CAPABILITY" not in os.environ and os.environ["MKL_CBWR"] == "COMPATIBLE"
