"""Reference numbers from the papers and classical tables, with their sources.

Tests and reproductions compare against these; nothing here is computed.
"""

#: ACIQ optimal clipping ratios α*/b (Laplace) and α*/σ (Gaussian) for M = 0..8 bits: the exact
#: minimisers of the paper's model (Banner et al. 2018), DERIVED to 5 decimals (shared/papers/aciq.md),
#: not numbers printed in the paper. Agreement with them checks the solver, not a publication.
ACIQ_ALPHA_LAPLACE = (1.04991, 1.86282, 2.83068, 3.89723, 5.02864, 6.20477, 7.41313, 8.64562, 9.89676)
ACIQ_ALPHA_GAUSSIAN = (0.76578, 1.23991, 1.71064, 2.15159, 2.55914, 2.93620, 3.28691, 3.61511, 3.92404)

#: The ratios hard-coded with 2 decimals by the official ACIQ code for 2..8 bits
#: (submission2019/AnalyticalScaleForIntegerQuantization, pytorch_quantizer/quantization/qtypes/
#: int_quantizer.py: ``alpha_laplace``, ``alpha_gaus``) and by Intel Distiller for 0..8 bits
#: (``alpha_laplace``, ``alpha_gauss``; its Gaussian table starts at 1 bit). Most are the derived
#: minimisers truncated; 1.05, 5.03 (Laplace 0, 4 bits) and 1.24 (Gaussian 1 bit) are rounded.
ACIQ_CODE_LAPLACE = (1.05, 1.86, 2.83, 3.89, 5.03, 6.2, 7.41, 8.64, 9.89)
ACIQ_CODE_GAUSSIAN = (None, 1.24, 1.71, 2.15, 2.55, 2.93, 3.28, 3.61, 3.92)
#: Where each entry of the two tuples above comes from, by bit-width.
ACIQ_CODE_SOURCE = ("Distiller",) * 2 + ("official code",) * 7

#: aciq.md [DERIVED — verify]: how much ACIQ's approximation underestimates the exact MSE of a
#: real 2^M-level grid, by bits (approximate claims, not exact numbers).
ACIQ_UNDERESTIMATE_CLAIM = {2: "roughly a quarter", 3: "~16%", 4: "~9%", 8: "<1%"}
