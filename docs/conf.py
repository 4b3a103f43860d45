"""Sphinx configuration for the qtheory documentation site.

Everything that could go stale is generated here at build time, from the code and the
repository as they are: the API pages (from ``qtheory.__all__`` and every public module's
``__all__``), the command-line page (from the ``argparse`` parser), the notebook gallery
(``notebooks/*.ipynb``, executed by myst-nb), one page per reproduction
(``paper_repro/*/REPORT.md`` and ``figures/<name>/*.png``) and the calibrator/format guide
(from the measured CSV tables). Generated files go to ``docs/generated/`` (not tracked).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
Set ``QTHEORY_DOCS_EXECUTE=off`` to skip notebook execution while editing (CI never does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))
sys.path.insert(0, str(ROOT))  # document this checkout, not another installed copy

# The notebook kernels inherit the environment: this checkout first, fast settings, no GUI.
# Figures must reach the page, so the kernels use Jupyter's inline backend (a plain "Agg", as a
# test runner may set, would draw them and show nothing).
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("QTHEORY_NOTEBOOK_FAST", "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import _generate  # noqa: E402  (docs/_generate.py, after sys.path is set)

import qtheory  # noqa: E402

GENERATED = _generate.generate_all(ROOT, DOCS / "generated")

project = "qtheory"
author = "qtheory contributors"
copyright = "qtheory contributors, BSD-3-Clause"
release = version = qtheory.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "sphinx_copybutton",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# Broken cross-references fail the build (with -W). Third-party types in signatures and
# docstrings have no target here: intersphinx would need the network, so it is not configured,
# and only these outside packages are let through. Everything qtheory must resolve.
nitpicky = True
_THIRD_PARTY = r"(numpy|np|numpy\.typing|npt|pandas|pd|scipy|sympy|sp|mpmath|matplotlib|mpl|plt|torch|nn|onnx|onnxruntime|ml_dtypes|numba|tqdm|sklearn|collections|collections\.abc|typing|typing_extensions|os|pathlib|argparse|types|io|concurrent|dataclasses|enum|numbers|contextlib)"
nitpick_ignore_regex = [
    (r"py:.*", _THIRD_PARTY + r"\..*"),
    # bare names of third-party classes as they appear in annotations (e.g. ``ndarray``)
    (r"py:.*", r"(ndarray|DataFrame|Series|Generator|ArrayLike|NDArray|Axes|Figure|Tensor|Module|Path|PathLike|rv_continuous|rv_frozen|Callable|Iterable|Iterator|Sequence|Mapping)"),
]

# autodoc / numpydoc: one page per public object, written by _generate (no autosummary stubs).
autosummary_generate = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# myst / myst-nb: the gallery is executed at build time (the repository stores no outputs).
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off" if os.environ.get("QTHEORY_DOCS_EXECUTE") == "off" else "force"
nb_execution_timeout = int(os.environ.get("QTHEORY_DOCS_CELL_TIMEOUT", "300"))  # per cell, s
nb_execution_raise_on_error = True
nb_execution_in_temp = True
nb_execution_show_tb = True
nb_merge_streams = True

html_theme = "pydata_sphinx_theme"
html_title = f"qtheory {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_last_updated_fmt = None
html_show_sourcelink = False


# Docstrings name objects by the path users type (``qtheory.optimal_clip``, ``qtheory.Quantizer``);
# each object has one page, under the module that defines it. Resolve the public aliases (and
# bare names that are unique among documented objects) to that page. Type aliases
# (``PriorLike``, ...) of qtheory._typing share the "Type aliases" page. References to internal
# modules (``qtheory._io``, ``qtheory.kernels.*``) have no page and render as plain code.
def _resolve_alias(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    api = GENERATED["api"]
    target = node.get("reftarget", "")
    canonical = api.canonical.get(target)
    if canonical is None and "." not in target:
        hits = {c for f, c in api.canonical.items() if f.rsplit(".", 1)[1] == target}
        canonical = hits.pop() if len(hits) == 1 else None
    if canonical is None and "." not in target:  # a type alias by its bare name (a string annotation)
        canonical = next((a for a in api.aliases if a.rsplit(".", 1)[1] == target), None)
    if canonical is None and "." in target:
        owner, attr = target.rsplit(".", 1)  # a method or attribute of an aliased class
        if owner in api.canonical:
            canonical = f"{api.canonical[owner]}.{attr}"
    if canonical is not None and canonical != target:
        domain = env.get_domain("py")
        return domain.resolve_any_xref(env, node["refdoc"], app.builder, canonical, node, contnode) and \
            domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode)
    if target.startswith(("qtheory._", "qtheory.kernels")):
        return contnode
    return None


def setup(app):
    app.connect("missing-reference", _resolve_alias)
