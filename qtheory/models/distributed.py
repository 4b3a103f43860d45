"""A model-wide ``layer_report`` on dask: local threads by default, or an existing dask.distributed cluster.

How it scales
-------------
Only the safetensors headers are read on the client (a few kB per shard); each task opens its
shard with ``safe_open`` (memory-mapped) and copies one tensor, so a worker's memory is about
twice the largest tensor it handles (the tensor and its copy standardised by a power of two, on
which every number is computed; plus the ``max_values`` subsample and the exact-MSE tables,
~2 bytes of index per value), never a shard or the checkpoint. The client receives only the report rows
(~20 numbers per tensor, method and bits). Time is ``Σ_tensors cost / (workers × threads)`` while
there are more tensors than cores; a large language model has hundreds to thousands of weight
matrices, so the tasks balance well (``by="tensor"``: the scheduler places each task on any
worker; ``by="shard"``: one task per shard file, the right unit when each worker has local disks
holding some shards, with ``workers=`` pinning). The cost per tensor is dominated by the exact
optimum's preparation (O(n)) and search; ``max_values`` caps the search, not the MSE/SQNR
measurement, which stays over the whole tensor. Every worker must see the shard files under the
same path (a shared filesystem or the same local copy); nothing is sent through the scheduler but
file paths and rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._typing import PathLike
from .._validation import check_int, check_option, param_error
from ..quantizer import DEFAULT_TENSOR_GRID, GRIDS, MAX_BITS, MIN_BITS
from .observers import METHODS, _observer_method

if TYPE_CHECKING:
    import onnx
    import pandas as pd
    import torch

    from .readers import NamedTensor

__all__ = ["distributed_report"]


def _rows(tensors, bits, methods, grid, granularity, max_values, seed):
    from .report import tensor_rows

    out = []
    for t in tensors:
        out.extend(tensor_rows(t, bits, methods, grid, granularity, max_values, seed, func="distributed_report"))
    return out


def distributed_report(source: torch.nn.Module | dict[str, Any] | onnx.ModelProto | PathLike | Sequence[NamedTensor],
                       bits: int | Iterable[int] = (8,), *, methods: Iterable[str] = METHODS,
                       granularity: str = "tensor", grid: str = DEFAULT_TENSOR_GRID,
                       roles: Iterable[str] | None = ("conv_weight", "linear_weight"), fold_bn: bool = False,
                       max_values: int | None = None, seed: int = 0, scheduler: str | Any | None = None, by: str = "tensor",
                       long: bool = True, progress: bool = False) -> pd.DataFrame:
    """:func:`qtheory.models.layer_report` as dask tasks: one per tensor or per shard.

    Parameters
    ----------
    source
        As for :func:`~qtheory.models.layer_report` — typically a ``*.safetensors.index.json`` or a
        folder of safetensors shards.
    bits, methods, granularity, grid, roles, fold_bn, max_values, seed
        As for :func:`~qtheory.models.layer_report`.
    scheduler : None, str or distributed.Client
        ``None``: dask's local threaded scheduler (no setup, no cluster); an address such as
        ``"tcp://10.0.0.1:8786"``: a ``distributed.Client`` connected to that existing cluster
        (closed afterwards); a ``Client``: used as is.
    by : {"tensor", "shard"}
        One task per tensor, or per source file (shard).
    long : bool
        Long format (default; one row per tensor, bits and method) or wide.
    progress : bool
        Print dask's progress bar (distributed clients only).

    Returns
    -------
    pandas.DataFrame
        Rows in the order of the tensors in ``source``; equal to ``layer_report``'s.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = {f"l{i}.weight": rng.laplace(size=(16, 32)).astype(np.float32) for i in range(3)}
    >>> df = distributed_report(w, bits=[4], methods=["max", "exact"])
    >>> df.tensor.tolist()
    ['l0.weight', 'l0.weight', 'l1.weight', 'l1.weight', 'l2.weight', 'l2.weight']
    """
    import pandas as pd

    from .readers import NamedTensor
    from .report import REPORT_COLUMNS, _as_tensors, wide

    func = "distributed_report"
    bits_list = [bits] if isinstance(bits, int) else list(bits)
    grid = check_option(grid, "grid", func, GRIDS)
    bits_list = [check_int(b, "bits", func, MIN_BITS[grid], MAX_BITS) for b in bits_list]
    methods = [_observer_method(m, func, "methods") for m in methods]
    granularity = check_option(granularity, "granularity", func, ("tensor", "channel"))
    by = check_option(by, "by", func, ("tensor", "shard"))
    if max_values is not None:
        max_values = check_int(max_values, "max_values", func, 16, None)
    seed = check_int(seed, "seed", func, 0, None)
    tensors = _as_tensors(source, fold_bn, func, NamedTensor)
    if roles is not None:
        tensors = [t for t in tensors if t.role in set(roles)]
    if by == "tensor":
        groups = [[t] for t in tensors]
    else:
        shards: dict = {}
        for t in tensors:
            shards.setdefault(t.source, []).append(t)
        groups = list(shards.values())
    args = (bits_list, methods, grid, granularity, max_values, seed)
    if scheduler is None:
        import dask

        parts = dask.compute(*[dask.delayed(_rows)(g, *args) for g in groups], scheduler="threads")
    else:
        from distributed import Client

        if isinstance(scheduler, Client):
            client, own = scheduler, False
        elif isinstance(scheduler, str):
            client, own = Client(scheduler), True
        else:
            raise param_error("scheduler", func, "None, a scheduler address or a distributed.Client",
                              type(scheduler).__name__, TypeError)
        try:
            futures = [client.submit(_rows, g, *args, pure=False) for g in groups]
            if progress:
                from distributed import progress as show

                show(futures)
            parts = client.gather(futures)
        finally:
            if own:
                client.close()
    rows = [r for p in parts for r in p]
    df = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    if granularity == "tensor":
        df = df.drop(columns="channel")
    return df if long else wide(df)
