"""Reproductions give byte-identical tables whatever the BLAS thread count (issue 10).

The synthetic networks of the SAT reproduction are the only BLAS-heavy part of the
reproductions; they run in float64 and their tables are written at 4 significant digits, so
the written files must not depend on how many threads OpenBLAS/OpenMP use.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
from pathlib import Path
import numpy as np
from qtheory.repro import _load
root, out = Path(sys.argv[1]), Path(sys.argv[2])
m = _load(root, "sat")
rng = np.random.default_rng(m.SEED)
logits = m.logit_saturation_table(rng, bits=(1, 2), batch=64)
depth = m.depth_table(rng, depths=(1, 8), batch=32)
m.long_csv(logits, out / "logit_saturation", ("model", "weights", "bits", "sat"), m.NET_SIG)
m.long_csv(depth, out / "depth", ("bn", "sat", "weights", "bits", "depth"),
           dict(m.NET_SIG, **{c: 4 for c in depth.columns if c.startswith("grad_l")}))
import threadpoolctl
print(max(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"))
"""


def _run(tmp_path: Path, threads: int) -> tuple[dict, str]:
    out = tmp_path / f"t{threads}"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(out)], env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}, res.stdout.strip()


@pytest.mark.slow
def test_sat_network_tables_do_not_depend_on_thread_count(tmp_path):
    pytest.importorskip("threadpoolctl")
    one, n1 = _run(tmp_path, 1)
    two, n2 = _run(tmp_path, 2)
    assert n1 == "1" and n2 == "2"          # the BLAS really ran with 1 and 2 threads
    assert sorted(one) == ["depth.csv", "logit_saturation.csv"]
    for name in one:
        assert one[name] == two[name], name
