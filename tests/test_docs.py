"""The documentation site builds with warnings as errors and covers the whole public API.

One build (notebooks executed, as on the site) in a temporary output folder; the checks below
read what it wrote. The repository stores notebooks without outputs: the site executes them.
"""

import importlib
import json
import sys
import types
import warnings
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the docs extra (sphinx) is not installed")
pytest.importorskip("myst_nb", reason="the docs extra (myst-nb) is not installed")
pytest.importorskip("pydata_sphinx_theme", reason="the docs extra (pydata-sphinx-theme) is not installed")
pytest.importorskip("numpydoc", reason="the docs extra (numpydoc) is not installed")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from sphinx.cmd.build import build_main

    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    with warnings.catch_warnings():
        # Python-level deprecation notices between Sphinx and its extensions (e.g. myst-parser
        # on Sphinx 9) are not documentation warnings; pytest's "error" filter would turn them
        # into a crash. Sphinx's own warnings still fail the build through -W.
        warnings.simplefilter("default", DeprecationWarning)
        warnings.simplefilter("default", PendingDeprecationWarning)
        rc = build_main(["-W", "--keep-going", "-q", "-b", "html", "-d", str(doctrees), str(DOCS), str(out)])
    assert rc == 0, "sphinx build failed (warnings are errors); see the output above"
    return out



def test_signatures_name_the_type_aliases(site):
    # qtheory._typing's aliases stay named in signatures and link to the "Type aliases" page,
    # instead of being expanded into their unions (numpy's ArrayLike is a union of private protocols)
    api_dir = site / "generated" / "api"
    html = (api_dir / "qtheory.mse.clipping_mse.html").read_text()
    for alias in ("PriorLike", "ArrayLike", "RNGLike"):
        assert f'href="qtheory._typing.html#qtheory._typing.{alias}"' in html, alias
    assert "_SupportsArray" not in html and "SeedSequence" not in html
    page = (api_dir / "qtheory._typing.html").read_text()
    assert 'id="qtheory._typing.PriorLike"' in page and "numpy.random.Generator" in page

@pytest.mark.slow
def test_every_public_name_has_a_page(site):
    sys.path.insert(0, str(DOCS))
    try:
        gen = importlib.import_module("_generate")
    finally:
        sys.path.remove(str(DOCS))
    api = gen.collect_api()
    import qtheory

    top = [n for n in qtheory.__all__ if not isinstance(getattr(qtheory, n), types.ModuleType)]
    assert top and all(f"qtheory.{n}" in api.canonical for n in top)
    missing = [full for full, page in api.canonical.items()
               if not (site / "generated" / "api" / f"{page}.html").exists()]
    assert not missing, missing
    # every name of every public module's __all__ is covered, not only the ones collected
    for modname in api.modules:
        for n in getattr(api.modules[modname], "__all__", []):
            if not isinstance(getattr(api.modules[modname], n), types.ModuleType):
                assert f"{modname}.{n}" in api.canonical, (modname, n)
    # the page of a top-level name documents it
    html = (site / "generated" / "api" / f"{api.canonical['qtheory.optimal_clip']}.html").read_text()
    assert "optimal_clip" in html and "Parameters" in html


@pytest.mark.slow
def test_every_reproduction_report_has_a_page(site):
    reports = sorted((ROOT / "paper_repro").glob("*/REPORT.md"))
    assert reports
    for report in reports:
        page = site / "generated" / "repro" / f"{report.parent.name}.html"
        assert page.exists(), report
        first_heading = next(line for line in report.read_text().splitlines() if line.startswith("# "))
        words = [w for w in first_heading[2:].split() if w.isalpha() and len(w) > 3]
        text = page.read_text()
        assert all(w in text for w in words[:3]), (report, words[:3])


@pytest.mark.slow
def test_notebooks_executed_on_the_site_and_stored_without_outputs(site):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        stored = json.loads(nb.read_text())
        assert not any(c.get("outputs") for c in stored["cells"] if c["cell_type"] == "code"), (
            f"{nb.name} is committed with outputs; the site executes notebooks, the repo stores none")
        html = (site / "generated" / "notebooks" / f"{nb.stem}.html").read_text()
        assert "<img" in html, f"{nb.name}: no figure in the executed page"
        assert "Traceback" not in html, nb.name


@pytest.mark.slow
def test_cli_and_guide_pages_come_from_the_code_and_tables(site):
    from qtheory.cli import build_parser

    cli = (site / "generated" / "cli.html").read_text()
    for action in build_parser()._actions:
        for name in getattr(action, "choices", None) or {}:
            if isinstance(action.choices, dict):
                assert f"qtheory {name}" in cli, name
    import pandas as pd

    guide = (site / "generated" / "guide.html").read_text()
    summary = ROOT / "paper_repro" / "calibrators" / "calibrator_summary.csv"
    if summary.exists():
        s = pd.read_csv(summary)
        best = s[~((s.median_db == 0) & (s.worst_db == 0))].sort_values("median_db").iloc[0]
        assert best["calibrator"] in guide and f"{best['median_db']:.3g}" in guide
    else:
        assert "absent" in guide
