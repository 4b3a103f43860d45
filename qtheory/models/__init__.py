"""qtheory.models — real models in, runtime-ready calibration out.

Everything here imports its heavy dependency (torch, onnx, onnxruntime, safetensors, dask) inside
the function that needs it; ``import qtheory.models`` imports numpy only.

Readers (:mod:`qtheory.models.readers`)
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

Observers (:mod:`qtheory.models.observers`)
-------------------------------------------
Observer(bits=8, grid="uint8", axis=None, max_samples=2**22, bins=2**16, seed=0)
    ``.collect(batch)`` any number of times; ``.range(method)`` -> Range(beta, alpha, ...);
    ``.ranges(methods)`` -> DataFrame. Methods: METHODS = ("max", "percentile", "entropy",
    "mse_sweep", "octav", "aciq", "exact"). Grid "uint8" (affine, asymmetric (β, α) for every
    method; the ONNX Runtime activation default) or a symmetric qtheory grid ("narrow", "int", ...).
    Streaming beyond ``max_samples`` values: exact per-bin count/sum/sum of squares on a
    power-of-two grid; the "exact" method's MSE bound is documented on the class.
torch_observers(model, batches, ...) -> dict[name, Observer]      forward hooks on a torch model
onnx_observers(model, feeds, ...) -> dict[name, Observer]         ORT run with intermediate outputs

Report (:mod:`qtheory.models.report`)
-------------------------------------
layer_report(source | tensors, bits=(8,), methods=METHODS, granularity="tensor", grid="narrow",
             roles=("conv_weight", "linear_weight"), max_values=None, seed=0, long=False,
             progress=False) -> DataFrame
    One row per tensor (per channel with granularity="channel"): tensor, shape, role, depthwise,
    n, sampled, prior, loglik_laplace, loglik_gaussian, ks, kurtosis, bits, and per method
    ``<method>_alpha``, ``<method>_beta``, ``<method>_mse``, ``<method>_sqnr_db``,
    ``<method>_gain_db`` (over max). ``long=True``: one row per (tensor, method, bits) with
    columns tensor, shape, bits, method, alpha, beta, mse, sqnr_db, gain_db (the CLI's CSV).
clip_tensor(x, bits, method, grid) -> (beta, alpha)

Export (:mod:`qtheory.models.export`)
-------------------------------------
ort_qparams(beta, alpha, qtype="uint8", symmetric=False, reduce_range=False) -> (scale, zero_point)
ort_range(scale, zero_point, qtype="uint8") -> (beta, alpha)
write_ort_calibration_cache(ranges, path)       ONNX Runtime TensorsData JSON (MinMax method)
tensor_quant_overrides(weights={name: (scales, zero_points, axis)}, ...) -> dict
quantize_onnx(model, output, activation_ranges, weight_clips=None, per_channel=True, ...)
    one call to onnxruntime.quantization.quantize_static with qtheory's ranges
    (Constant nodes → initializers, opset ≥ 13 for per-channel QDQ, optional quant_pre_process)
torch_qparams(beta, alpha, dtype="quint8") -> (scale, zero_point) as torch.ao's observers store them
torch_fake_quant(beta, alpha, ...) -> torch.ao.quantization.FakeQuantize with that state

Distributed (:mod:`qtheory.models.distributed`)
-----------------------------------------------
distributed_report(source, bits, ..., scheduler=None, by="tensor") -> DataFrame
    dask.distributed: local threads by default, ``scheduler="tcp://host:8786"`` (or a Client)
    for an existing cluster; one task per tensor (``by="tensor"``) or shard (``by="shard"``).

CLI: ``qtheory report MODEL --bits 4 8 [--granularity tensor|channel] [--grid narrow] [--csv F]
[--json] [--max-values N] [--scheduler ADDR]`` (:func:`qtheory.models.cli.report_command`).
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["readers", "observers", "report", "export", "distributed", "cli"],
    submod_attrs={
        "readers": ["NamedTensor", "read_tensors", "read_torch", "read_onnx", "read_safetensors", "read_npz",
                    "fold_batchnorm", "constants_to_initializers", "tensors_frame"],
        "observers": ["Observer", "Range", "METHODS", "torch_observers", "onnx_observers"],
        "report": ["layer_report", "clip_tensor"],
        "export": ["ort_qparams", "ort_range", "write_ort_calibration_cache", "tensor_quant_overrides",
                   "quantize_onnx", "torch_qparams", "torch_fake_quant"],
        "distributed": ["distributed_report"],
    },
)
