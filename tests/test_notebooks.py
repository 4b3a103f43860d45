"""Every notebook in notebooks/ runs top to bottom (no widget front end needed), and its interactive
explorer responds: in the same kernel, after the last cell, every ``ipywidgets.interactive`` is found,
each of its controls is set to other valid values (slider ends and middle, each dropdown option up to a
cap, a checkbox flipped) and the explorer's function must run without an error and draw a figure with
axes every time. One execution per notebook serves both checks (issue 15)."""

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
MARK = "@@widget-report@@"

# Runs in the notebook's kernel after its last cell; prints one JSON report line.
DRIVER = r'''
import json as _json

import ipywidgets as _widgets
import matplotlib.pyplot as _plt
from ipywidgets.widgets import widget as _widget_module


def _all_widgets():
    inst = getattr(_widget_module, "_instances", None)  # ipywidgets >= 8.1
    if inst is None:
        inst = _widgets.Widget.widgets                   # ipywidgets 7 / 8.0
    return list(inst.values())


def _candidates(c, cap=6):
    """Other valid values of one control: (setter, label) pairs."""
    if isinstance(c, _widgets.widgets.widget_selection._MultipleSelection):
        return None
    if isinstance(c, _widgets.widgets.widget_selection._Selection):
        idx = [i for i in range(len(c.options)) if i != c.index][:cap]
        return [(lambda i=i: setattr(c, "index", i), c.options[i]) for i in idx]
    if isinstance(c, (_widgets.Checkbox, _widgets.ToggleButton)):
        return [(lambda: setattr(c, "value", not c.value), not c.value)]
    if hasattr(c, "min") and hasattr(c, "max") and isinstance(c.value, (int, float)):
        lo, hi = c.min, c.max
        mid = lo + round((hi - lo) / 2 / c.step) * c.step if c.step else (lo + hi) / 2
        vals = []
        for v in (lo, hi, mid):
            if v != c.value and v not in vals and lo <= v <= hi:
                vals.append(v)
        if isinstance(c, _widgets.FloatLogSlider):
            return [(lambda v=v: setattr(c, "value", c.base ** v), c.base ** v) for v in (lo, hi, mid)
                    if abs(c.base ** v - c.value) > 1e-12 * abs(c.value)][:2]
        return [(lambda v=v: setattr(c, "value", v), v) for v in vals[:2]]
    return None


def _drive(box):
    state = {"on": True, "calls": 0, "errors": [], "no_figure": []}
    f = box.f

    def wrapped(*args, **kwargs):
        if not state["on"]:
            return None
        _plt.close("all")
        state["calls"] += 1
        try:
            result = f(*args, **kwargs)
        except Exception as e:
            state["errors"].append(f"{kwargs}: {type(e).__name__}: {e}")
            raise
        if not any(_plt.figure(n).axes for n in _plt.get_fignums()):
            state["no_figure"].append(repr(kwargs))
        _plt.close("all")
        return result

    box.f = wrapped
    report = {"function": getattr(f, "__name__", repr(f)), "settings": 0, "undriven": [], "silent": []}
    for c in box.kwargs_widgets:
        if not isinstance(c, _widgets.Widget):   # widgets.fixed(...)
            continue
        cands = _candidates(c)
        if not cands:
            report["undriven"].append(f"{c._kwarg} ({type(c).__name__})")
            continue
        original = c.index if isinstance(c, _widgets.widgets.widget_selection._Selection) else c.value
        for setter, label in cands:
            before = state["calls"]
            setter()                               # interact: the observer calls update
            if state["calls"] == before:
                box.update()                       # interact_manual: press the button
            report["settings"] += 1
            if state["calls"] != before + 1:
                report["silent"].append(f"{c._kwarg}={label!r}")
        state["on"] = False
        if isinstance(c, _widgets.widgets.widget_selection._Selection):
            c.index = original
        else:
            c.value = original
        state["on"] = True
    box.f = f
    report.update(calls=state["calls"], errors=state["errors"], no_figure=state["no_figure"])
    return report


_reports = [_drive(w) for w in _all_widgets() if isinstance(w, _widgets.interactive)]
print("@@widget-report@@" + _json.dumps(_reports, default=str))
'''


def _stdout(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                   and o.get("name") == "stdout")


@pytest.mark.slow   # 8-50 s per notebook: the only test that runs the notebooks and their explorers
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_explorer_responds(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("QTHEORY_NOTEBOOK_FAST", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    driver = nbformat.v4.new_code_cell(DRIVER)
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)       # raises CellExecutionError on an error
        errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
                  if out.get("output_type") == "error"]
        assert not errors, errors
        nb.cells.append(driver)                    # in memory only
        driver = client.execute_cell(driver, len(nb.cells) - 1)
    line = next(ln for ln in _stdout(driver).splitlines() if ln.startswith(MARK))
    reports = json.loads(line[len(MARK):])
    assert reports, f"{path.name} has no ipywidgets interactive explorer"
    for r in reports:
        where = f"{path.name}: explorer {r['function']}"
        assert not r["undriven"], f"{where}: controls the test cannot drive: {r['undriven']}"
        assert r["settings"] >= 2, f"{where}: fewer than two control settings tried"
        assert not r["errors"], f"{where} raised: {r['errors']}"
        assert not r["silent"], f"{where}: setting a control did not run the function: {r['silent']}"
        assert not r["no_figure"], f"{where} drew no figure for {r['no_figure']}"
