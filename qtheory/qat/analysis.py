"""Learned thresholds beside the analytic stationary points, TQT's power-of-two split, SAT's rules measured.

For a trained quantizer, the values it quantizes at the end of training (the latent weights, or
the activations entering it over the training images) define an empirical prior. The learned
clip is set beside the stationary point of the *same* estimator's exact expected STE gradient
under that prior (:func:`qtheory.ste.stationary_threshold`) and beside the exact empirical MSE
optimum on the estimator's grid (:func:`qtheory.optimal_clip`). The expected gradient is that of
the MSE ``½(q − x)²``; training follows the task loss, which is where the two may part.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import ste
from .._validation import param_error
from ..optimal import optimal_clip
from .network import DigitsCNN, as_input

__all__ = ["quantizer_inputs", "learned_clip", "thresholds_vs_theory", "pow2_visits", "sat_statistics"]


@torch.no_grad()
def quantizer_inputs(model: DigitsCNN, codes: np.ndarray) -> dict:
    """Values entering each quantizer: ``"w0".."w3"`` latent weights, ``"a0".."a2"`` activations
    (after BN; after the ReLU for TQT/LSQ, whose quantizers follow it; before it for PACT)."""
    taps: dict = {}
    model.eval()
    model(as_input(codes), taps=taps)
    out = {f"w{i}": w.detach().numpy().ravel() for i, w in enumerate(model.weights())}
    for i in range(3):
        a = taps[f"act{i}"].numpy().ravel()
        out[f"a{i}"] = np.maximum(a, 0.0) if model.method in ("tqt", "lsq", "ptq_exact") else a
    return out


# names of the quantizers of :class:`~qtheory.qat.network.DigitsCNN`: weights, then activations.
_QUANTIZER_NAMES = ("w0", "w1", "w2", "w3", "a0", "a1", "a2")
# why a quantizer without a trainable threshold has no learned clip (by class name).
_NO_CLIP = {
    "AbsMaxWeight": "its clip is max|w|, recomputed from the weights at every forward pass, not learned",
    "DoReFaWeight": "DoReFa normalises tanh(w) by its maximum and has no clip",
    "SATScaled": "SAT's DoReFa weights, normalised by the maximum of tanh(w), have no clip",
    "Identity": "the float model does not quantize",
    "ReLU": "the float model does not quantize",
}


def _quantizer(model: DigitsCNN, name: str, func: str) -> torch.nn.Module:
    if not isinstance(name, str) or name not in _QUANTIZER_NAMES:
        raise param_error("name", func, "one of " + ", ".join(map(repr, _QUANTIZER_NAMES)), name,
                          ValueError if isinstance(name, str) else TypeError)
    kind, i = name[0], int(name[1:])
    mod = model.wq[i] if kind == "w" else model.aq[i]
    return mod[1] if isinstance(mod, torch.nn.Sequential) else mod


def _estimator(model: DigitsCNN, name: str) -> tuple[str, bool] | None:
    q = _quantizer(model, name, "_estimator")
    signed = name[0] == "w"
    if hasattr(q, "theta"):
        return "tqt", signed
    if hasattr(q, "s"):
        return "lsq", signed
    if hasattr(q, "alpha"):
        return ("calibrated_pact" if q.calibrated else "pact"), False
    return None


def learned_clip(model: DigitsCNN, name: str) -> float:
    """The clip (``Quantizer.alpha`` on the estimator's grid) of a trained quantizer.

    Parameters
    ----------
    model : DigitsCNN
        A model from :func:`qtheory.qat.network.quantize_model` (or trained from one).
    name : {"w0", "w1", "w2", "w3", "a0", "a1", "a2"}
        The quantizer: weights of layer ``i`` (``"w<i>"``) or activations (``"a<i>"``).

    Returns
    -------
    float
        TQT: ``2^⌈θ⌉``; LSQ: ``s·2^(b−1)`` (weights) or ``s·2^b`` (activations); PACT and
        calibrated PACT: ``α``.

    Raises
    ------
    ValueError
        If ``name``'s quantizer has no trainable threshold: the weights of the PACT, calibrated
        PACT (``AbsMaxWeight``: the clip is ``max|w|``, recomputed, not learned), SAT and DoReFa
        (``DoReFaWeight``: no clip) models, and every quantizer of a float model.
    """
    func = "learned_clip"
    q = _quantizer(model, name, func)
    bits = model.bits
    if hasattr(q, "theta"):
        return 2.0 ** math.ceil(float(q.theta.detach()))
    if hasattr(q, "s"):
        return float(q.s.detach()) * (2 ** (bits - 1) if name[0] == "w" else 2**bits)
    if hasattr(q, "alpha"):
        return float(q.alpha.detach())
    cls = type(q).__name__
    why = _NO_CLIP.get(cls, "it has no trainable threshold")
    raise ValueError(f"The 'name' parameter of {func} must name a quantizer with a learned clip (TQT 'theta' or "
                     f"LSQ 's' weights and activations, PACT or calibrated-PACT 'alpha' activations). Got {name!r} "
                     f"({cls} in a {model.method or 'float'!r} model: {why}) instead.")


def thresholds_vs_theory(model: DigitsCNN, codes: np.ndarray, *, max_values: int = 20000,
                         seed: int = 0) -> pd.DataFrame:
    """One row per trainable quantizer: learned clip, stationary clip of the same estimator under
    the empirical prior of its inputs, and the exact empirical MSE optimum.

    Tensors above ``max_values`` values are sub-sampled (without replacement, ``seed``) for the
    stationary point, whose expected gradient is a sum over the values.
    """
    gen = np.random.default_rng(seed)
    rows = []
    for name, v in quantizer_inputs(model, codes).items():
        est = _estimator(model, name)
        if est is None:
            continue
        estimator, signed = est
        vs = gen.choice(v, max_values, replace=False) if v.size > max_values else v
        st = ste.stationary_threshold(estimator, vs, model.bits, signed=signed)
        grid = ste.estimator_grid(estimator, signed)
        opt = optimal_clip(v, model.bits, grid=grid)
        clip = learned_clip(model, name)
        rows.append({"method": model.method, "bits": model.bits, "tensor": name, "estimator": estimator,
                     "grid": grid, "learned_clip": clip, "stationary_clip": st.clip, "mse_opt_clip": opt.alpha,
                     "learned_over_stationary": clip / st.clip if np.isfinite(st.clip) else np.nan,
                     "learned_over_mse_opt": clip / opt.alpha, "n_values": v.size})
    return pd.DataFrame(rows)


def pow2_visits(theta_trace: list, prior_values: np.ndarray, bits: int, *, signed: bool,
                late_fraction: float = 0.5) -> dict:
    """Fraction of the last ``late_fraction`` of steps TQT spent at the upper power of two of its
    predicted boundary, beside :func:`qtheory.ste.pow2_equilibrium` under the empirical prior."""
    eq = ste.pow2_equilibrium(prior_values, bits, signed=signed)
    late = np.asarray(theta_trace[int(len(theta_trace) * (1 - late_fraction)):])
    e = np.ceil(late)
    return {"boundary": eq.boundary, "t_low": eq.t_low, "t_high": eq.t_high,
            "predicted_frac_high": eq.frac_high,
            "measured_frac_high": float(np.mean(e == eq.boundary + 1)),
            "measured_frac_low": float(np.mean(e == eq.boundary)),
            "measured_frac_other": float(np.mean((e != eq.boundary) & (e != eq.boundary + 1)))}


def sat_statistics(model: DigitsCNN, codes: np.ndarray, labels: np.ndarray) -> dict:
    """Logit variance and per-layer weight-gradient norms on a batch, with SAT's prediction of
    the logit variance (:func:`qtheory.sat.logit_variance`) from the classifier's measured
    effective-weight variance and input mean square."""
    from .. import sat

    model.eval()
    taps: dict = {}
    x = as_input(codes)
    for p in model.parameters():
        p.grad = None
    logits = model(x, taps=taps)
    loss = F.cross_entropy(logits, torch.as_tensor(labels))
    loss.backward()
    with torch.no_grad():
        w_eff = model.wq[3](model.fc.weight).detach()
        y = taps["fc_in"].detach()
        centred = logits.detach() - model.fc.bias.detach()
        measured = float(centred.var(unbiased=False))
        n_in = w_eff.shape[1]
        predicted = sat.logit_variance(n_in, float(w_eff.var(unbiased=False)), float((y**2).mean()))
    out = {"logit_var": measured, "logit_var_predicted": predicted,
           "weight_var_fc": float(w_eff.var(unbiased=False)), "max_softmax": float(torch.softmax(logits.detach(), 1)
                                                                                     .max(1).values.mean())}
    for i, w in enumerate(model.weights()):
        out[f"grad_norm_w{i}"] = float(w.grad.norm())
    return out
