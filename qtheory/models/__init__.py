"""qtheory.models — real models in, runtime-ready calibration out.

Everything here imports its heavy dependency (torch, onnx, onnxruntime, safetensors, dask) inside
the function that needs it; ``import qtheory.models`` imports numpy only.

API summary (signatures abridged; each function's own page has the details)::

    Readers (qtheory.models.readers)
    ---------------------------------------
    read_tensors(source, fold_bn=False) -> list[NamedTensor]
        any of: nn.Module, state dict, .pt/.pth, onnx.ModelProto/.onnx, .safetensors (or a shard index
        / folder of shards), .npz, .npy. ``NamedTensor``: name, shape, dtype, role
        ("conv_weight" | "linear_weight" | "bias" | "norm" | "other"), channel_axis, depthwise, op,
        folded, source; ``.array()`` reads the values (memory-mapped where the file allows).
    read_torch, read_onnx (initializers AND Constant nodes), read_safetensors, read_npz
    fold_batchnorm(onnx_model) -> onnx_model     Conv→BatchNormalization folded into the Conv
    constants_to_initializers(onnx_model)         Constant-node tensors moved to initializers
    tensors_frame(tensors) -> DataFrame

    Observers (qtheory.models.observers)
    -------------------------------------------
    Observer(bits=8, grid="affine", axis=None, max_samples=2**22, bins=2**16, reservoir=2**20, seed=0,
             percentile=99.99)
        ``.collect(batch)`` any number of times; ``.range(method)`` -> Range(beta, alpha, method, bits,
        grid, mse, bound, streamed); ``.ranges(methods)`` -> DataFrame; ``.n``. Methods: METHODS =
        ("max", "percentile", "entropy", "mse", "octav", "aciq", "exact"; "kl" = "entropy"). Grid "affine"
        (asymmetric (β, α) for every method; ONNX Runtime's uint8 activations at 8 bits) or a
        symmetric qtheory grid ("narrow", "int", ...: β = −α). Streaming beyond ``max_samples`` values:
        exact per-bin count/sum/sum of squares/min/max on a power-of-two grid; the streamed "exact"
        range's excess MSE bound is in the module docstring (Range.bound).
    clip_range(x, bits, method, grid="affine") -> (beta, alpha)       one tensor, one calibrator
    quantizer_for(beta, alpha, bits, grid) -> qtheory.Quantizer
    torch_observers(model, batches, modules=None, inputs=False, **observer_kw) -> {module: Observer}
    onnx_observers(model, feeds, tensors=None, **observer_kw) -> {tensor: Observer}
        default tensors: exactly those ONNX Runtime's quantize_static needs ranges for, on the
        graph export.prepare_for_ort produces (Constant → initializers, opset ≥ 13)

    Report (qtheory.models.report)
    -------------------------------------
    layer_report(source | tensors | {name: array}, bits=(8,), methods=METHODS, granularity="tensor",
                 grid="narrow", roles=("conv_weight", "linear_weight"), fold_bn=False, max_values=None,
                 seed=0, long=False, progress=False) -> DataFrame
        One row per (tensor[, channel], bits): tensor, shape, role, depthwise, [channel,] n, n_fit,
        prior, loglik_laplace, loglik_gaussian, ks, kurtosis, bits, grid, and per method
        ``<method>_alpha``, ``_beta``, ``_mse``, ``_sqnr_db``, ``_gain_db`` (over max).
        ``long=True``: one row per (tensor[, channel], bits, method), columns REPORT_COLUMNS
        (…, method, alpha, beta, mse, sqnr_db, gain_db) — the CLI's CSV. ``max_values``: clips chosen
        from a seeded subsample (n_fit), MSE/SQNR always over the whole tensor (n).
    clip_tensor(x, bits, method="exact", grid="narrow") -> (beta, alpha)

    Export (qtheory.models.export)
    -------------------------------------
    ort_qparams(beta, alpha, qtype="uint8", symmetric=False, reduce_range=False) -> (scale, zero_point)
    ort_range(scale, zero_point, qtype="uint8") -> (beta, alpha)
    write_ort_calibration_cache({name: (beta, alpha)}, path)   ONNX Runtime TensorsData JSON (MinMax)
    tensor_quant_overrides(weights={name: (alpha or alphas, axis)}, activations={name: (beta, alpha)})
    quantize_onnx(model, output, activation_ranges, weight_clips=None, per_channel=True,
                  activation_type="uint8", weight_type="int8", reduce_range=False, preprocess=False)
        one call to onnxruntime.quantization.quantize_static (QDQ) with qtheory's ranges
        (Constant nodes → initializers, opset ≥ 13 for per-channel QDQ, optional quant_pre_process);
        weight_clips: {name: symmetric alpha, scalar or per output channel}
    prepare_for_ort(model), ort_calibration_tensors(model) -> list[str], qdq_scales(qdq_model) ->
        {tensor: (scale, zero_point)}
    torch_qparams(beta, alpha, dtype="quint8") -> (scale, zero_point) as torch.ao's observers store them
    torch_fake_quant(beta, alpha, ...) -> torch.ao.quantization.FakeQuantize with that state

    Distributed (qtheory.models.distributed)
    -----------------------------------------------
    distributed_report(source, bits, ..., scheduler=None, by="tensor") -> DataFrame
        dask.distributed: local threads by default, ``scheduler="tcp://host:8786"`` (or a Client)
        for an existing cluster; one task per tensor (``by="tensor"``) or shard (``by="shard"``).

    CLI: ``qtheory report MODEL --bits 4 8 [--granularity tensor|channel] [--grid narrow|affine|…]
    [--methods …] [--all-tensors] [--fold-bn] [--max-values N] [--seed S] [--scheduler local|ADDR]
    [--csv FILE | --json]`` (qtheory.models.cli); bad files: one line on stderr, exit 2.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["readers", "observers", "report", "export", "distributed", "cli"],
    submod_attrs={
        "readers": ["NamedTensor", "read_tensors", "read_torch", "read_onnx", "read_safetensors", "read_npz",
                    "fold_batchnorm", "constants_to_initializers", "tensors_frame"],
        "observers": ["Observer", "Range", "METHODS", "torch_observers", "onnx_observers", "clip_range",
                      "quantizer_for"],
        "report": ["layer_report", "clip_tensor", "REPORT_COLUMNS"],
        "export": ["ort_qparams", "ort_range", "write_ort_calibration_cache", "tensor_quant_overrides",
                   "quantize_onnx", "prepare_for_ort", "ort_calibration_tensors", "qdq_scales",
                   "torch_qparams", "torch_fake_quant"],
        "distributed": ["distributed_report"],
    },
)
