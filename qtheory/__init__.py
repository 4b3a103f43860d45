"""qtheory — analytical quantization theory.

Clipping MSE of uniform quantizers (ACIQ's approximation and the exact value),
optimal clips for any prior or tensor, STE threshold gradients (TQT, LSQ, PACT),
SAT variance rules, and an integer convolution reference.

Everything is loaded on first use: ``import qtheory`` imports numpy only, not
scipy, sympy, numba or matplotlib.

Core
----
Quantizer            one quantizer description (bits, grid, clip, rounding)
DEFAULT_TENSOR_GRID  "narrow", the default grid of every tensor API (see qtheory.quantizer)
as_prior             Laplace / Gaussian / scipy.stats distribution / samples -> Prior
Laplace, Gaussian    closed-form priors
ScipyPrior           any frozen continuous scipy.stats distribution
Empirical            a 1-D array of samples
Rectified            max(X, 0) of a prior (post-ReLU tensors)
Mixture              a finite mixture of priors
fit_prior            Laplace/Gaussian fitted to a tensor, optionally chosen by MSE
clipping_mse         MSE of clipping + rounding (methods "aciq", "exact", "montecarlo")
optimal_clip         the global MSE-optimal clip
optimal_clip_table   a pandas table of optimal clips over bits, priors and methods

Sub-modules (imported on attribute access)
-------------------------------------------
qtheory.symbolic     sympy derivations (ACIQ, STE gradients)
qtheory.montecarlo   Monte-Carlo estimates (numba kernels)
qtheory.plotting     matplotlib figures
qtheory.empirical    exact empirical MSE of tensors, per-channel clips (fast path)
qtheory.calibrate    the field's calibrators side by side
qtheory.classical    Lloyd-Max, Panter-Dite, rate-distortion
qtheory.allocation   per-channel bit allocation and bias correction (Banner et al.)
qtheory.ste          STE threshold gradients: TQT, LSQ, PACT, calibrated PACT
qtheory.sat          SAT variance rules
qtheory.intconv      integer-only conv2d reference
qtheory.formats      FP8/FP6/FP4, NF4, MX, NVFP4, group-wise INT: exact MSE and block scaling

Progress bars
-------------
Functions that can run for seconds take ``progress``. ``None`` (the default) shows a tqdm bar
once the work has lasted 2 s, and only where someone watches: in a Jupyter kernel or when stderr
is a terminal (logs, pipes, doctests and tests stay silent). ``True`` shows it from the first
step wherever stderr goes; ``False`` never. The first call in a process that compiles numba
kernels (a cold cache: a new install, a new numba) says so in one line on stderr; later calls
load the compiled kernels from the cache.
"""

import lazy_loader as _lazy

__version__ = "0.2.0.dev0"

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=[
        "symbolic",
        "montecarlo",
        "plotting",
        "calibrate",
        "empirical",
        "classical",
        "allocation",
        "ste",
        "sat",
        "intconv",
        "repro",
        "priors",
        "quantizer",
        "mse",
        "optimal",
        "formats",
        "fit",
    ],
    submod_attrs={
        "quantizer": ["Quantizer", "GRIDS", "ROUNDINGS", "DEFAULT_TENSOR_GRID"],
        "priors": ["Prior", "as_prior", "Laplace", "Gaussian", "ScipyPrior", "Empirical",
                   "Rectified", "Mixture"],
        "fit": ["fit_prior", "FitResult"],
        "mse": ["clipping_mse", "MSEResult", "METHODS"],
        "optimal": ["optimal_clip", "optimal_clip_table", "ClipResult"],
    },
)
