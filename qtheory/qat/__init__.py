"""Quantization-aware training of a small CNN on a real task, checked against qtheory's theory.

Needs the optional extras ``torch`` and ``scikit-learn``; nothing here is imported by ``import qtheory``.

Modules
-------
data       the scikit-learn digits task with a fixed train/validation/test split
network    the CNN, its fake-quantized versions (TQT, LSQ, PACT, calibrated PACT, SAT) and training
integer    BN-folded integer export and integer-only inference through :mod:`qtheory.intconv`
analysis   learned thresholds beside the analytic stationary points; SAT's variance rules measured
"""
