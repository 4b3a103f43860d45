"""The two long reproductions (realnets, qat) run in CI in their fast configuration.

``QTHEORY_NOTEBOOK_FAST=1`` selects each script's documented fast configuration (fewer images,
channels, seeds and bit-widths); the committed outputs come from the full one via ``qtheory repro``.
Each run writes into a temporary root; the report must be generated from the tables it wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from qtheory import repro

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setenv("QTHEORY_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _run(name: str, root: Path) -> tuple[Path, str]:
    """Run one reproduction into ``root``; its table folder and report text."""
    out = repro._load(ROOT, name).main(root)
    assert out and all(p.exists() for p in out)
    tabs = root / "paper_repro" / name
    return tabs, (tabs / "REPORT.md").read_text()


@pytest.mark.slow
@pytest.mark.torch
def test_qat_fast_run_writes_a_report_from_its_tables(fast, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    tabs, report = _run("qat", tmp_path)
    acc = pd.read_csv(tabs / "accuracy.csv")
    flt = 100 * acc[acc.method == "float"].test_accuracy.mean()
    assert f"The float network reaches {flt:.1f} %" in report
    assert flt > 90  # digits: a small CNN in float is far above chance (10 %)
    for f in ("accuracy_vs_bits", "thresholds", "sat_logits"):
        assert (tmp_path / "figures" / "qat" / f"{f}.png").stat().st_size > 10_000


@pytest.mark.slow
def test_realnets_fast_run_writes_a_report_from_its_tables(fast, tmp_path):
    pytest.importorskip("onnxruntime")
    tabs, report = _run("realnets", tmp_path)
    fits = pd.read_csv(tabs / "weights_fit.csv")
    assert {"cls", "det", "mtcnn"} <= set(fits.net)
    n_sub = int(fits[fits.net == "det"].subnormal.sum())
    assert f"The detector stores {n_sub} float32 subnormal weights" in report
    ic = pd.read_csv(tabs / "intconv_qlinearconv.csv")
    assert len(ic) and re.search(r"QLinearConv", report)
