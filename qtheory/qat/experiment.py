"""The QAT experiment: every estimator × bit-width × seed trained side by side, as pandas tables.

One run (:func:`run_one`) trains the float model of its seed, fake-quantizes it with an estimator,
fine-tunes it, then measures test accuracy, the learned thresholds beside theory, TQT's
power-of-two visits, SAT's statistics and (4 and 8 bits) the integer-only network. Runs are
independent and deterministic given their seed, so :func:`run_grid` spreads them over local
processes (``n_jobs``) and the tables do not depend on how many there were.

The runs are float64 on one thread each, in worker processes whose CPU code paths are pinned
(``CPU_PATHS``): ATen's vectorised kernels and MKL's BLAS otherwise take AVX-512 paths where the
CPU has them, whose rounding differs from the AVX2 paths, and a training run amplifies a last-bit
difference into different thresholds.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import platform
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Config", "run_one", "run_grid", "FAST_CONFIG", "FULL_CONFIG"]


@dataclass(frozen=True)
class Config:
    """Sizes of the experiment (epochs, seeds, bit-widths, methods)."""

    seeds: tuple = (0, 1, 2)
    bits: tuple = (2, 3, 4, 8)
    methods: tuple = ("tqt", "lsq", "pact", "calibrated_pact", "sat")
    sat_ablation_bits: tuple = (2, 4)
    float_epochs: int = 20
    qat_epochs: int = 5
    analysis_images: int = 512
    lr: float = 1e-3
    lr_threshold: float = 1e-2
    float_lr: float = 3e-3
    integer_bits: tuple = (4, 8)


FULL_CONFIG = Config()
FAST_CONFIG = Config(seeds=(0,), bits=(2, 4), methods=("tqt", "lsq", "calibrated_pact", "sat"),
                     sat_ablation_bits=(2,), float_epochs=12, qat_epochs=3, integer_bits=(4,), analysis_images=256)

_FLOAT_CACHE: dict = {}


def _float(data, seed: int, cfg: Config):
    from . import network as N

    key = (seed, cfg.float_epochs, cfg.float_lr)
    if key not in _FLOAT_CACHE:
        _FLOAT_CACHE[key] = N.float_model(data, seed=seed, epochs=cfg.float_epochs, lr=cfg.float_lr)
    return _FLOAT_CACHE[key]


def run_one(method: str, bits: int, seed: int, cfg: Config = FULL_CONFIG, fp_state: dict | None = None) -> dict:
    """Train one (method, bits, seed) and return its measurements as plain dicts/lists.

    ``fp_state`` is the float model of ``seed`` (a state dict of arrays, as ``run_one("float", …)``
    returns under ``"state"``); without it the float model is trained here.
    """
    import torch

    from . import analysis as A
    from . import integer as I
    from . import network as N
    from .data import load_digits_split

    data = load_digits_split()
    if fp_state is not None:
        fp = N.DigitsCNN()
        fp.load_state_dict({k: torch.as_tensor(v) for k, v in fp_state.items()})
        fp.eval()
    else:
        fp = _float(data, seed, cfg)
    calib = data.x_train[:256]
    analysis = data.x_train[:cfg.analysis_images]
    out: dict = {"method": method, "bits": bits, "seed": seed}
    if method == "float":
        out["test_accuracy"] = N.evaluate(fp, data.x_test, data.y_test)
        out["state"] = {k: v.detach().numpy().copy() for k, v in fp.state_dict().items()}
        return out
    if method == "ptq_exact":
        model = N.ptq_model(fp, bits, calib)
        out["test_accuracy"] = N.evaluate(model, data.x_test, data.y_test)
        return out
    model = N.quantize_model(fp, method, bits, calib)
    log = N.TrainLog()
    N.train(model, data, epochs=cfg.qat_epochs, lr=cfg.lr, lr_threshold=cfg.lr_threshold, seed=1000 + seed,
            log=log)
    out["test_accuracy"] = N.evaluate(model, data.x_test, data.y_test)
    out["thresholds"] = A.thresholds_vs_theory(model, analysis).assign(seed=seed).to_dict("records")
    if method == "tqt":
        inputs = A.quantizer_inputs(model, analysis)
        gen = np.random.default_rng(seed)
        rows = []
        for name, trace in log.params.items():
            tensor = name.split(".")[0]
            v = inputs[tensor]
            v = gen.choice(v, 20000, replace=False) if v.size > 20000 else v
            rows.append({"method": method, "bits": bits, "seed": seed, "tensor": tensor,
                         **A.pow2_visits(trace, v, bits, signed=tensor[0] == "w")})
        out["pow2"] = rows
    if method in ("sat", "dorefa_cpact"):
        out["sat"] = {"method": method, "bits": bits, "seed": seed,
                      **A.sat_statistics(model, data.x_val, data.y_val)}
    if bits in cfg.integer_bits:
        try:
            net = I.export_integer(model)
        except ValueError as exc:
            out["integer"] = {"method": method, "bits": bits, "seed": seed, "exported": False, "reason": str(exc)}
        else:
            cmp = I.compare(model, net, data.x_test)
            out["integer"] = {"method": method, "bits": bits, "seed": seed, "exported": True,
                              "test_accuracy_fakequant": float(np.mean(cmp["fakequant"] == data.y_test)),
                              "test_accuracy_integer": float(np.mean(cmp["integer"] == data.y_test)),
                              "agreement": cmp["agreement"],
                              "clipped_codes": sum(layer.clipped_codes for layer in net.layers)}
    torch.set_num_threads(1)
    return out


def _jobs(cfg: Config) -> list[tuple]:
    jobs = []
    for s in cfg.seeds:
        for b in cfg.bits:
            jobs.append(("ptq_exact", b, s))
            jobs += [(m, b, s) for m in cfg.methods]
            if b in cfg.sat_ablation_bits:
                jobs.append(("dorefa_cpact", b, s))
    return jobs


def _run_job(args):
    job, cfg, state = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_one(*job, cfg=cfg, fp_state=state)


#: environment of the worker processes on x86-64 (a value the user set is kept): ATen's kernels and
#: MKL's conditional numerical reproducibility on their AVX2 code paths, the same on every CPU with AVX2
CPU_PATHS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


@contextlib.contextmanager
def _pinned_cpu_paths():
    """``CPU_PATHS`` in ``os.environ`` while the worker processes start (they inherit it)."""
    old = {k: os.environ.get(k) for k in CPU_PATHS}
    if platform.machine().lower() in ("x86_64", "amd64"):
        for k, v in CPU_PATHS.items():
            os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_cpu_paths() -> tuple[str, dict]:
    """(ATen's CPU capability, the ``CPU_PATHS`` variables) as a worker process sees them."""
    import torch

    return torch.backends.cpu.get_cpu_capability(), {k: os.environ.get(k) for k in CPU_PATHS}


def run_grid(cfg: Config = FULL_CONFIG, *, n_jobs: int | None = None, progress: bool = True) -> dict:
    """Run every job of ``cfg`` and return ``{"accuracy", "thresholds", "pow2", "sat", "integer"}``
    DataFrames (rows in job order, whatever ``n_jobs``).

    The float model of each seed is trained first (one job per seed), then every quantized run
    starts from it. ``n_jobs`` local worker processes (default: the CPUs available, at most 2; also one
    is a worker process, started with ``CPU_PATHS``); each run trains on one thread, so the
    tables do not depend on ``n_jobs``.
    """
    from tqdm.auto import tqdm

    jobs = _jobs(cfg)
    n_jobs = n_jobs or min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    bar = tqdm(total=len(cfg.seeds) + len(jobs), desc="qat runs", unit="run", disable=not progress)

    # every run in a worker process, one or many: the same CPU code paths
    # a seed's quantized runs start as soon as its float model is trained (no core waits for the
    # last float model); results are put back in job order
    with _pinned_cpu_paths(), ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as ex:
        fl = {ex.submit(_run_job, (("float", 32, s), cfg, None)): s for s in cfg.seeds}
        floats, futures = {}, {}
        pending = set(fl)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    r = f.result()  # a failed run raises here
                    bar.update()
                    if f in fl:
                        floats[r["seed"]] = r
                        state = r.pop("state")
                        new = {ex.submit(_run_job, (j, cfg, state)): i for i, j in enumerate(jobs)
                               if j[2] == r["seed"]}
                        futures.update(new)
                        pending |= set(new)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        rest = [None] * len(jobs)
        for f, i in futures.items():
            rest[i] = f.result()
    results = [floats[s] for s in cfg.seeds] + rest
    bar.close()
    acc = pd.DataFrame([{k: r[k] for k in ("method", "bits", "seed", "test_accuracy")} for r in results])
    acc.loc[acc.method == "float", "bits"] = 32
    frames = {"accuracy": acc}
    for key in ("thresholds", "pow2"):
        rows = [row for r in results for row in r.get(key, [])]
        frames[key] = pd.DataFrame(rows)
    frames["sat"] = pd.DataFrame([r["sat"] for r in results if "sat" in r])
    frames["integer"] = pd.DataFrame([r["integer"] for r in results if "integer" in r])
    return frames
