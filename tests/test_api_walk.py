"""The public API walked, not listed by hand.

* Plotting: every function in the ``__all__`` of each :mod:`qtheory.plotting` submodule takes ``ax``
  (or ``axes`` for the multi-panel ones), draws into the Axes it is given (no new figure) and
  returns it. Inputs come from ``PLOT_INPUTS``; a new public plotting function without an entry
  there fails ``test_every_plotting_function_has_inputs``.
* Progress bars: every public function of qtheory (``qtheory.__all__``, the ``__all__`` of each
  public subpackage and of its modules) with a ``progress`` parameter accepts ``progress=False`` and
  then writes nothing to stderr on a small input, and with ``progress=True`` draws a tqdm bar on
  stderr (unless ``PROGRESS_TRUE_QUIET`` says why it has no steps to show there). The functions
  covered are the ones ``_progress_functions()`` finds (the test ids name them); each needs an entry
  in ``PROGRESS_CALLS`` or, with a reason, in ``PROGRESS_SKIP``. The once-per-process numba notice
  (:mod:`qtheory.kernels`) is not a progress bar and is switched off here (tests/test_progress.py
  covers it).
* Results: every dataclass named ``*Result`` in those modules has the ResultMixin views
  (``_repr_html_``, ``to_dict``, ``to_frame``), and the repr of an instance (from the public call in
  tests/test_results_api.py) prints no number with more than 17 significant digits.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import types

import numpy as np
import pandas as pd
import pytest

import qtheory

# ------------------------------------------------------------------------------------------ the walk
#: not walked: figures (tested above), sympy derivations, numba kernels, command lines and the repro runner
_SKIP_MODULES = {"qtheory.plotting", "qtheory.symbolic", "qtheory.kernels", "qtheory.cli", "qtheory.models.cli",
                 "qtheory.repro"}


def _public_modules():
    """qtheory's public modules and subpackages with their modules (names without a leading underscore),
    imported; ``qtheory.__all__`` lists only the lazily attached ones, so the package is walked."""
    names = set()
    for m in pkgutil.iter_modules(qtheory.__path__):
        if m.name.startswith("_"):
            continue
        full = f"qtheory.{m.name}"
        names.add(full)
        if m.ispkg:
            sub = importlib.import_module(full)
            names |= {f"{full}.{s.name}" for s in pkgutil.iter_modules(sub.__path__) if not s.name.startswith("_")}
    return [importlib.import_module(n) for n in sorted(names) if not any(n == s or n.startswith(s + ".")
                                                                          for s in _SKIP_MODULES)]


def _public_functions(modules):
    """``{name: function}`` over the ``__all__`` of ``modules`` (plus ``qtheory.__all__``)."""
    out = {}
    for mod in modules:
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if isinstance(obj, types.FunctionType):
                out.setdefault(name, obj)
    return out


def _plotting_functions():
    import qtheory.plotting as P

    out = {}
    for m in pkgutil.iter_modules(P.__path__):
        if m.name.startswith("_"):
            continue
        mod = importlib.import_module(f"qtheory.plotting.{m.name}")
        assert hasattr(mod, "__all__"), f"qtheory.plotting.{m.name} has no __all__"
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, types.FunctionType):
                out[name] = obj
    return out


def _progress_functions():
    mods = _public_modules()
    funcs = _public_functions(mods)
    for name in qtheory.__all__:
        obj = getattr(qtheory, name)
        if isinstance(obj, types.FunctionType):
            funcs.setdefault(name, obj)
    return {n: f for n, f in funcs.items() if "progress" in inspect.signature(f).parameters}


# --------------------------------------------------------------------------------------- plot inputs
def _df(**cols):
    return pd.DataFrame(cols)


def _two_channel():
    p = np.linspace(0.1, 0.9, 5)
    e = types.SimpleNamespace(alphas=(1.0, 2.0), p_curve=p, model_curve=1 + (p - 0.5) ** 2, p_points=p[::2],
                              exact_points=1 + (p[::2] - 0.5) ** 2, mc_points=1 + (p[::2] - 0.5) ** 2,
                              mc_stderr=np.full(3, 0.01), p_star=0.5, total_bins=16)
    return ([e],), {}


def _allocation_mse():
    return (_df(method=["uniform"] * 2 + ["optimal"] * 2, target_bits=[2, 4, 2, 4], mean_bits=[2.0, 4.0, 2.0, 4.0],
                mse=[1.0, 0.1, 0.8, 0.08], mc_mse=[1.0, 0.1, 0.8, 0.08], mc_stderr=[0.01] * 4),), {}


def _bias_correction():
    return (_df(mode=["none"] * 2 + ["mean"] * 2, bits=[2, 4, 2, 4], mse=[1.0, 0.1, 0.8, 0.08],
                mc_mse=[1.0, 0.1, 0.8, 0.08], mc_stderr=[0.01] * 4),), {}


def _layer_channels():
    return (_df(config=["a"] * 3, std=[0.5, 1.0, 2.0], mse=[0.01, 0.04, 0.16]), ["a"]), {}


def _calibrator_table():
    return _df(distribution=["gaussian"] * 4, grid=["midrise"] * 4, calibrator=["max", "max", "exact", "exact"],
               bits=[2, 4, 2, 4], rel_mse=[1.5, 1.2, 1.0, 1.0])


def _mse_curve():
    a = np.linspace(1.0, 4.0, 7)
    return (a, qtheory.clipping_mse("gaussian", a, 3)), {"optimum": qtheory.optimal_clip("gaussian", 3),
                                                          "picks": {"max": 3.5}}


def _sat(fn, *args, **kw):
    def make():
        from qtheory import sat

        return (getattr(sat, fn)(*args, **kw),), {}
    return make


def _logit_vs_bits():
    from qtheory import sat

    return (sat.network_experiment((16, 64), 100, bits=(2, 4), batch=16, rng=0).assign(model="toy"),), {}


def _gradient_flow():
    from qtheory import sat

    return ({"4-bit": sat.synthetic_network((16, 32, 32), 100, batch=16, rng=0)},), {}


def _forward_backward():
    from qtheory import ste

    x = np.linspace(-3, 3, 61)
    return (x, ste.tqt(x, 1.0, 2)), {}


def _training():
    from qtheory import ste

    return ({"tqt": ste.train_threshold("tqt", "gaussian", 4, init=0.0, steps=5, batch_size=16, rng=0)},), {}


def _stationary_ratio():
    return (_df(prior=["gaussian"] * 2, estimator=["tqt"] * 2, bits=[2, 3], clip_ratio=[0.9, 0.95]),), {}


#: ``name: () -> (args, kwargs)``; for multi-panel functions ``(args, kwargs, n_axes)``
PLOT_INPUTS = {
    "plot_grids": lambda: ((3,), {}),
    "plot_mse_vs_alpha": lambda: ((np.linspace(1, 3, 5), {"exact": np.linspace(1, 2, 5)}), {}),
    "plot_two_channel": _two_channel,
    "plot_allocation_mse": _allocation_mse,
    "plot_bias_correction": _bias_correction,
    "plot_layer_channels": _layer_channels,
    "plot_calibrator_excess": lambda: ((_calibrator_table(), "gaussian"), {}),
    "plot_calibrator_grid": lambda: ((_calibrator_table(),), {}, 2),
    "plot_mse_curve": _mse_curve,
    "plot_distortion_ladder": lambda: ((_df(bits=[1, 2, 3], lloyd_max=[0.36, 0.12, 0.035],
                                            max=[0.5, 0.2, 0.06]),), {}),
    "plot_sqnr_vs_clip": lambda: ((_df(bits=[4, 4], clip_ratio=[2.0, 4.0], predicted_db=[8.0, 14.0],
                                       measured_db=[8.1, 13.9]),), {}),
    "plot_sqnr_gap": lambda: ((_df(bits=[4, 4], clip_ratio=[2.0, 4.0], gap_db=[0.1, -0.2]),), {}),
    "plot_clamped_variance": _sat("clamp_variance_table", (64, 640), (0.05,), mc_elements=0),
    "plot_clamp_error": _sat("clamp_variance_table", (64, 640), (0.05,), mc_elements=0),
    "plot_variance_ratio": _sat("variance_ratio_table", (1, 2), classifiers={"c": (64, 10, 8)}, mc_elements=0),
    "plot_logit_vs_bits": _logit_vs_bits,
    "plot_depth": _sat("depth_experiment", (1, 2), width=16, n_in=32, n_classes=100, bits=(2,), batch=16, rng=0),
    "plot_gradient_flow": _gradient_flow,
    "plot_pact_error": _sat("pact_error_table", (2, 3), n_samples=1000, rng=0),
    "plot_forward_backward": lambda: (*_forward_backward(), 3),
    "plot_expected": lambda: ((np.linspace(0, 2, 5), {"b=4": np.linspace(-1, 1, 5)}), {}),
    "plot_training": _training,
    "plot_stationary_ratio": _stationary_ratio,
}


def test_every_plotting_function_has_inputs():
    found = set(_plotting_functions())
    assert found, "the walk found no plotting function"
    assert found == set(PLOT_INPUTS), (f"public plotting functions without inputs here: {sorted(found - set(PLOT_INPUTS))}; "
                                       f"entries for functions that are gone: {sorted(set(PLOT_INPUTS) - found)}")


@pytest.mark.parametrize("name", sorted(PLOT_INPUTS))
def test_plotting_function_draws_into_the_given_ax(name):
    import matplotlib.pyplot as plt

    func = _plotting_functions()[name]
    params = inspect.signature(func).parameters
    made = PLOT_INPUTS[name]()
    args, kwargs = made[:2]
    plt.close("all")
    try:
        if len(made) == 3:  # multi-panel: takes and returns ``axes``
            assert "axes" in params and params["axes"].kind is inspect.Parameter.KEYWORD_ONLY
            fig, axes = plt.subplots(made[2], 1)
            out = func(*args, **kwargs, axes=axes)
            assert np.asarray(out).shape == axes.shape
            assert all(a is b for a, b in zip(np.asarray(out).flat, axes.flat, strict=True))
            drawn = [a for a in axes.flat if a.lines or a.collections or a.patches or a.get_legend()]
            assert drawn, "nothing drawn into the given axes"
        else:
            assert "ax" in params and params["ax"].kind is inspect.Parameter.KEYWORD_ONLY, \
                f"{name}: ax must be a keyword-only parameter"
            assert params["ax"].default is None
            fig, ax = plt.subplots()
            out = func(*args, **kwargs, ax=ax)
            assert out is ax
            assert ax.lines or ax.collections or ax.patches, "nothing drawn into the given ax"
        assert plt.get_fignums() == [fig.number], "the function opened a figure of its own"
    finally:
        plt.close("all")


def test_plotting_function_without_ax_opens_one_new_figure():
    import matplotlib.pyplot as plt

    plt.close("all")
    try:
        args, kwargs = PLOT_INPUTS["plot_grids"]()
        ax = _plotting_functions()["plot_grids"](*args, **kwargs)
        assert plt.get_fignums() == [ax.figure.number]
        assert tuple(ax.figure.get_size_inches()) == (6.0, 4.0)
    finally:
        plt.close("all")


# -------------------------------------------------------------------------------------- progress bars
def _tiny_onnx(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "relu.onnx"
    onnx.save(m, path)
    rng = np.random.default_rng(0)
    return path, [{"x": rng.normal(size=(2, 3)).astype(np.float32)} for _ in range(2)]


def _torch_observers(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return (torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()), [torch.randn(2, 3) for _ in range(2)]), {}


def _weights():
    rng = np.random.default_rng(0)
    return {f"l{i}.weight": rng.laplace(size=(8, 16)).astype(np.float32) for i in range(2)}


def _sat_call(**kw):
    def make(tmp):
        return (), kw
    return make


def _sqnr_sweep(tmp):
    from qtheory import Gaussian, Laplace, Rectified

    return (Rectified(Gaussian()), Laplace(0.05)), dict(bits=(6,), clip_ratios=(3.0,), shape=(1, 4, 6, 6, 4, 3, 3),
                                                          rng=0)


def _weight_report(tmp):
    from qtheory.allocation import synthetic_conv_weights

    return (synthetic_conv_weights(8, 4, rng=1), 4, {"tensor max": dict(granularity="tensor", clip="max")}), {}


#: ``name: tmp_path -> (args, kwargs)``, a small input each
PROGRESS_CALLS = {
    "calibrator_table": lambda tmp: (({"laplace": qtheory.Laplace()},), dict(bits=[4], methods=["max"], n_samples=2000)),
    "distortion_ladder": lambda tmp: (("gaussian",), {"bits": [2]}),
    "stationary_table": lambda tmp: ((["gaussian"], [2]), {"estimators": ["tqt"]}),
    "sqnr_sweep": _sqnr_sweep,
    "two_channel_experiment": lambda tmp: (((2.0, 1.0), 8), dict(n_samples=200, rng=0)),
    "allocation_experiment": lambda tmp: ((np.exp(np.linspace(-1, 1, 4)), (3,)), dict(n_samples=100, max_bits=4,
                                                                                       rng=0)),
    "bias_correction_experiment": lambda tmp: (((4,),), dict(n_inputs=16, n_channels=50, rng=0)),
    "weight_report": _weight_report,
    "classifier_table": _sat_call(bits=(2,), classifiers={"c": (64, 10, 8)}),
    "clamp_variance_table": lambda tmp: (((64, 640), (0.05,)), {"mc_elements": 0}),
    "variance_ratio_table": lambda tmp: (((1, 2),), dict(classifiers={"c": (64, 10, 8)}, mc_elements=0)),
    "pact_error_table": lambda tmp: (((2,),), dict(n_samples=1000, rng=0)),
    "network_experiment": lambda tmp: (((16, 64), 100), dict(bits=(2,), batch=16, n_nets=1, rng=0)),
    "depth_experiment": lambda tmp: (((1,),), dict(width=16, n_in=32, n_classes=100, bits=(2,), batch=16, rng=0)),
    "optimal_clip": lambda tmp: (("gaussian", 4), {}),
    "optimal_clip_table": lambda tmp: ((), {"bits": [2, 4]}),
    "format_table": lambda tmp: (("gaussian", ["int8", "mxfp4"]), {}),
    "layer_report": lambda tmp: ((_weights(),), {"bits": [4], "methods": ["max", "exact"]}),
    "distributed_report": lambda tmp: ((_weights(),), {"bits": [4], "methods": ["max", "exact"]}),
    "torch_observers": _torch_observers,
    "onnx_observers": lambda tmp: (_tiny_onnx(tmp), {}),
}

#: functions with ``progress`` not called here, and why
PROGRESS_SKIP = {
    "run_grid": "trains the QAT networks (minutes even at FAST_CONFIG); tests/test_qat.py runs it",
}

#: functions in ``PROGRESS_CALLS`` whose ``progress=True`` draws nothing on the small input, and why
PROGRESS_TRUE_QUIET = {
    "optimal_clip": "a closed-form prior is solved without a scan; only quadrature priors and the asymmetric "
                    "scan have a bar (tests/test_progress.py draws that one)",
    "distributed_report": "its progress is dask's, shown for distributed clients only",
}


def test_every_progress_function_is_covered():
    found = set(_progress_functions())
    assert {"optimal_clip", "format_table"} <= found, "the walk lost known functions"
    covered = set(PROGRESS_CALLS) | set(PROGRESS_SKIP)
    assert found == covered, (f"functions with a progress parameter not covered here: {sorted(found - covered)}; "
                              f"entries for functions that are gone: {sorted(covered - found)}")


@pytest.fixture
def _no_compile_notice(monkeypatch):
    """The numba notice (once per process, on a cold cache) is not a progress bar: off here."""
    from qtheory import kernels

    monkeypatch.setattr(kernels, "_announced", True)


@pytest.mark.parametrize("name", sorted(PROGRESS_CALLS))
def test_progress_false_writes_nothing_to_stderr(name, tmp_path, capfd, _no_compile_notice):
    func = _progress_functions()[name]
    args, kwargs = PROGRESS_CALLS[name](tmp_path)
    capfd.readouterr()
    func(*args, **kwargs, progress=False)
    err = capfd.readouterr().err
    assert err == "", f"{name}(progress=False) wrote to stderr: {err[:200]!r}"


@pytest.mark.parametrize("name", sorted(set(PROGRESS_CALLS) - set(PROGRESS_TRUE_QUIET)))
def test_progress_true_draws_a_bar_on_stderr(name, tmp_path, capfd, _no_compile_notice):
    func = _progress_functions()[name]
    args, kwargs = PROGRESS_CALLS[name](tmp_path)
    capfd.readouterr()
    func(*args, **kwargs, progress=True)
    err = capfd.readouterr().err
    assert "100%|" in err, f"{name}(progress=True) drew no finished tqdm bar on stderr: {err[:200]!r}"


def test_progress_default_is_the_shared_policy():
    """The functions of this package's policy (qtheory._progress) default to ``progress=None``."""
    own = set(PROGRESS_CALLS) - {"format_table", "layer_report", "distributed_report", "torch_observers",
                                 "onnx_observers"}
    funcs = _progress_functions()
    assert {n for n in own if inspect.signature(funcs[n]).parameters["progress"].default is not None} == set()


# -------------------------------------------------------------------------------------------- results
def _result_classes():
    out = {}
    for mod in [*_public_modules(), qtheory]:
        for name in dir(mod):
            obj = getattr(mod, name, None)
            if (inspect.isclass(obj) and dataclasses.is_dataclass(obj) and name.endswith("Result")
                    and obj.__module__.startswith("qtheory")):
                out[name] = obj
    return out


def test_every_result_class_has_the_views():
    classes = _result_classes()
    assert {"ClipResult", "MSEResult"} <= set(classes)
    for name, cls in classes.items():
        for attr in ("_repr_html_", "to_dict", "to_frame"):
            assert callable(getattr(cls, attr, None)), f"{name} has no {attr}"


def _factories():
    from test_results_api import FACTORIES

    return FACTORIES


def test_every_result_class_has_a_factory():
    assert set(_result_classes()) == set(_factories())


_NUMBER = re.compile(r"(?<![\w.])[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?", re.IGNORECASE)


@pytest.mark.parametrize("name", sorted(_factories()))
def test_result_repr_has_at_most_17_significant_digits(name):
    r = _factories()[name]()
    assert type(r).__name__ == name
    text = repr(r)
    for m in _NUMBER.finditer(text):
        digits = m.group(1).replace(".", "").lstrip("0")
        assert len(digits.rstrip("0") if "." in m.group(1) else digits) <= 17, (name, m.group(0))
    assert r._repr_html_().startswith("<table")
