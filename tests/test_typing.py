"""Type hints on every public function, walked, not listed by hand.

Every function in the ``__all__`` of every module of ``qtheory`` (``qtheory.kernels``, numba kernels
called only through validated wrappers, and ``qtheory.symbolic``, sympy derivations, excepted) has an
annotation on each parameter and on its return value, and the annotations resolve:
``typing.get_type_hints`` evaluates them, with the names a module imports under ``TYPE_CHECKING``
(pandas, torch, onnx, the aliases of :mod:`qtheory._typing`) supplied as the local namespace.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
import types
import typing

import pytest

import qtheory

#: not walked: numba kernels (no validation, no public signature) and sympy derivations
_SKIP = ("qtheory.kernels", "qtheory.symbolic")

#: Modules whose public functions are not annotated yet (being edited on other branches when the
#: type hints landed). A module (or package prefix) listed here is exempt from the "every parameter
#: and the return value are annotated" check, not from the "annotations resolve" one.
#: Empty it as modules are finished: test_pending_modules_are_still_pending fails on a finished one.
PENDING_MODULES = {
    "qtheory.empirical",
    "qtheory.optimal",
    "qtheory.models.observers",
}
# (qtheory.cli and qtheory.repro are walked too: their public functions are annotated already.)


def _pending(modname: str) -> bool:
    return any(modname == p or modname.startswith(p + ".") for p in PENDING_MODULES)


#: optional packages: a module that needs one that is not installed is not walked (qtheory.qat: torch)
_OPTIONAL = {"torch", "onnx", "onnxruntime", "safetensors", "dask", "distributed", "sklearn", "ml_dtypes"}


def _modules() -> list[types.ModuleType]:
    out = [qtheory]
    for info in pkgutil.walk_packages(qtheory.__path__, "qtheory.", onerror=lambda name: None):
        if any(info.name == s or info.name.startswith(s + ".") for s in _SKIP):
            continue
        try:
            out.append(importlib.import_module(info.name))
        except ImportError as exc:
            if (exc.name or "").split(".")[0] not in _OPTIONAL:
                raise
    return out


def _public_functions() -> dict[str, types.FunctionType]:
    """``{"module.qualname": function}`` over the ``__all__`` of every walked module, each function
    once, named by the module that defines it."""
    out = {}
    for mod in _modules():
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if isinstance(obj, types.FunctionType) and not any(
                obj.__module__ == s or obj.__module__.startswith(s + ".") for s in _SKIP
            ):
                out.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return dict(sorted(out.items()))


FUNCTIONS = _public_functions()


def _type_checking_names(modname: str) -> dict:
    """The names ``modname`` imports inside ``if TYPE_CHECKING:`` blocks, imported for real."""
    mod = sys.modules[modname]
    tree = ast.parse(inspect.getsource(mod))
    body = [stmt for node in ast.walk(tree) if isinstance(node, ast.If)
            and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING") for stmt in node.body]
    ns = {"__name__": modname, "__package__": mod.__package__}
    exec(compile(ast.Module(body=body, type_ignores=[]), f"<TYPE_CHECKING of {modname}>", "exec"), ns)
    return {k: v for k, v in ns.items() if not k.startswith("__")}


def test_walk_finds_the_public_functions():
    # the walk reaches the core, the subpackages and the re-exports
    assert {"qtheory.priors.as_prior", "qtheory.mse.clipping_mse", "qtheory.formats.block.block_mse",
            "qtheory.models.readers.read_tensors", "qtheory.ste.tqt"} <= set(FUNCTIONS)
    assert len(FUNCTIONS) > 150


def _missing(f) -> list[str]:
    sig = inspect.signature(f)
    miss = [p.name for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        miss.append("return")
    return miss


@pytest.mark.parametrize("name", [n for n in FUNCTIONS if not _pending(FUNCTIONS[n].__module__)])
def test_public_function_is_annotated(name):
    miss = _missing(FUNCTIONS[name])
    assert not miss, f"{name} has no annotation for: {', '.join(miss)}"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_annotations_resolve(name):
    f = FUNCTIONS[name]
    localns = {**_type_checking_names("qtheory._typing"), **_type_checking_names(f.__module__)}
    hints = typing.get_type_hints(f, localns=localns)
    annotated = {p.name for p in inspect.signature(f).parameters.values()
                 if p.annotation is not inspect.Parameter.empty}
    assert annotated <= set(hints)


def test_pending_modules_are_still_pending():
    done = sorted(p for p in PENDING_MODULES
                  if not any(_missing(f) for f in FUNCTIONS.values() if _pending(f.__module__)
                             and (f.__module__ == p or f.__module__.startswith(p + "."))))
    assert not done, f"every public function of {done} is annotated: remove them from PENDING_MODULES"


def test_aliases_need_no_heavy_import():
    # qtheory._typing resolves at run time without scipy, pandas or torch (a fresh interpreter)
    import subprocess

    code = ("import sys, typing, qtheory._typing as t; "
            "[typing.get_type_hints(type('C', (), {'__annotations__': {'x': getattr(t, n)}})) for n in t.__all__]; "
            "print(sorted(m for m in ('scipy', 'pandas', 'torch', 'onnx', 'numba', 'sympy', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
