"""`qtheory formats` rows for every stable name, and the formats reproduction."""

import json

import pytest

from qtheory import cli

NAMES = ["fp8_e4m3fn", "fp8_e5m2", "fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn", "int8", "int4", "nf4", "mxfp4",
         "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxint8", "nvfp4", "int4_g32", "int4_g128", "int8_g32"]


def test_cli_formats_json_has_every_name(capsys):
    assert cli.main(["formats", "--prior", "gaussian", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["format"] for r in rows] == NAMES
    for r in rows:
        assert {"format", "bits_per_element", "sqnr_db", "mse"} <= set(r)
        assert r["mse"] > 0 and r["sqnr_db"] == pytest.approx(-10 * __import__("math").log10(r["mse"]), abs=1e-6)


def test_cli_formats_budget(capsys):
    assert cli.main(["formats", "--prior", "laplace", "--bits-budget", "4.5", "--json",
                     "--formats", "int4", "nf4", "mxfp4", "nvfp4", "int8"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["format"] for r in rows][0] == "nvfp4" and "int8" not in [r["format"] for r in rows]
    assert all(r["bits_per_element"] <= 4.5 for r in rows)


def test_cli_formats_bad_prior(capsys):
    assert cli.main(["formats", "--prior", "nope"]) == 2
    assert "'--prior' option" in capsys.readouterr().err


@pytest.mark.slow
def test_formats_repro_writes_report_from_tables(tmp_path):
    import importlib.util
    from pathlib import Path

    import pandas as pd

    src = Path(__file__).resolve().parents[1] / "paper_repro" / "formats" / "repro.py"
    spec = importlib.util.spec_from_file_location("formats_repro", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(tmp_path)
    report = (tmp_path / "paper_repro" / "formats" / "REPORT.md").read_text()
    assert all(p.exists() for p in out)
    kuz = pd.read_csv(tmp_path / "paper_repro" / "formats" / "kuzmin.csv")
    # the numbers quoted in the report are the table's
    v = kuz[(kuz.prior == "uniform(-1,1)") & (kuz.format == "INT8")].sqnr_db.iloc[0]
    assert f"INT8 {v} dB" in report
    # Kuzmin et al.'s direction: INT8 best for the uniform prior, an FP grid best for the Gaussian
    best = kuz[kuz.codes == "all 256 codes"].loc[lambda d: d.groupby("prior").sqnr_db.idxmax()]
    assert best.set_index("prior").format["uniform(-1,1)"] == "INT8"
    assert best.set_index("prior").format["normal clipped ±10"] != "INT8"
