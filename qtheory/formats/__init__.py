"""Number formats beyond the uniform integer grid: FP element formats, codebooks, block scaling, exact MSE.

Element formats
---------------
FormatInfo, FORMATS, get_format   gfloat-style spec table (FP8/FP6/FP4, E8M0, FP16, BF16)
level_set                         any named codebook as a LevelSet (FP, int<b>, nf4, pow2, apot)
int_levels, nf4_levels, pow2_levels, apot_levels, lloyd_max_levels
element_quantizer                 Quantizer(grid="codebook") of a format at a scale
level_set_mse, optimal_scale      exact MSE under a prior; the MSE-optimal per-tensor scale

Block formats
-------------
BlockFormat, BLOCK_FORMATS        element format + scale format/rule + block size
quantize_blocks, tensor_mse       the tensor path
block_mse                         exact expected MSE under a prior (order statistics of the block max)
block_montecarlo                  its Monte-Carlo estimate

Tables
------
format_table                      one row per format: bits/element (with scale overhead), MSE, SQNR
best_format                       the best format at a bits-per-element budget
block_rule_table                  one block format under every scale rule (the best first)
"""

from .block import (
    BLOCK_FORMATS,
    BlockFormat,
    block_montecarlo,
    block_mse,
    quantize_blocks,
    tensor_mse,
)
from .codebooks import (
    ELEMENT_NAMES,
    apot_levels,
    int_levels,
    level_set,
    lloyd_max_levels,
    nf4_levels,
    pow2_levels,
)
from .element import FORMATS, FormatInfo, get_format
from .exact import element_quantizer, level_set_mse, optimal_scale
from .table import best_format, block_rule_table, format_table

__all__ = [
    "FormatInfo", "FORMATS", "get_format", "level_set", "int_levels", "nf4_levels", "pow2_levels",
    "apot_levels", "lloyd_max_levels", "ELEMENT_NAMES", "element_quantizer", "level_set_mse", "optimal_scale",
    "BlockFormat", "BLOCK_FORMATS", "quantize_blocks", "tensor_mse", "block_mse", "block_montecarlo",
    "format_table", "best_format", "block_rule_table",
]
