"""Static checks of the notebooks (issue 10): no matplotlib return values leaked as cell output
(``Text(...)``, ``[<matplotlib.lines.Line2D ...>]``) and no citation of files that are not in
the repository."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MINE = [p for p in NOTEBOOKS if p.stem in ("tqt", "sat", "banner4bit", "intconv")]
# calls whose return value is a matplotlib artist (or list of them): leaked when a cell ends on one
ARTIST_CALLS = {"set_title", "set_xlabel", "set_ylabel", "text", "plot", "legend", "axhline", "axvline",
                "suptitle", "imshow", "scatter", "bar", "hist", "annotate", "errorbar", "fill_between"}


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("path", MINE, ids=[p.stem for p in MINE])
def test_no_artist_leaks(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if src.startswith("%"):
            continue
        body = ast.parse(src).body
        if not body or not isinstance(body[-1], ast.Expr):
            continue
        call = body[-1].value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            assert call.func.attr not in ARTIST_CALLS, f"cell {i} ends on .{call.func.attr}(...): its return value is displayed"


@pytest.mark.parametrize("path", MINE, ids=[p.stem for p in MINE])
def test_cited_files_exist(path):
    for cell in _cells(path):
        for name in re.findall(r"`([\w./-]+\.md)`", "".join(cell["source"])):
            hits = list(ROOT.glob(f"**/{Path(name).name}")) if "/" not in name else [ROOT / name]
            assert any(h.exists() for h in hits), f"{path.name} cites {name}, which is not in the repository"
