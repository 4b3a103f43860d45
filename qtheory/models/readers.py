"""Readers: named weight tensors with their role and channel axis from torch, ONNX, safetensors, npz.

Every reader returns a list of :class:`NamedTensor`. A tensor's values are read on demand
(``NamedTensor.array()``): safetensors files are memory-mapped (a read-only ``numpy.memmap`` per
tensor at the offsets of the file's header), ``.pt`` checkpoints are loaded with ``torch.load(weights_only=True)`` (never
unpickling arbitrary objects; ``mmap=True`` when the file is in the zip format that allows it),
stored (uncompressed) ``.npz`` members are memory-mapped at their offset in the file and
compressed ones are size-checked before they are decompressed, and ONNX external data is
memory-mapped. A :class:`NamedTensor` that points into a file pickles as ``(path, key)``, so a
dask task can read it on another machine.

Roles: ``conv_weight``, ``linear_weight``, ``bias``, ``norm`` (BatchNorm/LayerNorm parameters and
statistics) and ``other``. The channel axis is the output-channel axis of a weight (0 for Conv,
Gemm with ``transB=1`` and torch ``Linear``; 1 for ConvTranspose and ONNX ``MatMul`` weights).
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._typing import PathLike
from .._validation import check_bool, check_int, check_real, param_error

if TYPE_CHECKING:
    import onnx
    import pandas as pd
    import torch

__all__ = [
    "NamedTensor",
    "read_tensors",
    "read_torch",
    "read_onnx",
    "read_safetensors",
    "read_npz",
    "fold_batchnorm",
    "constants_to_initializers",
    "tensors_frame",
    "NPZ_MAX_BYTES",
]

#: largest uncompressed ``.npz`` member :func:`read_npz` decompresses (bytes), and the largest
#: compression ratio it accepts (a zip bomb declares or reaches more)
NPZ_MAX_BYTES = 1 << 34
NPZ_MAX_RATIO = 1000.0

ROLES = ("conv_weight", "linear_weight", "bias", "norm", "other")


@dataclass(frozen=True)
class NamedTensor:
    """One named tensor of a model.

    Attributes
    ----------
    name : str
        The tensor's name in its file or module (``conv1.weight``, an ONNX initializer / Constant
        output name).
    shape : tuple of int
    dtype : str
        Stored dtype (``float32``, ``bfloat16``, ...); ``array()`` returns floats.
    role : str
        ``conv_weight``, ``linear_weight``, ``bias``, ``norm`` or ``other``.
    channel_axis : int or None
        Output-channel axis of a weight (``None`` for vectors and unknown tensors).
    depthwise : bool
        A grouped convolution with one input channel per group.
    op : str or None
        The layer that uses it (ONNX node or torch module name).
    folded : bool
        Its values include a folded BatchNorm.
    source : str or None
        File it is read from (``None`` for tensors held in memory).
    """

    name: str
    shape: tuple
    dtype: str
    role: str = "other"
    channel_axis: int | None = None
    depthwise: bool = False
    op: str | None = None
    folded: bool = False
    source: str | None = None
    _ref: object = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_weight(self) -> bool:
        return self.role in ("conv_weight", "linear_weight")

    def array(self) -> np.ndarray:
        """The values as a float32/float64 numpy array (a memory map where the file allows)."""
        ref = self._ref
        if isinstance(ref, tuple):
            arr = _LOADERS[ref[0]](*ref[1:])
        elif callable(ref):
            arr = ref()
        else:
            arr = ref
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float32)
        return arr


# ================================================================================ role guessing
def _guess(name: str, shape: tuple) -> tuple[str, int | None, bool]:
    """Role, channel axis and depthwise flag from a name and shape alone (state dicts, files)."""
    low = name.lower()
    leaf = low.rsplit(".", 1)[-1]
    nd = len(shape)
    if any(t in low for t in ("bn", "batch_norm", "batchnorm", "norm")) and nd <= 1:
        return "norm", None, False
    if leaf in ("running_mean", "running_var", "num_batches_tracked"):
        return "norm", None, False
    if nd == 1 and ("bias" in leaf or leaf in ("b", "b_0")):
        return "bias", None, False
    if nd >= 3:
        return "conv_weight", 0, nd >= 3 and shape[1] == 1 and shape[0] > 1
    if nd == 2:
        return "linear_weight", 0, False
    return "other", None, False


def _tensor(name, arr_or_ref, shape, dtype, source=None, **kw) -> NamedTensor:
    role, axis, dw = _guess(name, tuple(shape))
    kw.setdefault("role", role)
    kw.setdefault("channel_axis", axis)
    kw.setdefault("depthwise", dw)
    return NamedTensor(name, tuple(int(s) for s in shape), str(dtype), source=source, _ref=arr_or_ref, **kw)


# ================================================================================ torch
def read_torch(obj: torch.nn.Module | dict[str, Any] | PathLike, *, func: str = "read_torch") -> list[NamedTensor]:
    """Tensors of a torch ``nn.Module``, a state dict, or a ``.pt`` / ``.pth`` file.

    A module gives exact roles (``Conv*d`` groups, ``ConvTranspose`` channel axis 1, ``Linear``,
    norm layers); a state dict or file gives roles guessed from names and shapes (4-D → conv,
    ``shape[1] == 1`` → depthwise, 2-D → linear, 1-D ``*bias`` → bias, norm names → norm).

    Files are loaded with ``torch.load(weights_only=True)``: no arbitrary objects are unpickled.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=4), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> [(t.name, t.role, t.channel_axis, t.depthwise) for t in read_torch(net)][::2]
    [('0.weight', 'conv_weight', 0, True), ('2.weight', 'linear_weight', 0, False)]
    """
    import torch

    if isinstance(obj, torch.nn.Module):
        out = []
        for mname, mod in obj.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                name = f"{mname}.{pname}" if mname else pname
                kw = {}
                if isinstance(mod, (torch.nn.modules.conv._ConvNd)):
                    transposed = bool(mod.transposed)
                    if pname == "weight":
                        dw = mod.groups > 1 and mod.groups == mod.in_channels
                        kw = {"role": "conv_weight", "channel_axis": 1 if transposed else 0, "depthwise": dw}
                    elif pname == "bias":
                        kw = {"role": "bias", "channel_axis": None, "depthwise": False}
                elif isinstance(mod, torch.nn.Linear):
                    kw = ({"role": "linear_weight", "channel_axis": 0, "depthwise": False} if pname == "weight"
                          else {"role": "bias", "channel_axis": None, "depthwise": False})
                elif isinstance(mod, (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)):
                    kw = {"role": "norm", "channel_axis": None, "depthwise": False}
                out.append(_tensor(name, _torch_np(p), p.shape, _tdtype(p), op=mname or None, **kw))
        return out
    if isinstance(obj, (str, os.PathLike)):
        path = _existing(obj, _arg(func, "path"), func)
        try:
            try:
                sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:  # legacy (non-zip) format cannot be memory-mapped
                if "mmap" not in str(exc):
                    raise
                sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"The '{_arg(func, 'path')}' parameter of {func} must be a PyTorch checkpoint loadable with "
                             f"weights_only=True. Got {str(path)!r} instead ({type(exc).__name__}: "
                             f"{_first_line(exc)}).") from None
        src = str(path)
    else:
        sd, src = obj, None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise param_error(_arg(func, "obj"), func, "an nn.Module, a state dict or a checkpoint file holding one",
                          type(sd).__name__, TypeError)
    out = []
    for name, v in _flatten(sd):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            out.append(_tensor(name, _torch_np(v), v.shape, _tdtype(v), source=src))
    return out


def _flatten(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _tdtype(t) -> str:
    return str(t.dtype).replace("torch.", "")


def _torch_np(t):
    import torch

    t = t.detach()
    if t.dtype in (torch.float32, torch.float64):
        return t.numpy()
    return lambda t=t: t.float().numpy()


# ================================================================================ ONNX
def read_onnx(model: onnx.ModelProto | PathLike, *, fold_bn: bool = False, func: str = "read_onnx") -> list[NamedTensor]:
    """Tensors of an ONNX model: initializers **and** ``Constant``-node tensors.

    Roles come from the graph: the weight and bias inputs of ``Conv`` / ``ConvTranspose``
    (depthwise: ``group > 1`` with one input channel per group), the constant input of
    ``MatMul`` (channel axis 1) and ``Gemm`` (axis 0 with ``transB=1``), the parameters of
    ``BatchNormalization`` / ``LayerNormalization`` (``norm``). Scalars and shape constants are
    left out (only floating-point tensors with at least 2 values are returned).

    Parameters
    ----------
    model : str, path or onnx.ModelProto
    fold_bn : bool
        Return each ``Conv`` that feeds a ``BatchNormalization`` (its only consumer) with the
        BatchNorm folded in (``W·γ/√(σ²+ε)``, ``(b − μ)·γ/√(σ²+ε) + β``), as
        :func:`fold_batchnorm` rewrites the graph; the folded BatchNorm's parameters are dropped.

    Examples
    --------
    >>> import onnx
    >>> from onnx import helper, numpy_helper
    >>> w = numpy_helper.from_array(np.ones((8, 1, 3, 3), np.float32), "w")
    >>> node_w = helper.make_node("Constant", [], ["w"], value=w)
    >>> conv = helper.make_node("Conv", ["x", "w"], ["y"], group=8)
    >>> g = helper.make_graph([node_w, conv], "g",
    ...     [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8, 5, 5])],
    ...     [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    >>> [(t.name, t.role, t.depthwise, t.shape) for t in read_onnx(helper.make_model(g))]
    [('w', 'conv_weight', True, (8, 1, 3, 3))]
    """
    fold_bn = check_bool(fold_bn, "fold_bn", func)
    m, src = _load_onnx(model, func)
    if fold_bn:
        m = fold_batchnorm(m)
    from onnx import TensorProto

    base = Path(src).parent if src else None
    consts: dict[str, tuple] = {}
    for t in m.graph.initializer:
        consts[t.name] = (t, None)
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.type == a.TENSOR:
                    consts[node.output[0]] = (a.t, node.name or node.output[0])
    floats = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
    info: dict[str, dict] = {}
    for node in m.graph.node:
        op = node.op_type
        attrs = {a.name: a for a in node.attribute}
        ins = list(node.input)
        if op in ("Conv", "ConvTranspose") and len(ins) > 1 and ins[1] in consts:
            w = consts[ins[1]][0]
            group = attrs["group"].i if "group" in attrs else 1
            dims = tuple(w.dims)
            if op == "Conv":
                dw = group > 1 and len(dims) > 1 and dims[1] == 1
                axis = 0
            else:
                dw = group > 1 and group == dims[0]
                axis = 1
            info[ins[1]] = {"role": "conv_weight", "channel_axis": axis, "depthwise": dw, "op": node.name or op}
            if len(ins) > 2 and ins[2]:
                info[ins[2]] = {"role": "bias", "channel_axis": None, "depthwise": False, "op": node.name or op}
        elif op in ("MatMul", "Gemm"):
            for j, name in enumerate(ins[:2]):
                if name in consts and len(consts[name][0].dims) == 2:
                    if op == "Gemm":
                        trans = attrs[("transB" if j == 1 else "transA")].i if ("transB" if j == 1 else "transA") in attrs else 0
                        axis = 0 if (trans if j == 1 else not trans) else 1
                    else:
                        axis = 1 if j == 1 else 0
                    info[name] = {"role": "linear_weight", "channel_axis": axis, "depthwise": False, "op": node.name or op}
            if op == "Gemm" and len(ins) > 2 and ins[2] in consts:
                info[ins[2]] = {"role": "bias", "channel_axis": None, "depthwise": False, "op": node.name or op}
        elif op in ("BatchNormalization", "LayerNormalization", "InstanceNormalization"):
            for name in ins[1:]:
                if name in consts:
                    info[name] = {"role": "norm", "channel_axis": None, "depthwise": False, "op": node.name or op}
    out = []
    for name, (t, _cnode) in consts.items():
        if t.data_type not in floats or int(np.prod(t.dims, dtype=np.int64)) < 2:
            continue
        kw = info.get(name)
        if kw is None:
            kw = {"role": "other", "channel_axis": None, "depthwise": False}
        folded = name.endswith(_FOLD_SUFFIX)
        dtype = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64", TensorProto.FLOAT16: "float16",
                 TensorProto.BFLOAT16: "bfloat16"}[t.data_type]
        out.append(NamedTensor(name, tuple(int(d) for d in t.dims), dtype, folded=folded, source=src,
                               _ref=_onnx_ref(t, base), **kw))
    return out


_FOLD_SUFFIX = "_bnfolded"


def _fold_name(name, conv, consumers, taken) -> str:
    """A new, unused name ending in ``_bnfolded`` for ``name`` folded into the Conv ``conv``:
    ``<name>_bnfolded`` when ``conv`` is the only node that reads ``name``; for a tensor shared
    by several Convs, each folded copy is named after its Conv (``<name>.<conv>_bnfolded``, the
    Conv's node name or else its original output); a number is appended if that name is taken."""
    stem = name if len(consumers.get(name, [])) <= 1 else f"{name}.{conv.name or conv.output[0]}"
    out, i = stem + _FOLD_SUFFIX, 1
    while out in taken:
        i += 1
        out = f"{stem}.{i}{_FOLD_SUFFIX}"
    taken.add(out)
    return out


def _onnx_ref(t, base):
    from onnx import TensorProto

    if t.data_location == TensorProto.EXTERNAL and base is not None:
        kv = {e.key: e.value for e in t.external_data}
        dt = {TensorProto.FLOAT: "<f4", TensorProto.DOUBLE: "<f8", TensorProto.FLOAT16: "<f2"}.get(t.data_type)
        if dt is not None:
            return ("memmap", str(base / kv["location"]), int(kv.get("offset", 0)), dt, tuple(t.dims))
    from onnx import numpy_helper

    return lambda t=t: numpy_helper.to_array(t)


def _load_onnx(model, func):
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model, None
    path = _existing(model, _arg(func, "model"), func)
    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ValueError(f"The '{_arg(func, 'model')}' parameter of {func} must be a readable ONNX file. Got {str(path)!r} "
                         f"instead ({type(exc).__name__}: {_first_line(exc)}).") from None
    return m, str(path)


def _const_arrays(m) -> dict:
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.type == a.TENSOR:
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of an ONNX model whose ``Constant``-node tensors are graph initializers.

    ONNX Runtime's quantizer treats only initializers as weights (per-channel overrides and weight
    quantization need them); PaddlePaddle exports (PP-OCR) store every weight as a ``Constant``.

    Examples
    --------
    >>> import onnx
    >>> from onnx import helper, numpy_helper
    >>> c = helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(np.ones(3, np.float32)))
    >>> add = helper.make_node("Add", ["x", "w"], ["y"])
    >>> g = helper.make_graph([c, add], "g", [helper.make_tensor_value_info("x", 1, [3])],
    ...                       [helper.make_tensor_value_info("y", 1, [3])])
    >>> m = constants_to_initializers(helper.make_model(g))
    >>> [n.op_type for n in m.graph.node], [t.name for t in m.graph.initializer]
    (['Add'], ['w'])
    """
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = []
    for node in m.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and "value" in attrs and attrs["value"].type == onnx.AttributeProto.TENSOR:
            t = onnx.TensorProto()
            t.CopyFrom(attrs["value"].t)
            t.name = node.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


def fold_batchnorm(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of an ONNX model with every ``Conv → BatchNormalization`` pair folded into the Conv.

    Folded when the Conv's output feeds only the BatchNorm (and is not a graph output) and the
    weights and BatchNorm parameters are constants (initializers or ``Constant`` nodes). The Conv's
    weight and bias become new initializers (``<weight>_bnfolded``; ``<bias>_bnfolded``, or
    ``<conv output>.bias_bnfolded`` for a Conv without a bias) computed in float64 and stored in
    the weight's dtype; the Conv writes the BatchNorm's output. Every folded tensor gets a name of
    its own, and no tensor is overwritten: a weight or bias that other nodes read too gets one
    folded copy per Conv (``<weight>.<conv>_bnfolded``, ``<conv>`` the Conv's node name or else its
    output; the other nodes keep reading the original), and a name already in the graph gets a
    number (``<weight>.2_bnfolded``).

    Examples
    --------
    >>> import onnx
    >>> from onnx import helper, numpy_helper
    >>> rng = np.random.default_rng(0)
    >>> inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n) for n, s in
    ...          [("w", (2, 1, 1, 1)), ("g", (2,)), ("b", (2,)), ("m", (2,))]]
    >>> inits.append(numpy_helper.from_array(np.ones(2, np.float32), "v"))
    >>> nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
    ...          helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"])]
    >>> g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1, 1, 2, 2])],
    ...                       [helper.make_tensor_value_info("y", 1, None)], inits)
    >>> [n.op_type for n in fold_batchnorm(helper.make_model(g)).graph.node]
    ['Conv']
    """
    import onnx
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    consts = _const_arrays(m)
    consumers: dict[str, list] = {}
    for node in m.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    outputs = {o.name for o in m.graph.output}
    producer = {o: node for node in m.graph.node for o in node.output}
    # every name in the graph: a folded tensor gets a name none of them has (and none another fold got)
    taken = ({t.name for t in m.graph.initializer} | {v.name for v in m.graph.input} | outputs
             | {v.name for v in m.graph.value_info} | {n for node in m.graph.node for n in (*node.input, *node.output)})
    drop = set()
    new_inits = []
    for bn in m.graph.node:
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1 and any(bn.output[1:]):
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or len(consumers.get(conv.output[0], [])) != 1:
            continue
        if conv.output[0] in outputs or any(n not in consts for n in bn.input[1:5]) or conv.input[1] not in consts:
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (consts[n].astype(np.float64) for n in bn.input[1:5])
        w = consts[conv.input[1]]
        k = gamma / np.sqrt(var + eps)
        b = consts[conv.input[2]].astype(np.float64) if len(conv.input) > 2 and conv.input[2] else np.zeros_like(mean)
        wf = (w.astype(np.float64) * k.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        bf = ((b - mean) * k + beta).astype(w.dtype)
        wname = _fold_name(conv.input[1], conv, consumers, taken)
        bname = (_fold_name(conv.input[2], conv, consumers, taken) if len(conv.input) > 2 and conv.input[2]
                 else _fold_name(conv.output[0] + ".bias", conv, consumers, taken))
        new_inits += [numpy_helper.from_array(wf, wname), numpy_helper.from_array(bf, bname)]
        ins = list(conv.input[:2]) + [bname]
        ins[1] = wname
        del conv.input[:]
        conv.input.extend(ins)
        out = bn.output[0]
        del conv.output[:]
        conv.output.append(out)
        drop.add(id(bn))
    keep = [n for n in m.graph.node if id(n) not in drop]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    m.graph.initializer.extend(new_inits)
    # constants no longer used (the original weights, the BN parameters) are removed
    used = {i for n in m.graph.node for i in n.input} | outputs
    keep = [n for n in m.graph.node if not (n.op_type == "Constant" and n.output[0] not in used)]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    inits = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    return m


# ================================================================================ safetensors
def read_safetensors(path: PathLike, *, func: str = "read_safetensors") -> list[NamedTensor]:
    """Tensors of a ``.safetensors`` file, or of every shard listed by a ``*.safetensors.index.json``
    (or in a directory of shards). Memory-mapped: only the header is read here; each
    ``NamedTensor.array()`` is a read-only ``numpy.memmap`` of its bytes in the file (no copy;
    bfloat16 is widened to float32, a copy of that tensor only).

    Examples
    --------
    >>> import tempfile, os
    >>> from safetensors.numpy import save_file
    >>> d = tempfile.mkdtemp()
    >>> save_file({"fc.weight": np.ones((3, 4), np.float32), "fc.bias": np.zeros(3, np.float32)},
    ...           os.path.join(d, "m.safetensors"))
    >>> [(t.name, t.role, t.shape) for t in read_safetensors(os.path.join(d, "m.safetensors"))]
    [('fc.bias', 'bias', (3,)), ('fc.weight', 'linear_weight', (3, 4))]
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.safetensors"))
        if not files:
            raise param_error(_arg(func, "path"), func, "a .safetensors file, an index .json or a folder of shards",
                              str(path))
    elif p.name.endswith(".json"):
        p = _existing(p, _arg(func, "path"), func)
        try:
            wm = json.loads(p.read_text())["weight_map"]
        except Exception:
            raise param_error(_arg(func, "path"), func, "a safetensors index with a 'weight_map'", str(path)) from None
        files = [p.parent / f for f in dict.fromkeys(wm.values())]
    else:
        files = [_existing(p, _arg(func, "path"), func)]
    out = []
    for f in files:
        out.extend(_safetensors_file(_existing(f, _arg(func, "path"), func), func))
    return out


def _safetensors_file(path: Path, func) -> list[NamedTensor]:
    # the header (8-byte little-endian length, then JSON) is all that is read here
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > 100_000_000 or n > path.stat().st_size:
                raise ValueError("header length out of range")
            header = json.loads(fh.read(n))
    except Exception as exc:
        raise ValueError(f"The '{_arg(func, 'path')}' parameter of {func} must be a safetensors file. Got {str(path)!r} "
                         f"instead ({_first_line(exc)}).") from None
    out = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dt = meta["dtype"]
        if dt not in ("F64", "F32", "F16", "BF16"):
            continue
        out.append(_tensor(name, ("safetensors", str(path), name), meta["shape"],
                           {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dt],
                           source=str(path)))
    return sorted(out, key=lambda t: t.name)


def _load_safetensors(path, key):
    """A read-only memory map of one tensor (little-endian data at the header's offsets)."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        meta = json.loads(fh.read(n))[key]
    a, b = meta["data_offsets"]
    shape = tuple(meta["shape"])
    if meta["dtype"] == "BF16":  # no numpy dtype: widen the bits to float32
        raw = np.memmap(path, dtype="<u2", mode="r", offset=8 + n + a, shape=((b - a) // 2,))
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    dt = np.dtype({"F64": "<f8", "F32": "<f4", "F16": "<f2"}[meta["dtype"]])
    if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != b - a:
        raise ValueError(f"The safetensors file {path!r} is inconsistent: tensor {key!r} of shape {shape} "
                         f"holds {b - a} bytes.")
    if b == a:
        return np.zeros(shape, dt)
    return np.memmap(path, dtype=dt, mode="r", offset=8 + n + a, shape=shape)


# ================================================================================ npz
def read_npz(path: PathLike, *, max_bytes: int = NPZ_MAX_BYTES, max_ratio: float = NPZ_MAX_RATIO,
             func: str = "read_npz") -> list[NamedTensor]:
    """Arrays of an ``.npz`` file (any number of them), checked before anything is decompressed.

    Every member's ``.npy`` header is read first; a member whose declared size
    (``shape × itemsize``) does not match its uncompressed size in the zip directory, exceeds
    ``max_bytes`` or whose compression ratio exceeds ``max_ratio`` (default 1000: a zip bomb) is
    refused with a
    ``ValueError``. Stored (``np.savez``) members are memory-mapped; compressed
    (``np.savez_compressed``) members are decompressed one at a time when read.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> np.savez(f, conv=np.ones((4, 1, 3, 3), np.float32), fc=np.ones((2, 4)))
    >>> [(t.name, t.role, t.depthwise) for t in read_npz(f)]
    [('conv', 'conv_weight', True), ('fc', 'linear_weight', False)]
    """
    path = _existing(path, _arg(func, "path"), func)
    max_bytes = check_int(max_bytes, "max_bytes", func, 0, None)
    max_ratio = check_real(max_ratio, "max_ratio", func, 1.0)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"The '{_arg(func, 'path')}' parameter of {func} must be an .npz (zip) file. Got {str(path)!r} "
                         f"instead ({_first_line(exc)}).") from None
    out = []
    with zf:
        for zi in zf.infolist():
            if not zi.filename.endswith(".npy"):
                continue
            name = zi.filename[:-4]
            if zi.file_size > max_bytes:
                raise ValueError(f"The '{_arg(func, 'path')}' parameter of {func} must be an .npz whose arrays are at most "
                                 f"{max_bytes} bytes. Got member {name!r} of {zi.file_size} bytes instead.")
            if zi.compress_type != zipfile.ZIP_STORED and zi.file_size > max_ratio * max(zi.compress_size, 1):
                raise ValueError(f"The '{_arg(func, 'path')}' parameter of {func} must not be a zip bomb. Got member {name!r} "
                                 f"with compression ratio {zi.file_size / max(zi.compress_size, 1):.0f} instead.")
            with zf.open(zi) as fh:
                shape, fortran, dtype, hlen = _npy_header(fh, name, path, func)
            if dtype.kind not in "f" and dtype.kind not in "iu":
                continue
            need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + hlen
            if need != zi.file_size:
                raise ValueError(f"The '{_arg(func, 'path')}' parameter of {func} must be a consistent .npz. Got member {name!r} "
                                 f"declaring {need} bytes but holding {zi.file_size} instead.")
            if zi.compress_type == zipfile.ZIP_STORED:
                with open(path, "rb") as fh:
                    fh.seek(zi.header_offset)
                    local = fh.read(30)
                    nlen, xlen = struct.unpack("<HH", local[26:30])
                off = zi.header_offset + 30 + nlen + xlen + hlen
                ref = ("memmap", str(path), off, dtype.str, tuple(shape), fortran)
            else:
                ref = ("npz", str(path), zi.filename)
            out.append(_tensor(name, ref, shape, dtype.name, source=str(path)))
    return out


def _npy_header(fh, name, path, func):
    from numpy.lib import format as npf

    try:
        version = npf.read_magic(fh)
        reader = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
        shape, fortran, dtype = reader(fh, max_header_size=1 << 20)
    except Exception as exc:
        raise ValueError(f"The '{_arg(func, 'path')}' parameter of {func} must hold .npy arrays. Got member {name!r} of "
                         f"{str(path)!r} that is not one ({_first_line(exc)}).") from None
    hlen = {(1, 0): 10, (2, 0): 12, (3, 0): 12}[version]
    fh.seek(0)
    head = fh.read(hlen)
    hlen += struct.unpack("<H" if version == (1, 0) else "<I", head[8:hlen])[0]
    return tuple(shape), fortran, dtype, hlen


def _load_memmap(path, offset, dtype, shape, fortran=False):
    return np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def _load_npz(path, member):
    with zipfile.ZipFile(path) as zf, zf.open(member) as fh:
        from numpy.lib import format as npf

        return npf.read_array(fh, allow_pickle=False)


_LOADERS = {"safetensors": _load_safetensors, "memmap": _load_memmap, "npz": _load_npz}


# ================================================================================ dispatch
def read_tensors(source: torch.nn.Module | dict[str, Any] | onnx.ModelProto | PathLike, *, fold_bn: bool = False) -> list[NamedTensor]:
    """Named tensors of any supported model: dispatches on the type or file suffix.

    ``nn.Module`` / state dict / ``.pt`` / ``.pth`` / ``.bin`` → :func:`read_torch`;
    ``onnx.ModelProto`` / ``.onnx`` → :func:`read_onnx` (``fold_bn`` applies here only);
    ``.safetensors`` / ``.safetensors.index.json`` / a folder of shards → :func:`read_safetensors`;
    ``.npz`` → :func:`read_npz`; ``.npy`` → one tensor.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "w.npy")
    >>> np.save(f, np.ones((16, 8), np.float32))
    >>> [(t.name, t.role, t.shape) for t in read_tensors(f)]
    [('w', 'linear_weight', (16, 8))]
    """
    return _read_tensors(source, fold_bn, "read_tensors")


def _read_tensors(source, fold_bn, func) -> list[NamedTensor]:
    """:func:`read_tensors` for ``func`` (its errors name the ``source`` and ``fold_bn`` parameters of ``func``)."""
    fold_bn = check_bool(fold_bn, "fold_bn", func)
    mod = type(source).__module__
    if mod.startswith("torch") or (isinstance(source, dict)):
        return read_torch(source, func=func)
    if mod.startswith("onnx"):
        return read_onnx(source, fold_bn=fold_bn, func=func)
    if not isinstance(source, (str, os.PathLike)):
        try:
            import torch

            if isinstance(source, torch.nn.Module):
                return read_torch(source, func=func)
        except ImportError:  # pragma: no cover
            pass
        raise param_error("source", func, "a model file path, an nn.Module, a state dict or an onnx.ModelProto",
                          type(source).__name__, TypeError)
    p = Path(source)
    name = p.name.lower()
    if p.is_dir() or name.endswith(".safetensors") or name.endswith(".safetensors.index.json"):
        return read_safetensors(p, func=func)
    if name.endswith(".onnx"):
        return read_onnx(p, fold_bn=fold_bn, func=func)
    if name.endswith((".pt", ".pth", ".bin", ".ckpt")):
        return read_torch(p, func=func)
    if name.endswith(".npz"):
        return read_npz(p, func=func)
    if name.endswith(".npy"):
        p = _existing(p, "source", func)
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"The 'source' parameter of {func} must be a readable .npy file. Got {str(p)!r} "
                             f"instead ({_first_line(exc)}).") from None
        return [_tensor(p.stem, arr, arr.shape, arr.dtype.name, source=str(p))]
    raise param_error("source", func, "a file ending in .onnx, .pt, .pth, .bin, .safetensors, "
                      ".safetensors.index.json, .npz or .npy", str(source))


def tensors_frame(tensors: Iterable[NamedTensor]) -> pd.DataFrame:
    """The tensors as a pandas DataFrame: ``tensor, shape, dtype, role, channel_axis, depthwise, op``.

    >>> t = [NamedTensor("w", (4, 1, 3, 3), "float32", "conv_weight", 0, True)]
    >>> tensors_frame(t).iloc[0].to_dict()["depthwise"]
    True
    """
    import pandas as pd

    return pd.DataFrame([{"tensor": t.name, "shape": "x".join(map(str, t.shape)), "dtype": t.dtype, "role": t.role,
                          "channel_axis": t.channel_axis, "depthwise": t.depthwise, "op": t.op, "folded": t.folded}
                         for t in tensors])


#: the functions that take a model as their ``source`` parameter and read it with the readers below
_SOURCE_FUNCS = frozenset({"read_tensors", "layer_report", "distributed_report"})


def _arg(func: str, own: str) -> str:
    """The name of the model argument of ``func`` in an error: the reader's own (``own``), or
    ``source`` when ``func`` is a dispatcher that reads its ``source`` through the reader."""
    return "source" if func in _SOURCE_FUNCS else own


def _existing(path, name, func) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"The '{name}' parameter of {func} must be an existing file. Got {str(path)!r} instead.")
    return p


def _first_line(exc) -> str:
    s = str(exc).strip().splitlines()
    return s[0][:200] if s else type(exc).__name__
