"""Reference numbers from the papers and classical tables, with their sources.

Tests and reproductions compare against these; nothing here is computed.
"""

#: ACIQ optimal clipping ratios α*/b (Laplace) and α*/σ (Gaussian) for M = 0..8 bits,
#: exact minimisers of the paper's model to 5 decimals (Banner et al. 2018; shared/papers/aciq.md).
ACIQ_ALPHA_LAPLACE = (1.04991, 1.86282, 2.83068, 3.89723, 5.02864, 6.20477, 7.41313, 8.64562, 9.89676)
ACIQ_ALPHA_GAUSSIAN = (0.76578, 1.23991, 1.71064, 2.15159, 2.55914, 2.93620, 3.28691, 3.61511, 3.92404)

#: The official ACIQ code (and Intel Distiller) hard-code the ratios truncated to 2 decimals.
#: The Gaussian table there starts at 1 bit (no 0-bit entry).
ACIQ_CODE_LAPLACE = (1.05, 1.86, 2.83, 3.89, 5.03, 6.2, 7.41, 8.64, 9.89)
ACIQ_CODE_GAUSSIAN = (None, 1.24, 1.71, 2.15, 2.55, 2.93, 3.28, 3.61, 3.92)

#: aciq.md [DERIVED — verify]: how much ACIQ's approximation underestimates the exact MSE of a
#: real 2^M-level grid, by bits (approximate claims, not exact numbers).
ACIQ_UNDERESTIMATE_CLAIM = {2: "roughly a quarter", 3: "~16%", 4: "~9%", 8: "<1%"}
